"""The translated sites: one MkDocs build per language, a switcher on every page offering
every language, hreflang, per-language sitemaps, a generated status page, and every page
translated in every language."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest

from literate import workflow
from literate.site import Config

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = list(Config.load(ROOT).languages)  # English first, then the translations
TRANSLATED = LANGUAGES[1:]


def test_the_site_has_four_languages():
    assert LANGUAGES == ["en", "si", "zh", "ja"]


def english_pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if p.relative_to(site).parts[0] not in TRANSLATED)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_english_page_has_a_translated_page(built_site, lang):
    pages = english_pages(built_site.path)
    assert "aft/local.html" in pages and "translation-status.html" in pages
    for name in pages:
        assert (built_site.path / lang / name).is_file(), name
        text = (built_site.path / lang / name).read_text(encoding="utf-8")
        assert f'<html lang="{lang}"' in text


def switcher(page: Path) -> dict[str, str]:
    """hreflang → where the language switcher of a built page leads (relative to site/)."""
    text = page.read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)" hreflang="([^"]+)"[^>]*class="md-select__link"', text)
    here = posixpath.dirname(page.as_posix())
    return {lang: posixpath.normpath(posixpath.join(here, href)) for href, lang in links}


def test_switcher_offers_every_language_and_leads_to_the_same_page(built_site):
    site = built_site.path
    for name in english_pages(site):
        if name == "404.html":
            continue
        there = switcher(site / name)
        expected = {lang: (site / name).as_posix() if lang == "en"
                    else (site / lang / name).as_posix() for lang in LANGUAGES}
        assert there == expected, name
        for lang in TRANSLATED:
            assert switcher(site / lang / name) == there, (lang, name)


def test_hreflang_links_and_per_language_sitemaps(built_site):
    """hreflang on the switcher's links, and in each language's sitemap for every page. No
    head <link rel=alternate>: Material's script would hijack the switcher (see main.html)."""
    site = built_site.path
    page = (site / "si/aft/local.html").read_text(encoding="utf-8")
    for lang in TRANSLATED:
        assert f'<a href="../../{lang}/aft/local.html" hreflang="{lang}"' in page
    assert '<a href="../../aft/local.html" hreflang="en"' in page
    assert 'rel="alternate" href' not in page
    base = "https://aft-annotated.github.io/aft-annotated/"
    for prefix in ["", *(f"{lang}/" for lang in TRANSLATED)]:
        sitemap = (site / prefix / "sitemap.xml").read_text(encoding="utf-8")
        assert f"<loc>{base}{prefix}aft/local.html</loc>" in sitemap
        assert f'hreflang="en" href="{base}aft/local.html"' in sitemap
        for lang in TRANSLATED:
            assert f'hreflang="{lang}" href="{base}{lang}/aft/local.html"' in sitemap


def test_status_page_shows_every_language(built_site):
    english = (built_site.path / "translation-status.html").read_text(encoding="utf-8")
    sinhala = (built_site.path / "si/translation-status.html").read_text(encoding="utf-8")
    assert "<title>Translation status - " in english
    for lang in TRANSLATED:
        assert f'href="{lang}/aft/local.html"' in english, lang
    assert "<title>පරිවර්තන තත්ත්වය - " in sinhala and 'href="aft/local.html"' in sinhala
    assert "<title>翻译进度 - " in (built_site.path / "zh/translation-status.html").read_text(
        encoding="utf-8")


def test_translated_pages_edit_their_translation_file(built_site):
    for lang in TRANSLATED:
        text = (built_site.path / lang / "aft/local.html").read_text(encoding="utf-8")
        assert f"edit/main/translations/{lang}/aft/local.json" in text


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_language_is_complete_and_passes_check(lang):
    """100% of paragraphs of every page translated, none stale, 0 check errors."""
    assert workflow.check(ROOT, [lang]) == []
    for page in workflow.status(ROOT, [lang])[lang]:
        assert (page.missing, page.stale, page.invalid) == (0, 0, 0), page


@pytest.mark.parametrize("lang", TRANSLATED)
def test_built_translated_pages_show_no_english_paragraphs(built_site, lang):
    for page in (built_site.path / lang).rglob("*.html"):
        assert "lit-untranslated" not in page.read_text(encoding="utf-8"), page


@pytest.mark.parametrize("lang,forbidden", [
    ("si", "දේශීය"),  # "local" is a window here, never "domestic"
    ("zh", "变压器"),  # Transformer, the model, is not an electrical transformer
    ("ja", "変圧器"),
])
def test_glossary_keeps_terms_consistent(lang, forbidden):
    glossary = (ROOT / f"translations/{lang}/glossary.md").read_text(encoding="utf-8")
    for term in ("Transformer", "AFT-local", "token", "logits", "embedding", "attention"):
        assert term in glossary, term
    text = "".join(p.read_text(encoding="utf-8") for p in (ROOT / f"translations/{lang}").rglob(
        "*.json") if not p.name.endswith(".meta.json"))
    assert forbidden not in text
    assert "Transformer" in text
