"""Shared fixtures. The site is built once per test session: a build takes a few seconds."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
