r"""
# Figures, drawn by the code they show

`python -m aft.figures` (`make figures`) draws the site's figures with the project's own
functions and writes them as SVG files under `results/figures/`, with the settings they were
drawn for in `results/figures/settings.json` (captions read their numbers from there). The
site build only reads these files, so it never needs torch; `tests/test_figures.py` draws
every figure again and fails when a committed one is out of date.

`python -m aft.figures --learned-biases runs/compare/local/ckpt.pt` first writes
`results/learned_biases.json` from a trained AFT-local model (`python -m aft.compare` writes it
at the end of its run), then draws.

The SVG is written by hand, element by element: small files, the same bytes on every machine
(numbers rounded, no dates, no ids), and at home in a light or a dark page: text and lines are
`currentColor`, and a weight is one colour at an opacity, which reads on either background.
Words stay out of the drawings (only code names, symbols and numbers): the alt text and the
caption, which are translated, say what the figure shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from aft.conv import aft_conv
from aft.full import aft_full
from aft.local import aft_local
from aft.simple import aft_simple

try:  # the kernel's geometry: on its own page (aft/kernel.py), or still in aft/local.py
    from aft.kernel import Blocks
except ImportError:
    from aft.local import Blocks

ROOT = Path(__file__).resolve().parent.parent
FIGURES = Path("results") / "figures"
LEARNED_BIASES = Path("results") / "learned_biases.json"

# What each figure is drawn for. Captions read these numbers from `settings.json`.
SETTINGS = {
    "variant_weights": {"seq": 16, "window": 4, "seed": 0},
    "local_weights": {"seq": 16, "window": 4, "seed": 0},
    "kernel_blocks": {"seq": 48, "window": 12, "block": 3},
    "learned_biases": {"row_group": 8},
}

# Colours that read on white and on Material's dark slate alike; a value is drawn as one of
# them at an opacity, so 0 is the page's own background in either scheme.
POSITIVE, NEGATIVE, FAR = "#e8710a", "#3b82f6", "#3b82f6"
LEVELS = 16  # opacity steps: cells of one step share one path, which keeps files small


# ## The weights each variant gives each key
#
# Each operation is run on inputs that make its output the weights themselves: all keys 0
# (so $e^{K} = 1$ and only the bias is left), the values the identity (key $t'$ carries
# channel $t'$ alone, so output channel $t'$ of row $t$ is the weight of key $t'$), and
# queries 0, whose gate $\sigma(0) = 1/2$ is divided out.
def weights_of(operation, seq: int, key_channels: int | None = None) -> torch.Tensor:
    """`operation(q, k, v)` on those inputs: the normalised weights, `[seq, seq]`, row $t$ and
    column $t'$."""
    values = torch.eye(seq, dtype=torch.float64).unsqueeze(0)
    keys = torch.zeros(1, seq, key_channels or seq, dtype=torch.float64)
    queries = torch.zeros_like(values)
    return 2 * operation(queries, keys, values)[0]


