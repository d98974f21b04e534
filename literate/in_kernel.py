"""What runs inside a notebook's kernel when `python -m literate.notebook` executes it.

Two cells that the executor adds and takes out again before it writes the notebook: one before
the notebook's first cell calls `install_alt_text()`, one after its last prints `record(…)`.

Alt text for the figures, made from the figures themselves. From `install_alt_text()` on,
every Matplotlib figure the notebook shows carries, in its output's metadata
(`{"image/png": {"alt": …}}`, where nbconvert's HTML templates look for it), a sentence built
from what the figure says about itself: its suptitle, and for each panel its kind (plot or
image), title, axis labels and scales, and the labels of its lines. Two figures with
different titles or labels get different alt texts, and the text stays true when the
plotting code changes.

It runs only where the notebooks are executed for the site; in Colab a figure is shown as
Matplotlib shows it.
"""

from __future__ import annotations

import re


def plain(text: str) -> str:
    """A label as a screen reader should read it: TeX's `$`, backslashes and braces out."""
    text = re.sub(r"[$\\{}]", "", text)
    return " ".join(text.split())


def describe(figure) -> str:
    """One sentence (or a few) saying what `figure` shows."""
    panels = []
    for ax in figure.axes:
        if ax.get_label() == "<colorbar>":
            continue
        kind = "image" if ax.images else "plot"
        title, x, y = plain(ax.get_title()), plain(ax.get_xlabel()), plain(ax.get_ylabel())
        text = f"{kind} “{title}”" if title else kind
        if x and y:
            text += f": {y} against {x}"
        logs = [name for name, scale in (("x", ax.get_xscale()), ("y", ax.get_yscale()))
                if scale == "log"]
        if logs:
            axes = " axes)" if len(logs) > 1 else " axis)"
            text += " (logarithmic " + " and ".join(logs) + axes
        labels = [plain(line.get_label()) for line in ax.get_lines()
                  if not line.get_label().startswith("_")]
        if labels:
            text += "; lines: " + ", ".join(labels)
        panels.append(text)
    suptitle = figure._suptitle.get_text() if getattr(figure, "_suptitle", None) else ""
    if len(panels) > 1:
        body = f"{len(panels)} panels: " + "; ".join(
            f"({number}) {panel}" for number, panel in enumerate(panels, start=1))
    else:
        body = panels[0] if panels else "an empty figure"
    text = f"{plain(suptitle)}. {body[0].upper()}{body[1:]}" if suptitle else body
    return text[0].upper() + text[1:] + "."


def install_alt_text() -> None:
    """Make the kernel's PNG formatter for figures add `describe(figure)` as alt text."""
    from IPython import get_ipython
    from matplotlib.figure import Figure

    shell = get_ipython()
    shell.run_line_magic("matplotlib", "inline")  # what Jupyter does anyway: its formatters
    formatter = shell.display_formatter.formatters["image/png"]
    draw = formatter.lookup_by_type(Figure)
    formatter.for_type(Figure, lambda figure: (draw(figure), {"alt": describe(figure)}))


def record(namespace: dict, names: list[str]) -> str:
    """Where and how the outputs were made, as JSON: the device, the size the notebook chose
    (`SIZE`) with its settings (`SIZES[SIZE]`), and the final values of the parameters cell's
    `names`."""
    import json
    import os
    import sys

    torch = sys.modules.get("torch")
    device = namespace.get("DEVICE", "cpu")
    if str(device).startswith("cuda") and torch is not None:
        device = torch.cuda.get_device_name()
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads = torch.get_num_threads() if torch is not None else None
        device = f"CPU ({cores} cores" + (f", {threads} thread{'s' * (threads > 1)})"
                                          if threads else ")")
    size = namespace.get("SIZE")
    settings = namespace.get("SIZES", {}).get(size) if isinstance(size, str) else None
    return json.dumps({"device": device, "size": size, "settings": settings,
                       "values": {name: namespace.get(name) for name in names},
                       "torch": getattr(torch, "__version__", None)}, default=repr)
