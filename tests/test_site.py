"""The site as a whole: strict, reproducible, fast, in teaching order."""

from __future__ import annotations

import filecmp
import re
from pathlib import Path

import yaml

from literate import sections, site

ROOT = Path(__file__).resolve().parents[1]


def test_builds_strictly_with_no_warnings(built_site):
    assert built_site.warnings == []
    assert (built_site.path / "index.html").exists()
    site.check_links(built_site.path)  # 0 broken internal links


def test_every_listed_source_exists():
    """Fails (with the list) until every page of the teaching order has been written."""
    pages = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["extra"]["literate"]["pages"]
    assert [p for p in pages if not (ROOT / p).is_file()] == []


def test_clean_build_is_fast(built_site):
    print(f"\nclean build: {built_site.seconds:.1f} s")
    assert built_site.seconds <= 15


def test_two_clean_builds_are_byte_identical(built_site, tmp_path):
    site.build(ROOT, site_dir=tmp_path / "site", cache_dir=tmp_path / "build")
    comparison = filecmp.dircmp(built_site.path, tmp_path / "site")

    def differences(c) -> list[str]:
        found = c.left_only + c.right_only + c.funny_files
        found += [f for f in c.common_files
                  if Path(c.left, f).read_bytes() != Path(c.right, f).read_bytes()]
        return found + [d for sub in c.subdirs.values() for d in differences(sub)]

    assert differences(comparison) == []


def test_pages_follow_the_teaching_order(built_site):
    pages = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["extra"]["literate"]["pages"]
    present = [page_html(p) for p in pages if (ROOT / p).is_file()]
    home = (built_site.path / "index.html").read_text()
    nav = re.findall(r'<a href="([^"#]+)" class="md-nav__link', home)
    assert [link for link in nav if link in present] == present


def page_html(source: str) -> str:
    return site.page.page_path(source)[: -len(".md")] + ".html"


def test_literate_pages_link_lines_to_the_repository(built_site):
    for source in ("aft/full.py", "aft/local.py"):
        if not (ROOT / source).is_file():
            continue
        text = (built_site.path / page_html(source)).read_text()
        assert f"https://github.com/aft-annotated/aft-annotated/blob/main/{source}#L" in text
        assert f"https://github.com/aft-annotated/aft-annotated/edit/main/{source}" in text
        assert 'class="katex"' in text
        prose = re.findall(r'class="lit-prose">(.*?)</div>\n</section>', text, re.S)
        assert prose and not any("$" in re.sub(r"<[^>]+>", "", p) for p in prose)


def test_offline_assets(built_site):
    assert (built_site.path / "assets" / "katex" / "katex.min.css").exists()
    assert list((built_site.path / "assets" / "katex" / "fonts").glob("*.woff2"))
    for page in built_site.path.rglob("*.html"):
        text = page.read_text()
        assert "fonts.googleapis" not in text and "cdn.jsdelivr" not in text


def test_no_row_holds_two_definitions(built_site):
    """On every page of every language, a row's code holds the start of at most one top-level
    def/class or method. Code lines link to their source line (`…/blob/main/aft/x.py#L12`),
    which tells which lines start a definition."""
    row = re.compile(r'<section class="lit-row"[^>]*id="([^"]*)".*?</section>', re.S)
    line = re.compile(r'href="https://github\.com/[^"]*/blob/main/([^"#]+\.py)#L(\d+)"')
    starts, crowded = {}, []
    for page in sorted(built_site.path.rglob("*.html")):
        for match in row.finditer(page.read_text(encoding="utf-8")):
            lines = [(source, int(n)) for source, n in line.findall(match.group(0))]
            if not lines:
                continue
            source = lines[0][0]
            if source not in starts:
                starts[source] = set(sections._definitions((ROOT / source).read_text()))
            found = [n for s, n in lines if n in starts[s]]
            if len(found) > 1:
                crowded.append(f"{page.relative_to(built_site.path)}#{match.group(1)}: "
                               f"{source} lines {found}")
    assert starts, "no code row links to its source"
    assert crowded == []


def test_fonts_for_every_script_are_served_by_the_site(built_site):
    """Each language's fonts.css points at WOFF2 files the site holds (copied once, at the
    root), only of the Sinhala, Chinese and Japanese subsets, each face split by range."""
    languages = [p.parent.name for p in built_site.path.glob("*/sitemap.xml")]
    families = set()
    for folder in [built_site.path] + [built_site.path / lang for lang in languages]:
        css = (folder / "assets" / "fonts.css").read_text(encoding="utf-8")
        urls = re.findall(r"url\(([^)]+)\)", css)
        assert urls and all(u.endswith(".woff2") for u in urls)
        assert css.count("@font-face") == len(urls) == css.count("unicode-range")
        for url in urls:
            assert (folder / "assets" / url).resolve().is_file(), (folder, url)
            assert "latin" not in url and "cyrillic" not in url and "vietnamese" not in url
        families |= set(re.findall(r"font-family: '([^']+)'", css))
        assert not (folder / "assets" / "fonts").exists() or folder == built_site.path
    assert families == {"Noto Sans Sinhala", "Noto Sans SC", "Noto Sans JP"}
