"""The notebooks: pairs in sync, every notebook runs at smoke size, pages show them.

Executing a notebook starts a kernel and imports torch: a few seconds each. They run in one
pytest process one after another, each timed against `notebook.TIME_LIMIT_S`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from literate import notebook, page, prose, site, translations

ROOT = Path(__file__).resolve().parents[1]
PAIRS = notebook.pairs(ROOT)
NAMES = [py.stem for py, _ in PAIRS]


def test_there_are_the_three_notebooks():
    assert {"aft_local_from_scratch", "train_char_model", "speed_and_memory"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_pair_in_sync(name):
    py = ROOT / "notebooks" / f"{name}.py"
    assert notebook.out_of_sync(py, py.with_suffix(".ipynb")) is None, (
        f"run: python -m literate.notebook execute {name}")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_shape(name):
    """Colab install cell first, a parameters cell, a title, and committed outputs."""
    nb = notebook.read(name, (ROOT / "notebooks" / f"{name}.ipynb").read_text("utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = notebook._source(code[0])
    assert "google.colab" in first and "pip" in first
    assert any("parameters" in c["metadata"].get("tags", []) for c in code)
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert notebook._source(nb["cells"][0]).startswith("# ")
    outputs = [o for c in code for o in c["outputs"]]
    assert outputs, "the .ipynb must be committed executed (python -m literate.notebook execute)"
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert nb["metadata"]["jupytext"]["formats"] == "ipynb,py:percent"


def test_out_of_sync_is_detected(tmp_path):
    py, ipynb = PAIRS[0]
    (tmp_path / "a.py").write_text(py.read_text("utf-8").replace("# %% [markdown]\n# ## ",
                                                                 "# %% [markdown]\n# ### ", 1))
    (tmp_path / "a.ipynb").write_text(ipynb.read_text("utf-8"))
    assert "differs" in notebook.out_of_sync(tmp_path / "a.py", tmp_path / "a.ipynb")
    assert "missing" in notebook.out_of_sync(tmp_path / "a.py", tmp_path / "b.ipynb")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_executes_at_smoke_size(name, tmp_path):
    """Every cell runs, on the CPU, at smoke size, in time, into a temporary copy (the committed
    pair is never touched); a failing cell raises. The copy's page shows its outputs, with
    alt text that says what each figure shows."""
    ipynb = ROOT / "notebooks" / f"{name}.ipynb"
    committed = ipynb.read_bytes()
    nb, seconds, injected, record = notebook.execute(
        ROOT / "notebooks" / f"{name}.py", ROOT, notebook.SMOKE, timeout=notebook.TIME_LIMIT_S)
    print(f"{name}: {seconds:.1f} s at smoke size")
    assert seconds < notebook.TIME_LIMIT_S
    assert all(c.metadata.get("tags") != ["injected-parameters"] for c in nb.cells)
    assert not any("literate.in_kernel" in notebook._source(c) for c in nb.cells)  # ours: out
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if "SIZE" in injected:
        assert "size 'smoke' on cpu" in text
        assert record["size"] == "smoke" and record["settings"]
    assert record["device"].startswith("CPU")
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.execution_count == 1  # our own cells leave no gap
    assert "Traceback" not in text

    copy = tmp_path / "notebooks" / f"{name}.ipynb"
    copy.parent.mkdir()
    notebook.write_pair(nb, copy, injected, seconds, record)
    assert ipynb.read_bytes() == committed
    executed = json.loads(copy.read_text("utf-8"))["metadata"]["literate"]["executed"]
    assert executed["seconds"] == round(seconds, 1) and re.match(r"\d{4}-\d\d-\d\d$",
                                                                  executed["date"])
    source = page.Source(f"notebooks/{name}.ipynb", copy.read_text("utf-8"), *_split(copy))
    html = notebook.render(source, _site(), _fake_math, None, None, None)
    alts = re.findall(r'<img alt="([^"]*)" src="data:image/png', html)
    assert len(alts) == sum(1 for c in nb.cells for o in c.get("outputs", [])
                            if "image/png" in o.get("data", {}))
    assert all(alt and "Figure size" not in alt and "No description" not in alt for alt in alts)
    assert len(set(alts)) == len(alts), alts  # different plots, different alt texts
    assert "These outputs come from a run on CPU" in html


def _split(path: Path):
    from literate import sections

    text = path.read_text("utf-8")
    split = sections.split(f"notebooks/{path.name}", text)
    return split, [prose.render(f"notebooks/{path.name}", s.prose, s.prose_line) for s in split]


def test_inject_after_parameters_cell_only_known_names():
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SIZE = 'auto'\nN = 3"),
                                         nbformat.v4.new_code_cell("print(SIZE)")])
    assert notebook.inject(nb, {"SIZE": "smoke"}) is None  # no parameters cell yet
    nb.cells[0].metadata["tags"] = ["parameters"]
    assert notebook.inject(nb, {"SIZE": "smoke", "OTHER": 1}) == 1
    assert nb.cells[1].source == "# Parameters\nSIZE = 'smoke'"


# ---------------------------------------------------------------------------------------------
# Pages


def _source(name: str) -> page.Source:
    return site._read(ROOT, f"notebooks/{name}.ipynb")


def _site() -> page.Site:
    return site.Config.load(ROOT).site


def test_colab_url_from_repo_url():
    config = site.Config.load(ROOT)
    import yaml

    repo = yaml.safe_load((ROOT / "mkdocs.yml").read_text("utf-8"))["repo_url"]
    owner_repo = repo.rstrip("/").removeprefix("https://github.com/")
    assert notebook.colab_url(config.site, "notebooks/x.ipynb") == (
        f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/x.ipynb")


def test_keys_are_the_markdown_cells_through_the_prose_pipeline():
    name = "aft_local_from_scratch"
    path = f"notebooks/{name}.ipynb"
    nb = notebook.read(path, (ROOT / path).read_text("utf-8"))
    markdown = [notebook._source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    keys = translations.ordered_keys(path, (ROOT / path).read_text("utf-8"))
    assert keys[0] == "AFT-local from scratch"  # the title, as for any page
    for text in markdown:
        assert prose.render(path, text, 1).key in keys
    assert translations.file_of(ROOT, "si", path) == ROOT / f"translations/si/notebooks/{name}.json"


def _fake_math(fragment):
    return f"<span class=katex>{fragment.text}</span>"


def test_page_shows_cells_outputs_and_colab_link():
    source = _source("train_char_model")
    html = notebook.render(source, _site(), _fake_math, None, None, None,
                           "https://aft-annotated.github.io/aft-annotated/")
    assert 'href="https://colab.research.google.com/github/' in html
    assert "notebooks/train_char_model.ipynb" in html
    assert "edit/main/notebooks/train_char_model.py" in html  # the source people edit
    assert '<img alt="' in html and 'src="data:image/png;base64,' in html  # the loss plot
    assert 'class="output_subarea output_stream output_stdout output_text"' in html  # printed
    assert '<h1 id="train-a-character-model">' in html
    assert 'href="../aft/train.html"' in html  # absolute site link made relative
    assert '<span class="kn">from</span>' in html  # highlighted code


def test_buttons_and_the_made_on_line_sit_under_the_title():
    source = _source("train_char_model")
    html = notebook.render(source, _site(), _fake_math, None, None, None)
    title = html.index("</h1>")
    links = html.index('<p class="lit-nb-links">')
    assert title < links < html.index("<p>", title)  # right under the title, before the text
    buttons = html[links:html.index("</p>", links)]
    assert "Open in Colab" in buttons and "View on GitHub" in buttons
    assert '<a class="md-button lit-download" href="train_char_model.ipynb" download>' \
           'Download notebook</a>' in buttons
    run = notebook.read("x", source.text)["metadata"]["literate"]["executed"]
    note = re.search(r'<p class="lit-nb-note">(.*?)</p>', html).group(1)
    assert run["device"] in note and run["date"] in note and f"{run['seconds']:.0f} s" in note
    assert f"“{run['size']}”" in note and f"steps = {run['settings']['steps']}" in note


def test_made_on_line_in_each_language():
    nb = {"metadata": {"literate": {"executed": {
        "device": "CPU (2 cores)", "size": "cpu", "settings": {"steps": 1500},
        "seconds": 250.4, "date": "2026-12-03"}}}}
    for lang, word in (("en", "took 250 s"), ("si", "තත්පර 250"), ("zh", "耗时 250 秒"),
                       ("ja", "250 秒")):
        line = notebook._made_on(nb, None if lang == "en" else lang)
        assert word in line and "2026-12-03" in line and "steps = 1500" in line, line
    nb["metadata"]["literate"]["executed"].update(size=None, settings=None, values={"SEQ": 16})
    assert "with SEQ = 16" in notebook._made_on(nb, None)
    assert notebook._made_on({"metadata": {}}, None) == ""


def test_page_uses_translations_and_marks_the_rest():
    source = _source("aft_local_from_scratch")
    first = source.proses[0].key
    strings = {first: first.replace("AFT-local from scratch", "මුල සිට AFT-local"),
               "AFT-local from scratch": "මුල සිට AFT-local"}
    html = notebook.render(source, _site(), _fake_math, strings, "si")
    assert 'title: "මුල සිට AFT-local"' in html
    assert "<h1 id=\"aft-local-from-scratch\">මුල සිට AFT-local</h1>" in html
    assert "Colab හි විවෘත කරන්න" in html and "සටහන් පොත බාගන්න" in html
    assert "lit-untranslated lit-missing" in html  # the cells not translated yet


def test_translation_files_for_notebooks_hold_their_keys():
    """translations/<lang>/notebooks/<name>.json exist and list every paragraph."""
    config = site.Config.load(ROOT)
    for lang in list(config.languages)[1:]:
        for name in NAMES:
            path = f"notebooks/{name}.ipynb"
            file = translations.file_of(ROOT, lang, path)
            assert file.is_file(), f"run: python -m literate translate update {lang}"
            keys = translations.ordered_keys(path, (ROOT / path).read_text("utf-8"))
            assert set(keys) <= set(json.loads(file.read_text("utf-8")))


def test_built_site_has_notebook_pages_and_index(built_site):
    config = site.Config.load(ROOT)
    for prefix in ["", *(f"{lang}/" for lang in list(config.languages)[1:])]:
        index = (built_site.path / prefix / "notebooks" / "index.html").read_text("utf-8")
        for name in NAMES:
            assert f'href="{name}.html"' in index
            assert re.search(f'href="https://colab.research.google.com/github/[^"]+/blob/main/'
                             f'notebooks/{name}.ipynb"', index)
            assert (built_site.path / prefix / "notebooks" / f"{name}.html").is_file()
            download = built_site.path / prefix / "notebooks" / f"{name}.ipynb"
            assert download.read_bytes() == (ROOT / "notebooks" / f"{name}.ipynb").read_bytes()


def test_page_of_a_notebook_with_a_raw_cell_and_no_run_record():
    import nbformat
    from nbformat import v4

    from literate import sections

    nb = v4.new_notebook(cells=[v4.new_markdown_cell("# A title\n\nSome text."),
                                v4.new_raw_cell("raw, not shown"),
                                v4.new_code_cell("print(1)", outputs=[
                                    v4.new_output("stream", name="stdout", text="1\n")])])
    path = "notebooks/train_char_model.ipynb"  # a path the site knows, for the links
    text = nbformat.writes(nb)
    split = sections.split(path, text)
    source = page.Source(path, text, split, [prose.render(path, s.prose, s.prose_line)
                                             for s in split])
    html = notebook.render(source, _site(), _fake_math, {}, "zh")
    assert "raw, not shown" not in html and "<pre>1\n</pre>" in html
    assert '</h1>\n<div class="lit-nb-header" lang="zh">' in html  # under the title, in zh
    assert "在 Colab 中打开" in html and "lit-nb-note" not in html  # no record, no line
