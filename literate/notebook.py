"""Notebooks: jupytext-paired sources, executed outputs, and their pages on the site.

A notebook lives twice in `notebooks/`: `<name>.py` in jupytext's percent format is the source
that people edit and review, and `<name>.ipynb` is its pair, committed with the outputs of one
run, so that Colab can open it from GitHub and the site can show it without running anything.
`python -m literate.notebook` keeps the two honest:

    check      fail when a pair is out of sync (their cells differ, outputs and metadata aside)
    execute    run the .py sources and write the .ipynb pairs with their outputs: at the size
               each notebook picks itself (`make notebooks`: its CPU size on a CPU, which takes
               minutes, its GPU size on a GPU), or `--size smoke`, the tests' size, on the CPU

Execution goes through nbconvert's `ExecutePreprocessor`. Each executed notebook records in its
metadata (`literate.executed`) where and how its outputs were made: device, size and its
settings, wall time, date, the machine's load average before and after.

On the site, a notebook is a page like any other source listed in `mkdocs.yml`: its Markdown
cells go through the same prose pipeline (placeholders, translation keys, KaTeX), so they are
translated in `translations/<lang>/notebooks/<name>.json` with the same tools; its code cells
are highlighted and followed by their outputs, rendered by nbconvert's `HTMLExporter` (see
"Outputs, through nbconvert" below). The page reads top to bottom, one column, as a notebook
does. Under its title: "Open in Colab" (a link built from `repo_url` and the branch of
`edit_uri`, never written by hand), "View on GitHub", "Download notebook" (the `.ipynb`,
copied beside the page) and a line saying where the outputs were made.

A parameters cell is a code cell tagged `parameters`, as papermill has it. To run at another
size we insert a cell after it that assigns new values to the names it already assigns
(papermill's "injected-parameters"), and take that cell out again before writing the pair.
"""

from __future__ import annotations

import functools
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
from .prose import Fragment
from .sections import LiterateError, Section

FOLDER = "notebooks"
INDEX = f"{FOLDER}/index.md"
SMOKE = {"SIZE": "smoke"}  # what the tests run with (`execute --size smoke`)
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
    """A notebook's page: front matter, its cells in one column, and under the title the
    Colab, GitHub and download buttons and where the outputs were made.

    The arguments are `page.render`'s; `site_url` (the site's own address) turns absolute links
    to the site, which work in Colab and on GitHub, into relative ones that work offline.
    """
    lookup = strings if callable(strings) else page._dict_lookup(strings or {}, lang or "")
    notebook = read(source.path, source.text)
    used: set[str] = set()
    header = _links(site, source.path, lang or "en", download=True) + _made_on(notebook, lang)
    header = f'<div class="lit-nb-header" lang="{lang or "en"}">\n{header}</div>\n'
    parts = []
    cells = [(cell, output) for cell, output in zip(
        notebook["cells"], rendered_outputs(source.path, source.text, math_html), strict=True)
        if cell["cell_type"] in ("markdown", "code")]  # raw cells are not shown
    for (cell, output), section, rendered in zip(cells, source.sections, source.proses,
                                                 strict=True):
        anchor = page._unique(page._anchor(section), used)
        if cell["cell_type"] == "markdown":
            body, classes, marker = _prose(rendered, lookup, lang, used, math_html)
            body = page._rewrite_links(_relative(body, source.path, site, site_url),
                                       source.path, site)
            if header and "</h1>" in body:  # the buttons go right under the page's title
                body = body.replace("</h1>", "</h1>\n" + header, 1)
                header = ""
            parts.append(f'<section class="lit-nb-cell lit-nb-markdown{classes}" id="{anchor}">\n'
                         f"{marker}{body}</section>\n")
        elif cell["cell_type"] == "code":
            code = highlight(_source(cell), PythonLexer(), HtmlFormatter(wrapcode=True))
            output = (f'<div class="lit-nb-outputs">\n{output.strip()}\n</div>\n'
                      if cell.get("outputs") else "")
            parts.append(f'<section class="lit-nb-cell lit-nb-code" id="{anchor}">\n'
                         f'<div class="lit-nb-input">{code}</div>\n{output}</section>\n')
    edit = edit_path or source_of(source.path)
    return (
        "---\n"
        f"title: {page._yaml_string(page.translated_title(source, lookup))}\n"
        "hide: [toc]\n"
        f"edit_url: {site.edit_url}{edit}\n"
        "---\n\n"
        f'<div class="literate literate-nb">\n{header}{"".join(parts)}</div>\n'
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


def _links(site: page.Site, path: str, lang: str, download: bool = False) -> str:
    """The buttons: Open in Colab, View on GitHub and (on a notebook's own page and in the
    index, both in the notebook's folder) Download notebook, the `.ipynb` served by the site."""
    colab = html.escape(colab_url(site, path))
    github = html.escape(site.blob_url + path)
    buttons = [f'<a class="md-button md-button--primary lit-colab" href="{colab}">'
               f'{html.escape(t(lang, "Open in Colab"))}</a>',
               f'<a class="md-button lit-github" href="{github}">'
               f'{html.escape(t(lang, "View on GitHub"))}</a>']
    if download:
        name = html.escape(posixpath.basename(path))
        buttons.append(f'<a class="md-button lit-download" href="{name}" download>'
                       f'{html.escape(t(lang, "Download notebook"))}</a>')
    return f'<p class="lit-nb-links">{" ".join(buttons)}</p>\n'


def _made_on(notebook: dict, lang: str | None) -> str:
    """One line from the notebook's metadata (`write_pair` puts it there): the device, size,
    settings, wall time and date of the run whose outputs the page shows."""
    run = notebook.get("metadata", {}).get("literate", {}).get("executed") or {}
    if not run.get("date"):
        return ""
    values = run.get("settings") or run.get("values") or {}
    settings = ", ".join(f"{name} = {value}" for name, value in values.items())
    words = {"device": run.get("device", "?"), "size": run.get("size"), "settings": settings,
             "seconds": f"{run.get('seconds', 0):.0f}", "date": run["date"]}
    if run.get("size"):
        text = t(lang or "en", "These outputs come from a run on {device} at size “{size}” "
                               "({settings}) that took {seconds} s, on {date}.")
    else:
        text = t(lang or "en", "These outputs come from a run on {device} with {settings} "
                               "that took {seconds} s, on {date}.")
    return f'<p class="lit-nb-note">{html.escape(text.format(**words))}</p>\n'


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


# ---------------------------------------------------------------------------------------------
# Outputs, through nbconvert
#
# nbconvert's `HTMLExporter` renders the outputs with its classic template, which our template
# `templates/lit_outputs` extends: it leaves out the inputs and the Markdown cells (ours) and
# starts each cell with a marker. So nbconvert chooses among an output's MIME types (its
# display priority), turns ANSI colours in streams and tracebacks into classes (`ansi2html`),
# puts images in `data:` URLs with their alt text, sanitises HTML (`sanitize_html`, bleach),
# and its `CoalesceStreamsPreprocessor` merges streams and applies `\r` as a terminal would.
# LaTeX it leaves as TeX in a `<lit-latex>` element, which we hand to our KaTeX.

TEMPLATES = Path(__file__).with_name("templates")
_MARKER = "<!-- lit-cell -->"
_LATEX = re.compile(r"<lit-latex>(.*?)</lit-latex>", re.S)


@functools.cache
def _exporter():
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    exporter = HTMLExporter(extra_template_basedirs=[str(TEMPLATES)], template_name="lit_outputs",
                            exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, sanitize_html=True)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor, enabled=True)
    return exporter


