"""The command line: `python -m literate sections FILE | keys FILE | build | serve | translate …`.

`translate` has its own commands (see `workflow`): update, status, check, prune, todo,
export-po, import-po.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import prose, sections, site, translations, workflow
from .sections import LiterateError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m literate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("sections", help="print a file's sections as JSON")
    show.add_argument("file")
    keys = commands.add_parser("keys", help="print a file's translation keys as JSON")
    keys.add_argument("file")
    build = commands.add_parser("build", help="build site/ from clean, strictly")
    build.add_argument("--allow-missing", action="store_true",
                       help="exit 0 even if a page listed in mkdocs.yml is missing")
    serve = commands.add_parser("serve", help="build, serve on 127.0.0.1, rebuild what "
                                "changed and reload the browser")
    serve.add_argument("--port", type=int, default=8000)
    _translate_parser(commands)
    args = parser.parse_args(argv)
    try:
        if args.command == "sections":
            print(json.dumps(_sections(args.file), indent=1, ensure_ascii=False))
        elif args.command == "keys":
            text = _read(args.file)
            print(json.dumps(translations.keys_of(args.file, text), indent=1, ensure_ascii=False))
        elif args.command == "translate":
            return workflow.main(Path.cwd(), args)
        elif args.command == "build":
            missing = site.build(Path.cwd())
            return 1 if missing and not args.allow_missing else 0
        else:
            return _serve(Path.cwd(), args.port)
    except LiterateError as error:
        print(f"literate: error: {error}", file=sys.stderr)
        return 1
    return 0


def _translate_parser(commands) -> None:
    translate = commands.add_parser("translate", help="the translation workflow",
                                    description=workflow.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = translate.add_subparsers(dest="action", required=True)
    helps = {
        "update": "add new paragraphs as missing; keep edited ones' translations as stale",
        "status": "translated / missing / stale / orphaned per language and page",
        "check": "validate every translation file (non-zero exit on any problem)",
        "prune": "delete translations of paragraphs that no longer exist",
        "todo": "print a page's missing and stale paragraphs as JSON",
        "export-po": "write gettext PO files (one per page)",
    }
    for name, text in helps.items():
        action = actions.add_parser(name, help=text)
        action.add_argument("lang", nargs="*" if name != "todo" else 1,
                            help="language codes (default: every language in mkdocs.yml)")
    actions.choices["status"].add_argument("--json", action="store_true")
    actions.choices["check"].add_argument("--fix", action="store_true",
                                          help="normalise spelling (Sinhala ZWJ) in place")
    actions.choices["todo"].add_argument("page", help="a source path, e.g. aft/local.py")
    actions.choices["export-po"].add_argument("--out", default="build/po",
                                              help="folder for <lang>/<page>.po")
    import_po = actions.add_parser("import-po", help="read PO files back into the JSON files")
    import_po.add_argument("files", nargs="+")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LiterateError(path, 0, f"cannot read: {error}") from None


def _sections(path: str) -> list[dict]:
    text = _read(path)
    result = []
    for section in sections.split(path, text):
        rendered = prose.render(path, section.prose, section.prose_line)
        result.append({"kind": section.kind, "first_line": section.first_line,
                       "name": section.name, "prose": section.prose, "key": rendered.key,
                       "code": section.code})
    return result


def _serve(root: Path, port: int) -> int:
    """Serve site/, rebuild what changed and reload the browser (see `literate.serve`)."""
    from . import serve

    return serve.serve(root, port)
