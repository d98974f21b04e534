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
# d channels, window s, the lengths T, the seconds of timed runs per measurement, CPU threads
SIZES = {
    "full": dict(d=512, window=256, lengths=[1024 * 2**i for i in range(7)], budget=1.0,
                 threads=None),
    "cpu": dict(d=256, window=128, lengths=[1024 * 2**i for i in range(5)], budget=1.0,
                threads=1),
    "smoke": dict(d=32, window=16, lengths=[128, 256], budget=0.01, threads=1),
}
D, WINDOW, LENGTHS, BUDGET, THREADS = (SIZES[SIZE][key] for key in
                                       ("d", "window", "lengths", "budget", "threads"))
print(f"size {SIZE!r} on {DEVICE}: d = {D}, s = {WINDOW}, T = {LENGTHS}")

# %% [markdown]
# ## How we measure
#
# On a CPU we use the benchmark of this repository, `aft.bench`, with one thread: on a busy
# computer, threads that wait for one another would time their waiting. Both methods run in
# one fresh process, taking turns after a warm-up, one run each per round, and each keeps the
# median of its runs: a slow spell of the machine slows both alike, so their ratio holds. On a
# GPU each method is timed alone, with the device synchronised before the clock is read.
#
# For the memory we count what a training step must keep from the forward pass to the
# backward pass: the tensors autograd saves, inputs included, each counted once. PyTorch shows
# them to us as they are saved (`torch.autograd.graph.saved_tensors_hooks`), on a CPU as on a
# GPU. The short-lived temporaries inside each operation are not in that count, so it is a
# floor on what a step needs; it is the part that stays alive for the whole step.

# %%
import os
import statistics
import time

from aft import aft_local
from aft.bench import in_fresh_process


def forward(method: str, seq: int):
    """Inputs of length `seq` on the device, and a function doing a forward pass of `method`
    down to one number, ready for `.backward()`."""
    def tensor(*shape):
        return torch.randn(*shape, device=DEVICE, requires_grad=True)

    if method == "ours":
        q, k, v, band = tensor(1, seq, D), tensor(1, seq, D), tensor(1, seq, D), tensor(seq, WINDOW)
        return lambda: aft_local(q, k, v, band, causal=True).sum()
    q, k, v = tensor(1, 1, seq, D), tensor(1, 1, seq, D), tensor(1, 1, seq, D)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    return lambda: sdpa(q, k, v, is_causal=True).sum()


def kept_for_backward_mib(method: str, seq: int) -> float:
    """MiB of the tensors autograd saves in one forward pass, each storage counted once."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    run = forward(method, seq)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return sum(storages.values()) / 2**20


def cuda_seconds(method: str, seq: int) -> float:
    """The median time of one forward and backward pass on the GPU."""
    run = forward(method, seq)
    run().backward()  # warm-up
    torch.cuda.synchronize()
    times = []
    while not times or (sum(times) < BUDGET and len(times) < 20):
        start = time.perf_counter()
        run().backward()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(seq: int) -> dict:
    """Both methods at length `seq`: `{method: {"seconds": …, "saved_mib": …}}`."""
    if DEVICE == "cuda":
        seconds = {method: cuda_seconds(method, seq) for method in ("ours", "sdpa")}
    else:
        seconds = in_fresh_process(f"measure_in_turns(['ours', 'sdpa'], {seq}, {D}, {WINDOW}, "
                                   f"{BUDGET})", f"T={seq}",
                                   env=dict(os.environ, OMP_NUM_THREADS=str(THREADS)))
    return {method: {"seconds": seconds[method], "saved_mib": kept_for_backward_mib(method, seq)}
            for method in ("ours", "sdpa")}


# %% [markdown]
# ## The measurements

# %%
rows = []
print(f"{'T':>6} {'ours (ms)':>10} {'SDPA (ms)':>10} {'SDPA/ours':>10} {'ours (MiB)':>11} "
      f"{'SDPA (MiB)':>11}")  # MiB: saved for the backward pass
for seq in LENGTHS:
    result = measure(seq)
    ours, sdpa = result["ours"], result["sdpa"]
    rows.append({"seq": seq, **result})
    print(f"{seq:>6} {1e3 * ours['seconds']:>10.2f} {1e3 * sdpa['seconds']:>10.2f} "
          f"{sdpa['seconds'] / ours['seconds']:>10.2f} {ours['saved_mib']:>11.1f} "
          f"{sdpa['saved_mib']:>11.1f}")

# %% [markdown]
# ## The plot
#
# Both axes are logarithmic, so a cost that grows as $T^p$ is a straight line of slope $p$:
# AFT-local's lines should have slope 1. SDPA's time should bend toward slope 2 once $T$ is
# large. Its memory does not: fused attention kernels never store the $T \times T$ matrix
# either. At small $T$ fixed costs dominate and the lines are flat.

# %%
import matplotlib.pyplot as plt

fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(11, 4.5))
lengths = [row["seq"] for row in rows]
for method, label in (("ours", "AFT-local (ours)"), ("sdpa", "SDPA")):
    ax_time.plot(lengths, [1e3 * row[method]["seconds"] for row in rows], marker="o",
                 label=label)
    ax_memory.plot(lengths, [row[method]["saved_mib"] for row in rows], marker="o", label=label)
for ax, title, label in ((ax_time, "time", "forward + backward (ms)"),
                         (ax_memory, "memory", "saved for the backward pass (MiB)")):
    ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel=label, title=title)
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend()
threads = f", {THREADS} thread" + "s" * (THREADS > 1) if DEVICE == "cpu" else ""
fig.suptitle(f"AFT-local and SDPA on {DEVICE}{threads}, float32, batch 1, d = {D}, s = {WINDOW}")
fig.tight_layout()
plt.show()

first, last = rows[0], rows[-1]
print(f"At T = {last['seq']}, SDPA takes {last['sdpa']['seconds'] / last['ours']['seconds']:.1f} "
      f"times as long as AFT-local.")
print(f"T grew {last['seq'] // first['seq']}x.")
print(f"Time grew {last['ours']['seconds'] / first['ours']['seconds']:.1f}x (ours), "
      f"{last['sdpa']['seconds'] / first['sdpa']['seconds']:.1f}x (SDPA).")
print(f"Memory saved for the backward pass grew "
      f"{last['ours']['saved_mib'] / first['ours']['saved_mib']:.1f}x (ours), "
      f"{last['sdpa']['saved_mib'] / first['sdpa']['saved_mib']:.1f}x (SDPA).")
