"""Step 5: one source → one page of rows, prose on the left and its code on the right.

Input is a source's sections with their rendered prose; output is a plain Markdown file (front
matter + one block of HTML) that any MkDocs-like tool can assemble into a site. Everything a
reader sees is decided here:

* prose: the (translated) key HTML with its placeholders restored to KaTeX, code and images,
  and links to other sources rewritten to their pages;
* code: highlighted by Pygments, each line number a link to that line in the repository;
* anchors: from content, not position, so a link to a section survives edits elsewhere: the
  qualified name of the class or function a docstring describes, else a short hash.
"""

from __future__ import annotations

import functools
import hashlib
import html
import io
import posixpath
import re
from collections import Counter
from dataclasses import dataclass

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer, get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

from . import explorer, prose, translations, ui
from .sections import Section


@dataclass
class Source:
    """A literate source and what the page renderer needs to know about the site around it."""

    path: str  # relative to the repository root, e.g. "aft/full.py"
    text: str
    sections: list[Section]
    proses: list[prose.Prose]


@dataclass
class Site:
    """Where pages live and link to: source path → page path, and the repository's URLs."""

    pages: dict[str, str]  # "aft/full.py" → "aft/full.md"
    blob_url: str  # e.g. https://github.com/org/repo/blob/main/
    edit_url: str  # e.g. https://github.com/org/repo/edit/main/


def page_path(source: str) -> str:
    """Where a source's page goes in the docs dir: `aft/__init__.py` → `aft/index.md`."""
    if source.startswith("docs/"):
        source = source[len("docs/") :]
    stem, _ = posixpath.splitext(source)
    if posixpath.basename(stem) == "__init__":
        stem = posixpath.join(posixpath.dirname(stem), "index")
    return stem + ".md"


def title(source: Source) -> str:
    """The page title: from the introduction, else the first heading, else the file name."""
    for section, rendered in zip(source.sections, source.proses, strict=True):
        if section.kind in ("module", "markdown") and prose.title_of(rendered):
            return prose.title_of(rendered)
    for rendered in source.proses:
        heading = re.search(r"<h[1-6][^>]*>(.*?)</h[1-6]>", rendered.key, re.S)
        if heading:
            return html.unescape(re.sub(r"<[^>]+>", "", heading.group(1))).strip()
    return source.path


def render(source: Source, site: Site, math_html, strings=None, lang: str | None = None,
           edit_path: str | None = None) -> str:
    """The page's Markdown file: front matter, then the rows as one HTML block.

    `math_html(fragment)` returns a formula's KaTeX HTML. `strings` maps English keys to
    translated HTML (a dict), or is a function `key → (html, state)` (`translations.Lookup`);
    a paragraph not translated (missing, stale, or failing `check`) is shown in English with a
    small marker saying so. `lang` is the page's language (None: the source language, no
    markers); `edit_path` is the file the edit button opens (default: the source).
    """
    lookup = strings if callable(strings) else _dict_lookup(strings or {}, lang or "")
    highlighted = _highlight_lines(source.text) if source.path.endswith(".py") else []
    rows, used, figures = [], set(), Counter()
    for section, rendered in zip(source.sections, source.proses, strict=True):
        anchor = _unique(_anchor(section), used)
        body, state = lookup(rendered.key) if rendered.key else ("", "translated")
        body = _heading_ids(body, rendered.key, used)
        body = _restore(body, rendered.fragments, math_html, lambda alt: _alt(lookup, alt, lang),
                        figures, lang or "en")
        body = _rewrite_links(body, source.path, site)
        code = _code(section, highlighted, site.blob_url + source.path)
        classes, marker = "lit-prose", ""
        if lang and state != "translated":
            classes += f' lit-untranslated lit-{state}" lang="en'
            marker = f'<p class="lit-marker" lang="{lang}">{html.escape(ui.t(lang, state))}</p>\n'
        link_title = html.escape(ui.t(lang or "en", "Link to this section"))
        # The code comes first so that it can float beside the prose: what prose runs
        # past the code's end, and anything wide, takes the row's full width (the CSS
        # shows the prose first where the two are stacked).
        rows.append(
            f'<section class="lit-row" id="{anchor}">\n'
            f'<div class="lit-code">{code}</div>\n'
            f'<div class="{classes}"><a class="lit-anchor" href="#{anchor}" '
            f'title="{link_title}" aria-hidden="true" tabindex="-1"></a>\n{marker}{body}'
            '</div>\n</section>\n'
        )
    kind = "literate-md" if source.path.endswith(".md") else "literate-py"
    return (
        "---\n"
        f"title: {_yaml_string(translated_title(source, lookup))}\n"
        f"edit_url: {site.edit_url}{edit_path or source.path}\n"
        "---\n\n"
        f'<div class="literate {kind}">\n{"".join(rows)}</div>\n'
    )


