"""The words around the prose (the renderer's, the theme's, the site name) are translated in the
same workflow as the pages: `translations/<lang>/ui.json`, and no English is left on a
translated page except names and paragraphs marked as not translated yet."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from site_copy import with_this_theme

from literate import site, translations, ui, workflow
from literate.site import Config

ROOT = Path(__file__).resolve().parents[1]
TRANSLATED = list(Config.load(ROOT).languages)[1:]

# Names, not words: they read the same in every language.
NAMES = {"Material for MkDocs", "PyTorch", "KaTeX", "GitHub", "Colab", "MkDocs", "Triton",
         "English", "Transformer"}
_SKIP = {"code", "pre", "script", "style", "svg", "math", "lit-math"}
_VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "source", "col", "area", "base",
         "embed", "param", "track"}


def english_ui_words(root: Path = ROOT) -> set[str]:
    """Every English UI word a page could show: ours, the theme's, mkdocs.yml's."""
    words = set(ui.english(root)) | set(ui.material_english().values())
    words = {re.sub(r"<[^>]+>", "", w) for w in words if "#" not in w}
    return {w for w in words if w and w not in NAMES and re.search("[A-Za-z]{2}", w)}


class _EnglishUi(HTMLParser):
    """Text nodes and labelling attributes equal to an English UI word, outside code, math,
    and anything marked `lang="en"` (a paragraph shown in English, on purpose and said so)."""

    def __init__(self, words: set[str]):
        super().__init__()
        self.words, self.stack, self.found, self.tag = words, [], [], ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        skip = (tag in _SKIP or attrs.get("lang") == "en"
                or bool({"katex", "lit-ln"} & set((attrs.get("class") or "").split())))
        if not any(self.stack) and not skip:
            for name in ("title", "aria-label", "placeholder", "alt"):
                self._check(attrs.get(name), f"<{tag} {name}=>")
            if tag == "meta" and attrs.get("name") == "description":
                self._check(attrs.get("content"), "<meta description>")
        if tag not in _VOID:
            self.stack.append(skip)
        self.tag = tag

    def handle_endtag(self, tag):
        if tag not in _VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not any(self.stack):
            self._check(data, f"<{self.tag}> text")

    def _check(self, text, where):
        text = " ".join((text or "").split())
        if not text:
            return
        if self.tag == "title" and " - " in text:  # "page - site name"
            text = text.rsplit(" - ", 1)[1]
        if text in self.words:
            self.found.append(f"{where}: {text!r}")


def english_left(page: Path, words: set[str], text: str | None = None) -> list[str]:
    parser = _EnglishUi(words)
    parser.feed(page.read_text(encoding="utf-8") if text is None else text)
    return parser.found


@pytest.mark.parametrize("lang", TRANSLATED)
def test_no_english_ui_word_on_a_translated_page(built_site, lang):
    words = english_ui_words()
    pages = sorted((built_site.path / lang).rglob("*.html"))
    assert len(pages) > 10
    left = {p.relative_to(built_site.path).as_posix(): english_left(p, words) for p in pages}
    assert {name: found for name, found in left.items() if found} == {}


def test_the_detector_sees_the_english_it_is_for(built_site):
    """The check above could fail: the English site shows these words where it shows them."""
    page = built_site.path / "aft" / "local.html"
    text = page.read_text(encoding="utf-8").replace('<html lang="en"', '<html lang="xx"', 1)
    found = english_left(page, english_ui_words(), text)
    for word in ("Back to top", "Switch to dark mode", "AFT, annotated", "Search"):
        assert any(repr(word) in f for f in found), word


def test_translated_pages_show_the_translated_words(built_site):
    text = (built_site.path / "si" / "aft" / "local.html").read_text(encoding="utf-8")
    words = json.loads((ROOT / "translations" / "si" / "ui.json").read_text(encoding="utf-8"))
    for english in ("Back to top", "Switch to dark mode", "Select language", "Search"):
        assert words[english] and words[english] in text, english
    assert f"<title>AFT-local - {words['AFT, annotated']}</title>" in text


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_ui_word_is_translated(lang):
    table = workflow.status(ROOT, [lang])[lang]
    (row,) = [p for p in table if p.source == ui.SOURCE]
    assert row.total == len(ui.english(ROOT)) and row.percent == 100.0, row


def test_ui_words_are_in_the_po_export(tmp_path):
    files = workflow.export_po(ROOT, "si", tmp_path)
    po = tmp_path / "si" / "ui.po"
    assert po in files
    text = po.read_text(encoding="utf-8")
    assert 'msgid "Back to top"' in text and 'msgid "AFT, annotated"' in text


def _copy_site(tmp_path: Path) -> Path:
    """A small copy of this site: mkdocs.yml, docs/ (overrides and CSS), one page."""
    root = with_this_theme(tmp_path / "copy")
    (root / "p.py").write_text('"""\n# A page\n\nSome words.\n"""\nx = 1\n', encoding="utf-8")
    return root


def test_a_new_language_is_a_folder_of_files_and_a_line(tmp_path):
    """A made-up language (`xx`, which Material does not know either): one line in mkdocs.yml
    and `translate update` make its files; filled in, the whole interface is in it."""
    root = _copy_site(tmp_path)
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config["extra"]["literate"]["pages"] = ["p.py"]
    config["extra"]["literate"]["languages"] = {"en": "English", "xx": "Xx"}
    (root / "mkdocs.yml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    workflow.update(root, ["xx"])
    words = translations.Catalog.read(root / "translations" / "xx" / "ui.json")
    assert set(words.strings) == set(ui.english(root))
    words.strings = {english: "xx " + english.replace("Made", "Xx") for english in words.strings}
    words.write()
    site.build(root, site_dir=root / "site", cache_dir=root / "build")
    page = root / "site" / "xx" / "p.html"
    text = page.read_text(encoding="utf-8")
    assert '<html lang="xx"' in text
    assert "xx Back to top" in text and "xx Switch to dark mode" in text
    assert english_left(page, english_ui_words(root)) == []
    # the English site is untouched by the new language's words
    assert "xx " not in (root / "site" / "p.html").read_text(encoding="utf-8")


def test_check_keeps_the_number_sign_of_interface_words():
    assert translations.check_value("# matching documents", "ගැළපෙන පිටු #", "si") == []
    problems = translations.check_value("# matching documents", "ගැළපෙන පිටු", "si")
    assert problems and "keep each #" in problems[0]
    link = '<p>See <a href="#top">the top</a>.</p>\n'  # an anchor is no number
    assert translations.check_value(link, '<p><a href="#top">ඉහළ</a> බලන්න.</p>\n', "si") == []
