"""A small site of the tests' own, with this repository's theme: `docs/` (overrides, CSS)
without its pages, and KaTeX and the fonts through a link to `node_modules`."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def with_this_theme(root: Path) -> Path:
    """Make `root` and give it this site's `docs/` and `node_modules`; return `root`."""
    root.mkdir()
    shutil.copytree(ROOT / "docs", root / "docs",
                    ignore=shutil.ignore_patterns("index.md", "translating.md"))
    (root / "node_modules").symlink_to(ROOT / "node_modules")
    return root
