"""`literate serve`: a rebuild after an edit builds only the pages that changed, and gives the
site a clean build gives; the open browser page reloads by itself."""

from __future__ import annotations

import filecmp
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from site_copy import with_this_theme

from literate import serve, site, translations

ROOT = Path(__file__).resolve().parents[1]

PAGE_A = '"""\n# Page A\n\nThe keys $k$ and the values.\n"""\n\n# Add one.\nx = 1\n'
PAGE_B = '"""\n# Page B\n\nSee [page A](a.py).\n"""\n\n# Double it.\ny = 2\n'


def small_site(tmp_path: Path) -> Path:
    """Two pages in English and Sinhala, with this site's theme."""
    root = with_this_theme(tmp_path / "repo")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config["extra"]["literate"]["pages"] = ["a.py", "b.py"]
    config["extra"]["literate"]["languages"] = {"en": "English", "si": "සිංහල"}
    (root / "mkdocs.yml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    (root / "a.py").write_text(PAGE_A, encoding="utf-8")
    (root / "b.py").write_text(PAGE_B, encoding="utf-8")
    catalog = translations.Catalog(root / "translations" / "si" / "a.json")
    catalog.strings = {"Page A": "පිටුව A"}
    catalog.write()
    return root


def same_sites(left: Path, right: Path) -> list[str]:
    """Files that differ between two built sites (search indexes compared as data)."""
    names = {p.relative_to(left).as_posix() for p in left.rglob("*") if p.is_file()}
    names |= {p.relative_to(right).as_posix() for p in right.rglob("*") if p.is_file()}
    differ = []
    for name in sorted(names):
        a, b = left / name, right / name
        if not (a.is_file() and b.is_file()):
            differ.append(name)
        elif name.endswith("search_index.json"):
            if json.loads(a.read_text()) != json.loads(b.read_text()):
                differ.append(name)
        elif not name.endswith(".gz") and not filecmp.cmp(a, b, shallow=False):
            differ.append(name)
    return differ


def clean_build(root: Path, tmp_path: Path) -> Path:
    out = tmp_path / "clean"
    shutil.rmtree(out, ignore_errors=True)
    site.build(root, site_dir=out / "site", cache_dir=out / "build")
    return out / "site"


def test_an_edit_rebuilds_its_page_only_and_as_a_clean_build_does(tmp_path):
    root = small_site(tmp_path)
    session = serve.Session(root)
    assert session.rebuild() == []  # nothing changed, nothing built
    # code of page A: its page in both languages, nothing else
    (root / "a.py").write_text(PAGE_A.replace("x = 1", "x = 41"), encoding="utf-8")
    assert sorted(session.rebuild()) == ["en:a.md", "si:a.md"]
    assert "41" in (root / "site" / "a.html").read_text(encoding="utf-8")
    assert same_sites(root / "site", clean_build(root, tmp_path)) == []
    # a translation: the Sinhala page only
    catalog = translations.Catalog.read(root / "translations" / "si" / "a.json")
    (key,) = [k for k in translations.ordered_keys("a.py", PAGE_A) if "Add one" in k]
    catalog.strings[key] = key.replace("Add one.", "එකක් එකතු කරන්න.")
    catalog.write()
    (root / "b.py").write_text(PAGE_B.replace("Double it", "Double it now"), encoding="utf-8")
    rebuilt = session.rebuild()
    assert "si:a.md" in rebuilt and "en:a.md" not in rebuilt and "en:b.md" in rebuilt
    assert "එකක් එකතු කරන්න" in (root / "site" / "si" / "a.html").read_text(encoding="utf-8")
    assert same_sites(root / "site", clean_build(root, tmp_path)) == []


def test_a_stylesheet_edit_reaches_the_site(tmp_path):
    root = small_site(tmp_path)
    session = serve.Session(root)
    css = root / "docs" / "assets" / "literate.css"
    css.write_text(css.read_text(encoding="utf-8") + "\n/* edited */\n", encoding="utf-8")
    assert session.rebuild() == []  # no page changed
    assert "/* edited */" in (root / "site" / "si" / "assets" / "literate.css").read_text()
    assert same_sites(root / "site", clean_build(root, tmp_path)) == []


def test_a_new_title_rebuilds_everything(tmp_path):
    root = small_site(tmp_path)
    session = serve.Session(root)
    (root / "b.py").write_text(PAGE_B.replace("# Page B", "# Page Bee"), encoding="utf-8")
    assert session.rebuild() == ["*"]  # every page's menu shows the title
    assert "Page Bee" in (root / "site" / "a.html").read_text(encoding="utf-8")
    assert same_sites(root / "site", clean_build(root, tmp_path)) == []


@pytest.mark.browser
def test_the_open_page_reloads_after_an_edit(tmp_path, browser):
    root = small_site(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server, _ = serve.make_server(root, port)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/a.html", wait_until="load")  # live-reload polls
        assert "x = 1" in page.inner_text("article")
        started = time.perf_counter()
        (root / "a.py").write_text(PAGE_A.replace("x = 1", "x = 12345"), encoding="utf-8")
        page.wait_for_function("() => document.body.innerText.includes('12345')",
                               timeout=60_000)
        print(f"edit shown in the browser after {time.perf_counter() - started:.1f} s")
        page.close()
    finally:
        server.shutdown()
