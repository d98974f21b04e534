"""Step 3: translation files, and the rules that keep a translator's work safe.

A translation file is one flat JSON object per source and language,
`translations/<lang>/<source path without its extension>.json` (`aft/local.py` →
`translations/si/aft/local.json`), in labml's format: a section's English key (its placeholder
HTML, see `prose`) → the translated HTML with the same placeholders; page titles and summaries
are plain-text keys. An empty value means "not translated yet". We write the files sorted, with
Sinhala as Sinhala (not `\\u0d85` escapes) and a final newline, so a diff is readable; labml's
ASCII-escaped files read the same.

What the flat format cannot say lives in a sidecar, `<same path>.meta.json`:

* `order`: a short hash of each key, in document order, at the last `update` — where a
  paragraph *was*, so an edited paragraph can be matched to its old translation by position;
* `stale`: key → `{"english", "translation"}` for a translation carried over from an edited
  paragraph. It stays in the main file under the new key (tied to the new paragraph), and is
  stale for as long as the value is still the one carried over: a translator who edits it has
  revised it.

Paragraphs that disappear from the source stay in the main file (orphans) until `prune`.

Contributed HTML is untrusted: `check_value` allows only what the English key itself uses —
its tags, its attributes, its URLs — and `sanitize` re-writes a value from what the parser saw,
so the page gets exactly the HTML that was checked.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import html
import json
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from . import prose, sections
from .sections import LiterateError

# ---------------------------------------------------------------------------------------------
# Keys


def ordered_keys(path: str, text: str) -> list[str]:
    """Every key a translation file for this source needs, in document order, without repeats.

    The page title comes first, then each section's summary and prose, and after a section's
    prose the alt text of each of its figures (images that are a paragraph of their own).
    Identical paragraphs share one key, so each is translated once.
    """
    return list(_ordered_keys(path, text))


@functools.lru_cache(maxsize=128)  # `serve` asks again after every edit
def _ordered_keys(path: str, text: str) -> tuple[str, ...]:
    keys: dict[str, None] = {}
    for section in sections.split(path, text):
        rendered = prose.render(path, section.prose, section.prose_line)
        if section.kind in ("module", "markdown"):
            keys[prose.title_of(rendered) or ""] = None
        keys[str(rendered.meta.get("summary", "")).strip()] = None
        keys[rendered.key] = None
        for fragment in rendered.fragments:  # a figure's alt text: plain text, like a title
            if fragment.kind == "image" and fragment.display:
                keys[fragment.extra.strip()] = None
    keys.pop("", None)
    return tuple(keys)


def keys_of(path: str, text: str) -> list[str]:
    """`ordered_keys`, sorted (as they appear in a translation file)."""
    return sorted(ordered_keys(path, text))


def file_of(root: Path, lang: str, source: str) -> Path:
    """`translations/<lang>/<source without extension>.json`."""
    stem = source.rsplit(".", 1)[0] if "." in source.rsplit("/", 1)[-1] else source
    return root / "translations" / lang / f"{stem}.json"


def meta_of(file: Path) -> Path:
    return file.with_name(file.name[: -len(".json")] + ".meta.json")


def short_hash(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Reading and writing


def read_json(file: Path) -> object:
    """Parse a JSON file; an error names its file, line and column. Repeated keys are errors."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LiterateError(str(file), 0, f"cannot read: {error}") from None

    def no_repeats(pairs):
        seen = Counter(k for k, _ in pairs)
        repeated = [k for k, n in seen.items() if n > 1]
        if repeated:
            raise ValueError(f"key repeated: {_short(repeated[0])}")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_repeats)
    except json.JSONDecodeError as error:
        raise LiterateError(f"{file}:{error.lineno}", error.colno,
                            f"invalid JSON: {error.msg} (line {error.lineno}, "
                            f"column {error.colno})") from None
    except ValueError as error:
        raise LiterateError(str(file), 0, f"invalid JSON: {error}") from None


def dumps(data: dict) -> str:
    """The one way we write JSON: sorted, UTF-8 as is, one space of indent, final newline."""
    return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def write_atomic(file: Path, text: str) -> None:
    """Write to a temporary file beside `file`, then rename: a reader never sees half a file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.chmod(temporary, _file_mode(file))  # mkstemp makes 0600; keep an ordinary file's
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _file_mode(file: Path) -> int:
    """The mode `file` has, or the one a new file gets under the current umask."""
    try:
        return file.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@dataclass
class Catalog:
    """One source's translations into one language: the main file and its sidecar."""

    file: Path
    strings: dict[str, str] = field(default_factory=dict)
    stale: dict[str, dict[str, str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, file: Path) -> Catalog:
        catalog = cls(file)
        if file.exists():
            data = read_json(file)
            if not isinstance(data, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
                raise LiterateError(str(file), 0, "must be one JSON object of strings → strings")
            catalog.strings = data
        meta = meta_of(file)
        if meta.exists():
            data = read_json(meta)
            try:
                catalog.stale = {k: {"english": str(v["english"]),
                                     "translation": str(v["translation"])}
                                 for k, v in data.get("stale", {}).items()}
                catalog.order = [str(h) for h in data.get("order", [])]
            except (AttributeError, KeyError, TypeError) as error:
                raise LiterateError(str(meta), 0, f"not a sidecar file: {error}") from None
        return catalog

    def is_stale(self, key: str) -> bool:
        record = self.stale.get(key)
        return record is not None and self.strings.get(key) == record["translation"]

    def english_of(self, key: str) -> str:
        """The English a value was written for: its key, or the old English if stale."""
        return self.stale[key]["english"] if self.is_stale(key) else key

    def texts(self) -> tuple[str, str]:
        """The main file's and the sidecar's text, as `write` writes them."""
        meta = {"order": self.order} if self.order else {}
        if self.stale:
            meta["stale"] = self.stale
        return dumps(self.strings), (dumps(meta) if meta else "")

    def write(self) -> None:
        main, meta = self.texts()
        write_atomic(self.file, main)
        if meta:
            write_atomic(meta_of(self.file), meta)
        else:
            meta_of(self.file).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# update, prune, status


def update(catalog: Catalog, keys: list[str]) -> dict[str, int]:
    """Bring a catalog up to date with the source's `keys` (document order). Loses nothing.

    * new English paragraphs are added with an empty value (missing);
    * a translation whose paragraph changed moves to the new paragraph, flagged stale, when the
      two are alike in text and place (`_match`);
    * translations of paragraphs that disappeared stay, as orphans, until `prune`.
    """
    current = set(keys)
    strings, stale = catalog.strings, catalog.stale
    for key, record in list(stale.items()):
        if strings.get(key) != record["translation"] or record["english"] == key:
            del stale[key]  # revised by a translator, or the English came back
    for key in [k for k in strings if k not in current and not strings[k]]:
        del strings[key]  # an empty orphan holds no work
    orphans = [k for k in strings if k not in current]
    missing = [k for k in keys if not strings.get(k)]
    moved = 0
    for orphan, key in _match(catalog, orphans, missing, keys):
        english = catalog.english_of(orphan)
        translation = strings.pop(orphan)
        stale.pop(orphan, None)
        strings[key] = translation
        if english != key:
            stale[key] = {"english": english, "translation": translation}
        moved += 1
    added = 0
    for key in keys:
        if key not in strings:
            strings[key] = ""
            added += 1
    catalog.order = [short_hash(k) for k in keys]
    return {"added": added, "moved": moved}


def prune(catalog: Catalog, keys: list[str]) -> int:
    """Delete orphans (translations of paragraphs that are gone); return how many."""
    current = set(keys)
    gone = [k for k in catalog.strings if k not in current]
    for key in gone:
        del catalog.strings[key]
        catalog.stale.pop(key, None)
    return len([k for k in gone if k])


def _words(key: str) -> list[str]:
    """A key's words (placeholders as one word each), for comparing paragraphs by wording."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", prose.PLACEHOLDER_RE.sub(" \u2022 ", key)))
    return re.findall(r"\w+|[^\w\s]", text.lower())


def _match(catalog: Catalog, orphans: list[str], missing: list[str],
           keys: list[str]) -> list[tuple[str, str]]:
    """Pair orphans with new paragraphs: alike in text (difflib) and near in place.

    Score = similarity of the words − a penalty for distance (relative place, old order vs new);
    the best pairs are taken first, greedily; below 0.5 nothing is paired (a paragraph deleted
    and an unrelated one added stay orphan and missing).
    """
    if not orphans or not missing:
        return []
    old_position = {h: i / max(1, len(catalog.order)) for i, h in enumerate(catalog.order)}
    new_position = {k: i / max(1, len(keys)) for i, k in enumerate(keys)}
    candidates = []
    for orphan in orphans:
        english = _words(catalog.english_of(orphan))
        where = old_position.get(short_hash(orphan))
        for key in missing:
            matcher = difflib.SequenceMatcher(None, english, _words(key), autojunk=False)
            if matcher.real_quick_ratio() < 0.5 or matcher.quick_ratio() < 0.5:
                continue
            distance = 0.1 if where is None else abs(where - new_position[key])
            score = matcher.ratio() - 0.3 * distance
            if score >= 0.5:
                candidates.append((-score, orphan, key))
    pairs, used_orphans, used_keys = [], set(), set()
    for _, orphan, key in sorted(candidates):
        if orphan not in used_orphans and key not in used_keys:
            pairs.append((orphan, key))
            used_orphans.add(orphan)
            used_keys.add(key)
    return pairs


@dataclass
class PageStatus:
    source: str
    translated: int
    missing: int
    stale: int
    orphaned: int
    invalid: int = 0

    @property
    def total(self) -> int:
        return self.translated + self.missing + self.stale + self.invalid

    @property
    def percent(self) -> float:
        return 100.0 * self.translated / self.total if self.total else 100.0


def status(catalog: Catalog, keys: list[str], lang: str, source: str) -> PageStatus:
    """Count a page's paragraphs: translated (and passing `check`), missing, stale, orphaned."""
    counts = Counter()
    for key in keys:
        value = catalog.strings.get(key, "")
        if not value:
            counts["missing"] += 1
        elif catalog.is_stale(key):
            counts["stale"] += 1
        elif check_value(key, normalise(value, lang), lang):
            counts["invalid"] += 1
        else:
            counts["translated"] += 1
    current = set(keys)
    orphaned = sum(1 for k, v in catalog.strings.items() if k not in current and v)
    return PageStatus(source, counts["translated"], counts["missing"], counts["stale"],
                      orphaned, counts["invalid"])


# ---------------------------------------------------------------------------------------------
# check: what a value may contain


def normalise(value: str, lang: str) -> str:
    """Spelling fixes that never change meaning; Sinhala: the ZWJ in ්‍ර (rakaransaya) and ්‍ය
    (yansaya), which labml's files often lack (without it the conjunct does not form)."""
    if lang == "si":
        value = _BARE_CONJUNCT.sub("\u0dca\u200d", value)
    return value


_BARE_CONJUNCT = re.compile("(?<!\u200d)\u0dca(?=[\u0dbb\u0dba])")
_ANY_PLACEHOLDER = re.compile(r"_\^_(\d+)_\^_")
# Never allowed, whatever the English has: they run code, load things or change the page.
_FORBIDDEN_TAGS = {"script", "style", "iframe", "object", "embed", "form", "input", "button",
                   "textarea", "select", "meta", "link", "base", "svg", "math", "template",
                   "frame", "frameset", "applet", "noscript", "img"}
_VOID = {"br", "hr", "img", "wbr", "col", "area", "source", "track", "input", "meta", "link",
         "base", "embed", "param"}
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "srcset", "poster",
                   "data", "background", "cite"}
_MARK = "\ue002{}\ue003"


class _Html(HTMLParser):
    """Records tags, attributes and URLs, and what is wrong, in one pass over a value."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.urls = set(), set(), set()
        self.errors: list[str] = []
        self.open: list[str] = []
        self.out: list[str] = []  # the value re-written from what was parsed

    def handle_starttag(self, tag, attrs):
        self._start(tag, attrs)
        if tag not in _VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self._start(tag, attrs, close="")

    def _start(self, tag, attrs, close=""):
        if tag in _FORBIDDEN_TAGS:
            self.errors.append(f"<{tag}> is not allowed")
        if tag == "a" and "a" in self.open:
            self.errors.append("a link inside a link (nested <a>) is not allowed")
        self.tags.add(tag)
        written = []
        for name, value in attrs:
            self.attributes.add((tag, name))
            if name.startswith("on"):
                self.errors.append(f"event handler attribute {name}= is not allowed")
            if name in _URL_ATTRIBUTES and value is not None:
                self.urls.add((name, value))
                scheme = re.sub(r"[\s\x00-\x1f]+", "", value).lower()
                if scheme.startswith(("javascript:", "vbscript:", "data:")):
                    self.errors.append(f"{scheme.split(':')[0]}: URL in {name}= is not allowed")
            written.append(name if value is None else f'{name}="{html.escape(value)}"')
        self.out.append(f"<{' '.join([tag, *written])}{close}>")

    def handle_endtag(self, tag):
        if tag in _VOID:
            self.errors.append(f"</{tag}>: <{tag}> has no end tag")
        elif not self.open:
            self.errors.append(f"unbalanced tags: </{tag}> closes nothing")
        elif self.open[-1] != tag:
            self.errors.append(f"unbalanced tags: </{tag}> where </{self.open[-1]}> is due")
            if tag in self.open:
                del self.open[len(self.open) - 1 - self.open[::-1].index(tag):]
        else:
            self.open.pop()
        self.out.append(f"</{tag}>")

    def handle_data(self, data):
        self.out.append(html.escape(data, quote=False))

    def handle_comment(self, data):
        self.errors.append("HTML comments are not allowed")

    def handle_decl(self, decl):
        self.errors.append(f"<!{decl}> is not allowed")

    def unknown_decl(self, data):
        self.errors.append(f"<![{data}]> is not allowed")

    def handle_pi(self, data):
        self.errors.append(f"<?{data}> is not allowed")

    def finish(self) -> _Html:
        self.close()
        if self.rawdata:  # something the parser could not make sense of
            self.errors.append(f"cannot parse HTML near {self.rawdata[:30]!r}")
        for tag in reversed(self.open):
            self.errors.append(f"unbalanced tags: <{tag}> is never closed")
        return self


def _parse(text: str) -> _Html:
    parser = _Html()
    parser.feed(prose.PLACEHOLDER_RE.sub(lambda m: _MARK.format(m.group(1)), text))
    return parser.finish()


def check_value(english: str, value: str, lang: str) -> list[str]:
    """What is wrong with `value` as a translation of `english`; empty when nothing is."""
    return list(_check_value(english, value, lang))


@functools.lru_cache(maxsize=16384)  # every build checks every value, in each language
def _check_value(english: str, value: str, lang: str) -> tuple[str, ...]:
    problems = []
    want = Counter(prose.PLACEHOLDER_RE.findall(english))
    got = Counter(prose.PLACEHOLDER_RE.findall(value))
    for number in sorted(set(want) | set(got), key=int):
        placeholder = prose.PLACEHOLDER.format(number)
        if got[number] < want[number]:
            problems.append(f"lost placeholder {placeholder}")
        elif not want[number]:
            problems.append(f"extra placeholder {placeholder} (the English has no such one)")
        elif got[number] > want[number]:
            problems.append(f"placeholder {placeholder} appears {got[number]} times, "
                            f"the English has it {want[number]}")
    stray = len(_ANY_PLACEHOLDER.findall(value)) - sum(got.values())
    if stray:
        problems.append("a placeholder _^_N_^_ outside its <span translate=no>…</span> "
                        "(copy placeholders whole)")
    theirs, ours = _parse(english), _parse(value)
    problems += ours.errors
    hashes = [_text_of(text).count("#") for text in (english, value)]
    if hashes[0] != hashes[1]:  # the interface's words: "# matching documents"
        problems.append(f"the English has {hashes[0]} # (a number the site fills in), "
                        f"the translation {hashes[1]}: keep each #")
    for tag in sorted(ours.tags - theirs.tags - _FORBIDDEN_TAGS):
        problems.append(f"tag <{tag}> is not in the English")
    for tag, name in sorted(ours.attributes - theirs.attributes):
        if not name.startswith("on"):
            problems.append(f"attribute {name}= on <{tag}> is not in the English")
    for _name, url in sorted(ours.urls - theirs.urls):
        if not url.lower().lstrip().startswith(("javascript:", "vbscript:", "data:")):
            problems.append(f"link to {url!r} is not one of the English's links")
    if lang == "si" and _BARE_CONJUNCT.search(value):
        problems.append("Sinhala conjunct without ZWJ (්ර/්ය must be ්‍ර/්‍ය): "
                        "run `translate check --fix`")
    return tuple(dict.fromkeys(problems))


def _text_of(value: str) -> str:
    """A value's text: no tags (a link's #anchor is no number), no placeholders."""
    return re.sub(r"<[^>]*>", " ", prose.PLACEHOLDER_RE.sub(" ", value))


def sanitize(value: str) -> str:
    """A checked value re-written from its parse, so the browser gets what `check_value` saw."""
    parser = _parse(value)
    text = "".join(parser.out)
    return re.sub("\ue002(\\d+)\ue003", lambda m: prose.PLACEHOLDER.format(m.group(1)), text)


def check_catalog(catalog: Catalog, lang: str) -> list[str]:
    """Every problem in one catalog, each as `file: key …: problem`."""
    problems = []
    for key, value in sorted(catalog.strings.items()):
        if not value:
            continue
        for problem in check_value(catalog.english_of(key), value, lang):
            problems.append(f"{catalog.file}: key {_short(key)}: {problem}")
    return problems


def _short(key: str, width: int = 80) -> str:
    """A key on one line, its start and its end (where paragraphs differ) when it is long."""
    one_line = " ".join(key.split())
    if len(one_line) > width:
        one_line = one_line[: width - 25] + "…" + one_line[-24:]
    return json.dumps(one_line, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# What the page renderer asks for


@dataclass
class Lookup:
    """The translations of one page as the build uses them: only values that pass `check`."""

    catalog: Catalog | None
    lang: str
    rejected: list[str] = field(default_factory=list)  # what the build reports

    def __call__(self, key: str) -> tuple[str, str]:
        """`(html, state)`: state is `translated`, `missing`, `stale` or `invalid`; the html is
        the English for any state but `translated`."""
        if self.catalog is None:
            return key, "missing"
        value = self.catalog.strings.get(key, "")
        if not value:
            return key, "missing"
        if self.catalog.is_stale(key):
            return key, "stale"
        value = normalise(value, self.lang)
        problems = check_value(key, value, self.lang)
        if problems:
            self.rejected.append(f"{self.catalog.file}: key {_short(key)}: "
                                 f"{'; '.join(problems)}; showing the English")
            return key, "invalid"
        return sanitize(value), "translated"


def lookup(root: Path, lang: str, source: str) -> Lookup:
    """The build's view of a page's translations; an unreadable file counts as absent."""
    try:
        return Lookup(Catalog.read(file_of(root, lang, source)), lang)
    except LiterateError as error:
        return Lookup(None, lang, [f"{error}; showing the whole page in English"])


def load(root: Path, lang: str, source: str) -> dict[str, str]:
    """The raw translations of `source` into `lang`; empty when there are none."""
    file = file_of(root, lang, source)
    return Catalog.read(file).strings if file.exists() else {}


def translate(key: str, translations: dict[str, str], lang: str = "") -> str:
    """The translated HTML for `key`, or the English when missing or failing `check`."""
    value = normalise(translations.get(key) or "", lang)
    if not value or check_value(key, value, lang):
        return key
    return sanitize(value)
