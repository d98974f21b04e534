"""The weights explorer on the built AFT-local page, in headless Chromium (Debian's).

The contract the widget keeps: its root carries `data-aft-explorer`, each character `data-pos`,
and while a character is selected it and every character before it carry `data-weight`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import serve
from test_browser import ARTIFACTS, Visit

from aft import explore
from literate import ui

ROOT = Path(__file__).resolve().parents[1]
DATA = json.loads((ROOT / "results/explorer.json").read_text(encoding="utf-8"))
POSITION = 200

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(built_site):
    with serve(built_site.path) as url:
        yield url


WEIGHTS = """() => [...document.querySelectorAll('[data-aft-explorer] [data-weight]')]
    .map(e => [+e.dataset.pos, +e.dataset.weight])"""


def test_weights_at_position_200_are_the_committed_ones(browser, server):
    visit = Visit(browser, server + "aft/local.html", 1400)
    page = visit.page
    root = page.locator("[data-aft-explorer]")
    assert root.count() == 1
    assert root.locator("[data-pos]").count() == len(DATA["text"]) == DATA["seq_len"]
    window = DATA["window"]
    for mixer, model in DATA["models"].items():
        root.locator(f'input[name$="-model"][value="{mixer}"]').check()
        for layer, encoded in enumerate(model["mean"]):
            root.locator(f'input[name$="-layer"][value="{layer}"]').check()
            root.locator('[data-pos="10"]').click()
            root.locator(f'[data-pos="{POSITION}"]').click()
            weights = page.evaluate(WEIGHTS)
            assert [pos for pos, _ in weights] == list(range(POSITION + 1))
            shown = [w for _, w in weights]
            assert sum(shown) == pytest.approx(1, abs=1e-4), (mixer, layer)
            committed = explore.decode(encoded, DATA["seq_len"])[POSITION]
            assert shown == pytest.approx(committed, abs=1e-6), (mixer, layer)
            far = sum(shown[: POSITION - window + 1])
            if mixer == "local":  # bias 0, not -inf: the far keys keep a share
                assert far > 0.01, layer
            readout = root.locator(".aft-x-readout").inner_text()
            assert f"{100 * far:.1f} %" in readout
            assert root.locator(".aft-x-share-far").inner_text() == f"{100 * far:.1f} %"
    # the window of the last s characters is outlined, and only it
    outlined = root.locator(".aft-x-in-window").evaluate_all(
        "els => els.map(e => +e.dataset.pos)")
    assert outlined == list(range(POSITION - window + 1, POSITION + 1))
    root.screenshot(path=ARTIFACTS / "explorer-200-1400.png")
    visit.close()


def test_keyboard_moves_the_selection(browser, server):
    visit = Visit(browser, server + "aft/local.html", 1400)
    page = visit.page
    root = page.locator("[data-aft-explorer]")
    # one Tab stop for the whole text, not one per character
    assert root.locator('[tabindex="0"]').count() == 1
    assert root.locator("[data-pos][tabindex]").count() == 0
    text = root.locator('[role="listbox"]')
    text.focus()
    selected = lambda: int(root.get_attribute("data-selected"))  # noqa: E731
    page.keyboard.press("Home")
    assert selected() == 0 and root.locator("[data-weight]").count() == 1
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert selected() == 2 and root.locator("[data-weight]").count() == 3
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    assert selected() == len(DATA["text"]) - 2
    before = selected()
    page.keyboard.press("ArrowUp")  # to the line above on screen
    assert selected() < before
    assert text.get_attribute("aria-activedescendant") == root.locator(
        '[aria-selected="true"]').get_attribute("id")
    assert str(selected()) in root.locator('[aria-live="polite"]').inner_text()
    visit.close()


def test_phone_width_and_dark_mode(browser, server):
    visit = Visit(browser, server + "aft/local.html", 390)
    page = visit.page
    root = page.locator("[data-aft-explorer]")
    root.locator(f'[data-pos="{POSITION}"]').click()
    box = root.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.evaluate("() => document.body.setAttribute('data-md-color-scheme', 'slate')")
    root.screenshot(path=ARTIFACTS / "explorer-200-390-dark.png")
    visit.close()


@pytest.mark.parametrize("lang", ["si", "zh", "ja"])
def test_translated_labels(browser, server, lang):
    visit = Visit(browser, server + f"{lang}/aft/local.html", 1400)
    root = visit.page.locator("[data-aft-explorer]")
    legends = root.locator("legend").all_inner_texts()
    assert legends == [ui.t(lang, "Model"), ui.t(lang, "Layer")]
    assert legends != ["Model", "Layer"]
    assert root.locator('[role="listbox"]').get_attribute("aria-label") == ui.t(
        lang, "Text: choose a position")
    assert ui.t(lang, "Far keys") in root.locator(".aft-x-chart").inner_text()
    readout = root.locator(".aft-x-readout").inner_text()
    assert readout.startswith(ui.t(lang, "explorer readout").split("{")[0])
    visit.close()


@pytest.mark.parametrize("scheme", ["default", "slate"])
def test_no_accessibility_violations(browser, server, scheme):
    """axe-core (self-hosted from npm) on the widget, light and dark."""
    visit = Visit(browser, server + "aft/local.html", 1400)
    page = visit.page
    page.evaluate(f"() => document.body.setAttribute('data-md-color-scheme', '{scheme}')")
    page.add_script_tag(path=str(ROOT / "node_modules/axe-core/axe.min.js"))
    result = page.evaluate("""() => axe.run(document.querySelector('[data-aft-explorer]'),
        {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']})
        .then(r => r.violations.map(v => v.id + ': ' + v.nodes.length))""")
    assert result == []
    visit.close()
