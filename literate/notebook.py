"""Notebooks: jupytext-paired sources, executed outputs, and their pages on the site.

A notebook lives twice in `notebooks/`: `<name>.py` in jupytext's percent format is the source
that people edit and review, and `<name>.ipynb` is its pair, committed with the outputs of one
run, so that Colab can open it from GitHub and the site can show it without running anything.
`python -m literate.notebook` keeps the two honest:

    check      fail when a pair is out of sync (their cells differ, outputs and metadata aside)
    execute    run the .py sources at smoke size on this machine's CPU and write the .ipynb
               pairs with their outputs (`--full`: at the size the notebook picks itself)

On the site, a notebook is a page like any other source listed in `mkdocs.yml`: its Markdown
cells go through the same prose pipeline (placeholders, translation keys, KaTeX), so they are
translated in `translations/<lang>/notebooks/<name>.json` with the same tools; its code cells
are highlighted and followed by their outputs (text, and images as `data:` URLs). The page
reads top to bottom, one column, as a notebook does. "Open in Colab" links are built from
`repo_url` and the branch of `edit_uri`, never written by hand.

A parameters cell is a code cell tagged `parameters`, as papermill has it. To run at another
size we insert a cell after it that assigns new values to the names it already assigns
(papermill's "injected-parameters"), and take that cell out again before writing the pair.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import posixpath
import re
import sys
import tempfile
import time
from pathlib import Path

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from . import page, prose, translations, ui
from .sections import LiterateError, Section

FOLDER = "notebooks"
INDEX = f"{FOLDER}/index.md"
SMOKE = {"SIZE": "smoke"}  # what the tests and `execute` run with
TIME_LIMIT_S = 90  # per notebook, at smoke size, in the tests
COLAB = "https://colab.research.google.com/github/"

t = ui.t


def is_notebook(path: str) -> bool:
    return path.endswith(".ipynb")


def read(path: str, text: str) -> dict:
    """An `.ipynb` file's text → its notebook as plain JSON (nbformat 4).

    Plain `json`, not `nbformat`, so that building the site needs no notebook packages.
    """
    try:
        notebook = json.loads(text)
    except ValueError as error:
        raise LiterateError(path, 0, f"not a notebook: {error}") from None
    if not isinstance(notebook, dict) or notebook.get("nbformat") != 4:
        raise LiterateError(path, 0, "not a notebook in nbformat 4")
    return notebook


# ---------------------------------------------------------------------------------------------
# Sections: what the translation files and the page need


def split(path: str, text: str) -> list[Section]:
    """One section per cell: Markdown cells are prose, code cells are code.

    A section's "line" is its cell's number (from 1), which is what an error message about a
    formula in a notebook can usefully name.
    """
    sections = []
    for number, cell in enumerate(read(path, text)["cells"], start=1):
        source = _source(cell)
        if cell["cell_type"] == "markdown":
            sections.append(Section("markdown", source.replace("\r\n", "\n"), number))
        elif cell["cell_type"] == "code":
            lines = [(number, line) for line in source.splitlines(keepends=True)]
            sections.append(Section("code", "", number, lines))
    return sections


def _source(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


# ---------------------------------------------------------------------------------------------
# The page


def colab_url(site: page.Site, path: str) -> str:
    """`https://colab.research.google.com/github/<owner>/<repo>/blob/<branch>/<path>`, from
    the repository's blob URL (`repo_url` and the branch of `edit_uri` in `mkdocs.yml`)."""
    match = re.match(r"https://github\.com/(.+)$", site.blob_url)
    if not match:
        raise LiterateError("mkdocs.yml", 0, f"repo_url must be a GitHub repository to link "
                            f"notebooks to Colab, got {site.blob_url!r}")
    return COLAB + match.group(1) + path


def source_of(path: str) -> str:
    """The file people edit: `notebooks/x.ipynb` → `notebooks/x.py`."""
    return path[: -len(".ipynb")] + ".py"


