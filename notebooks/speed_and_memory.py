# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Speed and memory
#
# This notebook measures the time and memory of AFT-local and of softmax attention on the
# device it runs on, a CPU or a GPU, and plots how they grow with the length of the sequence.
#
# The paper's Table 1 gives AFT-local $O(Tsd)$ time and $O(Td)$ memory, where softmax
# attention needs $O(T^2 d)$ time. We time one forward and backward pass (a training step's
# worth of work) at growing sequence lengths $T$:
#
# * **ours**, `aft_local` of this repository, causal;
# * **SDPA**, PyTorch's `scaled_dot_product_attention`, causal, one head of the same width:
#   softmax attention as fast as PyTorch makes it (on a GPU, FlashAttention).
#
# [The benchmark page](https://aft-annotated.github.io/aft-annotated/aft/bench.html) has the
# full CPU table, with labml-nn's AFT-local as well.

# %%
import importlib.util
import subprocess
import sys
from pathlib import Path

REPOSITORY = "https://github.com/aft-annotated/aft-annotated"
if importlib.util.find_spec("aft") is None:
    if "google.colab" in sys.modules:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPOSITORY}"],
                       check=True)
    elif (Path.cwd().parent / "aft").is_dir():  # a clone, not installed: use it as it is
        sys.path.insert(0, str(Path.cwd().parent))

# %% tags=["parameters"]
# "auto": long sequences on a GPU, shorter ones on a CPU; "smoke" is the tests' size.
SIZE = "auto"

# %%
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if SIZE == "auto":
    SIZE = "full" if DEVICE == "cuda" else "small"
# d channels, window s, the lengths T, and the seconds of timed runs per measurement
SIZES = {
    "full": dict(d=512, window=256, lengths=[1024 * 2**i for i in range(7)], budget=1.0),
    "small": dict(d=512, window=256, lengths=[1024, 2048, 4096, 8192], budget=1.0),
    "smoke": dict(d=32, window=16, lengths=[128, 256], budget=0.01),
}
D, WINDOW, LENGTHS, BUDGET = (SIZES[SIZE][key] for key in ("d", "window", "lengths", "budget"))
print(f"size {SIZE!r} on {DEVICE}: d = {D}, s = {WINDOW}, T = {LENGTHS}")

# %% [markdown]
# ## How we measure
#
# On a CPU we use the benchmark of this repository, `aft.bench.measure`, in a fresh process
# for each measurement: the time is the median of a few runs after a warm-up, and the memory
# is the peak resident memory of that process above what its inputs took.
#
# On a GPU the same runs are timed with the device synchronised before the clock is read, and
# memory is the peak that PyTorch's allocator handed out, above the inputs.

# %%
import statistics
import time

from aft import aft_local
from aft.bench import measure_in_fresh_process


def cuda_run(method: str, seq: int):
    """Inputs on the GPU and a function doing one forward and backward pass of `method`."""
    def tensor(*shape):
        return torch.randn(*shape, device="cuda", requires_grad=True)

    if method == "ours":
        q, k, v, band = tensor(1, seq, D), tensor(1, seq, D), tensor(1, seq, D), tensor(seq, WINDOW)
        return lambda: aft_local(q, k, v, band, causal=True).sum().backward()
    q, k, v = tensor(1, 1, seq, D), tensor(1, 1, seq, D), tensor(1, 1, seq, D)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    return lambda: sdpa(q, k, v, is_causal=True).sum().backward()


def cuda_measure(method: str, seq: int) -> dict:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run = cuda_run(method, seq)
    inputs = torch.cuda.memory_allocated() - base
    run()  # warm-up
    torch.cuda.synchronize()
    times = []
    while not times or (sum(times) < BUDGET and len(times) < 20):
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() - base - inputs
    return {"seconds": statistics.median(times), "peak_mib": peak / 2**20}


def measure(method: str, seq: int) -> dict:
    if DEVICE == "cuda":
        return cuda_measure(method, seq)
    return measure_in_fresh_process(method, seq, D, WINDOW, BUDGET)


# %% [markdown]
# ## The measurements

# %%
rows = []
print(f"{'T':>6} {'ours (ms)':>10} {'SDPA (ms)':>10} {'ours (MiB)':>11} {'SDPA (MiB)':>11}")
for seq in LENGTHS:
    ours, sdpa = measure("ours", seq), measure("sdpa", seq)
    rows.append({"seq": seq, "ours": ours, "sdpa": sdpa})
    print(f"{seq:>6} {1e3 * ours['seconds']:>10.2f} {1e3 * sdpa['seconds']:>10.2f} "
          f"{ours['peak_mib']:>11.1f} {sdpa['peak_mib']:>11.1f}")

# %% [markdown]
# ## The plot
#
# Both axes are logarithmic, so a cost that grows as $T^p$ is a straight line of slope $p$:
# AFT-local's lines should have slope 1. SDPA's time should bend toward slope 2 once $T$ is
# large. Its memory does not: fused attention kernels never store the $T \times T$ matrix
# either. At small $T$ fixed costs dominate and the lines are flat.

# %%
import matplotlib.pyplot as plt

fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(10, 4))
lengths = [row["seq"] for row in rows]
for method, label in (("ours", "AFT-local (ours)"), ("sdpa", "SDPA")):
    ax_time.plot(lengths, [1e3 * row[method]["seconds"] for row in rows], marker="o",
                 label=label)
    ax_memory.plot(lengths, [max(row[method]["peak_mib"], 0.01) for row in rows], marker="o",
                   label=label)
for ax, label in ((ax_time, "forward + backward (ms)"), (ax_memory, "peak memory (MiB)")):
    ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel=label)
    ax.grid(alpha=0.3)
ax_time.legend()
fig.suptitle(f"{DEVICE}, float32, batch 1, d = {D}, s = {WINDOW}")
fig.tight_layout()
plt.show()

growth = rows[-1]["ours"]["seconds"] / rows[0]["ours"]["seconds"]
print(f"T grew {lengths[-1] // lengths[0]}x; our time grew {growth:.1f}x, "
      f"SDPA's {rows[-1]['sdpa']['seconds'] / rows[0]['sdpa']['seconds']:.1f}x")
