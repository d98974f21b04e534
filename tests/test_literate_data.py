"""Numbers in prose come from measured files: `{{ file#key }}` and `{{ include file }}`."""

import json

import pytest

from literate import prose
from literate.sections import LiterateError


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run.json").write_text(json.dumps(
        {"loss": 1.23456, "rows": [{"seq": 1024, "speedup": 21.456}]}))
    (tmp_path / "results" / "table.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    (tmp_path / "results" / "sample.txt").write_text("ROMEO.\n<&> two  spaces\n")
    (tmp_path / "results" / "plot.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "aft").mkdir()
    return tmp_path


def render(root, text):
    rendered = prose.render("aft/page.py", text, 10)
    return rendered, prose.resolve_data(root, "aft/page.py", rendered.fragments)


def test_value_is_a_placeholder_in_the_key_and_the_number_in_the_page(repo):
    rendered, fragments = render(repo, "Loss {{ ../results/run.json#loss|.2f }} at last.")
    assert rendered.key == "<p>Loss <span translate=no>_^_0_^_</span> at last.</p>\n"
    assert fragments[0].kind == "data" and fragments[0].text == "1.23"
    _, fragments = render(repo, "{{ ../results/run.json#rows.0.speedup|.1f }}x")
    assert fragments[0].text == "21.5"


def test_include_is_a_block_of_html(repo):
    rendered, fragments = render(repo, "Results:\n\n{{ include ../results/table.md }}\n")
    assert rendered.key.endswith("<span translate=no>_^_0_^_</span>")
    assert "<table>" in fragments[0].text and "<td>2</td>" in fragments[0].text


def test_include_image_and_text(repo):
    _, fragments = render(repo, "{{ include ../results/plot.png }}")
    assert '<img alt="plot" src="data:image/png;base64,' in fragments[0].text
    _, fragments = render(repo, "{{ include ../results/sample.txt }}")
    assert fragments[0].text == "<pre><code>ROMEO.\n&lt;&amp;&gt; two  spaces\n</code></pre>"


@pytest.mark.parametrize("spec,message", [
    ("../results/missing.json#loss", "cannot read ../results/missing.json"),
    ("../results/run.json#nope", "no value 'nope'"),
    ("../results/run.json#rows.5.seq", "no value 'rows.5.seq'"),
])
def test_bad_reference_names_file_and_line(repo, spec, message):
    with pytest.raises(LiterateError, match=message) as error:
        render(repo, "first line\n\nvalue {{ " + spec + " }}")
    assert "aft/page.py" in str(error.value) and ":12" in str(error.value)


def test_unclosed_braces_are_an_error(repo):
    with pytest.raises(LiterateError, match="never closed"):
        prose.render("aft/page.py", "a {{ b", 1)
