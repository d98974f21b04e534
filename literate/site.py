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

import dataclasses
import functools
import html
import logging
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jinja2
import yaml

from . import notebook, page, prose, search, sections, translations, ui
from .math import Katex
from .sections import LiterateError


@dataclass
class Config:
    """The parts of `mkdocs.yml` the renderer reads: page order, languages, repository URLs."""

    root: Path
    pages: list[str]
    site: page.Site
    languages: dict[str, str] = field(default_factory=lambda: {"en": "English"})
    site_url: str = ""

    @property
    def source_language(self) -> str:
        """The language the sources are written in: the first listed; built at the root."""
        return next(iter(self.languages))

    @classmethod
    def load(cls, root: Path) -> Config:
        file = root / "mkdocs.yml"
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
            pages = list(data["extra"]["literate"]["pages"])
            languages = dict(data["extra"]["literate"].get("languages") or {"en": "English"})
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
            raise LiterateError(str(file), 0, f"needs extra.literate.pages: {error}") from None
        repo = data.get("repo_url", "").rstrip("/") + "/"
        edit = data.get("edit_uri", "edit/main/")
        blob = edit.replace("edit/", "blob/", 1)
        site = page.Site({p: page.page_path(p) for p in pages}, repo + blob, repo + edit)
        return cls(root, pages, site, languages, (data.get("site_url") or "").rstrip("/") + "/")


STATUS_PAGE = "translation-status.md"


def build(root: Path, site_dir: Path | None = None, cache_dir: Path | None = None,
          languages: list[str] | None = None, report: list[str] | None = None,
          navs: dict | None = None) -> int:
    """Build `site/` from clean; return the number of listed sources that were missing.

    One MkDocs build per language: the source language at the root of the site, each other
    language listed under `extra.literate.languages` in `site/<lang>/`, every page with a
    switcher to the same page in the other languages. A missing source is skipped with an
    error message (sources appear as the book is written); a translation that fails `check`
    is reported and its paragraph shown in English; any other problem raises `LiterateError`
    and leaves the old site untouched. Tests pass their own `site_dir` and `cache_dir`
    (default `site/` and `build/`), may build fewer `languages`, and may pass a `report`
    list to collect the rejected translations; `serve` passes `navs` to learn each
    language's navigation.
    """
    with ui.using(root):
        return _build(root, site_dir or root / "site", cache_dir or root / "build", languages,
                      report, navs)


def _build(root: Path, site_dir: Path, cache_dir: Path, languages: list[str] | None,
           report: list[str] | None, navs: dict | None) -> int:
    started = time.perf_counter()
    config, sources, katex = prepare(root, cache_dir, languages)
    present = [source.path for source in sources]

    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tmp-", dir=cache_dir))
    rejected: list[str] = []
    try:
        status = _translation_status(root, config, sources)
        for lang in config.languages:
            rejected += _build_language(root, config, lang, sources, katex, work, status,
                                        navs)
        check_links(work / "site")
        _replace(work / "site", site_dir)
        for lang in config.languages:
            _replace(work / "docs" / lang, cache_dir / "docs" / lang)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if report is not None:
        report += rejected
    for problem in rejected:
        print(f"literate: warning: {problem}", file=sys.stderr)
    seconds = time.perf_counter() - started
    print(f"literate: built {site_dir} ({len(sources)} pages, {len(config.languages)} "
          f"languages) in {seconds:.1f} s", file=sys.stderr)
    return len(config.pages) - len(present)


def prepare(root: Path, cache_dir: Path, languages: list[str] | None = None
            ) -> tuple[Config, list[page.Source], Katex]:
    """The configuration, the sources that exist (read, split, prose rendered) and their
    formulas rendered: what every language's pages are made from."""
    config = Config.load(root)
    if languages is not None:
        config.languages = {k: v for k, v in config.languages.items()
                            if k in languages or k == config.source_language}
    present = [p for p in config.pages if (root / p).is_file()]
    for missing in sorted(set(config.pages) - set(present)):
        print(f"literate: error: {missing}: listed in mkdocs.yml but not found; page skipped",
              file=sys.stderr)
    config.site.pages = {p: config.site.pages[p] for p in present}
    if len(config.languages) > 1:  # the generated status page, so that prose can link to it
        config.site.pages[f"docs/{STATUS_PAGE}"] = STATUS_PAGE

    sources = [_read(root, path) for path in present]
    katex = Katex(root / "node_modules", cache_dir / "katex-cache.json")
    katex.render_all([(s.path, f) for s in sources for p in s.proses for f in p.fragments
                      if f.kind == "math"]
                     + [(s.path, f) for s in sources if notebook.is_notebook(s.path)
                        for f in notebook.formulas(s)])  # LaTeX in notebooks' outputs
    return config, sources, katex