def render(source: page.Source, site: page.Site, math_html, strings=None, lang: str | None = None,
           edit_path: str | None = None, site_url: str = "") -> str:
    """A notebook's page: front matter, the Colab link, then its cells, one column.

    The arguments are `page.render`'s; `site_url` (the site's own address) turns absolute links
    to the site, which work in Colab and on GitHub, into relative ones that work offline.
    """
    lookup = strings if callable(strings) else page._dict_lookup(strings or {}, lang or "")
    notebook = read(source.path, source.text)
    used: set[str] = set()
    parts = [_links(site, source.path, lang or "en")]
    executed = notebook.get("metadata", {}).get("literate", {}).get("executed") or {}
    if executed.get("parameters"):
        parts.append(f'<p class="lit-nb-note">{html.escape(t(lang or "en", "outputs note"))}</p>\n')
    cells = [c for c in notebook["cells"] if c["cell_type"] in ("markdown", "code")]
    for cell, section, rendered in zip(cells, source.sections, source.proses, strict=True):
        anchor = page._unique(page._anchor(section), used)
        if cell["cell_type"] == "markdown":
            body, classes, marker = _prose(rendered, lookup, lang, used, math_html)
            body = page._rewrite_links(_relative(body, source.path, site, site_url),
                                       source.path, site)
            parts.append(f'<section class="lit-nb-cell lit-nb-markdown{classes}" id="{anchor}">\n'
                         f"{marker}{body}</section>\n")
        else:
            code = highlight(_source(cell), PythonLexer(), HtmlFormatter(wrapcode=True))
            outputs = "".join(_output(o) for o in cell.get("outputs", []))
            if outputs:
                outputs = f'<div class="lit-nb-outputs">\n{outputs}</div>\n'
            parts.append(f'<section class="lit-nb-cell lit-nb-code" id="{anchor}">\n'
                         f'<div class="lit-nb-input">{code}</div>\n{outputs}</section>\n')
    edit = edit_path or source_of(source.path)
    return (
        "---\n"
        f"title: {page._yaml_string(page.translated_title(source, lookup))}\n"
        "hide: [toc]\n"
        f"edit_url: {site.edit_url}{edit}\n"
        "---\n\n"
        f'<div class="literate literate-nb">\n{"".join(parts)}</div>\n'
    )


def _prose(rendered: prose.Prose, lookup, lang, used, math_html) -> tuple[str, str, str]:
    """A Markdown cell's HTML in the page's language, its extra classes and its marker."""
    if not rendered.key:
        return "", "", ""
    body, state = lookup(rendered.key)
    body = page._heading_ids(body, rendered.key, used)
    body = page._restore(body, rendered.fragments, math_html)
    if lang and state != "translated":
        marker = f'<p class="lit-marker" lang="{lang}">{html.escape(ui.t(lang, state))}</p>\n'
        return body, f' lit-untranslated lit-{state}" lang="en', marker
    return body, "", ""


def _links(site: page.Site, path: str, lang: str) -> str:
    colab = html.escape(colab_url(site, path))
    github = html.escape(site.blob_url + path)
    return (f'<p class="lit-nb-links"><a class="md-button md-button--primary lit-colab" '
            f'href="{colab}">{html.escape(t(lang, "Open in Colab"))}</a> '
            f'<a class="md-button" href="{github}">'
            f'{html.escape(t(lang, "View on GitHub"))}</a></p>\n')


def _relative(body: str, path: str, site: page.Site, site_url: str) -> str:
    """Links to this site's own pages by their full address → relative links."""
    if not site_url or site_url == "/":
        return body
    pages = {p[: -len(".md")] + ".html" for p in site.pages.values()}
    here = posixpath.dirname(site.pages[path])

    def rewrite(match: re.Match) -> str:
        target, hash_, fragment = match.group(2).partition("#")
        if target not in pages:
            return match.group(0)
        return f'{match.group(1)}="{posixpath.relpath(target, here or ".")}{hash_}{fragment}"'

    return re.sub(r'(href)="' + re.escape(html.escape(site_url)) + r'([^"]*)"', rewrite, body)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_IMAGES = ("image/png", "image/jpeg", "image/svg+xml")


def _output(output) -> str:
    """One output: a stream or plain text in `<pre>`, an image as a `data:` URL, an error."""
    kind = output.get("output_type")
    if kind == "stream":
        return _pre(_text(output.get("text", "")), f"lit-nb-stream lit-nb-{output.get('name')}")
    if kind == "error":
        return _pre(_text("\n".join(output.get("traceback", []))), "lit-nb-error")
    if kind not in ("display_data", "execute_result"):
        return ""
    data = output.get("data", {})
    for mime in _IMAGES:
        if mime in data:
            content = data[mime]
            content = content if isinstance(content, str) else "".join(content)
            if mime == "image/svg+xml":
                content = base64.b64encode(content.encode()).decode("ascii")
            alt = _text(data.get("text/plain", "")).strip()
            return (f'<p class="lit-nb-image"><img src="data:{mime};base64,'
                    f'{"".join(content.split())}" alt="{html.escape(alt)}"></p>\n')
    if "text/plain" in data:
        return _pre(_text(data["text/plain"]), "lit-nb-result")
    return ""


def _text(text) -> str:
    """Output text as a terminal would show it: no colour codes, `\\r` overwrites its line."""
    text = _ANSI.sub("", text if isinstance(text, str) else "".join(text))
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def _pre(text: str, classes: str) -> str:
    return f'<pre class="{classes}"><code>{html.escape(text.rstrip(), quote=False)}</code></pre>\n'


# ---------------------------------------------------------------------------------------------
# The index page and the navigation


def add_index(root: Path, config, lang: str, sources: list[page.Source], math_html, docs: Path,
              nav: list) -> list:
    """Write `notebooks/index.md` (each notebook: title, first paragraph, Colab link) when any
    notebook is listed, and group the notebooks' pages under it in `nav`."""
    notebooks = [s for s in sources if is_notebook(s.path)]
    if not notebooks:
        return nav
    source_language = lang == config.source_language
    entries = []
    for source in notebooks:
        lookup = None if source_language else translations.lookup(root, lang, source.path)
        strings = lookup or {}
        title = page.translated_title(source, strings)
        summary = ""
        for section, rendered in zip(source.sections, source.proses, strict=True):
            if section.kind == "markdown" and rendered.key:
                body, _ = lookup(rendered.key) if lookup else (rendered.key, "translated")
                body = page._restore(body, rendered.fragments, math_html)
                found = re.search(r"<p>.*?</p>", body, re.S)
                summary = found.group(0) if found else ""
                break
        link = posixpath.relpath(config.site.pages[source.path][: -len(".md")] + ".html", FOLDER)
        summary = page._rewrite_links(_relative(summary, source.path, config.site,
                                                config.site_url), source.path, config.site)
        entries.append(
            f'<section class="lit-nb-entry">\n<h2><a href="{html.escape(link)}">'
            f"{html.escape(title)}</a></h2>\n{summary}\n{_links(config.site, source.path, lang)}"
            "</section>\n")
    heading = t(lang, "Notebooks")
    text = (f"---\ntitle: {page._yaml_string(heading)}\nhide: [toc]\n---\n\n"
            f'<div class="literate literate-nb-index">\n<h1>{html.escape(heading)}</h1>\n'
            f'<p>{html.escape(t(lang, "notebooks intro"))}</p>\n{"".join(entries)}</div>\n')
    target = docs / INDEX
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    pages = {config.site.pages[s.path] for s in notebooks}
    grouped = [entry for entry in nav if next(iter(entry.values())) in pages]
    rest = [entry for entry in nav if next(iter(entry.values())) not in pages]
    at = next(i for i, entry in enumerate(nav) if next(iter(entry.values())) in pages)
    at = len([entry for entry in nav[:at] if next(iter(entry.values())) not in pages])
    return rest[:at] + [{heading: [{heading: INDEX}, *grouped]}] + rest[at:]


# ---------------------------------------------------------------------------------------------
# Pairs and execution


def pairs(root: Path) -> list[tuple[Path, Path]]:
    """Every `notebooks/<name>.py` with its `.ipynb`, sorted by name."""
    return [(py, py.with_suffix(".ipynb")) for py in sorted((root / FOLDER).glob("*.py"))]


