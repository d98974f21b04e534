"""Step 6: the whole site — pages into a docs dir, MkDocs Material around them, checks.

Our own step writes plain pages (`build/docs/en/`); MkDocs only assembles them into a themed
site with navigation and search. No MkDocs plugin renders anything, so replacing MkDocs later
replaces only `_mkdocs`.

A build is all or nothing: everything is written into a temporary folder under `build/` and
moved into place at the end, so a bad formula never leaves a half-written `site/`. It is also
reproducible: two clean builds give byte-identical files (MkDocs takes its dates from
`SOURCE_DATE_EPOCH`, which we set from the last commit).
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from . import page, prose, sections, translations
from .math import Katex
from .sections import LiterateError


@dataclass
class Config:
    """The parts of `mkdocs.yml` the renderer reads: the page order and the repository URLs."""

    root: Path
    pages: list[str]
    site: page.Site

    @classmethod
    def load(cls, root: Path) -> Config:
        file = root / "mkdocs.yml"
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
            pages = list(data["extra"]["literate"]["pages"])
        except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
            raise LiterateError(str(file), 0, f"needs extra.literate.pages: {error}") from None
        repo = data.get("repo_url", "").rstrip("/") + "/"
        edit = data.get("edit_uri", "edit/main/")
        blob = edit.replace("edit/", "blob/", 1)
        site = page.Site({p: page.page_path(p) for p in pages}, repo + blob, repo + edit)
        return cls(root, pages, site)


def build(root: Path, lang: str = "en", site_dir: Path | None = None,
          cache_dir: Path | None = None) -> int:
    """Build `site/` from clean; return the number of listed sources that were missing.

    A missing source is skipped with an error message (sources appear as the book is written);
    any other problem raises `LiterateError` and leaves the old site untouched. Tests pass
    their own `site_dir` and `cache_dir` (default `site/` and `build/`).
    """
    site_dir = site_dir or root / "site"
    cache_dir = cache_dir or root / "build"
    started = time.perf_counter()
    config = Config.load(root)
    present = [p for p in config.pages if (root / p).is_file()]
    for missing in sorted(set(config.pages) - set(present)):
        print(f"literate: error: {missing}: listed in mkdocs.yml but not found; page skipped",
              file=sys.stderr)
    config.site.pages = {p: config.site.pages[p] for p in present}

    sources = [_read(root, path) for path in present]
    katex = Katex(root / "node_modules", cache_dir / "katex-cache.json")
    katex.render_all([(s.path, f) for s in sources for p in s.proses for f in p.fragments
                      if f.kind == "math"])

    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tmp-", dir=cache_dir))
    try:
        docs = work / "docs" / lang
        _copy_hand_written(root / "docs", docs, skip=set(present))
        _copy_katex_assets(root / "node_modules" / "katex" / "dist", docs / "assets" / "katex")
        nav = []
        for source in sources:
            strings = translations.load(root, lang, source.path) if lang != "en" else {}
            text = page.render(source, config.site, katex.html, strings)
            target = docs / config.site.pages[source.path]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            nav.append({page.title(source): config.site.pages[source.path]})
        _mkdocs(root, docs, work / "site", nav)
        check_links(work / "site")
        _replace(work / "site", site_dir)
        _replace(docs, cache_dir / "docs" / lang)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started
    print(f"literate: built {site_dir} ({len(sources)} pages) in {seconds:.1f} s", file=sys.stderr)
    return len(config.pages) - len(present)


def _read(root: Path, path: str) -> page.Source:
    """Read and split one source and render its prose (math stays as placeholders for now)."""
    try:
        text = (root / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LiterateError(path, 0, f"cannot read: {error}") from None
    split = sections.split(path, text)
    proses = [prose.render(path, s.prose, s.prose_line) for s in split]
    return page.Source(path, text, split, proses)


def _copy_hand_written(source: Path, target: Path, skip: set[str]) -> None:
    """Copy docs/ (CSS, images, unrendered pages), except theme overrides and rendered pages."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        relative = Path(folder).relative_to(source.parent).as_posix()
        paths = {n: f"{relative}/{n}" for n in names}
        return [n for n, path in paths.items() if path in skip or path == "docs/overrides"]

    shutil.copytree(source, target, ignore=ignore)


def _copy_katex_assets(dist: Path, target: Path) -> None:
    """KaTeX's CSS and fonts, served by the site itself (no CDN: the site works offline)."""
    target.mkdir(parents=True)
    shutil.copy2(dist / "katex.min.css", target)
    shutil.copytree(dist / "fonts", target / "fonts")


def _mkdocs(root: Path, docs: Path, site: Path, nav: list) -> None:
    """Let MkDocs Material assemble the pages, strictly: any warning fails the build."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    os.environ.setdefault("SOURCE_DATE_EPOCH", _last_commit_time(root))
    logging.getLogger("mkdocs").setLevel(logging.WARNING)
    try:
        config = load_config(str(root / "mkdocs.yml"), docs_dir=str(docs), site_dir=str(site),
                             nav=nav, strict=True)
        mkdocs_build(config)
    except MkDocsException as error:
        raise LiterateError("mkdocs.yml", 0, f"MkDocs failed: {error}") from None


def _last_commit_time(root: Path) -> str:
    """Seconds since 1970 of the last commit: a date that is the same on every build of it."""
    try:
        return subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip() or "0"
    except (OSError, subprocess.CalledProcessError):
        return "0"


def _replace(new: Path, old: Path) -> None:
    """Move `new` to `old`'s place, as close to atomically as two renames get."""
    old.parent.mkdir(parents=True, exist_ok=True)
    trash = new.parent / (new.name + ".old")
    if old.exists():
        old.rename(trash)
    new.rename(old)
    shutil.rmtree(trash, ignore_errors=True)


class _Links(HTMLParser):
    """Collects the ids a page defines and the local URLs it points to."""

    def __init__(self):
        super().__init__()
        self.ids, self.urls = set(), []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            elif name in ("href", "src") and value and not urlsplit(value).scheme:
                self.urls.append((self.getpos()[0], value))


def check_links(site: Path) -> None:
    """Fail on any internal link to a missing file or a missing anchor.

    MkDocs checks links written in Markdown; ours are in HTML it passes through, so we check
    the finished site instead, which also covers the theme's own links.
    """
    pages = {}
    for file in sorted(site.rglob("*.html")):
        parser = _Links()
        parser.feed(file.read_text(encoding="utf-8"))
        pages[file.relative_to(site).as_posix()] = parser
    broken = []
    for name, parser in pages.items():
        if name == "404.html":  # its links are absolute to the site's root, by design
            continue
        for line, url in parser.urls:
            parts = urlsplit(url)
            target = posixpath.join(posixpath.dirname(name), unquote(parts.path))
            target = posixpath.normpath(target)
            if parts.path and not (site / target).exists():
                broken.append(f"site/{name}:{line}: {url} (no such file)")
            elif (target := target if parts.path else name).endswith(".html") and parts.fragment:
                if target in pages and unquote(parts.fragment) not in pages[target].ids:
                    broken.append(f"site/{name}:{line}: {url} (no such anchor)")
    if broken:
        raise LiterateError(broken[0].split(":")[0], 0, "broken links:\n  " + "\n  ".join(broken))
