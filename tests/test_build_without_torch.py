"""The site build (and so the Pages workflow, which installs no torch) never imports torch
or the model: whatever the model computes reaches the site through committed files."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BUILD_WITHOUT_TORCH = """
import sys
from pathlib import Path

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "aft", "triton"):
            raise ImportError(f"the site build imported {name}")
        return None

sys.meta_path.insert(0, NoTorch())
from literate import site

out = Path(sys.argv[1])
site.build(Path.cwd(), site_dir=out / "site", cache_dir=out / "build", languages=["en"])
"""


@pytest.mark.slow
def test_the_site_builds_without_torch(tmp_path):
    result = subprocess.run([sys.executable, "-c", BUILD_WITHOUT_TORCH, str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "aft" / "local.html").is_file()
