"""The translated sites in headless Chromium: the switcher goes to the same page in every
language and back, and no hostile translation runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import serve

from literate.site import Config

pytestmark = pytest.mark.browser
TRANSLATED = list(Config.load(Path(__file__).resolve().parents[1]).languages)[1:]


@pytest.fixture(scope="module")
def server(built_site):
    with serve(built_site.path) as url:
        yield url


def pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if p.relative_to(site).parts[0] not in TRANSLATED and p.name != "404.html")


def switch(page, lang: str, hover: bool = True) -> None:
    """Choose `lang` in the language menu, as a reader does (open the menu, click)."""
    if hover:
        page.locator(".md-header__option .md-select").first.hover()
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.locator(f'a.md-select__link[hreflang="{lang}"]').click()


def test_switcher_as_a_reader_uses_it(browser, server):
    """The whole page (styles, scripts): open the menu, choose Sinhala, then English."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(server + "aft/local.html", wait_until="domcontentloaded")
    switch(page, "si")
    assert page.url == server + "si/aft/local.html"
    assert page.evaluate("document.documentElement.lang") == "si"
    switch(page, "en")
    assert page.url == server + "aft/local.html"
    context.close()


def test_switcher_from_every_english_page_to_every_language_and_back(browser, server,
                                                                    built_site):
    """Every page, the switcher's own links clicked; only the HTML is loaded (no styles,
    scripts, fonts), which keeps this fast and shows the links work without JavaScript."""
    context = browser.new_context(java_script_enabled=False)
    outside = []

    def route(route):
        if not route.request.url.startswith(server):
            outside.append(route.request.url)
            route.abort()
        elif route.request.resource_type != "document":
            route.abort()
        else:
            route.continue_()

    context.route("**/*", route)
    page = context.new_page()
    for name in pages(built_site.path):
        page.goto(server + name, wait_until="domcontentloaded")
        for lang in TRANSLATED:
            switch(page, lang, hover=False)
            assert page.url == server + f"{lang}/" + name
            assert page.evaluate("document.documentElement.lang") == lang
            switch(page, "en", hover=False)
            assert page.url == server + name
    assert outside == []
    context.close()


def test_sinhala_page_side_by_side(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(server + "si/aft/local.html", wait_until="load")
    box = page.evaluate("""() => {
      const row = [...document.querySelectorAll('.lit-row')].find(r =>
          r.querySelector('.lit-code pre') && r.querySelector('.lit-prose p'));
      const b = e => e.getBoundingClientRect();
      const text = document.createRange();  // the first line: the prose runs under the code
      text.selectNodeContents(row.querySelector('.lit-prose p'));
      return [text.getClientRects()[0].right, b(row.querySelector('.lit-code')).left];
    }""")
    assert box[0] <= box[1]
    assert page.locator(".katex").count() > 0
    context.close()


# Anything a hostile value could have left in the page, looked for in the live DOM.
LEFTOVERS = """() => {
  const root = document.querySelector('.literate');
  const all = [...root.querySelectorAll('*')];
  return {
    handlers: all.filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
    scripts: root.querySelectorAll('script, iframe, img, object, embed').length,
    javascript: [...root.querySelectorAll('a')].filter(a =>
        a.protocol === 'javascript:').length,
    nested: root.querySelectorAll('a a').length,
    foreign: [...root.querySelectorAll('a[href]')].filter(a =>
        a.hostname && !['arxiv.org', location.hostname, 'github.com'].includes(a.hostname)
    ).length,
    pwned: window.__pwned === undefined ? 0 : 1,
  };
}"""


def test_no_hostile_translation_runs_on_a_built_page(browser, hostile_site):
    dialogs = []
    with serve(hostile_site.site) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url + "si/h.html", wait_until="load")
        for link in page.locator(".literate a").all():
            if link.is_visible():
                link.hover()  # would fire any onmouseover
        for bold in page.locator(".literate b").all():
            bold.click()  # would fire any onclick
        assert page.evaluate(LEFTOVERS) == {"handlers": 0, "scripts": 0, "javascript": 0,
                                            "nested": 0, "foreign": 0, "pwned": 0}
        assert page.locator(".lit-invalid").count() == len(hostile_site.cases)
        assert page.locator(".lit-invalid .lit-marker").first.is_visible()
        context.close()
    assert dialogs == []
