"""The built site's layout in headless Chromium: whole code lines, wide things at full width,
rows no taller than their content needs, and fonts for every script.

Skipped where Chromium is missing, except in CI (`CI=true`), as in test_browser.py.
`python tests/test_browser_layout.py SITE_DIR` prints the figures per page instead.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from conftest import CHROMIUM, FLAGS, serve

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1920)
# Pages whose code another branch is rewriting to 79 columns (see test_literate_sections.py).
SCREEN = 900  # px: the most empty space a row may hold beside its content

# Code lines wider than the visible box of their code block (they would be hidden until the
# reader scrolls). A line is measured as a DOM range from one newline to the next, so the
# markup inside it (highlighting, line-number links) does not matter.
HIDDEN_LINES = """() => {
  const found = [];
  let total = 0;
  for (const code of document.querySelectorAll('.md-typeset pre > code')) {
    if (!code.getClientRects().length) continue;  // not shown (e.g. in a closed details)
    const box = code.getBoundingClientRect();
    const edge = box.left + code.clientLeft + code.clientWidth + 1;
    const range = document.createRange();
    range.setStart(code, 0);
    const measure = (node, offset) => {
      range.setEnd(node, offset);
      total += 1;
      const right = range.getBoundingClientRect().right;
      if (right > edge) found.push({text: range.toString().slice(0, 90),
                                    hidden: Math.round(right - edge)});
    };
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    let node, last = null;
    while ((node = walker.nextNode())) {
      last = node;
      for (let i = node.data.indexOf('\\n'); i >= 0; i = node.data.indexOf('\\n', i + 1)) {
        measure(node, i);
        range.setStart(node, i + 1);
      }
    }
    if (last) {
      range.setEnd(last, last.data.length);
      if (range.toString().trim()) measure(last, last.data.length);
    }
  }
  return {total, hidden: found};
}"""

# For each row: its height, and the tallest stretch of its code column (the right half)
# that holds nothing while prose stands beside it: the empty band a short piece of code
# leaves beside long prose. (Code with no prose beside it is a literate page's normal.)
EMPTY_SPACE = """() => [...document.querySelectorAll('.lit-row')].map(row => {
  const r = row.getBoundingClientRect();
  const middle = (r.left + r.right) / 2;
  const boxes = [];
  for (const cell of row.children) {
    const parts = cell.classList.contains('lit-code') ? [...cell.querySelectorAll('.highlight')]
                                                    : [...cell.children];
    for (const part of parts) {
      if (getComputedStyle(part).position === 'absolute') continue;
      const b = part.getBoundingClientRect();
      if (b.height > 0 && b.width > 0 && b.right > middle) boxes.push([b.top, b.bottom]);
    }
  }
  boxes.sort((a, b) => a[0] - b[0]);
  let reached = r.top, empty = 0;
  for (const [top, bottom] of boxes) {
    empty = Math.max(empty, top - reached);
    reached = Math.max(reached, bottom);
  }
  empty = Math.max(empty, r.bottom - reached);
  return {id: row.id, height: Math.round(r.height), empty: Math.round(empty)};
})"""

# Wide things in prose: tables, display formulas, images, figures. Each must be shown whole
# (not cut by its row, not scrolling) unless it is wider than the whole row.
WIDE_THINGS = """() => {
  const problems = [];
  const selector = 'table, .katex-display, img, svg, figure, pre > code';
  for (const row of document.querySelectorAll('.lit-row')) {
    const width = row.getBoundingClientRect().width;
    for (const thing of row.querySelectorAll(`.lit-prose :is(${selector})`)) {
      if (thing.closest('.katex') && !thing.matches('.katex-display')) continue;
      if (thing.parentElement.closest(selector)) continue;  // judged as part of its container
      const scroller = thing.matches('table') ? (thing.closest('.md-typeset__scrollwrap')
                                                 || thing) : thing;
      if (thing.matches('pre > code') && thing.closest('.lit-code')) continue;
      const b = scroller.getBoundingClientRect();
      const css = typeof thing.className === 'string' ? thing.className
                                                      : thing.className.baseVal || '';
      const name = thing.tagName.toLowerCase() + (css ? '.' + css.split(' ')[0] : '');
      const natural = Math.max(scroller.scrollWidth, thing.naturalWidth || 0);
      if (b.right > row.getBoundingClientRect().right + 1)
        problems.push(`${row.id}: ${name} is cut at the row's edge`);
      else if (scroller.scrollWidth > scroller.clientWidth + 1 && natural <= width)
        problems.push(`${row.id}: ${name} scrolls (${scroller.scrollWidth} px in ` +
                      `${scroller.clientWidth}) though the row is ${Math.round(width)} px`);
      else if (thing.naturalWidth && b.width + 1 < Math.min(thing.naturalWidth, width))
        problems.push(`${row.id}: ${name} is shrunk to ${Math.round(b.width)} px of ` +
                      `${thing.naturalWidth}`);
    }
  }
  return problems;
}"""


def open_page(browser, url: str, width: int):
    """A page at `width` × 900, offline: any request off 127.0.0.1 is refused."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.route("**/*", lambda route: route.continue_() if "://127.0.0.1" in route.request.url
               else route.abort())
    page.goto(url, wait_until="networkidle")
    page.evaluate("document.fonts.ready")
    return context, page


def site_pages(site: Path, every_language: bool = False) -> list[str]:
    """The English pages, and (with `every_language`) two literate pages per other language."""
    languages = sorted(p.parent.name for p in site.glob("*/sitemap.xml"))
    english = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                     if p.relative_to(site).parts[0] not in languages
                     and p.name != "404.html")
    others = [f"{lang}/aft/{name}.html" for lang in languages for name in ("local", "model")
              ] if every_language else []
    return english + [p for p in others if (site / p).exists()]


