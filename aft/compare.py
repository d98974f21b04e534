r"""
# AFT-local against softmax attention, measured

```sh
python -m aft.compare          # 10 to 15 minutes on a 2-core CPU; writes results/
```

The paper's claim for language modelling (Table 4, Enwik8, $T = 1024$, $L = 24$, $d = 256$,
$s = 32$) is that AFT-local loses a little in loss — 1.154 against 1.130 bits per character,
+2.1% — and gains in speed and memory: 2.04 against 1.57 iterations per second (1.3×), 11.2
against 28.3 GB per GPU. This command checks the same trade on a laptop's CPU, at a size that
trains in minutes:

1. **Loss.** AFT-local and its softmax-attention twin (`aft.model`) are trained with the same
   shape, seed, batches, learning-rate schedule and number of steps at `seq_len` 256; we record
   both validation curves.
2. **Training speed and memory at `seq_len` 1024**, where attention's $O(T^2)$ starts to show:
   fresh models of the same shape, batches of the same number of characters, steps per second
   and peak memory, each in its own process so that one measurement's memory does not count in
   the other's.
3. **Generation.** Time per character at position 256 and at position 8192, for AFT-local's
   recurrent step (fixed-size state: the time should not grow) and for attention with a KV cache
   (the cache, and the time to read it, grows with the position).
4. **A text sample** from the trained AFT-local model.

### The shape, and why it is fair

Four blocks of width $d = 128$, feed-forward width $4d$, AFT-local with the paper's best window
$s = 32$ (Table 5) and bias rank $d' = 64$; attention with 4 heads of 32 channels. The two models
share everything but the mixer: embeddings, layer norms, feed-forward blocks, initialisation,
data order and optimiser, and their parameter counts differ only by AFT-local's position bias
$u, v$. The paper's model is 24 blocks of width 256; ours is smaller in depth and width so that
a CPU trains it in minutes, but it keeps the paper's ratio of window to context at 1024
($s/T = 1/32$) and a width small against $T$, which is the regime where the paper's speed
claim applies. (A very wide model is dominated by its $O(Td^2)$ projections and feed-forward
blocks, which both models share, and any mixer's cost disappears in them.)

### Reading the numbers

Two things differ from the paper's setting, and both favour attention. First, our attention is
PyTorch's `scaled_dot_product_attention`, a FlashAttention-style kernel that never stores the
$T \times T$ matrix: its memory is $O(Td)$, like AFT-local's, where the paper's 2021 baseline
stored the matrix — the source of its 28.3 against 11.2 GB. Second, on a CPU, AFT-local's
element-wise work (exponentials, products, the band's bookkeeping) is not free next to
matrix products, while on a GPU it mostly is. So expect AFT-local's speed advantage at
`seq_len` 1024 to be smaller here than on the paper's V100s, and its memory advantage to be
small or absent; the generation test is where its $O(sd)$ state shows most clearly.

Everything this command measures lands in `results/`, under stable names; the training page reads
its numbers from there:

| file | what |
|------|------|
| `compare.json` | everything: shapes, machine, losses, speeds, memory, generation times, ratios |
| `compare.csv` | one row per mixer, the table below the curves |
| `compare_val_loss.png` | validation-loss curves |
| `compare_metrics_local.csv`, `compare_metrics_attention.csv` | the full training logs |
| `compare_sample.txt` | the text sample |
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from aft import explore
from aft import train as training
from aft.data import CharCorpus
from aft.model import LanguageModel, ModelConfig, bits_per_character
from aft.sample import generate, load_model

MIXERS = ("local", "attention")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m aft.compare",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train AFT-local and softmax attention of one shape; "
                    "measure loss, speed, memory and generation time; "
                    "write results/.")
    p.add_argument("--steps", type=int, default=1500,
                   help="training steps per model")
    p.add_argument("--seq-len", type=int, default=256, help="training context")
    p.add_argument("--speed-seq-len", type=int, default=1024,
                   help="context of the speed test")
    p.add_argument("--speed-steps", type=int, default=30,
                   help="timed steps of the speed test")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--window", type=int, default=32)
    p.add_argument("--d-bias", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16,
                   help="sequences of seq-len per step")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--eval-windows", type=int, default=128,
                   help="validation windows (of seq-len characters) per "
                        "evaluation")
    p.add_argument("--gen-positions", type=int, nargs=2, default=(256, 8192),
                   help="positions at which generation time is measured")
    p.add_argument("--gen-tokens", type=int, default=64,
                   help="timed tokens per position")
    p.add_argument("--sample-length", type=int, default=600)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--corpus", default=None,
                   help="a text file; default: Shakespeare")
    p.add_argument("--runs", default="runs/compare",
                   help="checkpoints (not committed)")
    p.add_argument("--out", default="results",
                   help="where the result files go")
    p.add_argument("--device", default="cpu",
                   help="cpu, or cuda for a GPU measurement")
    p.add_argument("--quiet", action="store_true")
    return p


def train_args(args, mixer: str) -> argparse.Namespace:
    """The `aft.train` flags of one model: identical for both mixers but for `--mixer`."""
    flags = ["--mixer", mixer, "--steps", str(args.steps),
             "--seq-len", str(args.seq_len), "--d-model", str(args.d_model),
             "--n-layers", str(args.n_layers), "--heads", str(args.heads),
             "--window", str(args.window), "--d-bias", str(args.d_bias),
             "--batch-size", str(args.batch_size),
             "--eval-every", str(args.eval_every),
             "--eval-windows", str(args.eval_windows),
             "--ckpt-every", str(args.steps),
             "--warmup", str(min(100, max(1, args.steps // 10))),
             "--seed", str(args.seed), "--out", str(Path(args.runs) / mixer),
             "--device", args.device]
    if args.corpus:
        flags += ["--corpus", args.corpus]
    if args.quiet:
        flags.append("--quiet")
    return training.build_parser().parse_args(flags)


def training_step(config: dict, batch: int, device: str, seed: int):
    """A fresh model and optimiser, and a function that takes one training step on a fixed
    random batch of `batch` sequences of `config["seq_len"]` characters."""
    torch.manual_seed(seed)
    model = LanguageModel(ModelConfig(**config)).to(device)
    # The optimiser of `aft.train`, so that a step here costs what a training step costs
    optimizer = torch.optim.AdamW(training.decay_groups(model, 0.1), lr=1e-3,
                                  betas=(0.9, 0.95), fused=True)
    x = torch.randint(0, config["vocab_size"], (batch, config["seq_len"]),
                      generator=torch.Generator().manual_seed(seed)).to(device)

    def one_step(rows: int = batch, length: int = config["seq_len"]):
        inputs = x[:rows, :length]
        loss = F.cross_entropy(model(inputs).flatten(0, 1), inputs.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return one_step


def measure_speed(
    configs: dict, batch: int, steps: int, device: str, seed: int
) -> dict:
    r"""
    ## Steps per second

    Both models in one process, two untimed steps each (they allocate AdamW's moments and warm
    up the allocator), then `steps` rounds in which they take turns, one timed step each. As
    with generation, taking turns makes a slow spell of a shared machine hit both models alike.
    We report $1 / \text{median step time}$.
    """
    step_fns = {mixer: training_step(config, batch, device, seed)
                for mixer, config in configs.items()}
    for one_step in step_fns.values():
        one_step()
        one_step()
    times = {mixer: [] for mixer in configs}
    for _ in range(steps):
        for mixer, one_step in step_fns.items():
            tick = time.perf_counter()
            one_step()
            times[mixer].append(time.perf_counter() - tick)
    return {mixer: {"steps_per_s": 1 / statistics.median(t), "step_times_s": t}
            for mixer, t in times.items()}


def memory_worker(config: dict, batch: int, device: str, seed: int) -> float:
    """
    ## Peak memory

    In a fresh process, three training steps. On a CPU there is no allocator counter like
    CUDA's, so memory is the process's peak resident size minus its size just before the first
    full step: what the steps needed — the activations kept for the backward pass, the
    gradients, AdamW's moments — without Python, PyTorch and the weights. A first step on one
    short sequence loads PyTorch's kernels and thread pools, so that their memory (more than
    100 MiB) is not counted either.

    The peak is Linux's `VmHWM`, the high-water mark of this process's memory. (Not `ru_maxrss`:
    Linux carries it over from the parent into a child it starts, so a child of a large parent
    would report the parent's peak.)
    """
    one_step = training_step(config, batch, device, seed)
    one_step(rows=1, length=min(16, config["seq_len"]))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resident_bytes()
    for _ in range(3):
        one_step()
    if device.startswith("cuda"):
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    # (At toy sizes the steps fit in memory the process already had: 0, not a negative number.)
    return max(0, peak_resident_bytes() - before) / 2**20


def resident_bytes() -> int:
    """The process's current resident memory, from `/proc` (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_resident_bytes() -> int:
    """The process's peak resident memory so far, `VmHWM` in `/proc/self/status` (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def measure_memory(config: dict, batch: int, device: str, seed: int) -> float:
    """One fresh process per measurement, so that one model's memory never counts in another's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(memory_worker, (config, batch, device, seed))


@torch.no_grad()
def generation_times(
    configs: dict, positions, tokens: int, device: str, seed: int
) -> dict:
    r"""
    ## Time per generated character

    For each mixer, a model of the trained shape, with `seq_len` long enough to reach the last
    position, fed one character at a time through `step`. Weights do not change the time of a
    step, so an untrained model serves. To reach position 8192 the model steps through 8192
    characters first (that is, generation itself); on the way we keep a copy of the state at
    position 256.

    Then the four (mixer, position) pairs take turns, one step each, `tokens` rounds, and we keep
    each pair's median step time. Taking turns matters on a shared machine: when another process
    slows the CPU down for a while, it slows all four alike, and the ratios we report stay
    honest; the median drops the odd step that was interrupted.
    """
    length = max(positions) + tokens + 1
    ids = torch.randint(
        0,
        next(iter(configs.values()))["vocab_size"],
        (length,),
        generator=torch.Generator().manual_seed(seed),
    ).to(device)
    runs = []
    for mixer, config in configs.items():
        torch.manual_seed(seed)
        model = (
            LanguageModel(ModelConfig(**dict(config, seq_len=length)))
            .to(device)
            .eval()
        )
        state, position = model.init_state(1), 0
        for target in sorted(positions):
            while position < target:
                _, state = model.step(ids[position : position + 1], state)
                position += 1
            runs.append({"mixer": mixer, "start": target, "position": target,
                         "model": model, "state": copy.deepcopy(state),
                         "times": []})
    for _ in range(tokens):
        for run in runs:
            tick = time.perf_counter()
            _, run["state"] = run["model"].step(
                ids[run["position"] : run["position"] + 1], run["state"]
            )
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            run["times"].append(time.perf_counter() - tick)
            run["position"] += 1
    result = {mixer: {} for mixer in configs}
    for run in runs:
        milliseconds = 1000 * statistics.median(run["times"])
        result[run["mixer"]][str(run["start"])] = milliseconds
    return result


def plot(curves: dict, path: Path, title: str):
    """Validation loss against step, one line per mixer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"local": "AFT-local", "attention": "softmax attention"}
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=150)
    for mixer, rows in curves.items():
        steps = [r["step"] for r in rows if r["val_loss"] is not None]
        losses = [r["val_loss"] for r in rows if r["val_loss"] is not None]
        ax.plot(steps, losses, label=names.get(mixer, mixer), linewidth=1.6)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats / character)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    # The first evaluations (about ln 84 ≈ 4.4) would squash the interesting part.
    tail = [
        r["val_loss"]
        for rows in curves.values()
        for r in rows
        if r["val_loss"] is not None
    ]
    ax.set_ylim(min(tail) - 0.05, min(max(tail), min(tail) + 1.5))
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    try:
        for mixer in MIXERS:
            training.check_args(train_args(args, mixer), world=1)
        corpus = CharCorpus(args.corpus)
        corpus.check_seq_len(args.seq_len)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    report = {
        "command": "python -m aft.compare "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": args.device,
            "load_average_before": load_before,
        },
        "settings": {
            k: v
            for k, v in vars(args).items()
            if k not in ("quiet", "runs", "out")
        },
        "mixers": {},
    }

    # ## 1. Training, one model after the other
    curves = {}
    for mixer in MIXERS:
        targs = train_args(args, mixer)
        tick = time.perf_counter()
        summary = training.train(targs)
        metrics = Path(summary["out"]) / "metrics.csv"
        shutil.copyfile(metrics, out / f"compare_metrics_{mixer}.csv")
        curves[mixer] = training.read_metrics(metrics)
        config = training.model_config(targs, corpus.vocab.size).to_dict()
        report["mixers"][mixer] = {
            "parameters": summary["parameters"],
            "final_val_loss": summary["val_loss"],
            "final_val_bpc": bits_per_character(summary["val_loss"]),
            "train_steps_per_s": summary["steps_per_s"],
            "train_wall_s": time.perf_counter() - tick,
            "config": config,
        }

    # ## 2. Speed and memory at `speed_seq_len`, the same characters per step
    speed_batch = max(1, args.batch_size * args.seq_len // args.speed_seq_len)
    long_configs = {
        m: dict(report["mixers"][m]["config"], seq_len=args.speed_seq_len)
        for m in MIXERS
    }
    speed = measure_speed(
        long_configs, speed_batch, args.speed_steps, args.device, args.seed
    )
    for mixer in MIXERS:
        report["mixers"][mixer].update(
            {
                "speed_seq_len": args.speed_seq_len,
                "speed_batch": speed_batch,
                "steps_per_s_long": speed[mixer]["steps_per_s"],
                "step_times_s_long": speed[mixer]["step_times_s"],
                "peak_memory_mib_long": measure_memory(
                    long_configs[mixer], speed_batch, args.device, args.seed
                ),
            }
        )

    # ## 3. Generation time per character
    generation = generation_times(
        {m: report["mixers"][m]["config"] for m in MIXERS},
        args.gen_positions,
        args.gen_tokens,
        args.device,
        args.seed,
    )
    for mixer in MIXERS:
        report["mixers"][mixer]["generation_ms_per_token"] = generation[mixer]

    # ## 4. A sample from the trained AFT-local model, through its recurrent step
    model, vocab = load_model(
        Path(args.runs) / "local" / "ckpt.pt", args.device
    )
    prompt = "\n"
    ids = generate(model, vocab.encode(prompt)[None], args.sample_length,
                   temperature=0.8, top_k=None, seed=0)
    text = vocab.decode(ids[0])
    (out / "compare_sample.txt").write_text(text)
    report["sample"] = {
        "mixer": "local",
        "prompt": prompt,
        "temperature": 0.8,
        "top_k": None,
        "seed": 0,
        "length": args.sample_length,
        "text": text,
    }

    # ## Ratios and targets
    local, attention = report["mixers"]["local"], report["mixers"]["attention"]
    low, high = (str(p) for p in sorted(args.gen_positions))
    generation_local = local["generation_ms_per_token"]
    generation_attention = attention["generation_ms_per_token"]
    ratios = {
        "val_loss_local_over_attention":
            local["final_val_loss"] / attention["final_val_loss"],
        "steps_per_s_long_local_over_attention":
            local["steps_per_s_long"] / attention["steps_per_s_long"],
        "peak_memory_long_local_over_attention":
            local["peak_memory_mib_long"] / attention["peak_memory_mib_long"],
        "generation_high_over_low_local":
            generation_local[high] / generation_local[low],
        "generation_high_over_low_attention":
            generation_attention[high] / generation_attention[low],
    }
    report["ratios"] = ratios
    report["targets"] = {
        "val_loss_within_2_percent":
            ratios["val_loss_local_over_attention"] <= 1.02,
        "steps_per_s_long_at_least_1_5x":
            ratios["steps_per_s_long_local_over_attention"] >= 1.5,
        "local_generation_ratio_at_most_1_2":
            ratios["generation_high_over_low_local"] <= 1.2,
    }
    report["machine"]["load_average_after"] = os.getloadavg()
    report["wall_s"] = time.perf_counter() - started

    # ## Writing the files
    plot(curves, out / "compare_val_loss.png",
         f"{args.n_layers} blocks, d={args.d_model}, seq_len {args.seq_len}, "
         f"{args.steps} steps of {args.batch_size}×{args.seq_len} characters")
    (out / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    columns = ["mixer", "parameters", "final_val_loss", "final_val_bpc",
               "train_steps_per_s", "steps_per_s_long", "peak_memory_mib_long"]
    with (out / "compare.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [*columns, f"gen_ms_per_token_{low}", f"gen_ms_per_token_{high}"]
        )
        for mixer in MIXERS:
            row = report["mixers"][mixer]
            writer.writerow(
                [mixer]
                + [round(row[c], 4) if isinstance(row[c], float) else row[c]
                   for c in columns[1:]]
                + [round(row["generation_ms_per_token"][p], 4)
                   for p in (low, high)])
    # The trained AFT-local model's position biases, which the training page
    # draws (`python -m aft.figures`)
    from aft.figures import write_learned_biases
    write_learned_biases(model, out / "learned_biases.json")
    print(json.dumps({"ratios": ratios, "targets": report["targets"]},
                     indent=2))
    # The weights explorer's data (`aft.explore`), from the two models just
    # trained
    explorer_flags = ["--runs", args.runs, "--out", str(out)]
    if args.corpus:
        explorer_flags += ["--corpus", args.corpus]
    return explore.main(explorer_flags)


if __name__ == "__main__":
    sys.exit(main())
