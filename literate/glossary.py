"""What a machine can check of a glossary: `translate check` runs these rules on every value.

A language's `translations/<lang>/glossary.md` is written for people, but it may hold three
tables that a machine reads, each recognised by its header row (the tables can sit anywhere in
the file, in any order; a language without them is not checked):

    | kept word | plural not to write |      an English word the translation keeps in
    |---|---|                                Latin letters takes no English plural: a value
    | flag | flags |                         may not contain `flags` as a word

    | English in the key | Sinhala in the value |   a required rendering: when the English key
    |---|---|                                       contains the term (as words, any case, an
    | running sum | ධාවන එකතු |                     English plural `-s`/`-es` included), the
                                                    value must contain one of the renderings
                                                    (alternatives separated by ` / `; write a
                                                    stem, so that every inflection matches)

    | do not write | write instead |           a rendering that is wrong wherever it appears
    |---|---|                                  (a calque, a false friend); the value may not
    | දේශීය | කවුළුව තුළ / ආසන්න |              contain it

Text inside `<code>` and the placeholders of math and code are not looked at: only the prose a
reader sees. A fourth table lets one paragraph off one rule, where the English really means
something else (say "window" as in a browser window):

    | page | paragraph starts with | rule |
    |---|---|---|
    | aft/model.json | <p>The window of | window |

`rule` is the first cell of the row it excuses, or `*` for every rule; an empty second cell
means every paragraph of the page (for a page whose revision is still to come). Problems come
back as
`file: key …: problem`, like the other checks; a malformed table is a `LiterateError` naming the
glossary's line.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import prose
from .sections import LiterateError

PLURALS = ("kept word", "plural not to write")
REQUIRED = ("english in the key", "sinhala in the value")
FORBIDDEN = ("do not write", "write instead")
EXCUSED = ("page", "paragraph starts with", "rule")
_TABLES = {PLURALS: "plurals", REQUIRED: "required", FORBIDDEN: "forbidden", EXCUSED: "excused"}


@dataclass
class Rules:
    """The machine-readable part of one glossary."""

    plurals: dict[str, str] = field(default_factory=dict)  # plural → the kept word
    required: dict[str, list[str]] = field(default_factory=dict)  # English term → renderings
    forbidden: dict[str, str] = field(default_factory=dict)  # wrong rendering → what instead
    excused: list[tuple[str, str, str]] = field(default_factory=list)  # page, key start, rule

    def __bool__(self) -> bool:
        return bool(self.plurals or self.required or self.forbidden)


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip().replace("\\|", "|").strip("`") for cell in re.split(r"(?<!\\)\|", inner)]


def parse(text: str, path: str = "glossary.md") -> Rules:
    """The rule tables of a glossary's Markdown (see the module's docstring)."""
    rules = Rules()
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        header = tuple(c.lower() for c in _cells(lines[number]))
        kind = _TABLES.get(header) if lines[number].lstrip().startswith("|") else None
        number += 1
        if kind is None:
            continue
        if number < len(lines) and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[number]):
            number += 1  # the |---|---| line
        while number < len(lines) and lines[number].lstrip().startswith("|"):
            cells = _cells(lines[number])
            number += 1
            needed = (cells[0], cells[-1]) if kind == "excused" else cells
            if len(cells) != len(header) or not all(needed):
                raise LiterateError(path, number, f"a row of the '{' | '.join(header)}' table "
                                    f"needs {len(header)} non-empty cells, found {cells}")
            if kind == "plurals":
                rules.plurals[cells[1].lower()] = cells[0]
            elif kind == "required":
                rules.required[cells[0].lower()] = [s.strip() for s in cells[1].split(" / ")]
            elif kind == "forbidden":
                rules.forbidden[cells[0]] = cells[1]
            else:
                rules.excused.append((cells[0], cells[1], cells[2].lower()))
    for page, start, rule in rules.excused:
        kept = {word.lower() for word in rules.plurals.values()}
        if rule != "*" and rule not in {*rules.required, *kept, *rules.forbidden}:
            raise LiterateError(path, 0, f"the excuse for {page} ({start!r}) names rule "
                                f"{rule!r}, which no table of the glossary has")
    return rules


def load(file: Path) -> Rules:
    """The rules of `file`; none when it does not exist."""
    if not file.is_file():
        return Rules()
    return parse(file.read_text(encoding="utf-8"), str(file))


_CODE = re.compile(r"<code\b.*?</code>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")


def visible(value: str) -> str:
    """The prose a reader sees in a key or value: no tags, code, math or code placeholders."""
    text = prose.PLACEHOLDER_RE.sub(" ", value)
    text = _TAG.sub(" ", _CODE.sub(" ", text))
    return " ".join(html.unescape(text).split())


def _term(term: str) -> re.Pattern:
    words = r"[\s-]+".join(re.escape(w) for w in term.split())
    return re.compile(rf"(?<![\w-]){words}(?:e?s)?(?![\w-])", re.I)


def check_value(english: str, value: str, rules: Rules, excused: set[str] = frozenset()
                ) -> list[str]:
    """What `value` does against the glossary's rules; `excused` names rules let off here."""
    problems = []
    seen, text = visible(english), visible(value)
    for word in re.findall(r"[A-Za-z][A-Za-z-]*", text):
        kept = rules.plurals.get(word.lower())
        if kept and kept.lower() not in excused:
            problems.append(f"English plural {word!r} of a word the glossary keeps in English: "
                            f"write {kept!r} and let the Sinhala say the number")
    for term, renderings in rules.required.items():
        if term in excused or not _term(term).search(seen):
            continue
        if not any(r in text for r in renderings):
            problems.append(f"the English says {term!r}: the glossary writes "
                            f"{' or '.join(renderings)}, which this value lacks")
    for wrong, instead in rules.forbidden.items():
        if wrong in text and wrong not in excused:
            problems.append(f"{wrong!r} is not how the glossary says it: {instead}")
    return list(dict.fromkeys(problems))


def check_catalog(catalog, lang: str, glossary: Path) -> list[str]:
    """Every glossary problem of one catalog, as `file: key …: problem` (none without rules)."""
    from .translations import _short

    rules = load(glossary)
    if not rules:
        return []
    page = catalog.file.relative_to(glossary.parent).as_posix()
    problems = []
    for key, value in sorted(catalog.strings.items()):
        if not value:
            continue
        excused = {rule for where, start, rule in rules.excused
                   if where == page and key.startswith(start)}
        if "*" in excused:
            continue
        for problem in check_value(catalog.english_of(key), value, rules, excused):
            problems.append(f"{catalog.file}: key {_short(key)}: {problem}")
    return problems
