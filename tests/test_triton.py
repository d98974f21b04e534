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


# Kernels that the interpreter runs may still fail to compile: it runs them as Python. So
# each is also compiled here, for an H100/H200 (sm_90), with the compiler and `ptxas` that
# Triton brings along: no GPU needed. Causal float32, the mode with every branch.
COMPILED = {"row_shift_kernel": {}, "key_sums_kernel": {}, "scan_kernel": {"PREFIX": True,
            "SUFFIX": True, "CHANNELS": 16}, "forward_kernel": {}, "row_sums_kernel": {},
            "key_grads_kernel": {}, "band_grads_kernel": {}}


@pytest.mark.parametrize("name", list(COMPILED))
def test_kernels_compile_for_a_hopper_gpu(name):
    import inspect

    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from aft import triton as fused

    kernel = getattr(fused, name)
    names = list(inspect.signature(kernel.fn).parameters)
    known = {"CAUSAL": True, "BLOCK": fused.MAX_BLOCK, "CHANNELS": fused.CHANNELS,
             "ACC": tl.float32, "PRECISION": fused.FLOAT32_PRODUCTS, **COMPILED[name]}
    constants = {name: known[name] for name in names if name in known}
    signature = {name: "constexpr" if name in constants else "*fp32" if name.endswith("_ptr")
                 else "fp32" if name == "tau" else "i32" for name in names}
    source = ASTSource(kernel, signature,
                       constexprs={(names.index(k),): v for k, v in constants.items()})
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": fused.WARPS})
    assert compiled.asm["cubin"]
