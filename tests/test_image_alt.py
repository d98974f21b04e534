"""An included plot's alt text says what it shows: the image's own description (PNG text
chunk, SVG <desc>), else the Markdown's alt text, else its name; two plots, two alt texts."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from literate import prose  # noqa: E402


def plot(path, description=None):
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([1, 2], [3, 4])
    metadata = {"Software": None}
    if description:
        metadata["Description"] = description
    fig.savefig(path, metadata=metadata)
    plt.close(fig)


def alts(root, text: str) -> list[str]:
    rendered = prose.render("aft/page.py", text, 1)
    fragments = prose.resolve_data(root, "aft/page.py", rendered.fragments)
    return re.findall(r'alt="([^"]*)"', "".join(f.text for f in fragments))


def test_two_plots_say_what_each_shows(tmp_path):
    (tmp_path / "aft").mkdir()
    results = tmp_path / "results"
    results.mkdir()
    plot(results / "a.png", "Time against T, memory reused")
    plot(results / "b.png", "Peak memory against T; Sinhala: මතකය")
    (results / "a.md").write_text("| x |\n|---|\n| 1 |\n\n![time against T](a.png)\n")
    (results / "b.md").write_text("![time against T](b.png)\n")
    found = alts(tmp_path, "{{ include ../results/a.md }}\n\n{{ include ../results/b.md }}")
    assert found == ["Time against T, memory reused", "Peak memory against T; Sinhala: මතකය"]


def test_without_a_description_the_markdown_alt_then_the_name(tmp_path):
    (tmp_path / "aft").mkdir()
    plot(tmp_path / "loss.png")
    (tmp_path / "loss.md").write_text("![validation loss of both models](loss.png)\n")
    (tmp_path / "curve.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><title>A '
                                        "curve</title><desc>The loss falls\n fast</desc></svg>")
    assert alts(tmp_path, "{{ include ../loss.md }}") == ["validation loss of both models"]
    assert alts(tmp_path, "{{ include ../loss.png }}") == ["loss"]
    assert alts(tmp_path, "{{ include ../curve.svg }}") == ["The loss falls fast"]


def test_the_benchmark_page_says_which_plot_is_which(built_site):
    page = (built_site.path / "aft" / "bench.html").read_text(encoding="utf-8")
    found = re.findall(r'<img alt="([^"]*)" src="data:image/png', page)
    assert len(found) == 2 and len(set(found)) == 2, found
    assert all("peak memory" in alt and "against T" in alt for alt in found)


def test_every_image_on_the_site_has_alt_text(built_site):
    for file in built_site.path.rglob("*.html"):
        for tag in re.findall(r"<img\b[^>]*>", file.read_text(encoding="utf-8")):
            assert re.search(r'\balt="[^"]+"', tag), f"{file}: {tag[:120]}"