@functools.lru_cache(maxsize=16)
def _exported(path: str, text: str) -> tuple[str, ...]:
    """Each cell's outputs as nbconvert's HTML, LaTeX still TeX (cached: every language's page
    and the formulas use the same)."""
    import logging

    import nbformat

    notebook = nbformat.reads(text, as_version=4)
    exporter = _exporter()
    exporter.log.setLevel(logging.ERROR)  # "alt text is missing": our own test says where
    body, _ = exporter.from_notebook_node(notebook)
    parts = body.split(_MARKER)[1:]
    if len(parts) != len(notebook.cells):
        raise LiterateError(path, 0, f"nbconvert gave {len(parts)} cells' outputs for "
                                     f"{len(notebook.cells)} cells")
    return tuple(parts)


def _latex(tex: str, cell: int) -> Fragment:
    """A `text/latex` output → display math for KaTeX, its `$$`, `$` or `\\[ \\]` taken off."""
    from nbconvert.filters import strip_dollars

    tex = strip_dollars(tex.strip())
    if tex.startswith("\\[") and tex.endswith("\\]"):
        tex = tex[2:-2]
    return Fragment("math", tex.strip(), display=True, line=cell)


def formulas(source: page.Source) -> list[Fragment]:
    """The LaTeX of a notebook's outputs, for KaTeX to render with the prose's formulas."""
    return [_latex(html.unescape(tex), number)
            for number, part in enumerate(_exported(source.path, source.text), start=1)
            for tex in _LATEX.findall(part)]


def rendered_outputs(path: str, text: str, math_html) -> list[str]:
    """Each cell's outputs as HTML for the page (empty for Markdown cells)."""
    return [_LATEX.sub(lambda m, n=number: math_html(_latex(html.unescape(m.group(1)), n)), part)
            for number, part in enumerate(_exported(path, text), start=1)]


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
            f"{html.escape(title)}</a></h2>\n{summary}\n"
            f"{_links(config.site, source.path, lang, download=True)}"
            "</section>\n")
        # the .ipynb itself, beside its page, for the "Download notebook" buttons
        page_folder = posixpath.dirname(config.site.pages[source.path])
        copy = docs / page_folder / posixpath.basename(source.path)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(source.text, encoding="utf-8")
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
    index = _parameters_cell(notebook)
    if index is None:
        return None
    assigned = _assigned(notebook.cells[index])
    lines = [f"{name} = {value!r}" for name, value in parameters.items() if name in assigned]
    if not lines:
        return None
    import nbformat

    injected = nbformat.v4.new_code_cell("# Parameters\n" + "\n".join(lines))
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, injected)
    return index + 1