@pytest.fixture(scope="module")
def server(built_site):
    with serve(built_site.path) as url:
        yield url


@pytest.mark.parametrize("width", WIDTHS)
def test_no_code_line_is_hidden(browser, server, built_site, width):
    hidden = {}
    for name in site_pages(built_site.path, every_language=True):
        context, page = open_page(browser, server + name, width)
        found = page.evaluate(HIDDEN_LINES)["hidden"]
        context.close()
        if found:
            hidden[name] = found[:3] + ([f"... {len(found)} lines"] if len(found) > 3 else [])
    assert hidden == {}


def report(site: Path, widths=(1280,)) -> None:
    """Print hidden code lines and the emptiest row of every page."""
    from playwright.sync_api import sync_playwright

    with serve(site) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        for width in widths:
            for name in site_pages(site, every_language=True):
                context, page = open_page(browser, url + name, width)
                lines = page.evaluate(HIDDEN_LINES)
                rows = page.evaluate(EMPTY_SPACE)
                wide = page.evaluate(WIDE_THINGS)
                context.close()
                worst = max(rows, key=lambda r: r["empty"], default=None)
                print(f"{width} {name}: hidden code lines {len(lines['hidden'])} of "
                      f"{lines['total']}"
                      + (f", emptiest row {worst['id']} {worst['empty']} px empty of "
                         f"{worst['height']}" if worst else "")
                      + (f", wide things: {len(wide)}" if wide else ""))
                for problem in wide[:4]:
                    print("    " + problem)
        browser.close()


if __name__ == "__main__":
    report(Path(sys.argv[1]), tuple(int(w) for w in sys.argv[2:]) or (1280,))


@pytest.mark.parametrize("width", WIDTHS)
def test_wide_things_at_full_width_and_no_empty_bands(browser, server, built_site, width):
    """Tables, display formulas, plots and figures are shown whole where the row is wide
    enough, and no row holds more than a screen of empty space beside its content."""
    problems = []
    for name in ("aft/index.html", "aft/local.html", "aft/train.html", "aft/bench.html"):
        if not (built_site.path / name).exists():
            continue
        context, page = open_page(browser, server + name, width)
        problems += [f"{name}: {p}" for p in page.evaluate(WIDE_THINGS)]
        problems += [f"{name}#{row['id']}: {row['empty']} px empty in a {row['height']} px row"
                     for row in page.evaluate(EMPTY_SPACE) if row["empty"] > SCREEN]
        context.close()
    assert problems == []


# Each distinct character of the page's text, drawn in the page's font, against the box a
# font draws for a character it lacks (U+0378 is unassigned): equal pixels mean tofu.
MISSING_GLYPHS = """async () => {
  const root = document.querySelector('.md-content');
  const copy = root.cloneNode(true);
  copy.querySelectorAll('.katex, code, pre, script, style').forEach(e => e.remove());
  const text = copy.textContent + document.querySelector('.md-header').textContent;
  const chars = [...new Set(text)].filter(c => c.codePointAt(0) > 0x7f
                                          && !/[\\p{M}\\p{Cf}\\p{Z}\\s]/u.test(c));
  const family = getComputedStyle(document.querySelector('.md-typeset')).fontFamily;
  await document.fonts.load(`32px ${family}`, chars.join(''));
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 48;
  const ink = canvas.getContext('2d', {willReadFrequently: true});
  ink.font = `32px ${family}`;
  const draw = c => { ink.clearRect(0, 0, 48, 48); ink.fillText(c, 4, 36);
                      return ink.getImageData(0, 0, 48, 48).data.join(','); };
  const tofu = draw('\\u0378');
  const noto = [...document.fonts].filter(f => f.family.includes('Noto') &&
                                               f.status === 'loaded').map(f => f.family);
  return {chars: chars.length, missing: chars.filter(c => draw(c) === tofu),
          loaded: [...new Set(noto)]};
}"""


