r"""
# Benchmark: how fast, how much memory

The paper's Table 1 promises AFT-local $O(T s d)$ time and $O(T d)$ memory. This page
measures whether our implementation keeps that promise, against three others, for
forward plus backward (training) on this machine's CPU, float32, batch 1,
$d = 512$, window $s = 256$, $T$ from 1024 to 16384:

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
the highest resident memory during the run, minus what the process held once its
inputs existed. Run it with

```
python -m aft.bench            # the full table: a few minutes, mostly labml-nn and SDPA
python -m aft.bench --quick    # T = 1024 and 2048 only
```

It prints a table, writes `results/bench.csv` and plots `results/bench.png`.
"""

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

METHODS = ["ours", "labml", "sdpa", "floor"]
RESULTS = Path(__file__).resolve().parent.parent / "results"


# ## One measurement
#
# `setup` builds the inputs and whatever the method holds (labml-nn's $T \times T$
# bias counts: it is memory the method needs), and returns a function that runs one
# forward and backward pass.
def setup(method: str, seq: int, d: int, window: int):
    gen = torch.Generator().manual_seed(0)

    def tensor(*shape):
        return torch.randn(*shape, generator=gen).requires_grad_()

    if method == "ours":
        from aft import aft_local

        q, k, v = tensor(1, seq, d), tensor(1, seq, d), tensor(1, seq, d)
        w_band = tensor(seq, window)
        return lambda: aft_local(q, k, v, w_band, causal=True).sum().backward()
    if method == "labml":
        from labml_nn.transformers.aft import AFTLocal

        layer = AFTLocal(d, seq, window)
        layer.query = layer.key = layer.value = layer.output = torch.nn.Identity()
        # `[seq, batch, d]` layout, and an explicit causal mask (it has no default)
        q, k, v = tensor(seq, 1, d), tensor(seq, 1, d), tensor(seq, 1, d)
        mask = torch.ones(seq, seq, dtype=torch.bool).tril().unsqueeze(-1)
        return lambda: layer(query=q, key=k, value=v, mask=mask).sum().backward()
    if method == "sdpa":
        q, k, v = tensor(1, 1, seq, d), tensor(1, 1, seq, d), tensor(1, 1, seq, d)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return lambda: sdpa(q, k, v, is_causal=True).sum().backward()
    if method == "floor":
        # $T/s$ blocks of $[s, s] \times [s, 2d]$: $T \cdot s \cdot 2d$ multiply-adds
        blocks = max(seq // window, 1)
        a, x = tensor(blocks, window, window), tensor(blocks, window, 2 * d)
        return lambda: torch.bmm(a, x).sum().backward()
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def measure(method: str, seq: int, d: int, window: int, budget_s: float) -> dict:
    """Run in this process: the median time of a few runs after one warm-up, and the
    peak resident memory above what the inputs needed."""
    import resource

    # Wake up PyTorch's kernels and autograd once on a small problem, so that their
    # one-time memory is not counted against the method
    warm = torch.randn(64, 64, requires_grad=True)
    (warm @ warm).sigmoid().sum().backward()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = setup(method, seq, d, window)
    run()  # warm-up: first-touch allocations and one-time set-up
    times = []
    while not times or (sum(times) < budget_s and len(times) < 5):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "seq": seq, "seconds": statistics.median(times),
            "peak_mib": (peak - base) / 1024, "runs": len(times)}


def measure_in_fresh_process(method, seq, d, window, budget_s) -> dict:
    code = (f"import json; from aft.bench import measure; "
            f"print(json.dumps(measure({method!r}, {seq}, {d}, {window}, {budget_s})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    if out.returncode:
        raise RuntimeError(f"{method} at T={seq} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ## The table
#
# Ratios are what matter on a shared machine: every method ran under the same
# conditions, one after another, for each $T$.
def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m aft.bench", description=__doc__.split("\n")[1])
    parser.add_argument("--quick", action="store_true", help="T = 1024 and 2048 only")
    parser.add_argument("--d", type=int, default=512, help="channels (default 512)")
    parser.add_argument("--window", type=int, default=256, help="window s (default 256)")
    parser.add_argument("--max-seq", type=int, default=16384, help="largest T (default 16384)")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds of timed runs per measurement, after one warm-up")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for bench.csv/png")
    args = parser.parse_args(argv)

    lengths, seq = [], 1024
    while seq <= (2048 if args.quick else args.max_seq):
        lengths.append(seq)
        seq *= 2
    rows = []
    for seq in lengths:
        row = {"seq": seq}
        for method in METHODS:
            result = measure_in_fresh_process(method, seq, args.d, args.window, args.budget)
            row[f"{method}_s"] = round(result["seconds"], 4)
            row[f"{method}_mib"] = round(result["peak_mib"], 1)
        row["labml_over_ours"] = round(row["labml_s"] / row["ours_s"], 2)
        row["sdpa_over_ours"] = round(row["sdpa_s"] / row["ours_s"], 2)
        row["ours_over_floor"] = round(row["ours_s"] / row["floor_s"], 2)
        row["labml_mib_over_ours"] = round(row["labml_mib"] / max(row["ours_mib"], 1.0), 2)
        rows.append(row)
        print_row(row, header=len(rows) == 1)
    growth = rows[-1]["ours_s"] / rows[0]["ours_s"]
    print(f"\nours: time(T={rows[-1]['seq']}) / time(T={rows[0]['seq']}) = {growth:.1f} "
          f"(T grew {rows[-1]['seq'] // rows[0]['seq']}x)")
    write_results(rows, args)


def print_row(row, header):
    columns = ["seq", "ours_s", "labml_s", "sdpa_s", "floor_s", "labml_over_ours",
               "sdpa_over_ours", "ours_over_floor", "ours_mib", "labml_mib", "sdpa_mib",
               "labml_mib_over_ours"]
    if header:
        print(" ".join(f"{c:>12}" for c in columns))
    print(" ".join(f"{row[c]:>12}" for c in columns), flush=True)


def write_results(rows, args):
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(10, 4))
    seqs = [r["seq"] for r in rows]
    for method in METHODS:
        ax_time.plot(seqs, [r[f"{method}_s"] for r in rows], marker="o", label=method)
        ax_mem.plot(seqs, [r[f"{method}_mib"] for r in rows], marker="o", label=method)
    for ax, label in ((ax_time, "forward + backward (s)"), (ax_mem, "peak memory (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    ax_time.legend()
    fig.suptitle(f"AFT-local, CPU float32, batch 1, d={args.d}, s={args.window}")
    fig.tight_layout()
    fig.savefig(args.out / "bench.png", dpi=110, metadata={"Software": None})
    print(f"wrote {args.out / 'bench.csv'} and {args.out / 'bench.png'}")


if __name__ == "__main__":
    main()
