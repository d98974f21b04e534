"""Step 3: translation keys, and the hook where translated prose replaces English.

A translation file is one flat JSON object per source and language,
`translations/<lang>/<source path>.json`, mapping a section's English key (its placeholder HTML,
see `prose`) to translated HTML with the same placeholders. Page titles and summaries are
plain-text keys. This module only reads that mapping; the tool that writes it comes later.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import prose, sections


def keys_of(path: str, text: str) -> list[str]:
    """Every key a translation file for this source needs, sorted, without repeats.

    Identical paragraphs share one key, so each is translated once.
    """
    keys = set()
    for section in sections.split(path, text):
        rendered = prose.render(path, section.prose, section.prose_line)
        keys.add(rendered.key)
        keys.add(prose.title_of(rendered) if section.kind in ("module", "markdown") else "")
        keys.add(str(rendered.meta.get("summary", "")).strip())
    keys.discard("")
    keys.discard(None)
    return sorted(keys)


def load(root: Path, lang: str, source: str) -> dict[str, str]:
    """The translations of `source` into `lang`; empty (English everywhere) when there are none."""
    file = root / "translations" / lang / f"{source}.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}


def translate(key: str, translations: dict[str, str]) -> str:
    """The translated HTML for `key`, or the English when missing or when placeholders differ.

    A translation that lost or invented a placeholder would drop a formula from the page, so
    it is not used.
    """
    translated = translations.get(key)
    if translated is None:
        return key
    placeholders = sorted(prose.PLACEHOLDER_RE.findall(key))
    return translated if sorted(prose.PLACEHOLDER_RE.findall(translated)) == placeholders else key