# Sinhala, kana, CJK ideographs and CJK punctuation and full-width forms.
SCRIPT = re.compile(r"[\u0d80-\u0dff\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


def drawn_with_system_fonts(context, page) -> tuple[int, list[str]]:
    """Elements whose text is all Sinhala/CJK, and those of them that the browser drew
    (partly) with a system font: here that can only be the box of a missing glyph, as
    this browser has no system font for these scripts. Chromium says which fonts drew a
    node's text (`CSS.getPlatformFontsForNode`); spaces may come from a system font."""
    cdp = context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    checked, found = 0, []
    stack = [cdp.send("DOM.getDocument", {"depth": -1})["root"]]
    while stack:
        node = stack.pop()
        children = node.get("children", [])
        stack += children
        text = "".join(c.get("nodeValue", "") for c in children)
        if (node.get("nodeType") != 1 or node.get("nodeName") in ("SCRIPT", "STYLE", "TITLE")
                or any(c.get("nodeType") != 3 for c in children) or not SCRIPT.search(text)
                or re.sub(r"\s", "", SCRIPT.sub("", text))):
            continue
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
        if fonts:  # drawn (not hidden)
            checked += 1
            system = sum(f["glyphCount"] for f in fonts if not f["isCustomFont"])
            if system > len(re.findall(r"\s", text)):
                found.append(text.strip())
    return checked, found


@pytest.mark.parametrize("lang, script", [("si", "Sinhala"), ("zh", "SC"), ("ja", "JP")])
def test_every_script_renders_with_the_sites_own_fonts(browser, server, built_site, lang,
                                                       script):
    """The test browser has no Sinhala or CJK system font: whatever it shows of these pages,
    it shows with the Noto fonts the site serves."""
    for name in (f"{lang}/aft/local.html", f"{lang}/aft/model.html", f"{lang}/index.html"):
        if not (built_site.path / name).exists():
            pytest.skip(f"{name} was not built")
        context, page = open_page(browser, server + name, 1280)
        found = page.evaluate(MISSING_GLYPHS)
        page.wait_for_timeout(500)  # the last font pieces drawn
        checked, tofu = drawn_with_system_fonts(context, page)
        context.close()
        assert found["chars"] > 20, f"{name}: too little {lang} text to judge"
        assert f"Noto Sans {script}" in found["loaded"], (name, found["loaded"])
        assert found["missing"] == [], f"{name}: no glyph for {''.join(found['missing'])}"
        assert checked > 10 and tofu == [], f"{name}: drawn with missing glyphs: {tofu}"


def test_narrow_screens_stack_and_scroll_code_in_its_cell(browser, server, built_site):
    """On a phone the prose comes first, its code below, and a long code line scrolls inside
    its own cell: the page itself never scrolls sideways."""
    for name in ("aft/local.html", "aft/bench.html"):
        context, page = open_page(browser, server + name, 390)
        sizes = page.evaluate("""() => ({page: document.scrollingElement.scrollWidth,
                                          window: window.innerWidth})""")
        order = page.evaluate("""() => {
          const row = [...document.querySelectorAll('.lit-row')].find(r =>
              r.querySelector('.lit-code pre') && r.querySelector('.lit-prose p'));
          return row.querySelector('.lit-code').getBoundingClientRect().top
               - row.querySelector('.lit-prose').getBoundingClientRect().bottom;
        }""")
        context.close()
        assert sizes["page"] <= sizes["window"], f"{name}: the page scrolls sideways {sizes}"
        assert order >= -1, f"{name}: code not below its prose"


def test_copy_button_copies_code_without_line_numbers(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"],
                              origin=server.rstrip("/"))
    page = context.new_page()
    page.goto(server + "aft/full.html", wait_until="networkidle")
    assert page.locator(".lit-code .md-code__button").count() == page.locator(
        ".lit-code pre").count() > 0
    row = page.locator(".lit-row", has=page.locator(".lit-code pre")).first
    row.hover()
    row.locator(".md-code__button").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    code = row.locator(".lit-code pre > code").evaluate("""code => {
      const copy = code.cloneNode(true);
      copy.querySelectorAll('a.lit-ln').forEach(a => a.remove());
      return copy.textContent.trimEnd();
    }""")
    context.close()
    assert copied == code and copied.startswith("import ")


def test_table_of_contents_and_one_home_entry(browser, server):
    context, page = open_page(browser, server + "aft/local.html", 1280)
    toc = page.locator(".md-nav--primary .md-nav__link--active ~ nav a").all_inner_texts()
    visible = [t.strip() for t in page.locator(".md-sidebar--primary").inner_text().split("\n")
               if t.strip()]
    context.close()
    assert len(toc) >= 3, "no table of contents for a long page"
    assert visible.count("AFT, annotated") == 1, visible[:4]


def test_language_switcher_names_every_language_in_its_script(browser, server):
    """On an English page the switcher's සිංහල, 简体中文 and 日本語 are drawn with the
    site's fonts too."""
    context, page = open_page(browser, server + "aft/model.html", 1280)
    page.locator(".md-header__option .md-select").hover()
    page.wait_for_timeout(500)
    checked, tofu = drawn_with_system_fonts(context, page)
    context.close()
    assert checked >= 3 and tofu == []
