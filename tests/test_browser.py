"""The built site in headless Chromium (Debian's), as a reader sees it.

Skipped where Chromium is missing, except in CI (`CI=true`), where a missing browser is a
failure: CI must never pass by testing less. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import serve

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(built_site):
    """The built site over HTTP on 127.0.0.1 (search needs http://, not file://)."""
    with serve(built_site.path) as url:
        yield url


class Visit:
    """A page at one width, recording console errors and any request off 127.0.0.1."""

    def __init__(self, browser, url: str, width: int):
        self.errors, self.outside = [], []
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        self.page.goto(url, wait_until="networkidle")

    def _route(self, route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def close(self):
        self.context.close()
        assert self.errors == [], self.errors
        assert self.outside == [], self.outside


def literate_pages(site: Path) -> list[str]:
    """The English literate pages (each language's copy is in site/<lang>/, tested apart)."""
    languages = {p.parent.name for p in site.glob("*/sitemap.xml")}
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if p.relative_to(site).parts[0] not in languages
                  and "literate-py" in p.read_text(encoding="utf-8"))


# The first row with both prose and code, the boxes of its two halves, and the first line
# of its prose (the code floats beside the prose, so the prose's own box runs under it).
BOXES = """() => {
  const row = [...document.querySelectorAll('.lit-row')].find(r =>
      r.querySelector('.lit-code pre') && r.querySelector('.lit-prose p'));
  const box = e => { const b = e.getBoundingClientRect ? e.getBoundingClientRect() : e;
                     return {left: b.left, right: b.right, top: b.top, bottom: b.bottom}; };
  const text = document.createRange();
  text.selectNodeContents(row.querySelector('.lit-prose p'));
  return {prose: box(row.querySelector('.lit-prose')), code: box(row.querySelector('.lit-code')),
          line: box(text.getClientRects()[0])};
}"""

# Prose text with the rendered formulas taken out: any `$` left is math KaTeX never saw.
RAW_MATH = """() => [...document.querySelectorAll('.lit-prose')].map(p => {
  const copy = p.cloneNode(true);
  copy.querySelectorAll('.katex, code, pre').forEach(k => k.remove());
  return copy.textContent;
}).join(' ').includes('$')"""


def test_literate_pages_side_by_side_then_stacked(browser, server, built_site):
    ARTIFACTS.mkdir(exist_ok=True)
    pages = literate_pages(built_site.path)
    assert pages, "no literate page was built"
    for name in pages:
        wide = Visit(browser, server + name, 1400)
        boxes = wide.page.evaluate(BOXES)
        assert boxes["line"]["right"] <= boxes["code"]["left"], f"{name}: not side by side"
        assert boxes["code"]["top"] < boxes["line"]["bottom"], f"{name}: not side by side"
        assert wide.page.locator(".katex").count() > 0, f"{name}: no KaTeX output"
        assert not wide.page.evaluate(RAW_MATH), f"{name}: raw $ left in the prose"
        wide.page.screenshot(path=ARTIFACTS / f"{name.replace('/', '_')}-1400.png")
        wide.close()

        narrow = Visit(browser, server + name, 600)
        boxes = narrow.page.evaluate(BOXES)
        assert boxes["code"]["top"] >= boxes["prose"]["bottom"] - 1, f"{name}: not stacked"
        narrow.page.screenshot(path=ARTIFACTS / f"{name.replace('/', '_')}-600.png")
        narrow.close()


def test_search_finds_aft_local(browser, server):
    visit = Visit(browser, server + "index.html", 1400)
    page = visit.page
    page.locator(".md-search__input").click()
    page.keyboard.type("AFT-local")  # typed, as Material listens for keys
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=10_000)
    assert "AFT-local" in page.locator(".md-search-result").inner_text()
    page.screenshot(path=ARTIFACTS / "search-1400.png")
    visit.close()


def test_dark_mode_toggle(browser, server):
    visit = Visit(browser, server + "index.html", 1400)
    page = visit.page
    scheme = page.evaluate("() => document.body.dataset.mdColorScheme")
    page.locator("form[data-md-component=palette] label:visible").first.click()
    page.wait_for_function(f"() => document.body.dataset.mdColorScheme !== '{scheme}'")
    assert {scheme, page.evaluate("() => document.body.dataset.mdColorScheme")} == {
        "default", "slate"}
    page.screenshot(path=ARTIFACTS / "home-toggled-1400.png")
    visit.close()


def test_math_reads_without_javascript(browser, server, built_site):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1400,
                                                                       "height": 900})
    page = context.new_page()
    page.goto(server + literate_pages(built_site.path)[0])
    assert page.locator(".katex-html").first.is_visible()
    context.close()
