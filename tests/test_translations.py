"""The translation workflow: the seed's format, check's rules, update/prune/status, PO files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polib
import pytest
import yaml
from conftest import HOSTILE, HOSTILE_ENGLISH
from labml_seed import LABML, needs_seed
from labml_seed import README_SEED as SEED

from literate import LiterateError, cli, site, translations
from literate.translations import Catalog

ROOT = Path(__file__).resolve().parents[1]
P0, P1 = (translations.prose.PLACEHOLDER.format(n) for n in (0, 1))
LINK, TWO = HOSTILE_ENGLISH


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_check_rejects_hostile_values(case):
    english, value, message = HOSTILE[case]
    problems = translations.check_value(english, value, "si")
    assert any(message in p for p in problems), problems


def test_check_accepts_a_faithful_translation():
    value = f'<p>වැඩි විස්තර <a href="https://arxiv.org/abs/2105.14103">ලිපියේ</a> ඇත: {P0}.</p>\n'
    assert translations.check_value(LINK, value, "si") == []
    assert translations.sanitize(value) == value


def test_sanitize_rewrites_what_the_parser_saw():
    assert translations.sanitize("<p>a &lt; b &amp; <code>x</code></p>") == (
        "<p>a &lt; b &amp; <code>x</code></p>")
    assert translations.sanitize(f'<p title="a&quot;b">{P0}</p>') == (
        f'<p title="a&quot;b">{P0}</p>')


@needs_seed
def test_seed_files_read_and_pass_after_normalising():
    """labml's files (ASCII-escaped) read fine; their only problem is the missing ZWJ."""
    for file in [SEED / "readme.si.json", *LABML.glob("*.si.json")]:
        catalog = Catalog.read(file)
        assert catalog.strings
        for key, value in catalog.strings.items():
            assert translations.check_value(key, translations.normalise(value, "si"), "si") == []


