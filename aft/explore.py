r"""
# What each position weighs: the data of the weights explorer

```sh
python -m aft.explore --runs runs/compare     # after `python -m aft.compare`; writes results/
```

The AFT-local page shows, on a passage of the validation text, how much weight each position
gives to every earlier one, in the trained model of the comparison and in its softmax-attention
twin. This command computes those weights and writes them where the site build reads them:

* `results/explorer.json`: the passage and, for each model and layer, every row of weights;
* `results/explorer-channels.json`: AFT-local's largest channel's weights, the same way;
* `results/explorer-summary.json`: the few numbers the page's prose quotes.

AFT-local never forms these weights: its output is a weighted mean computed in $O(Tsd)$. Here,
for one short passage, we spell them out. In layer $l$, position $t$ gives key $t' \le t$, in
channel $c$, the weight

$$
a^c_{t,t'} = \frac{\exp(K_{t',c} + w_{t,t'})}{\sum_{t'' \le t} \exp(K_{t'',c} + w_{t,t''})},
\qquad w_{t,t'} = 0 \text{ when } t - t' \ge s,
$$

and the layer's output before its output projection is
$\sigma(Q_{t,c}) \sum_{t'} a^c_{t,t'} V_{t',c}$. We take $K$, $Q$ and $V$ from the layer's own
projections of the input it received, and $w$ from its own learned band, and check the formula
above against what the layer computed: a weight that disagreed with the model would be refused.
We keep the average over channels (a row still sums to 1) and the largest channel's weight.
For attention, the softmax of each head, averaged over heads (and checked the same way).

The passage is as long as the model's context, `seq_len` (256 characters): the learned bias and
the position embedding end there.

### A compact file

$4$ layers $\times$ $2$ models $\times$ $256 \cdot 257 / 2$ weights are $263\,168$ numbers.
Each is stored as one byte, on a logarithmic scale: code $c \ge 1$ stands for
$10^{-6 (255 - c) / 254}$ (a step of 5.6 %, so at most 2.8 % off), code 0 for a weight below
$10^{-6}$. The reader divides each decoded row by its sum, so rows sum to 1 again. Each layer's
bytes, row after row ($t = 0, 1, \dots$: $t + 1$ weights each), are one base64 string.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import math
import sys
from pathlib import Path

import torch

from aft.data import CharCorpus
from aft.model import CausalSelfAttention, LanguageModel
from aft.sample import load_model

# The smallest weight stored; below it, a weight is stored as 0.
FLOOR = 1e-6
CODES = 255
# Where the passage starts in the validation text (a verse of "All's Well That Ends Well").
DEFAULT_START = 190
MODELS = ("local", "attention")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m aft.explore", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Write the weights explorer's data: every position's weights on a "
                    "validation passage, for AFT-local and softmax attention.")
    p.add_argument("--runs", default="runs/compare",
                   help="folder with local/ckpt.pt and attention/ckpt.pt (aft.compare's --runs)")
    p.add_argument("--out", default="results", help="where explorer*.json go")
    p.add_argument("--start", type=int, default=DEFAULT_START,
                   help="offset of the passage in the validation text")
    p.add_argument("--corpus", default=None, help="a text file; default: Shakespeare")
    return p


# ## Catching each mixer's input and output
def mixer_io(model: LanguageModel, ids: torch.Tensor) -> list[dict]:
    """Run the model on `ids` `[1, T]`; per block, the mixer's input `[T, d]` and what it
    computed before its output projection `[T, d]` (hooks on the layers themselves)."""
    caught, hooks = [], []
    for block in model.blocks:
        record = {}
        caught.append(record)
        hooks.append(block.mixer.register_forward_pre_hook(
            lambda _m, args, record=record: record.__setitem__("input", args[0].detach())))
        hooks.append(block.mixer.output.register_forward_pre_hook(
            lambda _m, args, record=record: record.__setitem__("mixed", args[0].detach())))
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for hook in hooks:
            hook.remove()
    seq = ids.shape[1]
    # batch 1: `[T, d]` whether the layer works batch-major or time-major
    return [{name: x.reshape(seq, -1).double() for name, x in record.items()}
            for record in caught]


# ## AFT-local's weights, per channel
def local_weights(layer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`x` `[T, d]` the layer's input → per-channel weights `[T, T, d]` (row $t$, key $t'$,
    channel) and the gate $\\sigma(Q)$ `[T, d]`, in float64."""
    seq = x.shape[0]
    layer = copy.deepcopy(layer).double()
    with torch.no_grad():
        q, k = layer.query(x), layer.key(x)
        # `[T, s]`, column $j$ the bias of key $t - (s - 1) + j$ (oldest first)
        band = layer.window_biases(seq)
    s = band.shape[1]
    t = torch.arange(seq)
    distance = t[:, None] - t[None, :]
    # $w_{t,t'}$ `[T, T]`: the band inside the window, 0 for far keys, $-\infty$ for the future
    bias = torch.zeros(seq, seq, dtype=torch.float64)
    inside = (distance >= 0) & (distance < s)
    bias[inside] = band[t[:, None].expand(seq, seq)[inside], (s - 1 - distance)[inside]]
    bias[distance < 0] = -math.inf
    logits = k[None, :, :] + bias[:, :, None]
    return torch.softmax(logits, dim=1), torch.sigmoid(q)


