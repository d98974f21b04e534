"""The Sinhala site: one MkDocs build per language, a switcher on every page, hreflang,
per-language sitemaps, a generated status page — and every page translated."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from literate import workflow

ROOT = Path(__file__).resolve().parents[1]


def english_pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if p.relative_to(site).parts[0] != "si")


def test_every_english_page_has_a_sinhala_page(built_site):
    pages = english_pages(built_site.path)
    assert "aft/local.html" in pages and "translation-status.html" in pages
    for name in pages:
        assert (built_site.path / "si" / name).is_file(), name
        text = (built_site.path / "si" / name).read_text(encoding="utf-8")
        assert '<html lang="si"' in text


def switcher(page: Path) -> dict[str, str]:
    """hreflang → where the language switcher of a built page leads (relative to site/)."""
    text = page.read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)" hreflang="([^"]+)"[^>]*class="md-select__link"', text)
    here = posixpath.dirname(page.as_posix())
    return {lang: posixpath.normpath(posixpath.join(here, href)) for href, lang in links}


def test_switcher_leads_to_the_same_page_in_the_other_language(built_site):
    site = built_site.path
    for name in english_pages(site):
        if name == "404.html":
            continue
        there = switcher(site / name)
        assert there == {"en": (site / name).as_posix(), "si": (site / "si" / name).as_posix()}
        back = switcher(site / "si" / name)
        assert back == there, name


def test_hreflang_links_and_per_language_sitemaps(built_site):
    """hreflang on the switcher's links, and in each language's sitemap for every page. No
    head <link rel=alternate>: Material's script would hijack the switcher (see main.html)."""
    site = built_site.path
    page = (site / "si/aft/local.html").read_text(encoding="utf-8")
    assert '<a href="../../si/aft/local.html" hreflang="si"' in page
    assert '<a href="../../aft/local.html" hreflang="en"' in page
    assert 'rel="alternate" href' not in page
    base = "https://aft-annotated.github.io/aft-annotated/"
    for prefix in ("", "si/"):
        sitemap = (site / prefix / "sitemap.xml").read_text(encoding="utf-8")
        assert f"<loc>{base}{prefix}aft/local.html</loc>" in sitemap
        assert f'hreflang="si" href="{base}si/aft/local.html"' in sitemap
        assert f'hreflang="en" href="{base}aft/local.html"' in sitemap


def test_status_page_in_both_languages(built_site):
    english = (built_site.path / "translation-status.html").read_text(encoding="utf-8")
    sinhala = (built_site.path / "si/translation-status.html").read_text(encoding="utf-8")
    assert "<title>Translation status - " in english and 'href="si/aft/local.html"' in english
    assert "<title>පරිවර්තන තත්ත්වය - " in sinhala and 'href="aft/local.html"' in sinhala


def test_translated_pages_edit_their_translation_file(built_site):
    text = (built_site.path / "si/aft/local.html").read_text(encoding="utf-8")
    assert "edit/main/translations/si/aft/local.json" in text


def test_sinhala_is_complete_and_passes_check():
    """100% of paragraphs of every page translated, none stale, 0 check errors."""
    assert workflow.check(ROOT, ["si"]) == []
    for page in workflow.status(ROOT, ["si"])["si"]:
        assert (page.missing, page.stale, page.invalid) == (0, 0, 0), page


def test_built_sinhala_pages_show_no_english_paragraphs(built_site):
    for page in (built_site.path / "si").rglob("*.html"):
        assert "lit-untranslated" not in page.read_text(encoding="utf-8"), page


def test_glossary_keeps_terms_consistent():
    glossary = (ROOT / "translations/si/glossary.md").read_text(encoding="utf-8")
    for term in ("Transformer", "AFT-local", "token", "logits", "embedding", "attention"):
        assert term in glossary, term
    text = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "translations/si").rglob(
        "*.json") if not p.name.endswith(".meta.json"))
    assert "දේශීය" not in text  # "local" is a window here, never "domestic"
