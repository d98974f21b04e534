"""The weights explorer's data (aft/explore.py) and its directive (literate/explorer.py)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from aft import explore
from aft.data import CharCorpus
from aft.model import LanguageModel, ModelConfig
from literate import explorer, prose, ui
from literate.sections import LiterateError

ROOT = Path(__file__).resolve().parents[1]
SEQ, WINDOW = 40, 6
# The stored weights are one byte on a log scale: at most half a step (2.8 %) off, and a
# row's sum off by as much before it is divided by it
STEP = math.log(1 / explore.FLOOR) / (explore.CODES - 1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus):
    """Two small trained-shape checkpoints (random weights), as aft.compare leaves them."""
    folder = tmp_path_factory.mktemp("runs")
    chars = CharCorpus(corpus).vocab.chars
    for mixer in explore.MODELS:
        torch.manual_seed(1)
        config = ModelConfig(vocab_size=len(chars), seq_len=SEQ, d_model=16, n_layers=2,
                             mixer=mixer, window=WINDOW, d_bias=4, heads=2, d_ff=32)
        model = LanguageModel(config)
        with torch.no_grad():  # a learned-looking bias, far from zero inside the window
            for block in model.blocks:
                if mixer == "local":
                    block.mixer.bias_u.mul_(6)
                    block.mixer.bias_v.mul_(6)
        (folder / mixer).mkdir()
        torch.save({"model": model.state_dict(), "config": config.to_dict(), "chars": chars},
                   folder / mixer / "ckpt.pt")
    return folder


@pytest.fixture(scope="module")
def written(runs, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("explorer")
    assert explore.main(["--runs", str(runs), "--out", str(out), "--corpus", corpus,
                         "--start", "100"]) == 0
    return {name: json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
            for name in ("explorer", "explorer-summary", "explorer-channels")}


def mixer_inputs(model: LanguageModel, ids: torch.Tensor) -> list[torch.Tensor]:
    """Each block's mixer input `[T, d]`, by running the model's pieces by hand (no hooks)."""
    inputs = []
    with torch.no_grad():
        h = model.token_embedding(ids) + model.position_embedding(torch.arange(ids.shape[1]))
        for block in model.blocks:
            inputs.append(block.mix_norm(h)[0].double())
            h = block(h)
    return inputs


def expected_local_row(layer, x, t: int) -> tuple[list[float], float]:
    """Paper Eq. 4 written out for one row: per channel exp(K + w) / sum, w = u_t . v_t' in
    the window and 0 outside; averaged over channels. Also the far keys' largest channel
    share."""
    with torch.no_grad():
        k = torch.nn.functional.linear(x, layer.key.weight.double(), layer.key.bias.double())
        u, v = layer.bias_u.double(), layer.bias_v.double()
    logits = torch.stack([k[j] + (u[t] @ v[j] if t - j < layer.window else 0.0)
                          for j in range(t + 1)])  # [t + 1, d]
    weights = torch.softmax(logits, dim=0)
    far = weights[: max(0, t - layer.window + 1)].sum(0)
    return weights.mean(1).tolist(), far.max().item()


def expected_attention_row(layer, x, t: int) -> list[float]:
    with torch.no_grad():
        q = torch.nn.functional.linear(x, layer.query.weight.double(), layer.query.bias.double())
        k = torch.nn.functional.linear(x, layer.key.weight.double(), layer.key.bias.double())
    heads = layer.heads
    q, k = q.view(len(x), heads, -1), k.view(len(x), heads, -1)
    rows = [torch.softmax(torch.stack([q[t, h] @ k[j, h] for j in range(t + 1)])
                          / math.sqrt(q.shape[-1]), dim=0) for h in range(heads)]
    return torch.stack(rows).mean(0).tolist()


def close(stored: list[float], expected: list[float]):
    for got, want in zip(stored, expected, strict=True):
        if want < explore.FLOOR * 0.9:
            assert got < explore.FLOOR * 1.1
        else:
            assert abs(math.log(got / want)) <= 2 * STEP, (got, want)


def test_rows_match_a_recomputation_from_the_checkpoint(runs, written, corpus):
    data = written["explorer"]
    assert len(data["text"]) == SEQ and data["window"] == WINDOW
    assert data["text"] == CharCorpus(corpus).vocab.decode(CharCorpus(corpus).val[100:100 + SEQ])
    for mixer in explore.MODELS:
        model = torch.load(runs / mixer / "ckpt.pt", weights_only=False)
        lm = LanguageModel(ModelConfig(**model["config"]))
        lm.load_state_dict(model["model"])
        ids = CharCorpus(corpus).vocab.encode(data["text"])[None]
        for number, (block, x) in enumerate(zip(lm.blocks, mixer_inputs(lm, ids),
                                                strict=True)):
            rows = explore.decode(data["models"][mixer]["mean"][number], SEQ)
            for t in (0, 3, WINDOW - 1, WINDOW, 25, SEQ - 1):
                if mixer == "local":
                    expected, far_top = expected_local_row(block.mixer, x, t)
                    stored_top = data["models"]["local"]["far_top_channel"][number][t]
                    assert stored_top == round(1000 * far_top)
                else:
                    expected = expected_attention_row(block.mixer, x, t)
                close(rows[t], expected)
                assert sum(rows[t]) == pytest.approx(1, abs=1e-9)


def test_far_keys_and_summary(written):
    data, summary = written["explorer"], written["explorer-summary"]
    for mixer in explore.MODELS:
        for number, encoded in enumerate(data["models"][mixer]["mean"]):
            rows = explore.decode(encoded, SEQ)
            far = [sum(row[: t - WINDOW + 1]) for t, row in enumerate(rows)][WINDOW:]
            layer = summary[mixer]["layers"][number]
            assert layer["far_percent"] == pytest.approx(100 * sum(far) / len(far), abs=0.5)
            if mixer == "local":  # a bias of 0, not -inf: the far keys keep a share
                assert min(far) > 0


def test_channel_maxima_are_at_least_the_mean(written):
    channels, data = written["explorer-channels"], written["explorer"]
    for encoded_max, encoded_mean in zip(channels["channel_max"], data["models"]["local"]["mean"],
                                         strict=True):
        maxima = explore.decode(encoded_max, SEQ, normalise=False)
        means = explore.decode(encoded_mean, SEQ)
        for row_max, row_mean in zip(maxima, means, strict=True):
            assert all(m >= w * math.exp(-2 * STEP) for m, w in zip(row_max, row_mean,
                                                                      strict=True))


def test_weights_that_disagree_with_the_layer_are_refused(runs, corpus, tmp_path, monkeypatch):
    real = explore.local_weights

    def uniform(layer, x):
        weights, gate = real(layer, x)
        return torch.tril(torch.ones_like(weights[..., 0]))[..., None].expand_as(weights) \
            / torch.arange(1, len(x) + 1, dtype=weights.dtype)[:, None, None], gate

    monkeypatch.setattr(explore, "local_weights", uniform)
    with pytest.raises(RuntimeError, match="AFT-local layer 1: weights reproduce"):
        explore.main(["--runs", str(runs), "--out", str(tmp_path), "--corpus", corpus])
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert explore.main(["--runs", str(tmp_path)]) == 1
    assert "checkpoint not found" in capsys.readouterr().err


# ## The committed files
def test_committed_data_is_well_formed():
    data = json.loads((ROOT / "results/explorer.json").read_text(encoding="utf-8"))
    summary = json.loads((ROOT / "results/explorer-summary.json").read_text(encoding="utf-8"))
    seq, window = data["seq_len"], data["window"]
    assert len(data["text"]) == seq == summary["seq_len"] and window == summary["window"]
    assert set(data["models"]) == set(explore.MODELS)
    for mixer, model in data["models"].items():
        assert len(model["mean"]) == summary["layers"]
        for number, encoded in enumerate(model["mean"]):
            raw = explore.decode(encoded, seq, normalise=False)
            for row in raw:  # each row sums to 1 within the quantisation
                assert abs(math.log(sum(row))) <= STEP / 2 + 1e-9
            rows = explore.decode(encoded, seq)
            far = [sum(row[: t - window + 1]) for t, row in enumerate(rows)][window:]
            assert 100 * sum(far) / len(far) == pytest.approx(
                summary[mixer]["layers"][number]["far_percent"], abs=0.5)
            if mixer == "local":
                assert min(far) > 0
    size = sum((ROOT / "results" / name).stat().st_size
               for name in ("explorer.json", "explorer-summary.json", "explorer-channels.json"))
    assert size < 600_000


def test_what_the_prose_says_still_holds():
    """The AFT-local page's closing section describes the committed data in words; if a new
    run changes what the words say, this fails and the prose must be rewritten."""
    summary = json.loads((ROOT / "results/explorer-summary.json").read_text(encoding="utf-8"))
    local, attention = summary["local"]["layers"], summary["attention"]["layers"]
    assert local[0]["peak_distance"] == 1  # "the character just before gets ... more than any"
    assert local[1]["nearest4_percent"] < local[0]["nearest4_percent"] / 2  # "spreads"
    assert local[2]["nearest4_percent"] < local[0]["nearest4_percent"] / 2
    assert local[3]["far_percent"] > 50  # "layer 4 gives the far keys more than the window"
    for ours, theirs in zip(local, attention, strict=True):  # "attention looks closer"
        assert theirs["far_percent"] < ours["far_percent"]
    assert attention[0]["self_percent"] > 2 * local[0]["self_percent"]  # "much more weight"


# ## The directive
def test_directive_puts_the_widget_with_translated_words(tmp_path):
    data = json.loads((ROOT / "results/explorer.json").read_text(encoding="utf-8"))
    (tmp_path / "x.json").write_text(json.dumps(data))
    rendered = prose.render("p.py", "Look:\n\n{{ explorer x.json }}\n", 1)
    fragments = prose.resolve_data(tmp_path, "p.py", rendered.fragments)
    assert rendered.key == "<p>Look:</p>\n<span translate=no>_^_0_^_</span>"
    assert fragments[0].kind == "explorer"
    html = explorer.widget(fragments[0].text, "zh")
    assert "data-aft-explorer" in html and ui.t("zh", "Layer") in html != "Layer"
    shown = json.loads(html.split('class="aft-x-data">')[1].split("</script>")[0])
    assert shown["models"]["local"]["mean"] == data["models"]["local"]["mean"]
    assert "</script>" not in html.split('class="aft-x-data">')[1].split("</script>")[0]


@pytest.mark.parametrize("content, problem", [
    ("{", "is not JSON"), ('{"text": "ab"}', "is not explorer data"), (None, "cannot read")])
def test_bad_explorer_file_is_a_clear_error(tmp_path, content, problem):
    if content is not None:
        (tmp_path / "x.json").write_text(content)
    rendered = prose.render("p.py", "Look:\n\n{{ explorer x.json }}\n", 7)
    with pytest.raises(LiterateError, match=problem) as error:
        prose.resolve_data(tmp_path, "p.py", rendered.fragments)
    assert "p.py" in str(error.value) and "9" in str(error.value)


def test_every_word_of_the_widget_is_translated():
    for lang in ("si", "zh", "ja"):
        for english in explorer.WORDS.values():
            if english != "AFT-local":
                assert ui.t(lang, english) != ui.t("en", english), (lang, english)
        for key in ("explorer help", "explorer readout", "explorer top channel"):
            fields = set(re.findall(r"\{\w+\}", ui.t("en", key)))
            assert set(re.findall(r"\{\w+\}", ui.t(lang, key))) == fields, (lang, key)
