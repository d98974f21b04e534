"""The fused Triton kernel on every machine: tests/triton_interpreted.py, run by Triton's
interpreter on the CPU in a process of its own (see that file for why)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

HERE = Path(__file__).resolve().parent


def test_kernels_under_the_interpreter_equal_the_formula():
    env = dict(os.environ, TRITON_INTERPRET="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent),
                                                      env.get("PYTHONPATH")]))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-W", "error::pytest.PytestUnknownMarkWarning",
                          str(HERE / "triton_interpreted.py")],
                         cwd=HERE.parent, env=env, capture_output=True, text=True)
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout
