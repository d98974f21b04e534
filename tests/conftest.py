"""Shared fixtures. Each site is built once per test session: a build takes a few seconds."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(autouse=True)
def _seeded_torch():
    """Every test starts from the same random state, whatever ran before it: a test that
    draws unseeded inputs draws the same ones in any order, alone or in the whole suite."""
    import torch

    torch.manual_seed(0)


@dataclass
class BuiltSite:
    path: Path  # the built site/
    seconds: float  # how long the clean build took
    missing: int  # listed sources that do not exist (yet)
    warnings: list[str]  # what MkDocs and we logged at WARNING or above


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> BuiltSite:
    """A clean build of this repository's site into a temporary folder (not ./site)."""
    from literate import site

    out = tmp_path_factory.mktemp("clean-build")
    records: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("mkdocs").addHandler(handler)
    try:
        started = time.perf_counter()
        missing = site.build(ROOT, site_dir=out / "site", cache_dir=out / "build")
        seconds = time.perf_counter() - started
    finally:
        logging.getLogger("mkdocs").removeHandler(handler)
    return BuiltSite(out / "site", seconds, missing, records)


P0, P1 = ('<span translate=no>_^_0_^_</span>', '<span translate=no>_^_1_^_</span>')
LINK = '<p>See <a href="https://arxiv.org/abs/2105.14103">the paper</a> for ' + P0 + ".</p>\n"
TWO = f"<p>The keys {P0} and the values {P1}.</p>\n"
HOSTILE_ENGLISH = (LINK, TWO)

# Each hostile value, the English it pretends to translate, and what check must say about it.
HOSTILE = {
    "script": (LINK, f'<p>ලිපිය <a href="https://arxiv.org/abs/2105.14103">බලන්න</a> {P0}'
                     "<script>window.__pwned = 1</script></p>\n", "<script> is not allowed"),
    "event handler": (LINK, f'<p><a href="https://arxiv.org/abs/2105.14103" '
                            f'onmouseover="window.__pwned = 1">ලිපිය</a> {P0}</p>\n',
                      "event handler attribute onmouseover= is not allowed"),
    "event handler on a new tag": (LINK, f'<p><a href="https://arxiv.org/abs/2105.14103">ලිපිය'
                                         f'</a> {P0}<b onclick="window.__pwned=1">!</b></p>\n',
                                   "event handler attribute onclick= is not allowed"),
    "javascript: link": (LINK, f'<p><a href="javascript:window.__pwned=1">ලිපිය</a> {P0}</p>\n',
                         "javascript: URL in href= is not allowed"),
    "javascript: link, disguised": (LINK, f'<p><a href=" JaVa&#x09;script:window.__pwned=1">'
                                          f"ලිපිය</a> {P0}</p>\n",
                                    "javascript: URL in href= is not allowed"),
    "foreign link": (LINK, f'<p><a href="https://evil.example/">ලිපිය</a> {P0}</p>\n',
                     "link to 'https://evil.example/' is not one of the English's links"),
    "nested link": (LINK, f'<p><a href="https://arxiv.org/abs/2105.14103">ලිපිය <a href='
                          f'"https://arxiv.org/abs/2105.14103">x</a></a> {P0}</p>\n',
                    "nested <a>"),
    "lost placeholder": (TWO, f"<p>යතුරු {P0} සහ අගයන්.</p>\n", f"lost placeholder {P1}"),
    "extra placeholder": (LINK, f'<p><a href="https://arxiv.org/abs/2105.14103">ලිපිය</a> {P0}'
                                f" {P1}</p>\n", f"extra placeholder {P1}"),
    "doubled placeholder": (TWO, f"<p>යතුරු {P0} {P0} සහ අගයන් {P1}.</p>\n",
                            f"placeholder {P0} appears 2 times"),
    "broken placeholder": (TWO, f"<p>යතුරු _^_0_^_ සහ අගයන් {P1}.</p>\n",
                           "outside its <span translate=no>"),
    "unbalanced tags": (TWO, f"<p>යතුරු <strong>{P0} සහ අගයන් {P1}.</p>\n",
                        "unbalanced tags"),
    "unclosed tag": (TWO, f"<p>යතුරු {P0} සහ අගයන් {P1}.\n", "<p> is never closed"),
    "new tag": (TWO, f"<p>යතුරු {P0} සහ <em>අගයන්</em> {P1}.</p>\n",
                "tag <em> is not in the English"),
    "new attribute": (LINK, f'<p><a href="https://arxiv.org/abs/2105.14103" style="color:red">'
                            f"ලිපිය</a> {P0}</p>\n", "attribute style= on <a>"),
    "image": (TWO, f'<p>යතුරු {P0} සහ අගයන් {P1}.<img src="x" onerror="window.__pwned=1"></p>\n',
              "<img> is not allowed"),
    "iframe": (TWO, f'<p>යතුරු {P0} සහ අගයන් {P1}.<iframe src="https://evil.example/">'
                    "</iframe></p>\n", "<iframe> is not allowed"),
    "comment": (TWO, f"<p>යතුරු {P0} <!-- x --> සහ අගයන් {P1}.</p>\n", "comments"),
    "HTML in a title": ("Attention", "<b>අවධානය</b>", "tag <b> is not in the English"),
    "conjunct without ZWJ": (TWO, f"<p>ප්රමාණය {P0} {P1}</p>\n", "ZWJ"),
}

# The cases a built page could show (a spelling slip is fixed by the build, a title is no
# paragraph): each gets a paragraph of its own in the hostile site.
PAGE_CASES = [c for c in sorted(HOSTILE) if c not in ("conjunct without ZWJ", "HTML in a title")]


@dataclass
class HostileSite:
    root: Path
    site: Path
    cases: list[int]  # case numbers, as in "(case 3)" in each paragraph
    report: list[str]  # what the build reported


@pytest.fixture(scope="session")
def hostile_site(tmp_path_factory) -> HostileSite:
    """A one-page site whose Sinhala file holds every hostile value, built once."""
    from literate import site, translations

    root = tmp_path_factory.mktemp("hostile")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["extra"]["literate"]["pages"] = ["h.py"]
    (root / "mkdocs.yml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    shutil.copytree(ROOT / "docs", root / "docs",
                    ignore=shutil.ignore_patterns("index.md", "translating.md"))
    (root / "node_modules").symlink_to(ROOT / "node_modules")
    lines = ['"""\n# Hostile\n"""\n']
    for number, case in enumerate(PAGE_CASES):
        english = HOSTILE[case][0]
        prose = ("See [the paper](https://arxiv.org/abs/2105.14103) for $x$" if english == LINK
                 else "The keys $k$ and the values $v$")
        lines.append(f"\n# {prose} (case {number}).\nx{number} = {number}\n")
    source = "".join(lines)
    (root / "h.py").write_text(source)
    strings = {"Hostile": '<b onclick="window.__pwned = 1">Hostile</b>'}
    for key in translations.ordered_keys("h.py", source):
        if "(case " in key:
            number = int(key.split("(case ")[1].split(")")[0])
            strings[key] = HOSTILE[PAGE_CASES[number]][1]
    (root / "translations/si").mkdir(parents=True)
    (root / "translations/si/h.json").write_text(json.dumps(strings, ensure_ascii=False), "utf-8")
    report: list[str] = []
    site.build(root, site_dir=root / "site", cache_dir=root / "build", report=report)
    return HostileSite(root, root / "site", list(range(len(PAGE_CASES))), report)


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium, launched once. Skipped where it is missing, except in CI
    (`CI=true`), where a missing browser is a failure: CI must never pass by testing less."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (install Debian's chromium: make chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def serve(folder: Path):
    """A folder over HTTP on 127.0.0.1 (search needs http://, not file://)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A slice of Shakespeare in a file, so each training run reads it in milliseconds."""
    from aft.data import CharCorpus

    path = tmp_path_factory.mktemp("corpus") / "slice.txt"
    shakespeare = CharCorpus()
    path.write_text(shakespeare.vocab.decode(shakespeare.train[:60_000]))
    return str(path)
