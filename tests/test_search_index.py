"""The search index reads like the page: each formula once, as its MathML text, never its TeX;
each language's index holds that language's text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from literate import search
from literate.site import Config

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = list(Config.load(ROOT).languages)


def index_of(site: Path, lang: str) -> Path:
    return site / ("" if lang == LANGUAGES[0] else lang) / "search" / "search_index.json"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_raw_tex_in_the_search_index(built_site, lang):
    assert search.raw_tex(index_of(built_site.path, lang)) == []


def test_each_formula_once(built_site):
    docs = json.loads(index_of(built_site.path, "en").read_text(encoding="utf-8"))["docs"]
    text = " ".join(d["text"] for d in docs if d["location"].startswith("index.html"))
    assert "computed in O(Tsd) time" in text  # once: not "O(Tsd)O(Tsd)O(Tsd)"


@pytest.mark.parametrize("lang, word", [("si", "අවධානය"), ("zh", "注意力"), ("ja", "アテンション")])
def test_each_language_indexes_its_own_text(built_site, lang, word):
    docs = json.loads(index_of(built_site.path, lang).read_text(encoding="utf-8"))["docs"]
    local = " ".join(d["text"] for d in docs if d["location"].startswith("aft/local.html"))
    assert word in local or word in " ".join(d["text"] for d in docs)


def test_raw_tex_is_found_where_it_is(tmp_path):
    """The check above could fail: TeX left in an index's text is reported, TeX in code is not."""
    index = tmp_path / "search_index.json"
    index.write_text(json.dumps({"docs": [
        {"location": "a.html", "title": "A", "text": r"<p>Y = \frac{N}{D}</p>"},
        {"location": "b.html", "title": "B", "text": r"<pre><code>print('\n\text')</code></pre>"},
    ]}), encoding="utf-8")
    assert search.raw_tex(index) == [("a.html", r"\frac")]


def test_for_search_keeps_the_page_as_it_looks():
    katex = ('<span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>x</mi>'
             '</mrow><annotation encoding="application/x-tex">x</annotation></semantics></math>'
             '</span><span class="katex-html" aria-hidden="true"><span class="base"><span '
             'class="mord">x</span></span></span></span>')
    marked = search.for_search(katex)
    assert marked.count("data-search-exclude") == 2
    assert '<lit-math class="katex-html" aria-hidden="true" data-search-exclude><span ' in marked
    assert marked.endswith("</span></span></lit-math></span>")
