"""The sources in aft/ are the site's pages: their docstrings must survive as written."""

import ast
from pathlib import Path

import pytest

SOURCES = sorted((Path(__file__).resolve().parent.parent / "aft").glob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_docstrings_hold_no_escaped_control_characters(path):
    """`"\\times"` in a non-raw string is a tab and "imes": math docstrings must be raw."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False) or ""
            bad = sorted({repr(c) for c in doc if c in "\t\a\b\f\v\r"})
            name = getattr(node, "name", "the module")
            assert not bad, f"{path.name}: docstring of {name} has {bad}"