def variant_weights(seq: int, window: int, seed: int) -> list[tuple[str, str, torch.Tensor]]:
    """`(function, mode, weights)` for each variant, with biases drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)

    def biases(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    full_bias, causal_band = biases(seq, seq), biases(seq, window)
    band, kernel = biases(seq, 2 * window - 1), biases(1, window)
    return [
        ("aft_full", "causal=True",
         weights_of(lambda q, k, v: aft_full(q, k, v, full_bias, causal=True), seq)),
        ("aft_local", "causal=True",
         weights_of(lambda q, k, v: aft_local(q, k, v, causal_band, causal=True), seq)),
        ("aft_local", "causal=False",
         weights_of(lambda q, k, v: aft_local(q, k, v, band, causal=False), seq)),
        ("aft_simple", "causal=True",
         weights_of(lambda q, k, v: aft_simple(q, k, v, causal=True), seq)),
        ("aft_conv", "causal=True",
         weights_of(lambda q, k, v: aft_conv(q, k, v, kernel, causal=True), seq, 1)),
    ]


def window_cells(seq: int, window: int, causal: bool) -> set[tuple[int, int]]:
    r"""The `(t, t')` pairs with a learned bias in AFT-local: $|t - t'| < s$ (and $t' \le t$)."""
    return {(t, u) for t in range(seq) for u in range(seq)
            if abs(t - u) < window and (u <= t or not causal)}


# ## The kernel's blocks
#
# Which (row block, key block) pairs the fast kernel computes how, read from its own
# geometry `Blocks`: the key blocks its window products take for each row block (`keys`),
# the blocks its running sums add up for each row block (`far_sums`), and the rest, skipped.
def block_kinds(seq: int, window: int, block: int, causal: bool) -> list[list[str]]:
    """`kinds[j][i]`: `"window"`, `"far"` or `"skipped"` for row block j and key block i."""
    reach = -(-(window - 1) // block)
    g = Blocks(seq, window, block, reach, causal)
    n = g.n_blocks
    # Each stored key row labelled with its block (rows of padding get labels outside [0, n))
    stored = torch.arange(g.before + g.rows + g.after, dtype=torch.float64)
    labels = torch.div(stored - g.before, block, rounding_mode="floor").unsqueeze(1)
    kinds = [["skipped"] * n for _ in range(n)]
    for chunk in range(g.chunks):
        for j, i in enumerate(g.keys(labels, chunk)[:, 0, 0].long().tolist()):
            if 0 <= i < n:
                kinds[j][i] = "window"
    # The far sums of the identity: row j holds 1 for every block its far sums add up
    far = g.far_sums(torch.eye(n, dtype=torch.float64).unsqueeze(0))[0]
    for j, i in far.nonzero().tolist():
        if kinds[j][i] == "window":
            raise AssertionError(f"block {i} is both in row block {j}'s window and far sums")
        kinds[j][i] = "far"
    return kinds


# ## The biases a trained model learned
#
# The band of each AFT-local layer, `band(seq)[t, j]` $= w_{t, t-j} = u_t^\top v_{t-j}$, as the
# layer itself builds it; `null` where $t - j < 0$ names no key.
def learned_biases(model, digits: int = 2) -> dict:
    """The learned bias bands of a `LanguageModel` whose mixers are `AFTLocal`, as JSON data."""
    config = model.config
    if config.mixer != "local":
        raise ValueError(f"learned biases need an AFT-local model, not mixer {config.mixer!r}")
    layers = []
    with torch.no_grad():
        for block in model.blocks:
            band = block.mixer.band(config.seq_len).double().cpu()
            layers.append([[round(float(band[t, j]), digits) if t >= j else None
                            for j in range(config.window)] for t in range(config.seq_len)])
    values = [x for layer in layers for row in layer for x in row if x is not None]
    return {
        "about": "band[layer][t][j] = w_{t,t-j} = u_t . v_{t-j}, the learned position bias of "
                 "each AFT-local layer for query t and the key j positions before it "
                 f"(null: no such key); rounded to {digits} decimals",
        "n_layers": config.n_layers, "seq_len": config.seq_len, "window": config.window,
        "d_bias": config.d_bias,
        "min": min(values), "max": max(values),
        "offset_share": [offset_share(layer, config.window) for layer in layers],
        "mean_by_offset": [[0.0 + round(sum(row[j] for row in layer if row[j] is not None)
                                  / sum(row[j] is not None for row in layer), digits)
                            for j in range(config.window)] for layer in layers],
        "band": layers,
    }


def offset_share(band: list[list[float | None]], window: int) -> float:
    r"""How much of a layer's bias the distance $t - t'$ alone accounts for: 1 minus the mean
    variance over $t$ at each distance over the variance of all biases, for the rows whose
    window is whole. 1: a bias of the distance only, like AFT-conv's."""
    rows = band[window:]

    def variance(xs):
        mean = sum(xs) / len(xs)
        return sum((x - mean) ** 2 for x in xs) / len(xs)

    within = sum(variance([row[j] for row in rows]) for j in range(window)) / window
    return round(1 - within / variance([x for row in rows for x in row]), 3)


def write_learned_biases(model_or_checkpoint, path: Path) -> dict:
    """Write `learned_biases(model)` to `path` (compact: one row of a band per line)."""
    model = model_or_checkpoint
    if isinstance(model, (str, Path)):
        from aft.sample import load_model

        model, _ = load_model(model)
    data = learned_biases(model)
    band = data.pop("band")
    head = json.dumps(data, indent=1)[:-2]
    rows = ",\n".join("  [" + ",\n   ".join(json.dumps(row, separators=(",", ":")) for row in layer)
                      + "]" for layer in band)
    text = f'{head},\n "band": [\n{rows}\n ]\n}}\n'
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    data["band"] = band
    return data


# ## Drawing
#
# A tiny SVG writer: numbers rounded to 0.01, attributes in a fixed order, one element a line.
def _n(x: float) -> str:
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class Svg:
    def __init__(self, width: float, height: float):
        self.width, self.height, self.lines = width, height, []

    def add(self, element: str) -> None:
        self.lines.append(element)

    def text(self, x, y, text, anchor="middle", size=11, mono=False, **extra):
        family = ' font-family="ui-monospace, monospace"' if mono else ""
        attrs = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in extra.items())
        escaped = text.replace("&", "&amp;").replace("<", "&lt;")
        self.add(f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="{size}"'
                 f'{family}{attrs}>{escaped}</text>')

    def rect(self, x, y, width, height, **attrs):
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        self.add(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}"'
                 f'{extra}/>')

    def cells(self, x0, y0, values, cell_w, cell_h, colour):
        """A heatmap: `values[row][col]` in [-1, 1] (None: nothing), one path per opacity step."""
        paths: dict[tuple[str, int], list[str]] = {}
        for r, row in enumerate(values):
            c = 0
            while c < len(row):
                value = row[c]
                level = 0 if value is None else round(abs(value) * LEVELS)
                run = 1  # neighbours of the same step join one rectangle
                while (c + run < len(row) and row[c + run] is not None and level
                       and round(abs(row[c + run]) * LEVELS) == level
                       and (row[c + run] < 0) == (value < 0)):
                    run += 1
                if level:
                    key = (NEGATIVE if value < 0 else colour, level)
                    paths.setdefault(key, []).append(
                        f"M{_n(x0 + c * cell_w)} {_n(y0 + r * cell_h)}h{_n(run * cell_w)}"
                        f"v{_n(cell_h)}h{_n(-run * cell_w)}z")
                c += run
        for (fill, level), parts in sorted(paths.items()):
            self.add(f'<path fill="{fill}" fill-opacity="{_n(level / LEVELS)}" '
                     f'd="{"".join(parts)}"/>')

    def outline(self, x0, y0, cells: set[tuple[int, int]], cell_w, cell_h, width=1.5, dash=""):
        """The border of a set of `(row, col)` cells: every cell edge with no neighbour in it."""
        edges = []
        for r, c in sorted(cells):
            x, y = x0 + c * cell_w, y0 + r * cell_h
            if (r - 1, c) not in cells:
                edges.append(f"M{_n(x)} {_n(y)}h{_n(cell_w)}")
            if (r + 1, c) not in cells:
                edges.append(f"M{_n(x)} {_n(y + cell_h)}h{_n(cell_w)}")
            if (r, c - 1) not in cells:
                edges.append(f"M{_n(x)} {_n(y)}v{_n(cell_h)}")
            if (r, c + 1) not in cells:
                edges.append(f"M{_n(x + cell_w)} {_n(y)}v{_n(cell_h)}")
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<path fill="none" stroke="currentColor" stroke-width="{_n(width)}"{dashes} '
                 f'd="{"".join(edges)}"/>')

    def frame(self, x, y, width, height):
        self.rect(x, y, width, height, fill="none", stroke="currentColor", stroke_opacity="0.4")

    def scale(self, x, y, low: str, high: str, colours=(POSITIVE,), width=80):
        """A colour key: steps from 0 to full for each colour (negative first), labelled."""
        step = width / LEVELS
        for i, fill in enumerate(colours):
            for level in range(LEVELS):
                opacity = (LEVELS - level) / LEVELS if i == 0 and len(colours) > 1 else \
                    (level + 1) / LEVELS
                self.rect(x + (i * LEVELS + level) * step, y, step, 8, fill=fill,
                          fill_opacity=_n(opacity))
        total = width * len(colours)
        self.frame(x, y, total, 8)
        self.text(x, y + 20, low, size=10)
        if len(colours) > 1:
            self.text(x + total / 2, y + 20, "0", size=10)
        self.text(x + total, y + 20, high, size=10)

    def __str__(self) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(self.width)} '
                f'{_n(self.height)}" width="{_n(self.width)}" height="{_n(self.height)}" '
                f'fill="currentColor" font-size="11">')
        return "\n".join([head, *self.lines, "</svg>"]) + "\n"