def _build_language(root: Path, config: Config, lang: str, sources: list[page.Source],
                    katex: Katex, work: Path, status: dict, navs: dict | None = None
                    ) -> list[str]:
    """Write one language's pages and let MkDocs build them; return rejected translations."""
    docs = work / "docs" / lang
    nav, rejected = write_language(root, config, lang, sources, katex, docs, status)
    if navs is not None:
        navs[lang] = nav
    out = work / "site" if lang == config.source_language else work / "site" / lang
    _mkdocs(root, docs, out, nav, _language_options(root, config, lang))
    return rejected


def write_language(root: Path, config: Config, lang: str, sources: list[page.Source],
                   katex: Katex, docs: Path, status: dict) -> tuple[list, list[str]]:
    """One language's plain pages into `docs`; return MkDocs' nav and rejected translations."""
    source_language = lang == config.source_language
    _copy_hand_written(root / "docs", docs, skip=set(config.site.pages))
    _copy_katex_assets(root / "node_modules" / "katex" / "dist", docs / "assets" / "katex")
    _copy_fonts(root / "node_modules" / "@fontsource", docs / "assets",
                copy=source_language, prefix="" if source_language else "../../assets/")
    nav, rejected = [], []
    math_html = search.searchable(katex.html)
    for source in sources:
        lookup = None if source_language else translations.lookup(root, lang, source.path)
        edit = None
        if lookup is not None and lookup.catalog is not None:
            edit = lookup.catalog.file.relative_to(root).as_posix()
        if notebook.is_notebook(source.path):
            text = notebook.render(source, config.site, math_html, lookup,
                                   None if source_language else lang, edit, config.site_url)
        else:
            text = page.render(source, config.site, math_html, lookup,
                               None if source_language else lang, edit)
        target = docs / config.site.pages[source.path]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        nav.append({page.translated_title(source, lookup or {}): config.site.pages[source.path]})
        rejected += lookup.rejected if lookup is not None else []
    nav = notebook.add_index(root, config, lang, sources, math_html, docs, nav)
    if len(config.languages) > 1:
        (docs / STATUS_PAGE).write_text(_status_page(config, lang, status), encoding="utf-8")
        nav.append({ui.t(lang, "Translation status"): STATUS_PAGE})
    return nav, list(dict.fromkeys(rejected))


def _language_options(root: Path, config: Config, lang: str) -> dict:
    """What differs between the languages' MkDocs runs: theme language, URLs, switcher."""
    data = yaml.safe_load((root / "mkdocs.yml").read_text(encoding="utf-8"))
    source = config.source_language

    def prefix(code: str) -> str:
        return "" if code == source else f"{code}/"

    here = "" if lang == source else "../"
    alternate = [{"name": name, "lang": code, "link": here + prefix(code),
                  "url": config.site_url + prefix(code)}
                 for code, name in config.languages.items()]
    # The theme's words in this language: Material's own where it has the language, ours
    # (translations/<lang>/ui.json, through partials/language.html) first.
    theme = {**data.get("theme", {}),
             "language": lang if lang in ui.material_languages() else source,
             "palette": [_translated_toggle(entry, lang)
                         for entry in data.get("theme", {}).get("palette", [])]}
    extra = {**data.get("extra", {}), "alternate": alternate if len(alternate) > 1 else [],
             "words": {**ui.theme_words(lang), "language": lang}}
    options = {"theme": theme, "extra": extra}
    for name in ("site_name", "site_description"):
        if data.get(name):
            options[name] = ui.t(lang, data[name])
    if lang != source:
        options["site_url"] = config.site_url + prefix(lang)
    return options


def _translated_toggle(entry: dict, lang: str) -> dict:
    toggle = entry.get("toggle")
    if not toggle or not toggle.get("name"):
        return entry
    return {**entry, "toggle": {**toggle, "name": ui.t(lang, toggle["name"])}}


def _translation_status(root: Path, config: Config, sources: list[page.Source]) -> dict:
    """language → [PageStatus] for the generated status page."""
    result = {}
    for lang in list(config.languages)[1:]:
        rows = []
        for source in sources:
            keys = translations.ordered_keys(source.path, source.text)
            try:
                catalog = translations.Catalog.read(translations.file_of(root, lang, source.path))
            except LiterateError:
                catalog = translations.Catalog(Path())
            rows.append(translations.status(catalog, keys, lang, source.path))
        result[lang] = rows
    return result


def _status_page(config: Config, lang: str, status: dict) -> str:
    """The generated "Translation status" page, in the page's language."""

    def t(text: str) -> str:
        return html.escape(ui.t(lang, text))

    parts = [f"---\ntitle: {page._yaml_string(ui.t(lang, 'Translation status'))}\n---\n\n",
             f"# {t('Translation status')}\n\n{t('status intro')}\n\n"]
    for code, rows in status.items():
        heads = ["Page", "Translated", "Missing", "Stale", "Orphaned", "Invalid", "%"]
        parts.append(f'<h2 id="{code}">{html.escape(config.languages[code])} ({code})</h2>\n')
        parts.append('<table class="lit-status">\n<thead><tr>'
                     + "".join(f"<th>{t(h)}</th>" for h in heads) + "</tr></thead>\n<tbody>\n")
        total = translations.PageStatus(t("Total"), 0, 0, 0, 0, 0)
        for row in rows:
            link = config.site.pages[row.source][: -len(".md")] + ".html"
            if code != config.source_language:
                link = (f"{code}/" if lang == config.source_language else "") + link
            if lang != config.source_language and code != lang:
                link = "../" + link
            name = f'<a href="{html.escape(link)}"><code>{html.escape(row.source)}</code></a>'
            parts.append(_status_row(name, row))
            for field_name in ("translated", "missing", "stale", "orphaned", "invalid"):
                setattr(total, field_name, getattr(total, field_name) + getattr(row, field_name))
        parts.append(_status_row(f"<strong>{t('Total')}</strong>", total))
        parts.append("</tbody>\n</table>\n\n")
    parts.append(f"{t('help')}\n")
    return "".join(parts)


def _status_row(name: str, row) -> str:
    cells = [row.translated, row.missing, row.stale, row.orphaned, row.invalid,
             f"{row.percent:.0f}"]
    return f"<tr><td>{name}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>\n"


def _read(root: Path, path: str) -> page.Source:
    """Read and split one source and render its prose (math stays as placeholders for now)."""
    try:
        text = (root / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LiterateError(path, 0, f"cannot read: {error}") from None
    split, rendered_proses = _split_and_render(path, text)
    proses = []
    for rendered in rendered_proses:  # measured files are read again: they may have changed
        proses.append(dataclasses.replace(
            rendered, fragments=prose.resolve_data(root, path, rendered.fragments)))
    return page.Source(path, text, list(split), proses)


@functools.lru_cache(maxsize=64)  # `serve` reads every source again after each edit
def _split_and_render(path: str, text: str) -> tuple[tuple, tuple]:
    split = sections.split(path, text)
    return tuple(split), tuple(prose.render(path, s.prose, s.prose_line) for s in split)


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


# Noto fonts for the scripts the theme's fonts lack, from Fontsource's npm packages: only
# the subsets of those scripts (not their Latin), in the weights the theme uses.
FONTS = {"noto-sans-sinhala": ("sinhala",), "noto-sans-sc": ("[",), "noto-sans-jp": ("[",)}
FONT_WEIGHTS = ("400", "700")


def _copy_fonts(fontsource: Path, assets: Path, copy: bool, prefix: str) -> None:
    """Write `assets/fonts.css` (the `@font-face` rules, each font split by `unicode-range`,
    so a page downloads only the pieces its text needs) and, with `copy`, the WOFF2 files
    into `assets/fonts/`. The files are copied once, into the source language's site;
    the other languages' CSS points at them through `prefix` (`../../assets/`)."""
    faces = []
    for package, subsets in FONTS.items():
        for weight in FONT_WEIGHTS:
            css = (fontsource / package / f"{weight}.css").read_text(encoding="utf-8")
            for name, body in re.findall(r"/\* (\S+) \*/\s*@font-face \{(.*?)\}", css, re.S):
                subset = name[len(package) + 1 :]
                if not subset.startswith(subsets):
                    continue
                file = re.search(r"url\(\./files/([^)]+\.woff2)\)", body).group(1)
                if copy:
                    (assets / "fonts").mkdir(parents=True, exist_ok=True)
                    shutil.copy2(fontsource / package / "files" / file, assets / "fonts")
                body = re.sub(r"src:[^;]*;", f"src: url({prefix}fonts/{file}) format('woff2');",
                              body)
                faces.append(f"@font-face {{{body}}}\n")
    (assets / "fonts.css").write_text("".join(faces), encoding="utf-8")


def _mkdocs(root: Path, docs: Path, site: Path, nav: list, options: dict | None = None,
            dirty: bool = False) -> None:
    """Let MkDocs Material assemble the pages, strictly: any warning fails the build.

    `dirty` (for `serve`): only the pages whose file in `docs` is newer than its page in
    `site` are built again; everything else in `site` stays."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    os.environ.setdefault("SOURCE_DATE_EPOCH", _last_commit_time(root))
    logging.getLogger("mkdocs").setLevel(logging.WARNING)
    try:
        config = load_config(str(root / "mkdocs.yml"), docs_dir=str(docs), site_dir=str(site),
                             nav=nav, strict=True, **(options or {}))
        config.plugins["literate-toc"] = _toc_plugin()
        _compile_templates_once(config.theme)
        if dirty:
            with _quiet_dirty_warning():
                mkdocs_build(config, dirty=True)
        else:
            mkdocs_build(config)
    except MkDocsException as error:
        raise LiterateError("mkdocs.yml", 0, f"MkDocs failed: {error}") from None


class _TemplateCache(jinja2.BytecodeCache):
    """Compiled theme templates, kept for the process: each language's MkDocs run (and each
    rebuild of `serve`) would otherwise compile Material's ~200 templates again. A bucket's
    key includes the template's source, so an edited template is compiled anew."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _TemplateCache()


