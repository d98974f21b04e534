"""`python -m literate serve`: the site for writers, rebuilt as they type.

MkDocs' own live-reload server (`mkdocs.livereload.LiveReloadServer`) watches the sources,
calls `Session.rebuild` when one changes, and reloads the open browser page when it returns.
A rebuild does only what changed:

1. every page is rendered again into a fresh folder (our step is fast: formulas come from the
   KaTeX cache, and nothing but changed files is written);
2. each language's `build/docs/<lang>/` receives only the files whose text changed, so the
   others keep their times;
3. MkDocs builds each language *dirty*: only the pages whose file is newer than their page;
   the search index keeps every other page's entries from the last build.

A change that moves the navigation (a page title, a page added), or one to the theme
(`mkdocs.yml`, `docs/overrides/`), rebuilds everything, as `python -m literate build` does.
`tests/test_serve.py` checks that a rebuild gives the pages a clean build gives.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import site, ui
from .sections import LiterateError

WATCHED = ("aft", "docs", "translations", "notebooks", "results")  # and the top folder
THEME = ("mkdocs.yml", "docs/overrides")  # a change here rebuilds everything


class Session:
    """A built site and what is needed to rebuild a part of it."""

    def __init__(self, root: Path, site_dir: Path | None = None, cache_dir: Path | None = None):
        self.root = Path(root)
        self.site_dir = site_dir or self.root / "site"
        self.cache_dir = cache_dir or self.root / "build"
        self.navs: dict[str, list] = {}
        self.theme: dict[str, int] = {}
        self.full()

    def full(self) -> None:
        """A clean build, as `literate build` makes it; remember each language's navigation."""
        self.theme = self._theme_state()
        self.navs = {}
        site.forget_templates()
        site.build(self.root, self.site_dir, self.cache_dir, navs=self.navs)

    def _theme_state(self) -> dict[str, int]:
        files = []
        for name in THEME:
            path = self.root / name
            files += [path] if path.is_file() else sorted(path.rglob("*"))
        return {str(f): f.stat().st_mtime_ns for f in files if f.is_file()}

    def rebuild(self) -> list[str]:
        """Rebuild what changed; return the pages MkDocs built again (`lang:page`)."""
        try:
            with ui.using(self.root):
                return self._rebuild()
        except BaseException:
            self.navs = {}  # half done: the next rebuild starts from clean
            raise

    def _rebuild(self) -> list[str]:
        started = time.perf_counter()
        if self._theme_state() != self.theme:
            self.full()
            return ["*"]
        config, sources, katex = site.prepare(self.root, self.cache_dir)
        if set(config.languages) != set(self.navs):
            self.full()
            return ["*"]
        status = site._translation_status(self.root, config, sources)
        changed, rejected = [], []
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as work:
            for lang in config.languages:
                fresh = Path(work) / lang
                nav, rejected_here = site.write_language(self.root, config, lang, sources, katex,
                                                         fresh, status)
                rejected += rejected_here
                if nav != self.navs[lang]:
                    self.full()
                    return ["*"]
                docs = self.cache_dir / "docs" / lang
                files = _sync(fresh, docs)
                if not files:
                    continue
                pages = [name for name in files if name.endswith(".md")]
                out = self.site_dir if lang == config.source_language else self.site_dir / lang
                index = out / "search" / "search_index.json"
                before = json.loads(index.read_text(encoding="utf-8"))
                site._mkdocs(self.root, docs, out, nav,
                             site._language_options(self.root, config, lang), dirty=True)
                _merge_index(index, before, [_html_of(p) for p in pages])
                changed += [f"{lang}:{p}" for p in pages]
        for problem in dict.fromkeys(rejected):
            print(f"literate: warning: {problem}", file=sys.stderr)
        print(f"literate: rebuilt {len(changed)} pages in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        return changed


def _html_of(page: str) -> str:
    return page[: -len(".md")] + ".html"


def _sync(fresh: Path, docs: Path) -> list[str]:
    """Make `docs` hold what `fresh` holds, writing only files that differ; return the files
    written (pages and assets) and removed."""
    written = []
    for file in sorted(fresh.rglob("*")):
        if file.is_dir():
            continue
        relative = file.relative_to(fresh)
        target = docs / relative
        if target.is_file() and filecmp.cmp(file, target, shallow=False):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
        written.append(relative.as_posix())
    for file in sorted(docs.rglob("*"), reverse=True):
        if file.is_file() and not (fresh / file.relative_to(docs)).exists():
            file.unlink()
            written.append(file.relative_to(docs).as_posix() + " (removed)")
    return written


def _merge_index(index: Path, before: dict, rebuilt: list[str]) -> None:
    """After a dirty build the index holds only the rebuilt pages: put back every other page's
    entries from `before`, in the order they had (the rebuilt pages' new entries take the place
    of their old ones)."""
    after = json.loads(index.read_text(encoding="utf-8"))

    def page_of(entry: dict) -> str:
        return entry["location"].split("#", 1)[0]

    new = {}
    for entry in after["docs"]:
        new.setdefault(page_of(entry), []).append(entry)
    docs, placed = [], set()
    for entry in before["docs"]:
        name = page_of(entry)
        if name in rebuilt:
            if name not in placed:
                docs += new.get(name, [])
                placed.add(name)
        else:
            docs.append(entry)
    docs += [e for name, entries in new.items() if name not in placed for e in entries]
    after["docs"] = docs
    index.write_text(json.dumps(after, separators=(",", ":"), default=str), encoding="utf-8")


def make_server(root: Path, port: int = 8000, host: str = "127.0.0.1"):
    """A built site and MkDocs' live-reload server over it, watching the sources."""
    from mkdocs.livereload import LiveReloadServer

    session = Session(root)

    def rebuild() -> None:
        try:
            session.rebuild()
        except LiterateError as error:
            print(f"literate: error: {error} (still serving the last good build)",
                  file=sys.stderr)

    server = LiveReloadServer(builder=rebuild, host=host, port=port,
                              root=str(session.site_dir))
    server.watch(str(root), recursive=False)  # mkdocs.yml, and pages kept at the top
    for name in WATCHED:
        if (root / name).is_dir():
            server.watch(str(root / name))
    return server, session


def serve(root: Path, port: int = 8000, host: str = "127.0.0.1") -> int:
    """Build, serve on `host:port`, rebuild what changed and reload the browser."""
    server, _ = make_server(root, port, host)
    print(f"literate: serving http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0
