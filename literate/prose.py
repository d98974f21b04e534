"""Step 2: prose Markdown → HTML with placeholders, which is also the translation key.

Math, inline code, images and fenced code are cut out of the prose *before* Markdown sees it, so
`_` and `*` inside `$a_i * b_i$` can never turn into emphasis. Each is replaced by a numbered
placeholder; after Markdown it becomes `<span translate=no>_^_N_^_</span>`. The HTML we get is
byte for byte the key of labml's translation files (their "seed format"): a translator sees
sentences and opaque placeholders, never LaTeX, and the same English always gives the same key.

Three details of that format are reproduced on purpose:

* single newlines inside a paragraph become one space, and a prose block that ends with a
  newline (every `#` comment line does) keeps a trailing space;
* a display environment (`\\begin{align}…`) that fills a paragraph is a block of its own,
  not wrapped in `<p>`;
* the HTML ends with a newline.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import markdown
import yaml

from . import explorer
from .sections import LiterateError

PLACEHOLDER = "<span translate=no>_^_{}_^_</span>"
PLACEHOLDER_RE = re.compile(r"<span translate=no>_\^_(\d+)_\^_</span>")
# Markdown leaves these private-use characters alone, so they mark where a fragment was.
_MARK = "\ue000{}\ue001"
_MARK_RE = re.compile("\ue000(\\d+)\ue001")


@dataclass(frozen=True)
class Fragment:
    """Something cut out of the prose: `math`, `code`, `image`, `fence` (a code block), or
    `data` (`{{ file#key }}` or `{{ include file }}`, see `resolve_data`). An image that is a
    paragraph of its own is `display`: a figure (an SVG one becomes a `figure`, inlined)."""

    kind: str
    text: str  # the TeX, the code, the image URL
    display: bool = False  # display math, or a fence: a block of its own
    extra: str = ""  # an image's alt text, a fence's language
    line: int = 0  # source line, for error messages


@dataclass
class Prose:
    """A section's prose: its key (placeholder HTML) and what its placeholders stand for."""

    key: str
    fragments: list[Fragment]
    meta: dict  # front matter of a page introduction (`title`, `summary`), else empty


def render(path: str, text: str, line: int) -> Prose:
    """Render one section's prose Markdown; `line` is the source line of its first line."""
    meta, text, line = _front_matter(path, text, line)
    if not text.strip():
        return Prose("", [], meta)
    marked, fragments = protect(path, text, line)
    body = _MARKDOWN.reset().convert(_join_lines(marked)) + "\n"
    for number, fragment in enumerate(fragments):
        if (fragment.kind == "fence" or fragment.text.startswith("\\begin")
                or (fragment.kind == "data" and fragment.text.startswith(("include ",
                                                                           "explorer ")))):
            body = re.sub(f"<p>{_MARK.format(number)} ?</p>\n", PLACEHOLDER.format(number), body)
        elif fragment.kind == "image":  # an image that is a whole paragraph: a figure
            body, alone = re.subn(f"<p>{_MARK.format(number)} ?</p>\n", PLACEHOLDER.format(number),
                                  body)
            fragments[number] = replace(fragment, display=bool(alone))
    key = _MARK_RE.sub(lambda m: PLACEHOLDER.format(m.group(1)), body)
    return Prose(key, fragments, meta)


_MARKDOWN = markdown.Markdown(extensions=["tables"])


