"""The glossary's machine-readable rules: English plurals of kept words, required renderings,
forbidden calques — and that `translate check` applies them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from literate import LiterateError, cli, glossary, prose
from literate.translations import Catalog

ROOT = Path(__file__).resolve().parents[1]
SI = ROOT / "translations" / "si"
RULES = glossary.load(SI / "glossary.md")
P0 = prose.PLACEHOLDER.format(0)


def test_the_sinhala_glossary_has_all_three_tables():
    assert RULES.plurals["flags"] == "flag" and RULES.plurals["benchmarks"] == "benchmark"
    assert RULES.required["running sum"] == ["ධාවන එකතු"]
    assert RULES.required["learned"] == ["ඉගෙන ගන්නා"]
    assert "එරෙහිව" in RULES.forbidden and "සේවය කර" in RULES.forbidden


BAD = {
    "plural flags": ("<p>Every run's flags are saved.</p>\n",
                     "<p>සෑම ධාවනයකම flags සුරකිනු ලැබේ.</p>\n", "English plural 'flags'"),
    "plural Benchmarks": ("<p>Benchmarks</p>\n", "<p>Benchmarks</p>\n",
                          "English plural 'Benchmarks'"),
    "plural tensors": ("<p>Two tensors.</p>\n", "<p>tensors දෙකක්.</p>\n",
                       "English plural 'tensors'"),
    "running sum off-glossary": (
        "<p>The far keys enter as a running sum over the blocks.</p>\n",
        "<p>දුර යතුරු කොටස් හරහා සමුච්චිත එකතුවක් ලෙස ඇතුළු වේ.</p>\n",
        "the English says 'running sum'"),
    "running sums, plural in the English": (
        "<p>Two running sums.</p>\n", "<p>එකතු දෙකක්.</p>\n",
        "the English says 'running sum'"),
    "learned, the other form": (
        "<p>A learned bias.</p>\n", "<p>ඉගෙන ගත් නැඹුරුවක්.</p>\n", "'ඉගෙන ගත්'"),
    "serves as a calque": (
        "<p>One level serves every row.</p>\n",
        "<p>එක් මට්ටමක් සෑම පේළියකටම සේවය කරයි.</p>\n", "'සේවය කර'"),
    "against as in opposition": (
        "<p>Tested against the paper's formula.</p>\n",
        "<p>ලිපියේ සූත්‍රයට එරෙහිව පරීක්ෂා කර ඇත.</p>\n", "'එරෙහිව'"),
    "local as domestic": ("<p>AFT-local</p>\n", "<p>AFT-දේශීය</p>\n", "'දේශීය'"),
    "far keys as ඈත": ("<p>The far keys.</p>\n", "<p>ඈත යතුරු.</p>\n", "the English says 'far key'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_values_are_caught(case):
    english, value, message = BAD[case]
    problems = glossary.check_value(english, value, RULES)
    assert any(message in p for p in problems), problems


GOOD = {
    "kept word with a Sinhala number": ("<p>Every run's flags are saved.</p>\n",
                                        "<p>සෑම ධාවනයකම flag සියල්ල සුරැකේ.</p>\n"),
    "a plural inside code is code": (f"<p>Pass <code>--flags</code> or {P0}.</p>\n",
                                     f"<p><code>--flags</code> හෝ {P0} දෙන්න.</p>\n"),
    "running sum, inflected": ("<p>The running sums of the blocks.</p>\n",
                               "<p>කොටස්වල ධාවන එකතු.</p>\n"),
    "running sum, other case": ("<p>the running sum</p>\n", "<p>ධාවන එකතුවේ</p>\n"),
    "a term inside a word is not the term": ("<p>Unlearned windowless paddings-free.</p>\n",
                                             "<p>වෙනත් දෙයක්.</p>\n"),
    "a term only in the math is not in the prose": (f"<p>See {P0}.</p>\n", f"<p>{P0} බලන්න.</p>\n"),
    "far keys as the glossary says": ("<p>The far keys.</p>\n", "<p>දුර යතුරු.</p>\n"),
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_values_pass(case):
    english, value = GOOD[case]
    assert glossary.check_value(english, value, RULES) == []


GLOSSARY = """# A glossary

| English | Sinhala | note |
|---|---|---|
| flag | flag | kept |

| kept word | plural not to write |
|---|---|
| flag | flags |

| English in the key | Sinhala in the value |
|---|---|
| running sum | ධාවන එකතු / ධාවන මුළු |

| do not write | write instead |
|---|---|
| එරෙහිව | සමඟ සසඳා |

| page | paragraph starts with | rule |
|---|---|---|
| m.json | <p>Running | running sum |
| n.json | | * |
"""


def test_tables_are_read_by_their_header_and_alternatives_split():
    rules = glossary.parse(GLOSSARY)
    assert rules.plurals == {"flags": "flag"}  # the human table above is not a rule table
    assert rules.required == {"running sum": ["ධාවන එකතු", "ධාවන මුළු"]}
    assert glossary.check_value("<p>a running sum</p>", "<p>ධාවන මුළුව</p>", rules) == []
    assert rules.excused == [("m.json", "<p>Running", "running sum"), ("n.json", "", "*")]


def test_a_malformed_row_names_the_glossary_line():
    bad = GLOSSARY.replace("| flag | flags |", "| flag |")
    with pytest.raises(LiterateError) as error:
        glossary.parse(bad, "translations/si/glossary.md")
    assert error.value.line == 9 and "translations/si/glossary.md:9:" in str(error.value)


def test_an_excuse_must_name_a_rule():
    with pytest.raises(LiterateError, match="no table of the glossary has"):
        glossary.parse(GLOSSARY.replace("| running sum |\n| n.json", "| runing sum |\n| n.json"))


def test_translate_check_applies_the_glossary(tmp_path, monkeypatch, capsys):
    """A tiny project: the check fails on the glossary's rules, names the file, and passes once
    the value is fixed or excused; a language without rule tables is not checked."""
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nextra:\n  literate:\n    source_language: en\n"
        "    languages: {en: English, si: සිංහල}\n    pages: [m.py]\n", "utf-8")
    (tmp_path / "m.py").write_text('"""\n# Running sums\n\nThe flags.\n"""\n')
    folder = tmp_path / "translations" / "si"
    folder.mkdir(parents=True)
    file = folder / "m.json"
    file.write_text(json.dumps({"<p>The flags.</p>\n": "<p>flags.</p>\n",
                                "Running sums": "එකතු"}, ensure_ascii=False), "utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["translate", "check", "si"]) == 0  # no glossary: nothing to apply
    (folder / "glossary.md").write_text(GLOSSARY.replace("| m.json |", "| x.json |"), "utf-8")
    capsys.readouterr()
    assert cli.main(["translate", "check", "si"]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert any("m.json: key" in e and "English plural 'flags'" in e for e in errors), errors
    assert any("m.json: key" in e and "the English says 'running sum'" in e for e in errors)
    Catalog(file, {"<p>The flags.</p>\n": "<p>flag.</p>\n", "Running sums": "එකතු"}).write()
    (folder / "glossary.md").write_text(GLOSSARY.replace("<p>Running", "Running"), "utf-8")
    assert cli.main(["translate", "check", "si"]) == 0


def test_the_repository_passes_its_own_glossary():
    problems = []
    for file in sorted(SI.rglob("*.json")):
        if not file.name.endswith(".meta.json"):
            problems += glossary.check_catalog(Catalog.read(file), "si", SI / "glossary.md")
    assert problems == []