def _parameters_cell(notebook) -> int | None:
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    return None


def _assigned(cell) -> list[str]:
    return list(dict.fromkeys(re.findall(r"(?m)^([A-Za-z_]\w*)\s*=", _source(cell))))


def execute(py: Path, root: Path, parameters: dict | None = None, timeout: int = 600):
    """Run a notebook's `.py` source in a fresh kernel, through nbconvert's
    `ExecutePreprocessor`; return (notebook, seconds, the parameters injected, the run's record).

    It runs in an empty temporary folder (what it writes, such as checkpoints, goes there),
    with the repository on `PYTHONPATH`, on the CPU unless `parameters` is None and the
    machine has a GPU. Two cells of ours run around the notebook's and are taken out again:
    before, `in_kernel.install_alt_text()`; after, `in_kernel.record(…)`, whose JSON is the
    record (device, size, settings). The injected parameters cell is taken out too. A failing
    cell raises `nbclient.exceptions.CellExecutionError`.
    """
    import jupytext
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    class Execute(ExecutePreprocessor):
        """nbconvert's executor, with the kernel started in our environment."""

        def start_new_kernel(self, **kwargs):
            return super().start_new_kernel(env=env, **kwargs)

    notebook = jupytext.read(py)
    injected = inject(notebook, parameters or {})
    at = _parameters_cell(notebook)
    names = _assigned(notebook.cells[at]) if at is not None else []
    notebook.cells.insert(0, nbformat.v4.new_code_cell(
        "import literate.in_kernel\nliterate.in_kernel.install_alt_text()"))
    notebook.cells.append(nbformat.v4.new_code_cell(
        f"print(literate.in_kernel.record(globals(), {names!r}))"))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    if (parameters or {}).get("SIZE") in ("smoke", "cpu"):
        env["CUDA_VISIBLE_DEVICES"] = ""  # CPU sizes run on the CPU, whatever the machine
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="notebook-") as folder:
        executor = Execute(timeout=timeout, kernel_name="python3", record_timing=False)
        started = time.perf_counter()
        executor.preprocess(notebook, {"metadata": {"path": folder}})
        seconds = time.perf_counter() - started
    record_cell = notebook.cells.pop()
    notebook.cells.pop(0)
    for cell in notebook.cells:  # number the notebook's own cells from 1 again
        if cell.cell_type == "code" and cell.get("execution_count"):
            cell.execution_count -= 1
            for output in cell.outputs:
                if output.get("execution_count"):
                    output.execution_count -= 1
    record = json.loads("".join(o.get("text", "") for o in record_cell.outputs).strip())
    record["load_average"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    values = {}
    if injected is not None:
        import ast

        values = {name: ast.literal_eval(value) for name, value
                  in re.findall(r"(?m)^(\w+) = (.*)$", _source(notebook.cells[injected]))}
        del notebook.cells[injected]
    return notebook, seconds, values, record


def write_pair(notebook, ipynb: Path, parameters: dict, seconds: float, record: dict) -> None:
    """Write the executed `.ipynb`, with ids from the cells' content (stable diffs) and, in
    its metadata (`literate.executed`), where and how it ran, which its page says."""
    import jupytext

    used = set()
    for number, cell in enumerate(notebook.cells):
        digest = hashlib.sha1(f"{cell.cell_type}\0{_source(cell)}".encode()).hexdigest()[:8]
        cell["id"] = digest if digest not in used else f"{digest}-{number}"
        used.add(cell["id"])
    notebook.metadata["literate"] = {"executed": {
        "injected": parameters, **record, "seconds": round(seconds, 1),
        "date": time.strftime("%Y-%m-%d", time.gmtime())}}
    notebook.metadata.setdefault("colab", {"provenance": []})
    notebook.metadata.setdefault("accelerator", "GPU")
    jupytext.write(notebook, ipynb, fmt="ipynb")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m literate.notebook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["check", "execute"])
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--size", default=None,
                        help="run at this SIZE (smoke: the tests' size, on the CPU); default: "
                             "the size the notebook picks itself (its GPU size on a GPU)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the executed notebooks into this folder instead")
    parser.add_argument("--timeout", type=int, default=3600,
                        help="seconds a cell may run (default 3600: training on a busy CPU)")
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
        parameters = {"SIZE": args.size} if args.size else None
        notebook, seconds, injected, record = execute(py, root, parameters, args.timeout)
        target = args.out / ipynb.name if args.out else ipynb
        target.parent.mkdir(parents=True, exist_ok=True)
        write_pair(notebook, target, injected, seconds, record)
        print(f"{target}: executed on {record['device']} at size {record['size']} in "
              f"{seconds:.1f} s (load average {record['load_average']})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
