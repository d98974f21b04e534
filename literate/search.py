"""What the site's search reads: each formula once, as its MathML text, never its TeX.

KaTeX writes every formula three times: MathML for screen readers (with the TeX source inside
it, in `<annotation encoding="application/x-tex">`), and HTML for the eye (`katex-html`,
hidden from screen readers). Material's search plugin indexes the text of everything except
elements marked `data-search-exclude`, so without help its index holds "O(Tsd)O(Tsd)O(Tsd)"
and raw TeX. We mark the HTML copy and the TeX annotation: the index keeps the MathML text,
once. `raw_tex` finds what is left, for the tests and for the build's own check.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

_KATEX_HTML = '<span class="katex-html" aria-hidden="true">'
_ANNOTATION = '<annotation encoding="application/x-tex">'


@functools.lru_cache(maxsize=8192)  # the same formulas, in every language and rebuild
def for_search(math_html: str) -> str:
    """A formula's KaTeX HTML with its visual copy and its TeX left out of the search index.

    The TeX annotation takes `data-search-exclude` as it is. The visual copy is a `<span>` full
    of `<span>`s, and Material's parser compares elements by tag name only: the first inner
    `</span>` would end the exclusion. So the visual copy's own element becomes `<lit-math>`
    (an undefined custom element: inline, like a span; KaTeX's CSS selects it by its class).
    """
    math_html = math_html.replace(_ANNOTATION, _ANNOTATION[:-1] + " data-search-exclude>")
    start = math_html.find(_KATEX_HTML)
    if start < 0:
        return math_html
    depth, end = 0, None
    for tag in _SPAN_TAG.finditer(math_html, start):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            end = tag
            break
    if end is None:
        return math_html
    inner = math_html[start + len(_KATEX_HTML): end.start()]
    return (math_html[:start] + '<lit-math class="katex-html" aria-hidden="true" '
            f"data-search-exclude>{inner}</lit-math>" + math_html[end.end():])


_SPAN_TAG = re.compile(r"<(/?)span\b[^>]*>")


def searchable(math_html):
    """`math_html` (fragment → KaTeX HTML), its results marked by `for_search`."""
    return lambda fragment: for_search(math_html(fragment))


# A TeX command: a backslash and letters (\frac, \sum, \mathbb), as no prose or code we index
# writes it outside a formula. Code blocks may hold backslashes ("\n" in a string): those are
# a backslash and one letter, or inside <code>, and are left out.
_TEX_COMMAND = re.compile(r"\\[A-Za-z]{2,}")


def raw_tex(index_file: Path) -> list[tuple[str, str]]:
    """`(location, command)` for every TeX command in a search index's text outside code."""
    data = json.loads(index_file.read_text(encoding="utf-8"))
    found = []
    for doc in data["docs"]:
        text = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", " ", doc["title"] + " " + doc["text"],
                      flags=re.S)
        found += [(doc["location"], command) for command in _TEX_COMMAND.findall(text)]
    return found
