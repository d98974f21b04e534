"""Where labml's seed files live: one setting for every test that compares with them.

labml's translation files for its AFT pages (the seed this project's format follows) are not
ours to commit. `AFT_LABML_FIXTURES` names their folder; by default it is `../shared/fixtures`
beside the repository. Where the folder is absent, the tests that need it are skipped and say why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = "AFT_LABML_FIXTURES"
FIXTURES = Path(os.environ.get(ENV) or ROOT.parent / "shared" / "fixtures")
README_SEED = FIXTURES / "labml-aft-readme"  # labml's AFT readme.md and readme.si.json
LABML = FIXTURES / "labml-aft"  # labml's {__init__,experiment}.{si,zh,ja}.json

needs_seed = pytest.mark.skipif(
    not (README_SEED / "readme.si.json").is_file() or not any(LABML.glob("*.si.json")),
    reason=f"labml's seed files not found in {FIXTURES} (set {ENV} to their folder)")
