"""Keyboard and screen readers, in headless Chromium: axe-core on every English page, the Tab
order of the longest article, a skip link, and no Tab stop on something invisible."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import serve

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(built_site, tmp_path_factory):
    """The site under its own path (/aft-annotated/), as on GitHub Pages: the 404 page's links
    are absolute to that path."""
    from literate.site import Config

    prefix = Config.load(ROOT).site_url.split("/", 3)[3].strip("/")
    folder = tmp_path_factory.mktemp("served")
    (folder / prefix).symlink_to(built_site.path)
    with serve(folder) as url:
        yield f"{url}{prefix}/"


def english_pages(site: Path) -> list[str]:
    languages = {p.parent.name for p in site.glob("*/sitemap.xml")}
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if p.relative_to(site).parts[0] not in languages)


def test_axe_finds_no_serious_violation_on_any_english_page(browser, server, built_site):
    if not AXE.is_file():
        pytest.skip("node_modules/axe-core is missing (npm ci)")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    found = {}
    pages = english_pages(built_site.path)
    assert len(pages) >= 14
    for name in pages:
        page.goto(server + name, wait_until="networkidle")
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate("""async () => (await axe.run(document,
            {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))""")
        if violations:
            found[name] = violations
    context.close()
    assert found == {}


# Where Tab goes: the focused element, whether it is in the article, and whether a reader can
# see it (the palette's radio button is drawn by the label after it: the toggle's icon).
FOCUS = """() => {
  const e = document.activeElement;
  const target = e.matches('input.md-option') ? e.nextElementSibling : e;
  const box = target.getBoundingClientRect(), style = getComputedStyle(target);
  return {tag: e.tagName, cls: e.className, article: !!e.closest('article'),
          visible: box.width > 0 && box.height > 0 && style.visibility !== 'hidden'
                   && !e.closest('[aria-hidden="true"]')};
}"""


def tab_stops(page, limit: int = 1000) -> list[dict]:
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS)
        if focus["tag"] == "BODY" or (stops and focus == stops[0]):
            break
        stops.append(focus)
    return stops


def test_keyboard_on_the_longest_article(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(server + "aft/local.html", wait_until="networkidle")
    stops = tab_stops(page)
    in_article = [s for s in stops if s["article"]]
    # the first Tab is the skip link, and it leads to the article
    assert "md-skip" in stops[0]["cls"] and stops[0]["visible"]
    # no line number, no row anchor, nothing invisible in the Tab order
    assert not [s for s in stops if "lit-ln" in s["cls"] or "lit-anchor" in s["cls"]]
    assert [s for s in stops if not s["visible"]] == []
    # the article's links and its sideways-scrolling boxes, not one stop per code line
    # (there were 373: 287 line numbers and 51 row anchors)
    assert 0 < len(in_article) < 60, len(in_article)
    page.goto(server + "aft/local.html", wait_until="networkidle")
    page.keyboard.press("Tab")
    page.wait_for_timeout(600)  # Material fades the skip link in
    assert page.evaluate("() => getComputedStyle(document.activeElement).opacity") == "1"
    page.keyboard.press("Enter")
    # to the start of the article: the page's title (Material's skip link, on a page with
    # a table of contents) or the top of the content (ours, on a page without one)
    title = page.evaluate("() => document.querySelector('article h1').id")
    assert page.evaluate("() => location.hash") in ("#lit-content", f"#{title}")
    context.close()