def relative_rows(weights: torch.Tensor) -> list[list[float | None]]:
    """Each row divided by its largest weight, so that every row's strongest key is full colour;
    a weight of exactly 0 (a key the row may not see) is None, drawn as nothing."""
    largest = weights.amax(dim=1, keepdim=True)
    relative = weights / largest
    return [[None if w == 0 else float(x) for w, x in zip(wr, xr, strict=True)]
            for wr, xr in zip(weights.tolist(), relative.tolist(), strict=True)]


def draw_weights(panels, seq: int, window: int, cell: float) -> Svg:
    """Weight matrices side by side: row t, key t'; AFT-local's window outlined."""
    size, gap, top, left = seq * cell, 26, 44, 22
    svg = Svg(left + len(panels) * size + (len(panels) - 1) * gap + 4, top + size + 40)
    for index, (function, mode, weights) in enumerate(panels):
        x = left + index * (size + gap)
        svg.text(x + size / 2, 14, function, mono=True)
        svg.text(x + size / 2, 28, mode, mono=True, size=10, fill_opacity="0.75")
        svg.cells(x, top, relative_rows(weights), cell, cell, POSITIVE)
        svg.frame(x, top, size, size)
        if function == "aft_local":
            svg.outline(x, top, window_cells(seq, window, mode == "causal=True"), cell, cell)
    svg.text(left + size / 2, top - 4, "t′ →", size=10)
    svg.text(left - 6, top + 12, "t", anchor="end", size=10)
    svg.text(left - 6, top + 24, "↓", anchor="end", size=10)
    svg.scale(left, top + size + 12, "0", "1")
    return svg