def translated_title(source: Source, strings) -> str:
    """The page title in the page's language, when its translation is good; else English."""
    lookup = strings if callable(strings) else _dict_lookup(strings or {}, "")
    english = title(source)
    text, state = lookup(english)
    return html.unescape(re.sub(r"<[^>]+>", "", text)) if state == "translated" else english


def _dict_lookup(strings: dict[str, str], lang: str):
    def lookup(key: str) -> tuple[str, str]:
        if not strings.get(key):
            return key, "missing"
        text = translations.translate(key, strings, lang)
        return text, "translated" if text != key or strings[key] == key else "invalid"

    return lookup


def _restore(body: str, fragments: list[prose.Fragment], math_html, alt=None,
             figures: Counter | None = None, lang: str = "en") -> str:
    """Put formulas, code, images and widgets back where their placeholders stand.

    `alt(text)` gives an image's alt text in the page's language (by default, as written) and
    whether that is English; `figures` counts the figures of a page, for unique ids; `lang`
    is the page's language, for the words of a widget."""
    alt = alt or (lambda text: (text, False))
    figures = Counter() if figures is None else figures

    def fragment_html(match: re.Match) -> str:
        fragment = fragments[int(match.group(1))]
        if fragment.kind == "math":
            return math_html(fragment)
        if fragment.kind == "code":
            return f"<code>{html.escape(fragment.text, quote=False)}</code>"
        if fragment.kind in ("data", "include"):
            return fragment.text  # already HTML: see `prose.resolve_data`
        if fragment.kind == "explorer":
            return explorer.widget(fragment.text, lang)
        if fragment.kind == "image" and not fragment.display:
            return f'<img src="{html.escape(fragment.text)}" alt="{html.escape(fragment.extra)}">'
        if fragment.kind in ("image", "figure"):  # a figure: its alt text is translated
            text, english = alt(fragment.extra)
            in_english = ' lang="en"' if english else ""
            if fragment.kind == "figure":
                return _figure(fragment.text, text, in_english, figures)
            image = (f'<img src="{html.escape(fragment.text)}" alt="{html.escape(text)}"'
                     f'{in_english}>')
            return f'<figure class="lit-figure">{image}</figure>\n'
        return _fence(fragment)

    return prose.PLACEHOLDER_RE.sub(fragment_html, body)


def _alt(lookup, text: str, lang: str | None) -> tuple[str, bool]:
    """An image's alt text (a plain-text key, like a title) in the page's language, and whether
    a page in another language shows it in English."""
    translated, state = lookup(text) if text else (text, "translated")
    if state != "translated":
        return text, bool(lang)
    return html.unescape(re.sub(r"<[^>]+>", "", translated)), False


def _figure(svg: str, alt: str, lang: str, figures: Counter) -> str:
    """An SVG figure inlined (its text and lines follow the page's colours): one image for
    assistive technology, named by its alt text. Any ids get a prefix unique on the page."""
    figures[svg] += 1
    ids = re.findall(r'\sid="([^"]+)"', svg)
    if ids:
        prefix = f"fig{hashlib.sha1(svg.encode()).hexdigest()[:6]}-{figures[svg]}-"
        pattern = "|".join(re.escape(name) for name in ids)
        svg = re.sub(rf'(\sid="|url\(#|href="#)({pattern})(?=["\)])',
                     lambda m: m.group(1) + prefix + m.group(2), svg)
    name = f'role="img" aria-label="{html.escape(alt)}"{lang}' if alt else 'aria-hidden="true"'
    svg = re.sub(r"<svg\b", f"<svg {name}", svg, count=1)
    return f'<figure class="lit-figure">\n{svg}\n</figure>\n'


def _fence(fragment: prose.Fragment) -> str:
    try:
        lexer = get_lexer_by_name(fragment.extra or "text")
    except ClassNotFound:
        lexer = get_lexer_by_name("text")
    return highlight(fragment.text, lexer, HtmlFormatter(wrapcode=True))


def _rewrite_links(body: str, source: str, site: Site) -> str:
    """Links to other sources go to their pages; links to other repository files to GitHub."""
    here = posixpath.dirname(source)
    page_dir = posixpath.dirname(site.pages[source])

    def rewrite(match: re.Match) -> str:
        attribute, url = match.group(1), html.unescape(match.group(2))
        if re.match(r"[a-z][a-z0-9+.-]*:|#|/", url):
            return match.group(0)
        path, hash_, fragment = url.partition("#")
        target = posixpath.normpath(posixpath.join(here, path))
        if target in site.pages:
            page = site.pages[target][: -len(".md")] + ".html"
            url = posixpath.relpath(page, page_dir or ".") + hash_ + fragment
        elif path.endswith((".py", ".md", ".toml", ".txt", ".yml", ".json")):
            url = site.blob_url + target + hash_ + fragment
        return f'{attribute}="{html.escape(url)}"'

    return re.sub(r'(href|src)="([^"]*)"', rewrite, body)


def _anchor(section: Section) -> str:
    if section.name:
        return section.name
    content = section.prose or section.code
    return "s-" + hashlib.sha1(content.encode()).hexdigest()[:8]


def _unique(anchor: str, used: set[str]) -> str:
    candidate, number = anchor, 1
    while candidate in used:
        number += 1
        candidate = f"{anchor}-{number}"
    used.add(candidate)
    return candidate


def _heading_ids(body: str, english: str, used: set[str]) -> str:
    """Give prose headings ids, so that search results and links can point at them.

    The ids come from the English headings with formulas left out, so a link to a section
    works in every language.
    """
    slugs = []
    for match in _HEADING.finditer(english):
        text = html.unescape(re.sub(r"<[^>]+>", "", prose.PLACEHOLDER_RE.sub("", match.group(2))))
        slugs.append(_unique(re.sub(r"[^\w]+", "-", text.lower()).strip("-") or "heading", used))
    slugs.reverse()

    def add_id(match: re.Match) -> str:
        if not slugs:
            return match.group(0)
        level, inner = match.groups()
        return f'<h{level} id="{slugs.pop()}">{inner}</h{level}>'

    return _HEADING.sub(add_id, body)


_HEADING = re.compile(r"<h([1-6])>(.*?)</h\1>", re.S)


def _code(section: Section, highlighted: list[str], blob: str) -> str:
    """A section's code with linked line numbers; blank lines at either end are left out."""
    lines = list(section.lines)
    while lines and not lines[0][1].strip():
        lines.pop(0)
    while lines and not lines[-1][1].strip():
        lines.pop()
    if not lines:
        return ""
    rows = "".join(
        f'<a class="lit-ln" href="{blob}#L{number}" aria-hidden="true" tabindex="-1" '
        f'data-search-exclude>{number}</a>'
        f"{highlighted[number - 1]}\n"
        for number, _ in lines
    )
    return f'<div class="highlight"><pre><code>{rows}</code></pre></div>'


@functools.lru_cache(maxsize=64)  # one source, highlighted once for all its languages
def _highlight_lines(text: str) -> list[str]:
    """Pygments HTML for each source line.

    The whole file is lexed at once (a line inside a triple-quoted string must know it is in
    one), then tokens are cut at newlines so that each line is complete HTML on its own.
    """
    lexer = PythonLexer(stripnl=False, ensurenl=True, tabsize=0)
    lines, current = [], []
    for kind, value in lexer.get_tokens(text.replace("\r\n", "\n")):
        css = _css_class(kind)
        for index, piece in enumerate(value.split("\n")):
            if index:
                lines.append("".join(current))
                current = []
            if piece:
                escaped = html.escape(piece, quote=False)
                current.append(f'<span class="{css}">{escaped}</span>' if css else escaped)
    lines.append("".join(current))
    expected = len(io.StringIO(text).readlines())
    return lines + [""] * max(0, expected - len(lines))


def _css_class(kind) -> str:
    while kind not in STANDARD_TYPES:
        kind = kind.parent
    return STANDARD_TYPES[kind]


def _yaml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