def attention_weights(layer: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """`x` `[T, d]` → softmax weights per head `[heads, T, T]`, float64."""
    seq = x.shape[0]
    layer = copy.deepcopy(layer).double()
    with torch.no_grad():
        q, k = (layer.split_heads(proj(x)[None])[0] for proj in (layer.query, layer.key))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    return torch.softmax(scores.masked_fill(future, -math.inf), dim=-1)


def check(name: str, computed: torch.Tensor, reference: torch.Tensor):
    """Refuse weights that do not reproduce what the layer computed."""
    error = (computed - reference).abs().max().item()
    scale = reference.abs().max().item()
    if not error <= 1e-4 * max(scale, 1.0):
        raise RuntimeError(f"{name}: weights reproduce the layer's output only to {error:.2e} "
                           f"(values up to {scale:.2e}); the model and this code disagree")


def model_weights(model: LanguageModel, ids: torch.Tensor) -> dict:
    """Per layer, the weights `[T, T]` averaged over channels or heads (and, for AFT-local,
    the largest channel's), checked against the layer's own output."""
    means, maxima, far_maxima = [], [], []
    seq = ids.shape[1]
    far = (torch.arange(seq)[:, None] - torch.arange(seq)[None, :]) >= model.config.window
    for number, (block, io) in enumerate(zip(model.blocks, mixer_io(model, ids), strict=True)):
        layer, x = block.mixer, io["input"]
        with torch.no_grad():
            v = copy.deepcopy(layer.value).double()(x)
        if isinstance(layer, CausalSelfAttention):
            weights = attention_weights(layer, x)
            values = layer.split_heads(v[None])[0]
            mixed = (weights @ values).transpose(0, 1).reshape(x.shape)
            check(f"attention layer {number + 1}", mixed, io["mixed"])
            means.append(weights.mean(0))
        else:
            weights, gate = local_weights(layer, x)
            mixed = gate * torch.einsum("tkc,kc->tc", weights, v)
            check(f"AFT-local layer {number + 1}", mixed, io["mixed"])
            means.append(weights.mean(-1))
            maxima.append(weights.amax(-1))
            # each row's far share in the channel that gives far keys the most: `[T]`
            far_maxima.append((weights * far[:, :, None]).sum(1).amax(-1))
    return {"mean": means, "channel_max": maxima, "far_channel_max": far_maxima}


# ## One byte per weight
def encode(weights: torch.Tensor) -> str:
    """A lower-triangular `[T, T]` → base64 of one byte per weight, rows $t = 0, 1, \\dots$"""
    seq = weights.shape[0]
    rows, keys = torch.tril_indices(seq, seq)
    values = weights[rows, keys].double()
    # $\log_{10}$ of the weight, from $-6$ to 0, onto codes 1 to 255
    codes = torch.round(CODES + (CODES - 1) * torch.log(values.clamp_min(1e-300))
                        / -math.log(FLOOR))
    codes = torch.where(codes < 1, 0, codes.clamp(max=CODES))
    return base64.b64encode(codes.to(torch.uint8).numpy().tobytes()).decode("ascii")


def decode(text: str, seq: int, normalise: bool = True) -> list[list[float]]:
    """The reader's side (the widget does the same in JavaScript): rows of weights."""
    codes = base64.b64decode(text)
    if len(codes) != seq * (seq + 1) // 2:
        raise ValueError(f"{len(codes)} weights, not the {seq * (seq + 1) // 2} of {seq} rows")
    rows, at = [], 0
    for t in range(seq):
        row = [0.0 if c == 0 else FLOOR ** ((CODES - c) / (CODES - 1))
               for c in codes[at : at + t + 1]]
        at += t + 1
        total = sum(row)
        rows.append([w / total for w in row] if normalise and total > 0 else row)
    return rows


# ## What the prose quotes
def summarise(weights: dict, window: int, seq: int) -> dict:
    r"""Per model and layer, averaged over the positions $t \ge s$ (those that have far keys):
    the far keys' share of the weight (distance $\ge s$), the share of the nearest key (the
    position itself) and of the four nearest, and the window's profile (mean weight by
    distance $0, \dots, s - 1$). For AFT-local also the far share in the channel that gives far
    keys the most."""
    t = torch.arange(seq)
    distance = t[:, None] - t[None, :]
    rows = slice(min(window, seq - 1), seq)  # (a window as long as the text: no far keys)
    summary = {}
    for mixer, per_model in weights.items():
        layers = []
        for number, mean in enumerate(per_model["mean"]):
            far = (mean * (distance >= window)).sum(1)[rows]
            near4 = (mean * ((distance >= 0) & (distance < 4))).sum(1)[rows]
            profile = [mean[t[rows], t[rows] - d].mean().item() for d in range(window)]
            layer = {
                "layer": number + 1,
                "far_percent": 100 * far.mean().item(),
                "far_percent_min": 100 * far.min().item(),
                "far_percent_max": 100 * far.max().item(),
                "self_percent": 100 * mean.diagonal()[rows].mean().item(),
                "nearest4_percent": 100 * near4.mean().item(),
                "window_percent": 100 * (1 - far.mean().item()),
                "peak_distance": max(range(window), key=lambda d: profile[d]),
                "window_profile_percent": [round(100 * p, 3) for p in profile],
                "far_percent_at_200": 100 * (mean[200] * (distance[200] >= window)).sum().item()
                if seq > 200 else None,
            }
            layers.append(layer)
        summary[mixer] = {
            "layers": layers,
            "far_percent_mean": sum(x["far_percent"] for x in layers) / len(layers),
            "far_percent_lowest": min(x["far_percent"] for x in layers),
            "far_percent_highest": max(x["far_percent"] for x in layers),
        }
    return summary


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    runs = Path(args.runs)
    models = {}
    for mixer in MODELS:
        try:
            models[mixer] = load_model(runs / mixer / "ckpt.pt")
        except (FileNotFoundError, ValueError) as error:
            print(f"aft.explore: {error} (train the models with python -m aft.compare "
                  f"--runs {runs})", file=sys.stderr)
            return 1
    (local, vocab), (attention, _) = models["local"], models["attention"]
    config = local.config
    if (attention.config.seq_len, attention.config.n_layers) != (config.seq_len,
                                                                 config.n_layers):
        print("aft.explore: the two checkpoints differ in seq_len or n_layers", file=sys.stderr)
        return 1
    seq, window = config.seq_len, config.window
    corpus = CharCorpus(args.corpus)
    if not 0 <= args.start <= len(corpus.val) - seq:
        print(f"aft.explore: --start {args.start} leaves fewer than {seq} characters of the "
              f"validation text ({len(corpus.val)})", file=sys.stderr)
        return 1
    text = corpus.vocab.decode(corpus.val[args.start : args.start + seq])
    ids = vocab.encode(text)[None]
    weights = {mixer: model_weights(model, ids) for mixer, (model, _) in models.items()}

    data = {
        "about": "aft.explore: for each model and layer, row t holds the weights position t "
                 "gives to positions 0..t (averaged over channels or heads), one byte each on "
                 "a log scale: code c >= 1 is floor ** ((codes - c) / (codes - 1)), 0 is below "
                 "floor; rows are divided by their sum when read. far_top_channel: per "
                 "row, the far keys' share (thousandths) in AFT-local's channel that gives "
                 "them the most. The largest channel's weights: explorer-channels.json.",
        "text": text,
        "source": f"validation text, characters {args.start} to {args.start + seq - 1}",
        "seq_len": seq,
        "window": window,
        "floor": FLOOR,
        "codes": CODES,
        "models": {
            "local": {"mean": [encode(w) for w in weights["local"]["mean"]],
                      # per row, the far keys' share in the channel that gives them the most,
                      # in thousandths
                      "far_top_channel": [[round(1000 * x) for x in far.tolist()]
                                          for far in weights["local"]["far_channel_max"]]},
            "attention": {"mean": [encode(w) for w in weights["attention"]["mean"]]},
        },
    }
    # The largest channel's weights, in a file of their own: the page does not need them
    channels = {key: data[key] for key in ("text", "source", "seq_len", "window", "floor",
                                           "codes")}
    channels["about"] = ("aft.explore: AFT-local's weights, per layer the largest over the "
                         "channels, coded as in explorer.json but not normalised")
    channels["channel_max"] = [encode(w) for w in weights["local"]["channel_max"]]
    # for comparison: the far keys' share if every earlier position weighed the same
    rows = torch.arange(min(window, seq - 1), seq, dtype=torch.float64)
    uniform = 100 * ((rows + 1 - window).clamp_min(0) / (rows + 1)).mean().item()
    summary = {"seq_len": seq, "window": window, "layers": config.n_layers,
               "d_model": config.d_model, "heads": attention.config.heads,
               "far_percent_if_uniform": uniform,
               "start": args.start, **summarise(weights, window, seq)}
    for layer, far_max in zip(summary["local"]["layers"], weights["local"]["far_channel_max"],
                              strict=True):
        layer["far_percent_top_channel"] = 100 * far_max[window:].mean().item()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in (("explorer.json", data), ("explorer-channels.json", channels),
                          ("explorer-summary.json", summary)):
        tmp = out / (name + ".tmp")
        tmp.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        tmp.replace(out / name)
    print(json.dumps({m: [round(x["far_percent"], 2) for x in summary[m]["layers"]]
                      for m in MODELS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