def draw_blocks(seq: int, window: int, block: int, cell: float = 5) -> Svg:
    """The causal and non-causal kernels' block pairs; the learned window outlined."""
    size, gap, top, left = seq * cell, 30, 30, 22
    svg = Svg(left + 2 * size + gap + 4, top + size + 8)
    for index, causal in enumerate((True, False)):
        x = left + index * (size + gap)
        svg.text(x + size / 2, 14, f"causal={causal}", mono=True, size=10)
        kinds = block_kinds(seq, window, block, causal)
        for kind, fill, opacity in (("window", POSITIVE, "0.55"), ("far", FAR, "0.35")):
            parts = [f"M{_n(x + i * block * cell)} {_n(top + j * block * cell)}"
                     f"h{_n(block * cell)}v{_n(block * cell)}h{_n(-block * cell)}z"
                     for j, row in enumerate(kinds) for i, k in enumerate(row) if k == kind]
            svg.add(f'<path fill="{fill}" fill-opacity="{opacity}" d="{"".join(parts)}"/>')
        lines = "".join(f"M{_n(x + b * block * cell)} {_n(top)}v{_n(size)}"
                        f"M{_n(x)} {_n(top + b * block * cell)}h{_n(size)}"
                        for b in range(1, seq // block))
        svg.add(f'<path fill="none" stroke="currentColor" stroke-opacity="0.25" '
                f'stroke-width="0.5" d="{lines}"/>')
        svg.frame(x, top, size, size)
        svg.outline(x, top, window_cells(seq, window, causal), cell, cell, width=1.25)
    svg.text(left + size / 2, top - 4, "t′ →", size=10)
    svg.text(left - 6, top + 12, "t", anchor="end", size=10)
    svg.text(left - 6, top + 24, "↓", anchor="end", size=10)
    return svg


def draw_learned(data: dict, row_group: int) -> Svg:
    r"""One panel per layer: $w_{t, t-j}$, offset $j$ across, query $t$ down (rows averaged in
    groups of `row_group`); orange above 0, blue below, on one scale for all layers."""
    window, seq = data["window"], data["seq_len"]
    cell_w, cell_h = 5, row_group
    width, height = window * cell_w, seq // row_group * cell_h
    gap, top, left = 24, 34, 30
    layers = data["band"]
    svg = Svg(left + len(layers) * width + (len(layers) - 1) * gap + 8, top + height + 44)
    limit = max(abs(data["min"]), abs(data["max"]))
    for index, band in enumerate(layers):
        x = left + index * (width + gap)
        grouped = []
        for start in range(0, seq, row_group):
            rows = band[start: start + row_group]
            grouped.append([None if not (column := [r[j] for r in rows if r[j] is not None])
                            else sum(column) / len(column) / limit for j in range(window)])
        svg.text(x + width / 2, 14, f"blocks[{index}]", mono=True, size=10)
        svg.cells(x, top, grouped, cell_w, cell_h, POSITIVE)
        svg.frame(x, top, width, height)
        svg.text(x, top + height + 12, "0", size=9)
        svg.text(x + width, top + height + 12, str(window - 1), size=9)
    svg.text(left + width / 2, top - 4, "t − t′ →", size=10)
    svg.text(left - 6, top + 12, "t", anchor="end", size=10)
    svg.text(left - 6, top + 24, "↓", anchor="end", size=10)
    svg.text(left - 6, top + height, str(seq - 1), anchor="end", size=9)
    svg.scale(left + len(layers) * (width + gap) - gap - 120, top + height + 20,
              "−" + _n(limit), _n(limit), colours=(NEGATIVE, POSITIVE), width=60)
    return svg


# ## Every figure
def figures(root: Path = ROOT) -> dict[str, str]:
    """File name → content, for every file under `results/figures/`."""
    weights = SETTINGS["variant_weights"]
    panels = variant_weights(**weights)
    local = SETTINGS["local_weights"]
    local_panel = [p for p in variant_weights(**local)
                   if p[:2] == ("aft_local", "causal=True")]
    blocks = SETTINGS["kernel_blocks"]
    out = {
        "variant-weights.svg": str(draw_weights(panels, weights["seq"], weights["window"], 9)),
        "local-weights.svg": str(draw_weights(local_panel, local["seq"], local["window"], 24)),
        "kernel-blocks.svg": str(draw_blocks(**blocks)),
    }
    learned = root / LEARNED_BIASES
    if learned.exists():
        data = json.loads(learned.read_text(encoding="utf-8"))
        out["learned-biases.svg"] = str(draw_learned(data, SETTINGS["learned_biases"]["row_group"]))
    kernel = dict(blocks, reach=-(-(blocks["window"] - 1) // blocks["block"]))
    settings = dict(SETTINGS, kernel_blocks=kernel)
    out["settings.json"] = json.dumps(settings, indent=1, sort_keys=True) + "\n"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aft.figures", description=__doc__.split(
        "\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="folder for the figures "
                        "(default: results/figures in the repository)")
    parser.add_argument("--learned-biases", metavar="CKPT", default=None,
                        help="first write results/learned_biases.json from this AFT-local "
                             "checkpoint of aft.train")
    args = parser.parse_args(argv)
    if args.learned_biases:
        try:
            write_learned_biases(args.learned_biases, ROOT / LEARNED_BIASES)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"wrote {LEARNED_BIASES}")
    out = Path(args.out) if args.out else ROOT / FIGURES
    out.mkdir(parents=True, exist_ok=True)
    for name, content in figures().items():
        (out / name).write_text(content, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