def title_of(prose: Prose) -> str | None:
    """A page title: the front matter's `title`, else the text of the first `<h1>`."""
    if prose.meta.get("title"):
        return str(prose.meta["title"])
    match = re.search(r"<h1[^>]*>(.*?)</h1>", prose.key, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip() if match else None


def _front_matter(path: str, text: str, line: int) -> tuple[dict, str, int]:
    """Split off a leading `---` YAML block (labml's title and summary live there)."""
    if not text.startswith("---\n"):
        return {}, text, line
    end = text.find("\n---\n", 3)
    if end < 0:
        raise LiterateError(path, line, "front matter starting with --- is never closed")
    try:
        meta = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as error:
        raise LiterateError(path, line, f"bad front matter: {error}") from None
    rest = text[end + 5 :]
    return meta, rest, line + text[: end + 5].count("\n")


def protect(path: str, text: str, line: int) -> tuple[str, list[Fragment]]:
    """Cut math, code and images out of `text`, leaving numbered marks in their place.

    A small left-to-right scanner, because the delimiters nest in ways a regular expression
    gets wrong: a `$` inside inline code is not math, a backtick inside math is not code.
    """
    out: list[str] = []
    fragments: list[Fragment] = []
    i = 0

    def cut(fragment: Fragment, end: int) -> int:
        out.append(_MARK.format(len(fragments)))
        fragments.append(fragment)
        return end

    while i < len(text):
        rest = text[i:i + 2]
        if rest[:1] not in _SPECIAL:
            out.append(text[i])
            i += 1
            continue
        here = line + text.count("\n", 0, i)
        at_line_start = text.rfind("\n", 0, i) + 1
        rest = text[i:]
        if rest.startswith("\\$"):
            out.append("&#36;")
            i += 2
        elif rest.startswith("```") and not text[at_line_start:i].strip():
            end = text.find("\n```", i + 3)
            if end < 0:
                raise LiterateError(path, here, "code block opened with ``` is never closed")
            language, _, code = text[i + 3 : end + 1].partition("\n")
            stop = text.find("\n", end + 4)
            i = cut(Fragment("fence", code, True, language.strip(), here),
                    len(text) if stop < 0 else stop)
        elif rest.startswith("`"):
            ticks = len(rest) - len(rest.lstrip("`"))
            end = text.find("`" * ticks, i + ticks)
            while end >= 0 and text.startswith("`", end + ticks):  # a longer run: not ours
                end = text.find("`" * ticks, end + ticks + 1)
            if end < 0:
                out.append(rest[:ticks])
                i += ticks
            else:
                code = text[i + ticks : end]
                if code.startswith(" ") and code.endswith(" ") and code.strip():
                    code = code[1:-1]
                i = cut(Fragment("code", code.replace("\n", " "), line=here), end + ticks)
        elif rest.startswith("\\begin{"):
            name = rest[7 : rest.find("}")]
            closing = f"\\end{{{name}}}"
            end = text.find(closing, i)
            if end < 0 or "}" not in rest:
                raise LiterateError(path, here, f"\\begin{{{name}}} is never closed by {closing}")
            i = cut(Fragment("math", text[i : end + len(closing)], True, line=here),
                    end + len(closing))
        elif rest.startswith("$$"):
            end = text.find("$$", i + 2)
            if end < 0:
                raise LiterateError(path, here, "display math opened with $$ is never closed")
            i = cut(Fragment("math", text[i + 2 : end].strip(), True, line=here), end + 2)
        elif rest.startswith("$"):
            end = _closing_dollar(text, i + 1)
            if end < 0:
                raise LiterateError(path, here, "math opened with $ is never closed "
                                    "(write \\$ for a dollar sign)")
            i = cut(Fragment("math", text[i + 1 : end].strip(), line=here), end + 1)
        elif rest.startswith("{{"):
            end = text.find("}}", i)
            if end < 0:
                raise LiterateError(path, here, "{{ is never closed by }}")
            i = cut(Fragment("data", text[i + 2 : end].strip(), line=here), end + 2)
        elif rest.startswith("!["):
            # The alt text may run over several lines (not a blank one); it is one line to us
            image = re.match(r"!\[((?:[^\]\n]|\n(?![ \t]*\n))*)\]\(([^)\s]+)\)", rest)
            if image:
                alt = " ".join(image.group(1).split())
                i = cut(Fragment("image", image.group(2), extra=alt, line=here), i + image.end())
            else:
                out.append("!")
                i += 1
        else:
            out.append(text[i])
            i += 1
    return _drop_math_indent("".join(out)), fragments


_SPECIAL = set("\\`$!{")


def _closing_dollar(text: str, start: int) -> int:
    """Index of the `$` closing inline math, not crossing a blank line; -1 if none."""
    i = start
    while i < len(text):
        if text.startswith("\\", i):
            i += 2
            continue
        if text[i] == "$":
            return i
        if text.startswith("\n\n", i) or text.startswith("\n \n", i):
            return -1
        i += 1
    return -1


def _drop_math_indent(marked: str) -> str:
    """A mark standing alone on an indented line loses the indent (no accidental code block)."""
    return re.sub(r"(?m)^[ \t]+(\ue000\d+\ue001)[ \t]*$", r"\1", marked)


_BLOCK_START = re.compile(r"(#|>|\||<|```|([*+-]|\d+[.)])(\s|$)|(=+|-+|\*+)\s*$)")


def _join_lines(text: str) -> str:
    """Join the lines of each paragraph with a space, as labml's keys do.

    HTML treats a newline and a space alike, so this changes nothing a reader sees; it only
    makes a key independent of where an author wrapped a line. Lines that start a block (a list
    item, heading, quote, table, HTML) and indented code keep their newlines.
    """
    lines = [line.rstrip() for line in text.split("\n")]
    out = []
    in_code = joined = False
    for i, line in enumerate(lines):
        previous_blank = i == 0 or not lines[i - 1]
        if line and previous_blank:
            in_code = line.startswith(("    ", "\t"))
        out.append(line.lstrip() if joined else line)
        if i + 1 < len(lines):
            following = lines[i + 1]
            joins = (
                line and following and not in_code and not line.lstrip().startswith("#")
                and not _BLOCK_START.match(following.lstrip())
            )
            out.append(" " if joins else "\n")
            joined = bool(joins)
    if text.endswith("\n") and len(lines) > 1 and lines[-2]:
        out[-2] = " "  # the newline ending the last line (labml keeps it, as a space)
    return "".join(out)


# ## Numbers from measured files
#
# Prose must never type a measured number by hand, where it would go stale. Instead it
# names the file and the value: `{{ ../results/compare.json#local.val_loss|.3f }}` is the
# value at that (dotted) key of a JSON file, formatted with Python's format spec after `|`;
# `{{ include ../results/bench.md }}` inserts a whole Markdown file (a table, a plot), an
# image (`.png`, `.svg`) or a text file (`.txt`, shown as it is).
# `{{ explorer ../results/explorer.json }}` puts the weights explorer there (`explorer.py`).
# Paths are relative to the source file. All are placeholders, so a translation never
# goes stale when only a number changes.
def resolve_data(root, path: str, fragments: list[Fragment]) -> list[Fragment]:
    """Replace each `data` fragment's spec by its HTML, and each SVG figure's path by the SVG,
    reading files under `root`."""
    out = []
    for fragment in fragments:
        if fragment.kind == "image" and fragment.display and fragment.text.endswith(".svg"):
            out.append(_figure(root, path, fragment))
            continue
        if fragment.kind != "data":
            out.append(fragment)
            continue
        spec = fragment.text
        if spec.startswith("explorer "):
            out.append(explorer.fragment(root, path, fragment))
            continue
        include = spec.startswith("include ")
        target, _, rest = spec.removeprefix("include ").strip().partition("#")
        file = (Path(root) / path).parent / target
        try:
            content = "" if file.suffix in _IMAGES else file.read_text(encoding="utf-8")
            if include and file.suffix in _IMAGES:
                # A plot: inlined as a data: URL, so the page needs no extra file
                image = _inline_images(f"![]({file.name})", file.parent)
                content = markdown.markdown(image)
                out.append(Fragment("include", content, True, line=fragment.line))
                continue
        except OSError as error:
            raise LiterateError(path, fragment.line, f"{{{{ {spec} }}}}: cannot read {target}: "
                                f"{error.strerror}") from None
        if include and file.suffix == ".txt":
            text_html = f"<pre><code>{html.escape(content)}</code></pre>"
            out.append(Fragment("include", text_html, True, line=fragment.line))
            continue
        if include:
            content = _inline_images(content, file.parent)
            html_text = markdown.markdown(content, extensions=["tables"])
            out.append(Fragment("include", html_text, True, line=fragment.line))
            continue
        key, _, spec_format = rest.partition("|")
        try:
            value = json.loads(content)
            for part in key.split("."):
                value = value[int(part)] if isinstance(value, list) else value[part]
            text = format(value, spec_format)
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise LiterateError(path, fragment.line, f"{{{{ {spec} }}}}: no value {key!r} in "
                                f"{target} ({type(error).__name__}: {error})") from None
        out.append(Fragment("data", html.escape(text), line=fragment.line))
    return out


_IMAGES = {".png", ".svg", ".jpg", ".jpeg", ".gif"}


def _figure(root, path: str, fragment: Fragment) -> Fragment:
    """A figure's SVG file, read to be inlined in the page (so that `currentColor` follows the
    page's colour scheme): a `figure` fragment, its text the SVG without an XML prologue."""
    file = (Path(root) / path).parent / fragment.text
    try:
        svg = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LiterateError(path, fragment.line, f"figure {fragment.text}: cannot read "
                            f"{file}: {getattr(error, 'strerror', None) or error}") from None
    start = svg.find("<svg")
    if start < 0:
        raise LiterateError(path, fragment.line, f"figure {fragment.text}: no <svg> element")
    svg = re.sub(r"<!--.*?-->", "", svg[start:], flags=re.S)
    svg = "\n".join(line for line in svg.splitlines() if line.strip())  # no blank line: one block
    return Fragment("figure", svg, True, fragment.extra, fragment.line)


def _inline_images(text: str, folder) -> str:
    """Images of an included file become data: URLs, so the page needs no extra files.

    Their alt text says what the picture shows: the image's own description (`image_alt`),
    else the alt text the Markdown gives it, else its file name."""
    def inline(match: re.Match) -> str:
        image = folder / match.group(2)
        kind = "svg+xml" if image.suffix == ".svg" else image.suffix.lstrip(".")
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        alt = image_alt(image) or match.group(1) or image.stem
        alt = re.sub(r"[\[\]\n]", " ", alt)
        return f"![{alt}](data:image/{kind};base64,{data})"

    return re.sub(r"!\[([^\]\n]*)\]\(([^)\s:]+)\)", inline, text)


def image_alt(image: Path) -> str:
    """What a picture says it shows: a PNG's `Description` (else `Title`) text chunk, as
    Matplotlib writes with `savefig(metadata={"Description": ...})`; an SVG's `<desc>` (else
    `<title>`). Empty when it says nothing."""
    data = image.read_bytes()
    if image.suffix == ".svg":
        text = data.decode("utf-8", "replace")
        for tag in ("desc", "title"):
            found = re.search(rf"<{tag}[^>]*>(.*?)</{tag}>", text, re.S)
            if found and found.group(1).strip():
                return html.unescape(" ".join(found.group(1).split()))
        return ""
    chunks, at = {}, 8
    while data.startswith(b"\x89PNG") and at + 8 <= len(data):
        size = int.from_bytes(data[at: at + 4], "big")
        kind, body = data[at + 4: at + 8], data[at + 8: at + 8 + size]
        if kind == b"tEXt" and b"\0" in body:
            key, _, value = body.partition(b"\0")
            chunks[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt" and b"\0" in body:
            key, _, rest = body.partition(b"\0")
            if rest[:1] == b"\0":  # not compressed
                value = rest[2:].split(b"\0", 2)[-1]
                chunks[key.decode("latin-1")] = value.decode("utf-8", "replace")
        at += 12 + size
    return " ".join((chunks.get("Description") or chunks.get("Title") or "").split())