def cells_of(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    """What a pair must agree on: each cell's type, source (trailing blanks aside) and tags."""
    return [(c.cell_type, _source(c).rstrip(), tuple(c.get("metadata", {}).get("tags", [])))
            for c in notebook.cells]


def out_of_sync(py: Path, ipynb: Path) -> str | None:
    """Why a pair differs, or None when it does not."""
    import jupytext

    if not ipynb.is_file():
        return f"{ipynb.name} is missing"
    ours = cells_of(jupytext.read(py))
    theirs = cells_of(jupytext.read(ipynb))
    if ours == theirs:
        return None
    for number, (a, b) in enumerate(zip(ours, theirs, strict=False), start=1):
        if a != b:
            return f"cell {number} differs: {py.name} has {a[1][:60]!r}, {ipynb.name} {b[1][:60]!r}"
    return f"{py.name} has {len(ours)} cells, {ipynb.name} {len(theirs)}"


def inject(notebook, parameters: dict) -> int | None:
    """Insert a cell after the `parameters` cell that sets the names it assigns and that
    `parameters` names; return its index (None when there is nothing to inject)."""
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            assigned = set(re.findall(r"(?m)^([A-Za-z_]\w*)\s*=", _source(cell)))
            lines = [f"{name} = {value!r}" for name, value in parameters.items()
                     if name in assigned]
            if not lines:
                return None
            import nbformat

            injected = nbformat.v4.new_code_cell("# Parameters\n" + "\n".join(lines))
            injected.metadata["tags"] = ["injected-parameters"]
            notebook.cells.insert(index + 1, injected)
            return index + 1
    return None


def execute(py: Path, root: Path, parameters: dict | None = None, timeout: int = 600):
    """Run a notebook's `.py` source in a fresh kernel; return (notebook, seconds, the
    parameters injected).

    It runs in an empty temporary folder (what it writes, such as checkpoints, goes there),
    with the repository on `PYTHONPATH`, on the CPU unless `parameters` is None and the
    machine has a GPU. The injected parameters cell is taken out again. A failing cell raises
    `nbclient.exceptions.CellExecutionError`.
    """
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(py)
    injected = inject(notebook, parameters or {})
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    if parameters is not None:
        env["CUDA_VISIBLE_DEVICES"] = ""  # smoke size is a CPU run, whatever the machine
    with tempfile.TemporaryDirectory(prefix="notebook-") as folder:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": folder}}, record_timing=False)
        started = time.perf_counter()
        client.execute(env=env, cwd=folder)
        seconds = time.perf_counter() - started
    values = {}
    if injected is not None:
        import ast

        values = {name: ast.literal_eval(value) for name, value
                  in re.findall(r"(?m)^(\w+) = (.*)$", _source(notebook.cells[injected]))}
        del notebook.cells[injected]
    return notebook, seconds, values


def write_pair(notebook, ipynb: Path, parameters: dict, seconds: float) -> None:
    """Write the executed `.ipynb`, with ids from the cells' content (stable diffs) and a note
    of how it was run (for the page's note on its outputs)."""
    import jupytext

    used = set()
    for number, cell in enumerate(notebook.cells):
        digest = hashlib.sha1(f"{cell.cell_type}\0{_source(cell)}".encode()).hexdigest()[:8]
        cell["id"] = digest if digest not in used else f"{digest}-{number}"
        used.add(cell["id"])
    notebook.metadata["literate"] = {"executed": {"parameters": parameters,
                                                  "seconds": round(seconds, 1)}}
    notebook.metadata.setdefault("colab", {"provenance": []})
    notebook.metadata.setdefault("accelerator", "GPU")
    jupytext.write(notebook, ipynb, fmt="ipynb")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m literate.notebook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["check", "execute"])
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--full", action="store_true",
                        help="execute at the notebook's own size (default: smoke size, CPU)")
    args = parser.parse_args(argv)
    root = Path.cwd()
    chosen = [(py, ipynb) for py, ipynb in pairs(root) if not args.names or py.stem in args.names]
    failed = 0
    for py, ipynb in chosen:
        if args.action == "check":
            problem = out_of_sync(py, ipynb)
            if problem:
                failed += 1
                print(f"literate: error: {ipynb.relative_to(root)}: out of sync with {py.name}: "
                      f"{problem} (run: python -m literate.notebook execute {py.stem})",
                      file=sys.stderr)
            continue
        parameters = None if args.full else SMOKE
        notebook, seconds, injected = execute(py, root, parameters)
        write_pair(notebook, ipynb, injected, seconds)
        print(f"{ipynb.relative_to(root)}: executed in {seconds:.1f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
