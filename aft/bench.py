r"""
# Benchmark: how fast, how much memory

The paper's Table 1 promises AFT-local $O(T s d)$ time and $O(T d)$ memory. This page
measures whether our implementation keeps that promise, against three others, for
forward plus backward (training) on this machine's CPU, float32, batch 1, $d$ =
{{ ../results/bench.json#config.d }} channels, a window of $s$ =
{{ ../results/bench.json#config.window }}, and $T$ from
{{ ../results/bench.json#rows.0.seq }} to {{ ../results/bench.json#summary.seq }}:

* **ours**, `aft_local` (causal), on the [AFT-local](local.py) page;
* **labml-nn**, the `AFTLocal` of the widely read annotated implementations, with its
  projections replaced by identities so that only the token mixing is timed. It builds
  the $T \times T$ bias, so its time and memory grow as $T^2$;
* **SDPA**, PyTorch's `scaled_dot_product_attention`, causal, one head of the same $d$:
  softmax attention at its most optimised, $O(T^2 d)$ time;
* **floor**, a single batched `torch.bmm` with the multiply-adds of the band itself,
  $T \cdot s$ weights times the $2d$ columns $[e^K \odot V, e^K]$: no implementation of
  AFT-local that multiplies the band can be faster than this product alone.

Each measurement runs in a fresh process, so that peak memory is that of one method:
the highest resident memory during the run, above what the process held before the
inputs and the method's parameters were made (labml-nn's $T \times T$ bias counts).
Ours and the floor are timed in one process, taking turns, so that a slow spell of the
machine slows both alike: their ratio is the tightest of the targets. Run it with

```
python -m aft.bench                  # the table: a few minutes, mostly labml-nn and SDPA
python -m aft.bench --reuse-memory   # the same, timed with glibc keeping freed memory
python -m aft.bench --quick          # T = 1024 and 2048 only
```

It prints a table and writes `results/bench.json`, `.csv`, `.md` and `.png`, which is
where every number below comes from.

## Results

Times with the memory allocator as it comes, memory measured exactly (see below):

{{ include ../results/bench.md }}

At $T$ = {{ ../results/bench.json#summary.seq }}, ours takes {{ ../results/bench.json#summary.ours_s|.2f }} s: labml-nn takes
{{ ../results/bench.json#summary.labml_over_ours|.1f }} times as long and needs
{{ ../results/bench.json#summary.labml_mib_over_ours|.1f }} times our memory, and softmax attention takes
{{ ../results/bench.json#summary.sdpa_over_ours|.1f }} times as long. From $T$ =
{{ ../results/bench.json#summary.first_seq }} to {{ ../results/bench.json#summary.seq }}, a factor of
{{ ../results/bench.json#summary.growth_of_seq }}, our memory grew from {{ ../results/bench.json#rows.0.ours_mib|.0f }} MiB to
{{ ../results/bench.json#rows.-1.ours_mib|.0f }} MiB, in proportion, as Table 1 says; labml-nn's grew from
{{ ../results/bench.json#rows.0.labml_mib|.0f }} MiB to {{ ../results/bench.json#rows.-1.labml_mib|.0f }} MiB, with the square
of $T$. Our time grew {{ ../results/bench-reuse.json#summary.growth }} times with memory reuse (below), close to
linear, but {{ ../results/bench.json#summary.growth }} times without: at the largest $T$ a $[T, d]$ float32
tensor reaches 32 MiB, above which glibc gives every new tensor fresh pages.

The allocator matters more than one would think. By default glibc hands the pages of
each large freed tensor back to the system, and the next large tensor pays to fault them
in again; our kernel makes more intermediate tensors than one matrix product does, so it
pays more. With glibc told to keep freed memory for reuse (`--reuse-memory`), at the same
$T$ ours takes {{ ../results/bench-reuse.json#summary.ours_s|.2f }} s, labml-nn
{{ ../results/bench-reuse.json#summary.labml_over_ours|.1f }} times as long and SDPA
{{ ../results/bench-reuse.json#summary.sdpa_over_ours|.1f }} times as long:

{{ include ../results/bench-reuse.md }}

Against the floor, one bare matrix product with the band's arithmetic, we take
{{ ../results/bench.json#summary.ours_over_floor|.2f }} times as long
({{ ../results/bench-reuse.json#summary.ours_over_floor|.2f }} with memory reuse). The floor's
forward and backward are three products of the band's size; ours are three too (the window,
its transpose for the keys' gradient, and the weights' gradient), but each reaches $1.25\,s$
keys per row, since blocks of $s/4$ rows start anywhere in the window. So a factor of
about 1.25 in that ratio is arithmetic. The rest is element-wise work, a handful of passes
over $[T, d]$ tensors (the exponentials, the division, the gate), which the hand-written
backward pass on the [AFT-local](local.py) page keeps to a minimum.

Blocks of $s$, $s/2$ and $s/4$ rows took
{{ ../results/bench.json#blocks.0.seconds|.2f }} s,
{{ ../results/bench.json#blocks.1.seconds|.2f }} s and
{{ ../results/bench.json#blocks.2.seconds|.2f }} s at the largest $T$
({{ ../results/bench-reuse.json#blocks.0.seconds|.2f }} s, {{ ../results/bench-reuse.json#blocks.1.seconds|.2f }} s and
{{ ../results/bench-reuse.json#blocks.2.seconds|.2f }} s with memory reuse): smaller blocks waste fewer
multiply-adds on keys outside the window, but make more, smaller products, which run less
efficiently. [AFT-local](local.py) uses $s/4$, and never fewer than 32 rows.

## On a GPU

On a GPU the same forward and backward pass, float32, batch 1, $d$ = 512,
$s$ = 256, runs five ways: the fused kernel of the [Triton page](triton.py),
the PyTorch kernel that `aft_local` runs on a CPU, that kernel through
`torch.compile`, SDPA, and labml-nn until it runs out of memory. Times in
milliseconds, peak memory in MiB above the inputs, as CUDA's allocator counts
it (`scripts/gpu-bench` runs it, with the tests and the comparison model):

{{ include ../results/gpu/bench.md }}
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

METHODS = ["ours", "labml", "sdpa", "floor"]
MAX_RUNS = 30  # timed runs per measurement at most: a steady median
RESULTS = Path(__file__).resolve().parent.parent / "results"


# ## One measurement
#
# `setup` builds the inputs and whatever the method holds (labml-nn's $T \times T$
# bias counts: it is memory the method needs), and returns a function that runs one
# forward and backward pass.
def setup(method: str, seq: int, d: int, window: int,
          blocks_per_window: int | None = None):
    gen = torch.Generator().manual_seed(0)

    def tensor(*shape):
        return torch.randn(*shape, generator=gen).requires_grad_()

    if method == "ours":
        import aft.kernel
        from aft import aft_local

        if blocks_per_window:
            aft.kernel.BLOCKS_PER_WINDOW = blocks_per_window

        q, k, v = tensor(1, seq, d), tensor(1, seq, d), tensor(1, seq, d)
        w_band = tensor(seq, window)
        return lambda: aft_local(q, k, v, w_band, causal=True).sum().backward()
    if method == "labml":
        from labml_nn.transformers.aft import AFTLocal

        layer = AFTLocal(d, seq, window)
        identity = torch.nn.Identity()
        layer.query = layer.key = layer.value = layer.output = identity
        # `[seq, batch, d]` layout, and an explicit causal mask (it has no default)
        q, k, v = tensor(seq, 1, d), tensor(seq, 1, d), tensor(seq, 1, d)
        mask = torch.ones(seq, seq, dtype=torch.bool).tril().unsqueeze(-1)
        return lambda: (
            layer(query=q, key=k, value=v, mask=mask).sum().backward()
        )
    if method == "sdpa":
        q, k, v = (
            tensor(1, 1, seq, d),
            tensor(1, 1, seq, d),
            tensor(1, 1, seq, d),
        )
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return lambda: sdpa(q, k, v, is_causal=True).sum().backward()
    if method == "floor":
        # $T/s$ blocks of $[s, s] \times [s, 2d]$: $T \cdot s \cdot 2d$ multiply-adds
        blocks = max(seq // window, 1)
        a, x = tensor(blocks, window, window), tensor(blocks, window, 2 * d)
        return lambda: torch.bmm(a, x).sum().backward()
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def measure(method: str, seq: int, d: int, window: int, budget_s: float,
            blocks_per_window: int | None = None) -> dict:
    """Run in this process: the median time of the runs that fit the budget (at least one,
    at most `MAX_RUNS`) after one warm-up, and the peak resident memory above what the
    inputs needed."""
    import resource

    # Run the method once on a small problem first, so that one-time memory (kernels,
    # thread pools, autograd's engine) is not counted against it at the size measured
    setup(method, min(seq, 256), d, min(window, 64), blocks_per_window)()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = setup(method, seq, d, window, blocks_per_window)
    run()  # warm-up: first-touch allocations and one-time set-up
    times = []
    while not times or (sum(times) < budget_s and len(times) < MAX_RUNS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "seq": seq, "seconds": statistics.median(times),
            "peak_mib": (peak - base) / 1024, "runs": len(times)}


def measure_in_turns(methods: list[str], seq: int, d: int, window: int,
                     budget_s: float) -> dict:
    """Time several methods in this process, taking turns: after one warm-up each, rounds
    of one run of each, until each has had its budget (at most `MAX_RUNS` rounds). A slow
    spell of a shared machine then slows them alike, and their ratio holds still."""
    runs = {method: setup(method, seq, d, window) for method in methods}
    for run in runs.values():
        run()
    times = {method: [] for method in methods}
    started = time.perf_counter()
    while not times[methods[0]] or (
        time.perf_counter() - started < budget_s * len(methods)
        and len(times[methods[0]]) < MAX_RUNS
    ):
        for method, run in runs.items():
            start = time.perf_counter()
            run()
            times[method].append(time.perf_counter() - start)
    return {method: statistics.median(t) for method, t in times.items()}


def in_fresh_process(call: str, what: str, env=None):
    """`call`, a call of a function of this module, run in a new Python process."""
    code = f"import json; from aft.bench import *; print(json.dumps({call}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
    )
    if out.returncode:
        raise RuntimeError(f"{what} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_in_fresh_process(
    method, seq, d, window, budget_s, blocks_per_window=None, env=None
) -> dict:
    return in_fresh_process(
        f"measure({method!r}, {seq}, {d}, {window}, {budget_s}, "
        f"{blocks_per_window})",
        f"{method} at T={seq}",
        env,
    )


# ## The table
#
# Ratios are what matter on a shared machine: every method ran under the same
# conditions, one after another, for each $T$. Ours and the floor, whose ratio is the
# tightest target, are timed in one process, taking turns.
#
# Times are taken with the memory allocator as it comes: glibc returns a freed large
# tensor's pages to the system, and the next large tensor pays to fault them in again.
# That cost is real, but it hides how much arithmetic each method does, so
# `--reuse-memory` times again with glibc told to keep freed memory for reuse. Memory is
# measured in a separate run either way, with every tensor over 64 KiB in pages of its
# own, so that peak resident memory is peak live memory.
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m aft.bench",
        description="Speed and memory of AFT-local, fwd+bwd.")
    add = parser.add_argument
    add("--quick", action="store_true", help="T = 1024 and 2048 only")
    add("--d", type=int, default=512, help="channels (default 512)")
    add("--window", type=int, default=256, help="window s (default 256)")
    add("--max-seq", type=int, default=16384,
        help="largest T (default 16384)")
    add("--budget", type=float, default=3.0,
        help="seconds of timed runs per measurement, after one warm-up")
    add("--reuse-memory", action="store_true",
        help="let glibc reuse freed memory instead of returning it")
    add("--out", type=Path, default=None, help="folder for the results")
    add("--device", default="cpu", help="cpu, or cuda")
    add("--dtype", default="float32", help="on cuda: float32 or bfloat16")
    add("--methods", default=",".join(CUDA_METHODS), help="on cuda")
    args = parser.parse_args(argv)
    if args.device != "cpu":
        return cuda_main(args)
    args.out = args.out or RESULTS
    # Times: glibc as it comes, or told to keep freed memory (`--reuse-memory`).
    timing_env = None
    if args.reuse_memory:
        timing_env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(2**34),
                          MALLOC_TRIM_THRESHOLD_=str(2**34))
    # Memory, in a run of its own: every tensor over 64 KiB gets its own pages, returned
    # when it is freed, so peak resident memory is peak live memory. (glibc's default keeps
    # freed blocks up to 32 MiB, which would count one method's leftovers as its need.)
    memory_env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    name = "bench-reuse" if args.reuse_memory else "bench"

    lengths, seq = [], 1024
    while seq <= (2048 if args.quick else args.max_seq):
        lengths.append(seq)
        seq *= 2
    rows = []
    for seq in lengths:
        row = {"seq": seq}
        seconds = in_fresh_process(
            f"measure_in_turns(['ours', 'floor'], {seq}, {args.d}, "
            f"{args.window}, {args.budget})",
            f"T={seq}",
            timing_env,
        )
        for method in METHODS:
            if method not in seconds:
                seconds[method] = measure_in_fresh_process(
                    method, seq, args.d, args.window, args.budget,
                    env=timing_env)["seconds"]
            sized = measure_in_fresh_process(
                method, seq, args.d, args.window, 0.0, env=memory_env
            )
            row[f"{method}_s"] = round(seconds[method], 4)
            row[f"{method}_mib"] = round(sized["peak_mib"], 1)
        row["labml_over_ours"] = round(row["labml_s"] / row["ours_s"], 2)
        row["sdpa_over_ours"] = round(row["sdpa_s"] / row["ours_s"], 2)
        row["ours_over_floor"] = round(row["ours_s"] / row["floor_s"], 2)
        row["labml_mib_over_ours"] = round(
            row["labml_mib"] / max(row["ours_mib"], 1.0), 2
        )
        rows.append(row)
        print_row(row, header=len(rows) == 1)
    growth = rows[-1]["ours_s"] / rows[0]["ours_s"]
    print(f"\nours: time(T={rows[-1]['seq']}) / time(T={rows[0]['seq']}) "
          f"= {growth:.1f} (T grew {rows[-1]['seq'] // rows[0]['seq']}x)")

    # Block size: rows per block $C \approx s / n$ for $n$ = 1, 2, 4, at the largest $T$
    blocks = []
    for n in (1, 2, 4):
        result = measure_in_fresh_process(
            "ours", lengths[-1], args.d, args.window, args.budget,
            blocks_per_window=n, env=timing_env)
        blocks.append(
            {"blocks_per_window": n, "seconds": round(result["seconds"], 4)}
        )
        print(f"blocks of s/{n} rows: {result['seconds']:.3f} s")
    summary = dict(rows[-1], growth=round(growth, 1), first_seq=rows[0]["seq"],
                   growth_of_seq=rows[-1]["seq"] // rows[0]["seq"])
    write_results(name, rows, summary, blocks, args)


def print_row(row, header):
    columns = ["seq", "ours_s", "labml_s", "sdpa_s", "floor_s",
               "labml_over_ours", "sdpa_over_ours", "ours_over_floor",
               "ours_mib", "labml_mib", "sdpa_mib", "labml_mib_over_ours"]
    if header:
        print(" ".join(f"{c:>12}" for c in columns))
    print(" ".join(f"{row[c]:>12}" for c in columns), flush=True)


def write_results(name, rows, summary, blocks, args):
    """`<name>.json` (read by this page's prose), `.csv`, `.md` (a table) and `.png`."""
    args.out.mkdir(parents=True, exist_ok=True)
    config = {"d": args.d, "window": args.window, "budget_s": args.budget,
              "reuse_memory": args.reuse_memory,
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    with open(args.out / f"{name}.json", "w") as f:
        json.dump({"config": config, "rows": rows, "summary": summary,
                   "blocks": blocks}, f, indent=1)
        f.write("\n")
    with open(args.out / f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| T | ours (s) | labml-nn (s) | SDPA (s) | floor (s) "
        "| labml-nn / ours | SDPA / ours | ours / floor "
        "| ours (MiB) | labml-nn (MiB) | SDPA (MiB) |",
        "|" + "---:|" * 11,
    ]
    for r in rows:
        lines.append(
            f"| {r['seq']} | {r['ours_s']:.3f} | {r['labml_s']:.3f} "
            f"| {r['sdpa_s']:.3f} "
            f"| {r['floor_s']:.3f} | {r['labml_over_ours']:.1f}× "
            f"| {r['sdpa_over_ours']:.1f}× | {r['ours_over_floor']:.2f}× "
            f"| {r['ours_mib']:.0f} | {r['labml_mib']:.0f} "
            f"| {r['sdpa_mib']:.0f} |")
    alt = (f"Forward + backward time (left) and peak memory (right) against T "
           f"from {rows[0]['seq']} to {rows[-1]['seq']}, log-log: ours, "
           f"labml-nn, SDPA and the floor; CPU float32, d={args.d}, "
           f"s={args.window}, "
           + ("glibc keeping freed memory" if args.reuse_memory
              else "glibc as it comes"))
    lines += ["", f"![{alt}]({name}.png)", ""]
    (args.out / f"{name}.md").write_text("\n".join(lines))

    plot_time_and_memory(
        args.out / f"{name}.png",
        {m: [(r["seq"], r[f"{m}_s"]) for r in rows] for m in METHODS},
        {m: [(r["seq"], r[f"{m}_mib"]) for r in rows]
         for m in METHODS if m != "floor"},
        "forward + backward (s)",
        f"AFT-local, CPU float32, batch 1, d={args.d}, s={args.window}", alt)
    print(f"wrote {name}.json, .csv, .md and .png in {args.out}")


def plot_time_and_memory(path, times: dict, memory: dict, time_label: str,
                         title: str, alt: str):
    """The plot beside each table: time (left) and peak memory (right) of each
    method against $T$, log-log. `times` and `memory` map a method to its
    `(T, value)` points; `alt` says what the plot shows, for screen readers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, series, label in ((ax_time, times, time_label),
                              (ax_mem, memory, "peak memory (MiB)")):
        for method, points in series.items():
            if points:
                ax.plot([t for t, _ in points], [v for _, v in points],
                        marker="o", label=method)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    ax_time.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None, "Description": alt})
    plt.close(fig)


# ## On a GPU
#
# `python -m aft.bench --device cuda` (and `--dtype bfloat16`) measures
# forward plus backward on the GPU, in one process, with CUDA's own clock and
# allocator: the time is the median of the runs that fit the budget after a
# warm-up (which compiles what needs compiling); the memory is the peak that
# CUDA's allocator handed out above the inputs, in a run of its own. The
# methods: **triton**, the fused kernel of the [Triton page](triton.py);
# **pytorch**, the PyTorch kernel that `aft_local` runs on a CPU; **compiled**,
# that kernel through `torch.compile`; **sdpa**, as on the CPU; **labml**,
# labml-nn's `AFTLocal` where it is installed, until it runs out of memory.
# It writes `results/gpu/bench.json`, `.md` and `.png`
# (`bench-bfloat16.*`).
CUDA_METHODS = ["triton", "pytorch", "sdpa", "labml", "compiled"]


def pytorch_kernel(q, k, v, band, causal):
    """The PyTorch kernel itself, whatever `gated_mean` would choose here."""
    try:
        from aft.kernel import banded_weighted_mean, compute_dtype
    except ImportError:
        from aft.local import banded_weighted_mean, compute_dtype
    dtype = compute_dtype(q)
    q, k, v, band = (x.to(dtype) for x in (q, k, v, band))
    y = banded_weighted_mean(k.unsqueeze(2), v.unsqueeze(2),
                             band.unsqueeze(0), causal, gate=q.unsqueeze(2))
    return y.squeeze(2)


COMPILED = {}  # torch.compile's function, made once for every length
GPU = "cuda"


def cuda_setup(method, seq, d, window, dtype):
    gen = torch.Generator(device=GPU).manual_seed(0)

    def tensor(*shape):
        x = torch.randn(*shape, generator=gen, device=GPU, dtype=dtype)
        return x.requires_grad_()

    if method in ("triton", "pytorch", "compiled"):
        q, k, v = tensor(1, seq, d), tensor(1, seq, d), tensor(1, seq, d)
        band = tensor(seq, window)
        if method == "triton":
            from aft.triton import gated_mean as fn
        elif method == "pytorch":
            fn = pytorch_kernel
        else:
            fn = COMPILED.setdefault(
                "fn", torch.compile(pytorch_kernel, dynamic=True))
        return lambda: fn(q, k, v, band, True).sum().backward()
    if method == "sdpa":
        q, k, v = (tensor(1, 1, seq, d) for _ in range(3))
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return lambda: sdpa(q, k, v, is_causal=True).sum().backward()
    if method == "labml":
        from labml_nn.transformers.aft import AFTLocal

        layer = AFTLocal(d, seq, window).to(GPU, dtype)
        identity = torch.nn.Identity()
        layer.query = layer.key = layer.value = layer.output = identity
        q, k, v = (tensor(seq, 1, d) for _ in range(3))
        mask = torch.ones(seq, seq, dtype=torch.bool, device=GPU)
        mask = mask.tril().unsqueeze(-1)
        return lambda: layer(query=q, key=k, value=v,
                             mask=mask).sum().backward()
    raise ValueError(f"unknown method {method!r}; choose from {CUDA_METHODS}")


def cuda_measure(method, seq, d, window, dtype, budget_s) -> dict:
    """`{"ms", "mib"}`, or `{"error"}` if the method cannot run this size."""
    try:
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        run = cuda_setup(method, seq, d, window, dtype)
        run()  # warm-up, and compilation
        torch.cuda.synchronize()
        times, started = [], time.perf_counter()
        while not times or (time.perf_counter() - started < budget_s
                            and len(times) < MAX_RUNS):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        del run
        torch.cuda.empty_cache()
        # Memory: a fresh run, its gradients included
        run = cuda_setup(method, seq, d, window, dtype)
        torch.cuda.synchronize()
        inputs = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - inputs
        del run
        return {"ms": round(statistics.median(times), 3),
                "mib": round(peak / 2**20, 1),
                "inputs_mib": round((inputs - base) / 2**20, 1)}
    except Exception as error:  # out of memory, not installed, ...
        torch.cuda.empty_cache()
        first_line = (str(error).splitlines() or [""])[0][:120]
        return {"error": f"{type(error).__name__}: {first_line}"}


def cuda_main(args):
    dtype = getattr(torch, args.dtype)
    out = args.out or RESULTS / "gpu"
    name = "bench" if dtype == torch.float32 else f"bench-{args.dtype}"
    largest = 2048 if args.quick else args.max_seq
    lengths = [2**n for n in range(10, 21) if 2**n <= largest]
    methods = args.methods.split(",")
    rows, failed = [], set()
    device = torch.cuda.get_device_name()
    print(f"{device}, {args.dtype}, d={args.d}, s={args.window}")
    for seq in lengths:
        row = {"seq": seq}
        for method in methods:
            if method in failed:
                row[method] = {"error": "failed at a shorter length"}
                continue
            row[method] = cuda_measure(method, seq, args.d, args.window, dtype,
                                       args.budget)
            if "error" in row[method]:
                failed.add(method)
        rows.append(row)
        print(seq, "  ".join(f"{m} {r.get('ms', '-')} ms {r.get('mib', '-')} "
                             f"MiB" for m, r in row.items() if m != "seq"),
              flush=True)
        # Written after every length: a run stopped by a time limit keeps
        # what it measured
        write_cuda_results(out, name, rows, methods, args, device)
    print(f"wrote {name}.json, .md and .png in {out}")


def write_cuda_results(out, name, rows, methods, args, device):
    ratios = {}
    for row in rows:
        ours = row.get("triton", {}).get("ms")
        for method in (m for m in methods if m != "triton"):
            if ours and row[method].get("ms"):
                ratio = round(row[method]["ms"] / ours, 2)
                ratios.setdefault(str(row["seq"]), {})[
                    f"{method}_over_triton"] = ratio
    config = {"d": args.d, "window": args.window, "dtype": args.dtype,
              "budget_s": args.budget, "device": device,
              "torch": torch.__version__}
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}.json", "w") as f:
        json.dump({"config": config, "rows": rows, "ratios": ratios}, f,
                  indent=1)
        f.write("\n")
    header = " | ".join(f"{m} (ms) | {m} (MiB)" for m in methods)
    lines = [f"| T | {header} | SDPA / triton |",
             "|" + "---:|" * (2 * len(methods) + 2)]
    for row in rows:
        cells = " | ".join(f"{row[m].get('ms', '–')} | "
                           f"{row[m].get('mib', '–')}" for m in methods)
        ratio = ratios.get(str(row["seq"]), {}).get("sdpa_over_triton", "–")
        lines.append(f"| {row['seq']} | {cells} | {ratio}× |")
    alt = (f"Forward + backward time (left) and peak memory (right) against T "
           f"from {rows[0]['seq']} to {rows[-1]['seq']}, log-log: "
           f"{', '.join(methods)}; {device}, {args.dtype}, d={args.d}, "
           f"s={args.window}")
    lines += ["", f"![{alt}]({name}.png)", ""]
    (out / f"{name}.md").write_text("\n".join(lines))
    plot_time_and_memory(
        out / f"{name}.png",
        {m: [(r["seq"], r[m]["ms"]) for r in rows if "ms" in r[m]]
         for m in methods},
        {m: [(r["seq"], r[m]["mib"]) for r in rows if "mib" in r[m]]
         for m in methods},
        "forward + backward (ms)",
        f"AFT-local, {device}, {args.dtype}, batch 1, d={args.d}, "
        f"s={args.window}", alt)

if __name__ == "__main__":
    main()
