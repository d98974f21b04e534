"""Math: KaTeX at build time, one Node process, cached; a bad formula fails the whole build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from literate import LiterateError, site
from literate.math import Katex
from literate.prose import Fragment

ROOT = Path(__file__).resolve().parents[1]


def make_project(tmp_path: Path, sources: dict[str, str]) -> Path:
    """A tiny project: this repository's mkdocs.yml and docs/, listing only `sources`."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["extra"]["literate"]["pages"] = list(sources)
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("index.md"))
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    for path, text in sources.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def test_formulas_render_to_html_and_mathml_and_are_cached(tmp_path):
    katex = Katex(ROOT / "node_modules", tmp_path / "cache.json")
    formula = Fragment("math", r"\sigma(Q_t) \odot V", line=3)
    katex.render_all([("a.py", formula)])
    html = katex.html(formula)
    assert 'class="katex"' in html and "<math" in html and "application/x-tex" in html
    again = Katex(ROOT / "node_modules", tmp_path / "cache.json")
    assert again.html(formula) == html  # read back from the cache file, no Node needed


def test_a_bad_formula_names_file_and_line(tmp_path):
    katex = Katex(ROOT / "node_modules", tmp_path / "cache.json")
    with pytest.raises(LiterateError) as error:
        katex.render_all([("aft/x.py", Fragment("math", r"\frac{a}{", line=7))])
    assert str(error.value).startswith("aft/x.py:7: bad formula")


def test_a_bad_formula_fails_the_build_and_keeps_the_old_site(tmp_path):
    good = '"""\n# Good\n\n$a_i$\n"""\nx = 1\n'
    project = make_project(tmp_path, {"pkg/mod.py": good})
    assert site.build(project) == 0
    before = (project / "site" / "pkg" / "mod.html").read_bytes()

    (project / "pkg" / "mod.py").write_text(good.replace("$a_i$", "text\n\n# $\\frac{a}{$\n"))
    with pytest.raises(LiterateError) as error:
        site.build(project)
    assert str(error.value).startswith("pkg/mod.py:6: bad formula")
    assert (project / "site" / "pkg" / "mod.html").read_bytes() == before
    assert not list((project / "build").glob("tmp-*"))  # no half-written build left behind


def test_a_missing_page_is_skipped_and_reported(tmp_path, capsys):
    project = make_project(tmp_path, {"pkg/a.py": "x = 1\n"})
    config = yaml.safe_load((project / "mkdocs.yml").read_text())
    config["extra"]["literate"]["pages"].append("pkg/missing.py")
    (project / "mkdocs.yml").write_text(yaml.safe_dump(config))
    assert site.build(project) == 1
    assert "pkg/missing.py: listed in mkdocs.yml but not found" in capsys.readouterr().err
    assert (project / "site" / "pkg" / "a.html").exists()


def test_broken_internal_links_fail_the_build(tmp_path):
    project = make_project(tmp_path, {"pkg/a.py": '"""See [b](b.html#nowhere)."""\n'})
    with pytest.raises(LiterateError, match="broken links"):
        site.build(project)