@needs_seed
def test_files_are_written_in_the_seed_format(tmp_path):
    seed = json.loads((SEED / "readme.si.json").read_text(encoding="utf-8"))
    catalog = Catalog(tmp_path / "readme.json", dict(seed))
    catalog.write()
    text = (tmp_path / "readme.json").read_text(encoding="utf-8")
    assert json.loads(text) == seed  # the same object: the format is labml's
    assert text == json.dumps(seed, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert "\\u0d" not in text and "ක" in text  # Sinhala as Sinhala
    assert not (tmp_path / "readme.meta.json").exists()  # nothing else to say: no sidecar


def test_file_names_drop_the_extension():
    assert translations.file_of(Path("r"), "si", "aft/local.py") == Path(
        "r/translations/si/aft/local.json")
    assert translations.file_of(Path("r"), "si", "docs/index.md") == Path(
        "r/translations/si/docs/index.json")


def test_invalid_json_names_file_line_and_column(tmp_path):
    file = tmp_path / "bad.json"
    file.write_text('{\n "<p>a</p>\\n": "<p>අ</p>\\n",\n "b" "c"\n}\n')
    with pytest.raises(LiterateError) as error:
        Catalog.read(file)
    assert f"{file}:3:6: invalid JSON" in str(error.value)


def test_repeated_keys_are_errors(tmp_path):
    file = tmp_path / "twice.json"
    file.write_text('{"a": "අ", "a": "ආ"}\n')
    with pytest.raises(LiterateError, match="key repeated"):
        Catalog.read(file)


# ---------------------------------------------------------------------------------------------
# update, stale, orphans, prune


def keys(*paragraphs: str) -> list[str]:
    return [f"<p>{p}</p>\n" for p in paragraphs]


def test_an_edited_paragraph_keeps_its_translation_as_stale(tmp_path):
    catalog = Catalog(tmp_path / "p.json")
    old = keys("Compute the numerator of the average.", "Divide by the denominator.")
    translations.update(catalog, old)
    catalog.strings[old[0]] = "<p>සාමාන්‍යයේ ලවය ගණනය කරන්න.</p>\n"
    new = keys("Compute the numerator of the weighted average.", "Divide by the denominator.")
    assert translations.update(catalog, new) == {"added": 0, "moved": 1}
    assert catalog.strings[new[0]] == "<p>සාමාන්‍යයේ ලවය ගණනය කරන්න.</p>\n"
    assert catalog.is_stale(new[0]) and catalog.stale[new[0]]["english"] == old[0]
    assert old[0] not in catalog.strings
    lookup = translations.Lookup(catalog, "si")
    assert lookup(new[0]) == (new[0], "stale")  # the site shows the English, marked
    status = translations.status(catalog, new, "si", "p.py")
    assert (status.translated, status.missing, status.stale) == (0, 1, 1)
    # the English goes back: the translation is current again
    translations.update(catalog, old)
    assert catalog.strings[old[0]] == "<p>සාමාන්‍යයේ ලවය ගණනය කරන්න.</p>\n"
    assert not catalog.stale
    # a translator revises a stale value: no longer stale
    translations.update(catalog, new)
    catalog.strings[new[0]] = "<p>බර තැබූ සාමාන්‍යයේ ලවය ගණනය කරන්න.</p>\n"
    assert not catalog.is_stale(new[0])
    translations.update(catalog, new)
    assert not catalog.stale


def test_vanished_paragraphs_are_orphans_until_pruned(tmp_path):
    catalog = Catalog(tmp_path / "p.json")
    old = keys("A paragraph about the window size.", "Another one.")
    translations.update(catalog, old)
    catalog.strings[old[0]] = "<p>කවුළු ප්‍රමාණය ගැන ඡේදයක්.</p>\n"
    new = keys("Something completely unrelated to anything before.", "Another one.")
    translations.update(catalog, new)
    assert catalog.strings[old[0]]  # not tied to an unrelated paragraph, not deleted
    assert catalog.strings[new[0]] == ""
    assert translations.status(catalog, new, "si", "p.py").orphaned == 1
    assert translations.prune(catalog, new) == 1
    assert old[0] not in catalog.strings


def test_position_breaks_ties_between_alike_paragraphs(tmp_path):
    catalog = Catalog(tmp_path / "p.json")
    old = keys("Compute the sum of the keys.", "Some text between.",
               "Compute the sum of the values.")
    translations.update(catalog, old)
    catalog.strings.update({old[0]: "<p>යතුරු</p>\n", old[2]: "<p>අගයන්</p>\n"})
    new = keys("Compute the sums of the keys.", "Some text between.",
               "Compute the sums of the values.")
    translations.update(catalog, new)
    assert catalog.strings[new[0]] == "<p>යතුරු</p>\n"
    assert catalog.strings[new[2]] == "<p>අගයන්</p>\n"


def project(tmp_path: Path, files: dict[str, str], languages=None) -> Path:
    """A tiny project: this repository's mkdocs.yml and docs/, listing only `files`."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["extra"]["literate"]["pages"] = list(files)
    if languages:
        config["extra"]["literate"]["languages"] = languages
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    shutil.copytree(ROOT / "docs", tmp_path / "docs",
                    ignore=shutil.ignore_patterns("index.md", "translating.md"))
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    return tmp_path


def run(root: Path, *args: str, monkeypatch) -> int:
    monkeypatch.chdir(root)
    return cli.main(["translate", *args])


SOURCE = '''"""
# A page

The first paragraph, with a formula $x$.
"""

# Add one to $x$.
y = 1

# Then double it.
z = 2
'''


def test_cli_update_status_check_prune(tmp_path, monkeypatch, capsys):
    root = project(tmp_path, {"m.py": SOURCE})
    assert run(root, "update", monkeypatch=monkeypatch) == 0
    file = root / "translations/si/m.json"
    catalog = Catalog.read(file)
    assert sorted(catalog.strings) == translations.keys_of("m.py", SOURCE)
    catalog.strings = {k: ("<p>x එකකින් වැඩි කරන්න: " + P0 + "</p>\n" if "Add one" in k else v)
                       for k, v in catalog.strings.items()}
    catalog.write()
    (root / "m.py").write_text(SOURCE.replace("Add one to", "Add one to the value"))
    assert run(root, "update", monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert run(root, "status", "--json", monkeypatch=monkeypatch) == 0
    pages = json.loads(capsys.readouterr().out)["si"]["pages"]
    (status,) = [p for p in pages if p["source"] == "m.py"]  # the other is ui (ui.json)
    assert (status["translated"], status["stale"], status["missing"]) == (0, 1, 3)
    assert run(root, "check", monkeypatch=monkeypatch) == 0
    (root / "m.py").write_text(SOURCE.replace("# Add one to $x$.\n", ""))
    assert run(root, "update", monkeypatch=monkeypatch) == 0
    assert run(root, "prune", monkeypatch=monkeypatch) == 0
    assert "එකකින්" not in file.read_text(encoding="utf-8")


def test_cli_check_reports_every_hostile_value_with_context(tmp_path, monkeypatch, capsys):
    root = project(tmp_path, {"m.py": SOURCE})
    folder = root / "translations/si"
    folder.mkdir(parents=True)
    for number, case in enumerate(sorted(HOSTILE)):
        english, value, _ = HOSTILE[case]
        (folder / f"case{number}.json").write_text(json.dumps({english: value}))
    (folder / "invalid.json").write_text('{"a": "b",}')
    assert run(root, "check", monkeypatch=monkeypatch) == 1
    errors = capsys.readouterr().err
    for number, case in enumerate(sorted(HOSTILE)):
        assert f"case{number}.json: key " in errors, case
    assert "invalid.json:1:11: invalid JSON" in errors
    assert f"{len(HOSTILE) + 1} problems" in errors or "problems" in errors


def test_check_fix_normalises_conjuncts(tmp_path, monkeypatch):
    root = project(tmp_path, {"m.py": SOURCE})
    file = root / "translations/si/m.json"
    file.parent.mkdir(parents=True)
    file.write_text(json.dumps({"Then double it.": "ප්රමාණය දෙගුණ කරන්න, කාර්ය"},
                               ensure_ascii=False))
    assert run(root, "check", monkeypatch=monkeypatch) == 1
    assert run(root, "check", "--fix", monkeypatch=monkeypatch) == 0
    assert "ප්\u200dරමාණය" in file.read_text(encoding="utf-8")


def test_errors_leave_every_file_untouched(tmp_path, monkeypatch):
    root = project(tmp_path, {"m.py": SOURCE, "n.py": SOURCE.replace("double", "triple")})
    assert run(root, "update", monkeypatch=monkeypatch) == 0
    (root / "translations/si/n.json").write_text("{ not json")
    (root / "m.py").write_text(SOURCE + "\n# A new paragraph.\nw = 3\n")
    before = {p: p.read_bytes() for p in (root / "translations").rglob("*.json")}
    assert run(root, "update", monkeypatch=monkeypatch) == 1
    assert {p: p.read_bytes() for p in (root / "translations").rglob("*.json")} == before


def test_po_round_trip_with_fuzzy_stale_entries(tmp_path, monkeypatch):
    root = project(tmp_path, {"m.py": SOURCE})
    assert run(root, "update", monkeypatch=monkeypatch) == 0
    file = root / "translations/si/m.json"
    catalog = Catalog.read(file)
    double = next(k for k in catalog.strings if "double" in k)
    catalog.strings[double] = "<p>ඉන්පසු එය දෙගුණ කරන්න.</p>\n"
    catalog.write()
    (root / "m.py").write_text(SOURCE.replace("Then double it.", "Then double it, once."))
    assert run(root, "update", monkeypatch=monkeypatch) == 0
    assert run(root, "export-po", "--out", "po", monkeypatch=monkeypatch) == 0
    po = polib.pofile(str(root / "po/si/m.po"))
    [fuzzy] = [e for e in po if "fuzzy" in e.flags]
    assert fuzzy.previous_msgid == double and fuzzy.msgstr == "<p>ඉන්පසු එය දෙගුණ කරන්න.</p>\n"
    fuzzy.msgstr = "<p>ඉන්පසු එය එක් වරක් දෙගුණ කරන්න.</p>\n"
    fuzzy.flags.remove("fuzzy")
    title = po.find("A page")
    title.msgstr = "පිටුවක්"
    po.save()
    assert run(root, "import-po", "po/si/m.po", monkeypatch=monkeypatch) == 0
    catalog = Catalog.read(file)
    assert catalog.strings[fuzzy.msgid] == fuzzy.msgstr and not catalog.is_stale(fuzzy.msgid)
    assert catalog.strings["A page"] == "පිටුවක්"
    # a hostile value in a PO file: nothing at all is imported
    title.msgstr = '<a href="javascript:alert(1)">x</a>'
    fuzzy.msgstr = "<p>වෙනස්.</p>\n"
    po.save()
    before = file.read_bytes()
    assert run(root, "import-po", "po/si/m.po", monkeypatch=monkeypatch) == 1
    assert file.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# the build


@needs_seed
def test_the_seed_renders_fully_in_sinhala(tmp_path, capfd):
    """labml's README and its Sinhala file, through our pipeline: every paragraph in Sinhala."""
    root = project(tmp_path / "p", {"readme.md": (SEED / "readme.md").read_text()})
    (root / "translations/si").mkdir(parents=True)
    shutil.copy(SEED / "readme.si.json", root / "translations/si/readme.json")
    site.build(root, site_dir=tmp_path / "site", cache_dir=tmp_path / "build")
    assert "warning" not in capfd.readouterr().err
    page = (tmp_path / "site/si/readme.html").read_text(encoding="utf-8")
    seed = json.loads((SEED / "readme.si.json").read_text(encoding="utf-8"))
    assert "lit-untranslated" not in page
    title = translations.normalise(seed["An Attention Free Transformer"], "si")
    assert f"<title>{title} - " in page
    body = next(v for k, v in seed.items() if k.startswith("<h1>"))
    sinhala_words = [w for w in translations.normalise(body, "si").split()
                     if any("\u0d80" <= c <= "\u0dff" for c in w) and "<" not in w]
    assert sinhala_words and all(w in page for w in sinhala_words)


def test_hostile_values_fall_back_to_english_and_are_reported(hostile_site):
    page = (hostile_site.site / "si/h.html").read_text(encoding="utf-8")
    assert page.count('class="lit-prose lit-untranslated lit-invalid"') == len(hostile_site.cases)
    assert "__pwned" not in page and "evil.example" not in page
    assert "<title>Hostile - " in page  # the hostile title too
    assert len(hostile_site.report) == len(hostile_site.cases) + 1
    for case in hostile_site.cases:
        assert any(f"(case {case})" in line for line in hostile_site.report), case


def test_written_files_are_ordinary_files(tmp_path):
    """Written through a temporary file, but with an ordinary mode (not mkstemp's 0600)."""
    catalog = Catalog(tmp_path / "new.json", {"a": "අ"})
    catalog.write()
    assert (tmp_path / "new.json").stat().st_mode & 0o077 != 0
