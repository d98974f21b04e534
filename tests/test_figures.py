"""Figures drawn from the code (`aft.figures`) and how the renderer shows them."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import torch

from aft import figures
from aft.model import LanguageModel, ModelConfig
from literate import page, prose, translations
from literate.sections import LiterateError

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / figures.FIGURES


# ## The committed files are what the code draws today
def test_committed_figures_are_up_to_date(tmp_path):
    assert figures.main(["--out", str(tmp_path)]) == 0
    drawn = sorted(p.name for p in tmp_path.iterdir())
    assert "learned-biases.svg" in drawn, f"{figures.LEARNED_BIASES} is missing"
    for name in drawn:
        committed = COMMITTED / name
        assert committed.exists(), (f"{committed.relative_to(ROOT)} is not committed: run "
                                    "`make figures` (python -m aft.figures) and commit it")
        assert committed.read_bytes() == (tmp_path / name).read_bytes(), (
            f"{committed.relative_to(ROOT)} is out of date: run `make figures` "
            "(python -m aft.figures) and commit it")


@pytest.mark.parametrize("name", sorted(p.name for p in COMMITTED.glob("*.svg")))
def test_svg_is_small_themeable_and_wordless(name):
    text = (COMMITTED / name).read_text(encoding="utf-8")
    root = ElementTree.fromstring(text)  # well-formed XML
    assert root.get("fill") == "currentColor" and root.get("viewBox")
    assert "\n\n" not in text and "id=" not in text and "<title" not in text
    for element in root.iter("{http://www.w3.org/2000/svg}text"):
        # only code names, symbols and numbers: words belong in the translated caption
        assert re.fullmatch(r"[\w\[\]=.,()′→↓−+ -]*", element.text or ""), element.text
        assert not re.search(r"\b(?!causal|blocks|aft_|t\b)[a-z]{3,}", element.text or "")
    assert len(text) < 60_000


# ## The weights are the paper's: a softmax over keys of the bias
def test_variant_weights_are_the_bias_softmax():
    seq, window = 8, 3
    generator = torch.Generator().manual_seed(5)
    panels = figures.variant_weights(seq, window, seed=5)
    full_bias = torch.randn(seq, seq, generator=generator, dtype=torch.float64)
    causal_band = torch.randn(seq, window, generator=generator, dtype=torch.float64)
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    # AFT-local, causal: w[t, t - j] = band[t, j] inside the window, 0 for far keys
    local_bias = torch.zeros(seq, seq, dtype=torch.float64)
    for t in range(seq):
        for j in range(min(window, t + 1)):
            local_bias[t, t - j] = causal_band[t, j]
    expected = {
        ("aft_full", "causal=True"): full_bias,
        ("aft_local", "causal=True"): local_bias,
        ("aft_simple", "causal=True"): torch.zeros(seq, seq, dtype=torch.float64),
    }
    for function, mode, weights in panels:
        assert torch.allclose(weights.sum(1), torch.ones(seq, dtype=torch.float64))
        if (function, mode) in expected:
            bias = expected[function, mode].masked_fill(~causal, float("-inf"))
            assert torch.allclose(weights, torch.softmax(bias, dim=1), atol=1e-12), function
    conv = next(w for f, _, w in panels if f == "aft_conv")
    # a convolution: every row weighs the key j positions back alike (rows with far keys)
    last = conv[-1]
    assert torch.allclose(conv[window + 2, :window + 3].flip(0) / conv[window + 2, window + 2],
                          last[-window - 3:].flip(0) / last[-1])


def test_block_kinds_follow_the_window():
    seq, window, block = 48, 12, 3
    reach = math.ceil((window - 1) / block)
    for causal in (True, False):
        kinds = figures.block_kinds(seq, window, block, causal)
        for j, row in enumerate(kinds):
            for i, kind in enumerate(row):
                if abs(i - j) <= reach and (i <= j or not causal):
                    want = "window"
                elif i < j or not causal:
                    want = "far"
                else:
                    want = "skipped"
                assert kind == want, (causal, j, i)


# ## The learned biases: written from the model's own band
def small_model(mixer="local") -> LanguageModel:
    config = ModelConfig(vocab_size=5, seq_len=8, d_model=8, n_layers=2, mixer=mixer,
                         window=3, d_bias=4, heads=2)
    model = LanguageModel(config)
    with torch.no_grad():
        for block in model.blocks:
            if mixer == "local":
                block.mixer.bias_u.normal_()
                block.mixer.bias_v.normal_()
    return model


def test_learned_biases_json(tmp_path):
    model = small_model()
    path = tmp_path / "biases.json"
    figures.write_learned_biases(model, path)
    data = json.loads(path.read_text())
    assert (data["n_layers"], data["seq_len"], data["window"]) == (2, 8, 3)
    assert len(data["band"]) == 2 and all(len(layer) == 8 for layer in data["band"])
    for layer, block in zip(data["band"], model.blocks, strict=True):
        u, v = block.mixer.bias_u.detach(), block.mixer.bias_v.detach()
        for t in range(8):
            for j in range(3):
                if t < j:
                    assert layer[t][j] is None  # key t - j does not exist
                else:
                    assert layer[t][j] == pytest.approx(float(u[t] @ v[t - j]), abs=0.006)
    values = [x for layer in data["band"] for row in layer for x in row if x is not None]
    assert data["min"] == min(values) and data["max"] == max(values)
    assert data["mean_by_offset"][1][2] == pytest.approx(
        sum(row[2] for row in data["band"][1][2:]) / 6, abs=0.006)
    assert all(0 <= share <= 1 for share in data["offset_share"])
    # compact: one band row a line
    assert len(path.read_text().splitlines()) < 2 * 8 + 30
    svg = figures.draw_learned(data, row_group=2)
    ElementTree.fromstring(str(svg))


def test_learned_biases_need_an_aft_local_model(tmp_path):
    with pytest.raises(ValueError, match="AFT-local"):
        figures.learned_biases(small_model("attention"))


def test_learned_biases_from_a_missing_checkpoint_fails_cleanly(tmp_path, capsys):
    before = (ROOT / figures.LEARNED_BIASES).read_bytes()
    missing = tmp_path / "nothing.pt"
    assert figures.main(["--learned-biases", str(missing), "--out", str(tmp_path)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert (ROOT / figures.LEARNED_BIASES).read_bytes() == before
    assert not list(tmp_path.glob("*.svg"))


# ## The renderer: an image paragraph becomes a figure, its alt text a translation key
SVG = ('<?xml version="1.0"?>\n<!-- drawn -->\n<svg xmlns="http://www.w3.org/2000/svg" '
       'viewBox="0 0 10 10">\n\n<defs><linearGradient id="g"/></defs>\n'
       '<rect fill="url(#g)" width="10" height="10"/>\n<use href="#g"/>\n</svg>\n')
TEXT = "Weights:\n\n![Ten squares](../results/x.svg)\n\nThe caption."


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "x.svg").write_text(SVG)
    (tmp_path / "aft").mkdir()
    (tmp_path / "aft" / "page.py").write_text(f'"""\n{TEXT}\n"""\n\nx = 1\n')
    return tmp_path


def test_an_image_paragraph_is_a_block_and_an_inline_image_is_not():
    rendered = prose.render("aft/page.py", TEXT, 1)
    assert rendered.key == ("<p>Weights:</p>\n<span translate=no>_^_0_^_</span>"
                            "<p>The caption.</p>\n")
    assert rendered.fragments[0].display
    wrapped = prose.render("aft/page.py", "![Ten\n  squares](x.svg)\n\nNext.", 1)
    assert wrapped.fragments[0].extra == "Ten squares" and wrapped.fragments[0].display
    inline = prose.render("aft/page.py", "See ![a dot](d.svg) here.", 1)
    assert inline.key.startswith("<p>See <span") and not inline.fragments[0].display


def test_the_alt_text_is_a_key_after_its_paragraph(repo):
    text = (repo / "aft" / "page.py").read_text()
    keys = translations.ordered_keys("aft/page.py", text)
    assert keys[-1] == "Ten squares"
    assert keys[-2].endswith("<p>The caption.</p>\n")
    inline = translations.ordered_keys("a.md", "A [![badge](b.svg)](https://x) link.\n")
    assert len(inline) == 1 and "badge" not in inline[0]  # an image in a sentence: no key


def render_page(root, strings=None, lang=None):
    from literate import site

    source = site._read(root, "aft/page.py")
    pages = page.Site({"aft/page.py": "aft/page.md"}, "https://x/blob/", "https://x/edit/")
    return page.render(source, pages, lambda f: "MATH", strings, lang)


def test_a_figure_is_inlined_named_by_its_alt_text_in_the_pages_language(repo):
    english = render_page(repo)
    assert '<figure class="lit-figure">\n<svg role="img" aria-label="Ten squares" ' in english
    assert "<?xml" not in english and "<!--" not in english and "<p><figure" not in english
    figure = re.search(r"<figure.*?</figure>", english, re.S).group(0)
    assert "\n\n" not in figure  # a blank line would end Markdown's HTML block
    key = prose.render("aft/page.py", TEXT, 1).key
    translated = render_page(repo, {"Ten squares": "දස කොටු", key: key.replace("Weights", "බර")},
                             "si")
    assert 'aria-label="දස කොටු"' in translated and 'lang="en"' not in translated
    untranslated = render_page(repo, {key: key.replace("Weights", "බර")}, "si")
    assert 'aria-label="Ten squares" lang="en"' in untranslated


def test_figure_ids_are_unique_on_a_page_and_references_follow(repo):
    (repo / "aft" / "page.py").write_text(f'"""\n{TEXT}\n\n{TEXT}\n"""\n')
    html_text = render_page(repo)
    ids = re.findall(r'\sid="(fig[^"]+)"', html_text)
    assert len(ids) == len(set(ids)) == 2
    for name in ids:
        assert f'url(#{name})' in html_text and f'href="#{name}"' in html_text


def test_a_missing_figure_names_file_and_line(repo):
    (repo / "results" / "x.svg").unlink()
    with pytest.raises(LiterateError, match=r"aft/page.py:4: figure ../results/x.svg"):
        render_page(repo)
