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
PACKAGES = {"aft": f"git+{REPOSITORY}"}  # module: what pip installs for it
if "google.colab" in sys.modules:
    missing = [package for module, package in PACKAGES.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *missing],
                       check=True)
elif importlib.util.find_spec("aft") is None and (Path.cwd().parent / "aft").is_dir():
    sys.path.insert(0, str(Path.cwd().parent))  # a clone, not installed: use it as it is

# %% tags=["parameters"]
# "auto": long sequences on a GPU ("full"), up to T = 16384 on a CPU ("cpu"); "smoke": the tests'.
SIZE = "auto"

# %%
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if SIZE == "auto":
    SIZE = "full" if DEVICE == "cuda" else "cpu"
# d channels, window s, the lengths T, and the seconds of timed runs per measurement
SIZES = {
    "full": dict(d=512, window=256, lengths=[1024 * 2**i for i in range(7)], budget=1.0),
    "cpu": dict(d=256, window=128, lengths=[1024 * 2**i for i in range(5)], budget=1.0),
    "smoke": dict(d=32, window=16, lengths=[128, 256], budget=0.01),
}
D, WINDOW, LENGTHS, BUDGET = (SIZES[SIZE][key] for key in ("d", "window", "lengths", "budget"))
print(f"size {SIZE!r} on {DEVICE}: d = {D}, s = {WINDOW}, T = {LENGTHS}")

# %% [markdown]
# ## How we measure
#
# On a CPU we use the benchmark of this repository, `aft.bench`. For the time, both methods
# run in one fresh process, taking turns after a warm-up, one run each per round, and each
# keeps the median of its runs: a slow spell of the machine slows both alike, so their ratio
# holds even on a busy computer. For the memory, each method runs once more in a fresh process
# of its own, and its memory is how far the process's peak resident memory rose above what it
# held before the inputs were made. In that run every allocation above 64 KiB gets pages of its
# own, given back when it is freed, so the peak counts what was alive at one time.
#
# On a GPU each method is timed alone, with the device synchronised before the clock is read,
# and its memory is the peak that PyTorch's allocator handed out, above the inputs.

# %%
import os
import statistics
import time

from aft import aft_local
from aft.bench import in_fresh_process, measure_in_fresh_process

# every allocation above 64 KiB in pages of its own: peak resident memory = peak live memory
MEMORY_ENV = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")


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


def measure(seq: int) -> dict:
    """Both methods at length `seq`: `{method: {"seconds": …, "peak_mib": …}}`."""
    if DEVICE == "cuda":
        return {method: cuda_measure(method, seq) for method in ("ours", "sdpa")}
    seconds = in_fresh_process(f"measure_in_turns(['ours', 'sdpa'], {seq}, {D}, {WINDOW}, "
                               f"{BUDGET})", f"T={seq}")
    return {method: {"seconds": seconds[method],
                     "peak_mib": measure_in_fresh_process(method, seq, D, WINDOW, 0.0,
                                                          env=MEMORY_ENV)["peak_mib"]}
            for method in ("ours", "sdpa")}


# %% [markdown]
# ## The measurements

# %%
rows = []
print(f"{'T':>6} {'ours (ms)':>10} {'SDPA (ms)':>10} {'SDPA/ours':>10} {'ours (MiB)':>11} "
      f"{'SDPA (MiB)':>11}")
for seq in LENGTHS:
    result = measure(seq)
    ours, sdpa = result["ours"], result["sdpa"]
    rows.append({"seq": seq, **result})
    print(f"{seq:>6} {1e3 * ours['seconds']:>10.2f} {1e3 * sdpa['seconds']:>10.2f} "
          f"{sdpa['seconds'] / ours['seconds']:>10.2f} {ours['peak_mib']:>11.1f} "
          f"{sdpa['peak_mib']:>11.1f}")

# %% [markdown]
# ## The plot
#
# Both axes are logarithmic, so a cost that grows as $T^p$ is a straight line of slope $p$:
# AFT-local's lines should have slope 1. SDPA's time should bend toward slope 2 once $T$ is
# large. Its memory does not: fused attention kernels never store the $T \times T$ matrix
# either. At small $T$ fixed costs dominate and the lines are flat.

# %%
import matplotlib.pyplot as plt

memory_label = ("peak resident memory above the inputs (MiB)" if DEVICE == "cpu"
                else "peak allocated memory above the inputs (MiB)")
fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(11, 4.5))
lengths = [row["seq"] for row in rows]
for method, label in (("ours", "AFT-local (ours)"), ("sdpa", "SDPA")):
    ax_time.plot(lengths, [1e3 * row[method]["seconds"] for row in rows], marker="o",
                 label=label)
    ax_memory.plot(lengths, [max(row[method]["peak_mib"], 0.01) for row in rows], marker="o",
                   label=label)
for ax, title, label in ((ax_time, "time", "forward + backward (ms)"),
                         (ax_memory, "memory", memory_label)):
    ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel=label, title=title)
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend()
fig.suptitle(f"AFT-local and SDPA on {DEVICE}, float32, batch 1, d = {D}, s = {WINDOW}")
fig.tight_layout()
plt.show()

first, last = rows[0], rows[-1]
print(f"At T = {last['seq']}, SDPA takes {last['sdpa']['seconds'] / last['ours']['seconds']:.1f} "
      f"times as long as AFT-local.")
print(f"T grew {last['seq'] // first['seq']}x: our time grew "
      f"{last['ours']['seconds'] / first['ours']['seconds']:.1f}x, SDPA's "
      f"{last['sdpa']['seconds'] / first['sdpa']['seconds']:.1f}x.")
