"""The weights explorer: `{{ explorer ../results/explorer.json }}` in prose.

The directive becomes one block: the widget's root (`data-aft-explorer`) holding its words, in
the page's language, and the data file itself, both as inline JSON, so that the page works
offline, from a folder on disk and from a sub-folder. `docs/assets/explorer.js` builds the
widget from them; `docs/assets/explorer.css` styles it.

The data file (written by `aft.explore`) holds `text`, `window`, `seq_len`, `floor`, `codes` and
`models`: per model a list `mean` of one base64 string per layer (see `aft/explore.py`).
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

from . import ui
from .sections import LiterateError

# What the widget writes, in English; each goes through `ui.t` (translations in `ui.py`).
WORDS = {
    "title": "Weights explorer",
    "model": "Model",
    "local": "AFT-local",
    "attention": "Softmax attention",
    "layer": "Layer",
    "text": "Text: choose a position",
    "help": "explorer help",
    "chart": "Weight by distance (square-root scale)",
    "distance": "distance (characters back)",
    "window": "Window",
    "far": "Far keys",
    "readout": "explorer readout",
    "top": "explorer top channel",
    "newline": "line break",
    "space": "space",
    "noscript": "The weights explorer needs JavaScript.",
}


def fragment(root, path: str, fragment):
    """Read and check the data file named by the directive; the fragment then carries it."""
    target = fragment.text.removeprefix("explorer ").strip()
    file = (Path(root) / path).parent / target
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise LiterateError(path, fragment.line, f"{{{{ {fragment.text} }}}}: cannot read "
                            f"{target}: {error.strerror}") from None
    except ValueError as error:
        raise LiterateError(path, fragment.line, f"{{{{ {fragment.text} }}}}: {target} is not "
                            f"JSON: {error}") from None
    missing = [k for k in ("text", "window", "seq_len", "floor", "codes", "models")
               if k not in data]
    if missing or not isinstance(data["models"], dict) or not data["models"]:
        raise LiterateError(path, fragment.line, f"{{{{ {fragment.text} }}}}: {target} is not "
                            f"explorer data (missing {', '.join(missing) or 'models'})")
    for name, model in data["models"].items():
        rows = len(data["text"]) * (len(data["text"]) + 1) // 2
        for layer, encoded in enumerate(model.get("mean", [])):
            if len(encoded) != 4 * ((rows + 2) // 3):
                raise LiterateError(path, fragment.line,
                                    f"{{{{ {fragment.text} }}}}: {target}: {name} layer "
                                    f"{layer + 1} does not hold {rows} weights")
    # only what the widget reads: the full channel maxima stay in the file
    shown = {k: data[k] for k in ("text", "window", "seq_len", "floor", "codes")}
    shown["models"] = {name: {k: model[k] for k in ("mean", "far_top_channel") if k in model}
                       for name, model in data["models"].items()}
    return dataclasses.replace(fragment, kind="explorer", display=True,
                               text=json.dumps(shown, ensure_ascii=False,
                                               separators=(",", ":")))


def _script(content: dict | str, name: str) -> str:
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    # inside <script>, only "</" could end the element early
    text = text.replace("</", "<\\/")
    return f'<script type="application/json" class="{name}">{text}</script>'


def widget(data_json: str, lang: str) -> str:
    """The widget's root, its words in `lang` and its data; explorer.js does the rest."""
    words = {key: ui.t(lang, english) for key, english in WORDS.items()}
    return (f'<div class="aft-explorer" data-aft-explorer role="group" '
            f'aria-label="{html.escape(words["title"])}">'
            f'{_script(words, "aft-x-words")}{_script(data_json, "aft-x-data")}'
            f'<p class="aft-x-noscript">{html.escape(words["noscript"])}</p></div>\n')