_LISTED: dict[tuple, list[str]] = {}  # the theme's folders → the templates they hold


def _compile_templates_once(theme) -> None:
    """Theme templates compiled once per process, and the theme's folders listed once (MkDocs
    lists them, icons and all, on every run): `serve` rebuilds in a second or two."""
    make_env = theme.get_env

    def get_env():
        env = make_env()
        env.bytecode_cache = _TEMPLATES
        loader, key = env.loader, tuple(getattr(env.loader, "searchpath", ()))
        if key:
            list_all = loader.list_templates

            def list_templates():
                if key not in _LISTED:
                    _LISTED[key] = list_all()
                return list(_LISTED[key])

            loader.list_templates = list_templates
        return env

    theme.get_env = get_env


def forget_templates() -> None:
    """A theme file was added or removed: list the folders again."""
    _LISTED.clear()


class _quiet_dirty_warning(logging.Filter):  # noqa: N801 - used as a context manager
    """MkDocs warns on every dirty build that the navigation may be stale; `serve` rebuilds
    everything when the navigation changes, so that warning must not fail a strict build."""

    def filter(self, record):
        return "'dirty' build" not in record.getMessage()

    def __enter__(self):
        logging.getLogger("mkdocs.commands.build").addFilter(self)

    def __exit__(self, *exc):
        logging.getLogger("mkdocs.commands.build").removeFilter(self)


def _toc_plugin():
    """A MkDocs plugin that gives Material the table of contents of our pages: Markdown's
    toc extension never looks inside the HTML block a page is, so we read the headings
    (their ids come from `page._heading_ids`) from the page's HTML ourselves."""
    from mkdocs.plugins import BasePlugin
    from mkdocs.structure.toc import get_toc

    class Toc(BasePlugin):
        def on_page_content(self, html_text, page, **kwargs):
            if not page.toc.items:
                page.toc = get_toc(toc_tokens(html_text))
            return html_text

    return Toc()


def toc_tokens(html_text: str) -> list[dict]:
    """h1 to h3 headings with ids, as MkDocs' toc tokens, each nested under the nearest
    heading above it of a higher level. The page's title (its h1) comes first: Material's
    skip link leads to it, and its menu lists what stands under it."""
    tokens: list[dict] = []
    parents: list[dict] = []
    for level, anchor, inner in re.findall(r'<h([1-3]) id="([^"]+)">(.*?)</h\1>', html_text,
                                           re.S):
        inner = re.sub(r'<span class="katex-mathml">.*?</math></span>', "", inner, flags=re.S)
        name = html.escape(html.unescape(re.sub(r"<[^>]+>", "", inner)).strip())
        token = {"level": int(level), "id": anchor, "name": name, "children": []}
        while parents and parents[-1]["level"] >= token["level"]:
            parents.pop()
        (parents[-1]["children"] if parents else tokens).append(token)
        parents.append(token)
    return tokens


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
        if name.endswith("404.html"):  # its links are absolute to the site's root, by design
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
