"""A notebook page's outputs, one MIME type at a time, rendered through nbconvert.

Each test makes a notebook here, with the outputs a kernel could have written, and reads the
HTML that `notebook.rendered_outputs` gives for its cells. No kernel runs.
"""

from __future__ import annotations

import base64
import re

import nbformat
import pytest
from nbformat import v4

from literate import notebook

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode("ascii")
SVG = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><circle r="1"/></svg>'


def _fake_math(fragment):
    return f'<span class="katex" data-display="{int(fragment.display)}">{fragment.text}</span>'


def _render(*outputs, cells_before: int = 0, metadata: dict | None = None) -> str:
    """The HTML of one code cell holding `outputs` (after `cells_before` Markdown cells)."""
    cells = [v4.new_markdown_cell(f"# Cell {n}") for n in range(cells_before)]
    code = v4.new_code_cell("x", outputs=list(outputs))
    code.metadata.update(metadata or {})
    cells.append(code)
    text = nbformat.writes(v4.new_notebook(cells=cells))
    parts = notebook.rendered_outputs(f"test-{id(outputs)}.ipynb", text, _fake_math)
    assert len(parts) == len(cells)
    assert all(not part.strip() for part in parts[:cells_before])  # Markdown: not nbconvert's
    return parts[-1]


def test_stream_text_is_escaped_and_carriage_returns_applied():
    html = _render(v4.new_output("stream", name="stdout", text="progress 10%\rprogress 100%\n"
                                                               "a <b> & c\n"))
    assert "output_stdout" in html
    assert "progress 100%" in html and "progress 10%" not in html
    assert "a &lt;b&gt; &amp; c" in html and "<b>" not in html


def test_streams_of_one_kind_are_merged():
    html = _render(v4.new_output("stream", name="stdout", text="one\n"),
                   v4.new_output("stream", name="stdout", text="two\n"),
                   v4.new_output("stream", name="stderr", text="warned\n"))
    assert re.search(r"<pre>one\ntwo\n</pre>", html)
    assert "output_stderr" in html and "warned" in html


def test_ansi_colours_become_classes_in_streams_and_tracebacks():
    html = _render(
        v4.new_output("stream", name="stdout", text="\x1b[31mred\x1b[0m plain\n"),
        v4.new_output("error", ename="ValueError", evalue="bad",
                      traceback=["\x1b[0;31mValueError\x1b[0m: bad <here>"]))
    assert '<span class="ansi-red-fg">red</span> plain' in html
    assert "output_error" in html and "ValueError" in html and "&lt;here&gt;" in html
    assert "\x1b" not in html


def test_plain_text_result():
    html = _render(v4.new_output("execute_result", data={"text/plain": "1 < 2"},
                                 execution_count=1))
    assert "<pre>1 &lt; 2</pre>" in html


def test_png_with_alt_text_from_the_outputs_metadata():
    html = _render(v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Fig>"},
                                 metadata={"image/png": {"alt": "Plot of loss against step."}}))
    assert f'src="data:image/png;base64,{PNG}"' in html
    assert 'alt="Plot of loss against step."' in html
    assert "&lt;Fig&gt;" not in html  # the image, not its text stand-in


def test_png_alt_text_from_the_cells_metadata():
    html = _render(v4.new_output("display_data", data={"image/png": PNG}),
                   metadata={"alt": "A heat map of the bias."})
    assert 'alt="A heat map of the bias."' in html


def test_svg_is_an_image_so_its_scripts_never_run():
    html = _render(v4.new_output("display_data", data={"image/svg+xml": SVG},
                                 metadata={"image/svg+xml": {"alt": "A circle."}}))
    encoded = base64.b64encode(SVG.encode()).decode("ascii")
    assert f'src="data:image/svg+xml;base64,{encoded}"' in html
    assert 'alt="A circle."' in html
    assert "<script" not in html and "<svg" not in html


def test_html_is_sanitised():
    html = _render(v4.new_output("display_data", data={
        "text/html": '<table><tr><td onclick="steal()">1</td></tr></table>'
                     '<script>alert(1)</script><img src=x onerror="alert(2)">',
        "text/plain": "fallback"}))
    assert "<table>" in html and "<td>1</td>" in html
    assert "<script" not in html and "<img" not in html  # left as text, escaped
    assert not re.search(r"<[^>]*\son\w+=", html)  # no event handler on any element
    assert "fallback" not in html  # HTML preferred to plain text


def test_latex_goes_to_our_katex_as_display_math():
    html = _render(v4.new_output("display_data", data={"text/latex": r"$$\frac{a}{b} < 1$$",
                                                      "text/plain": "a/b < 1"}),
                   v4.new_output("display_data", data={"text/latex": r"\[x^2\]"}))
    assert r'<span class="katex" data-display="1">\frac{a}{b} < 1</span>' in html
    assert '<span class="katex" data-display="1">x^2</span>' in html
    assert "$$" not in html and "a/b" not in html


def test_formulas_lists_the_latex_of_the_outputs_for_katex():
    cells = [v4.new_markdown_cell("# T"), v4.new_code_cell("x", outputs=[
        v4.new_output("display_data", data={"text/latex": "$y = 1$"})])]
    text = nbformat.writes(v4.new_notebook(cells=cells))
    from literate import page, prose, sections

    split = sections.split("n.ipynb", text)
    source = page.Source("n.ipynb", text, split, [prose.render("n.ipynb", s.prose, s.prose_line)
                                                  for s in split])
    [fragment] = notebook.formulas(source)
    assert (fragment.kind, fragment.text, fragment.display, fragment.line) == ("math", "y = 1",
                                                                               True, 2)


def test_markdown_output_is_rendered_and_sanitised():
    html = _render(v4.new_output("display_data", data={
        "text/markdown": "**bold** <script>x</script>"}))
    assert "<strong>bold</strong>" in html and "<script" not in html


def test_javascript_is_dropped():
    html = _render(v4.new_output("display_data", data={"application/javascript": "alert(1)",
                                                      "text/plain": "js"}))
    assert "alert" not in html and "<script" not in html


@pytest.mark.parametrize("cells_before", [0, 3])
def test_each_cell_gets_its_own_outputs(cells_before):
    html = _render(v4.new_output("stream", name="stdout", text="mine\n"),
                   cells_before=cells_before)
    assert "mine" in html
