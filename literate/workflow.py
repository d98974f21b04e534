"""`python -m literate translate …`: the translator's commands, over every page and language.

    update     add new English paragraphs (missing); carry edited ones over, flagged stale
    status     translated / missing / stale / orphaned per language and page (--json)
    check      every file: JSON, placeholders, HTML, links, spelling (--fix normalises),
               the glossary's machine-readable rules (see `glossary`)
    prune      delete orphans: translations of paragraphs that are gone
    todo       the missing and stale paragraphs of a page, as JSON to work from
    export-po  gettext PO files for Poedit, Weblate or Crowdin (stale → fuzzy)
    import-po  read them back (nothing is written unless every value passes check)

Every command reads and checks everything it will write before it writes anything, and
writes each file through a temporary file and a rename: an error leaves the files as they were.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from . import glossary, translations, ui
from .sections import LiterateError
from .site import Config
from .translations import Catalog


def sources(root: Path) -> list[tuple[str, list[str]]]:
    """The pages listed in mkdocs.yml that exist, each with its keys in document order, and
    the words around them (`ui`: the renderer's, the theme's, the site name), last."""
    config = Config.load(root)
    found = []
    for path in config.pages:
        file = root / path
        if file.is_file():
            found.append((path, translations.ordered_keys(path, file.read_text("utf-8"))))
    found.append((ui.SOURCE, ui.english(root)))
    return found


def languages(root: Path, asked: list[str] | None) -> list[str]:
    config = Config.load(root)
    targets = [code for code in config.languages if code != config.source_language]
    unknown = [code for code in asked or [] if code not in targets]
    if unknown:
        raise LiterateError("mkdocs.yml", 0, f"language {unknown[0]} is not listed under "
                            f"extra.literate.languages ({', '.join(targets)})")
    return asked or targets


def _catalogs(root: Path, langs: list[str]):
    pages = sources(root)
    return [(lang, path, keys, Catalog.read(translations.file_of(root, lang, path)))
            for lang in langs for path, keys in pages]


def update(root: Path, langs: list[str]) -> list[str]:
    report = []
    catalogs = _catalogs(root, langs)  # every file read (and parsed) before any is written
    for lang, path, keys, catalog in catalogs:
        change = translations.update(catalog, keys)
        catalog.write()
        if change["added"] or change["moved"]:
            report.append(f"{lang} {path}: {change['added']} new, "
                          f"{change['moved']} carried over as stale")
    return report


def prune(root: Path, langs: list[str]) -> list[str]:
    report = []
    for lang, path, keys, catalog in _catalogs(root, langs):
        removed = translations.prune(catalog, keys)
        if removed:
            catalog.write()
            report.append(f"{lang} {path}: {removed} orphaned translations deleted")
    return report


def status(root: Path, langs: list[str]) -> dict[str, list[translations.PageStatus]]:
    result: dict[str, list[translations.PageStatus]] = {}
    for lang, path, keys, catalog in _catalogs(root, langs):
        result.setdefault(lang, []).append(translations.status(catalog, keys, lang, path))
    return result


def status_table(table: dict[str, list[translations.PageStatus]]) -> str:
    lines = []
    for lang, pages in table.items():
        width = max(len(p.source) for p in pages)
        lines.append(f"{lang:<{width}}  translated  missing  stale  orphaned  invalid      %")
        for p in [*pages, _total(pages)]:
            lines.append(f"{p.source:<{width}}  {p.translated:>10}  {p.missing:>7}  "
                         f"{p.stale:>5}  {p.orphaned:>8}  {p.invalid:>7}  {p.percent:5.1f}")
        lines.append("")
    return "\n".join(lines)


def _total(pages: list[translations.PageStatus]) -> translations.PageStatus:
    total = translations.PageStatus("total", 0, 0, 0, 0, 0)
    for p in pages:
        for name in ("translated", "missing", "stale", "orphaned", "invalid"):
            setattr(total, name, getattr(total, name) + getattr(p, name))
    return total


def status_json(table: dict[str, list[translations.PageStatus]]) -> str:
    data = {lang: {"pages": [{**asdict(p), "percent": round(p.percent, 1)} for p in pages],
                   "total": {**asdict(_total(pages)), "percent": round(_total(pages).percent, 1)}}
            for lang, pages in table.items()}
    return json.dumps(data, indent=1, ensure_ascii=False)


def check(root: Path, langs: list[str], fix: bool = False) -> list[str]:
    """Check every file under translations/<lang>/ (listed pages or not); return the problems.

    With `fix`, spelling is normalised first (and written back) — nothing else is changed.
    """
    problems = []
    for lang in langs:
        folder = root / "translations" / lang
        for file in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
            if file.name.endswith(".meta.json") or file.name.startswith("glossary"):
                continue
            try:
                catalog = Catalog.read(file)
            except LiterateError as error:
                problems.append(str(error))
                continue
            if fix:
                fixed = {k: translations.normalise(v, lang) for k, v in catalog.strings.items()}
                if fixed != catalog.strings:
                    for key, record in catalog.stale.items():
                        if catalog.strings.get(key) == record["translation"]:
                            record["translation"] = fixed[key]
                    catalog.strings = fixed
                    catalog.write()
            problems += translations.check_catalog(catalog, lang)
            problems += glossary.check_catalog(catalog, lang, folder / "glossary.md")
        for file in sorted(folder.rglob("*.meta.json")) if folder.is_dir() else []:
            try:
                Catalog.read(file.with_name(file.name[: -len(".meta.json")] + ".json"))
            except LiterateError as error:
                if str(file) in str(error):
                    problems.append(str(error))
    return list(dict.fromkeys(problems))


def todo(root: Path, lang: str, page: str) -> dict:
    """The missing and stale paragraphs of one page: what a translator has left to do."""
    for path, keys in sources(root):
        if path == page:
            catalog = Catalog.read(translations.file_of(root, lang, path))
            missing = [k for k in keys if not catalog.strings.get(k)]
            stale = {k: catalog.stale[k] for k in keys if catalog.is_stale(k)}
            return {"missing": missing, "stale": stale}
    raise LiterateError(page, 0, "not a page listed in mkdocs.yml")


# ---------------------------------------------------------------------------------------------
# gettext


def export_po(root: Path, lang: str, out: Path) -> list[Path]:
    """One PO file per page: msgid = English key, msgstr = translation; stale entries are
    fuzzy with the old English as the previous msgid (Poedit shows the difference); orphans
    are obsolete entries."""
    import polib

    written = []
    for path, keys in sources(root):
        catalog = Catalog.read(translations.file_of(root, lang, path))
        po = polib.POFile(wrapwidth=0)
        po.metadata = {"Project-Id-Version": path, "Language": lang,
                       "MIME-Version": "1.0", "Content-Type": "text/plain; charset=UTF-8",
                       "Content-Transfer-Encoding": "8bit", "X-Literate-Source": path}
        for key in keys:
            entry = polib.POEntry(msgid=key, msgstr=catalog.strings.get(key, ""),
                                  occurrences=[(path, "")])
            if catalog.is_stale(key):
                entry.flags.append("fuzzy")
                entry.previous_msgid = catalog.stale[key]["english"]
            po.append(entry)
        current = set(keys)
        for key, value in sorted(catalog.strings.items()):
            if key not in current and value:
                po.append(polib.POEntry(msgid=key, msgstr=value, obsolete=True))
        target = out / lang / (translations.file_of(Path(), lang, path).relative_to(
            Path("translations") / lang).with_suffix(".po"))
        target.parent.mkdir(parents=True, exist_ok=True)
        translations.write_atomic(target, po.__unicode__())
        written.append(target)
    return written


def import_po(root: Path, files: list[Path]) -> list[str]:
    """Read PO files back. Every value is checked first; any problem → nothing is written."""
    import polib

    pages = dict(sources(root))
    staged, problems, report = [], [], []
    for file in files:
        try:
            po = polib.pofile(str(file))
        except (OSError, ValueError) as error:
            raise LiterateError(str(file), 0, f"cannot read PO file: {error}") from None
        path, lang = po.metadata.get("X-Literate-Source"), po.metadata.get("Language")
        if path not in pages or not lang:
            raise LiterateError(str(file), 0, "needs X-Literate-Source (a listed page) and "
                                "Language in its header")
        catalog = Catalog.read(translations.file_of(root, lang, path))
        changed = 0
        for entry in po:
            if entry.obsolete or not entry.msgstr or entry.msgid not in pages[path]:
                continue
            value = translations.normalise(entry.msgstr, lang)
            english = entry.msgid
            if "fuzzy" in entry.flags and catalog.is_stale(entry.msgid):
                english = catalog.stale[entry.msgid]["english"]
            for problem in translations.check_value(english, value, lang):
                problems.append(f"{file}:{entry.linenum}: key "
                                f"{translations._short(entry.msgid)}: {problem}")
            if catalog.strings.get(entry.msgid) == value and (
                    "fuzzy" in entry.flags or not catalog.is_stale(entry.msgid)):
                continue
            if "fuzzy" in entry.flags and catalog.is_stale(entry.msgid):
                catalog.stale[entry.msgid]["translation"] = value  # still to be reviewed
            else:
                catalog.stale.pop(entry.msgid, None)
            catalog.strings[entry.msgid] = value
            changed += 1
        staged.append(catalog)
        report.append(f"{lang} {path}: {changed} translations imported")
    if problems:
        raise LiterateError("import-po", 0, "nothing imported:\n  " + "\n  ".join(problems))
    for catalog in staged:
        catalog.write()
    return report


def main(root: Path, args) -> int:
    langs = languages(root, getattr(args, "lang", None) or None)
    if args.action == "update":
        print("\n".join(update(root, langs)) or "translations are up to date")
    elif args.action == "prune":
        print("\n".join(prune(root, langs)) or "no orphans")
    elif args.action == "status":
        table = status(root, langs)
        print(status_json(table) if args.json else status_table(table))
    elif args.action == "check":
        problems = check(root, langs, fix=args.fix)
        for problem in problems:
            print(f"literate: error: {problem}", file=sys.stderr)
        print(f"{len(problems)} problems" if problems else "all translations pass",
              file=sys.stderr)
        return 1 if problems else 0
    elif args.action == "todo":
        print(json.dumps(todo(root, langs[0], args.page), indent=1, ensure_ascii=False))
    elif args.action == "export-po":
        for lang in langs:
            for file in export_po(root, lang, Path(args.out)):
                print(file)
    elif args.action == "import-po":
        print("\n".join(import_po(root, [Path(f) for f in args.files])))
    return 0
