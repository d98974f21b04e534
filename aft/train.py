r"""
# Training

```sh
python -m aft.train --mixer local            # AFT-local, CPU-sized defaults
python -m aft.train --mixer attention        # its softmax-attention twin
python -m aft.train --mixer local --resume   # continue from runs/local/ckpt.pt
torchrun --nproc_per_node=2 -m aft.train --mixer local   # data-parallel, gloo on CPU
```

This page trains the model of `aft.model` on the character corpus of `aft.data`: next-character
prediction, cross-entropy in nats per character. The defaults fit a laptop's CPU — a 4-layer,
128-wide model learns to spell Shakespeare's words in a few minutes. Every knob is a flag
(`python -m aft.train --help`), and the same code runs on a GPU (`--device cuda`, chosen by
default when there is one) and on several processes with `torchrun`.

Three promises shape the code:

* **Resume is exact.** A checkpoint holds the model, the optimiser's moments, the step and the
  random-number state; batches are a pure function of `(seed, step)` and the learning rate a pure
  function of `step`. So a run stopped at step $k$ and resumed gives, bit for bit, the losses of a
  run that never stopped. A test checks it.
* **Data parallel is the same run, faster.** `--batch-size` is the *global* batch. Each of $N$
  processes takes $1/N$ of its rows, and DDP averages the gradients, which is the gradient of the
  global batch's mean loss: one process and $N$ processes take the same steps, up to the order of
  floating-point sums.
* **Bad input fails before work starts.** A missing corpus, an unknown mixer, a window larger
  than the sequence, or a checkpoint saved for another shape stops the run with one line saying
  what to change, and a non-zero exit status.

Each run writes into `--out` (default `runs/<mixer>`): `metrics.csv` (one row per step with the
training loss, learning rate and tokens per second, and a row with the validation loss every
`--eval-every` steps), `ckpt.pt`, and `config.json`.

## Results: AFT-local against softmax attention

`python -m aft.compare` trains two models that differ only in their token mixer, AFT-local
with a window of $s$ = {{ ../results/compare.json#settings.window }} and causal softmax attention, from
the same seed, on the same batches, for {{ ../results/compare.json#settings.steps }} steps:
{{ ../results/compare.json#settings.n_layers }} blocks of width {{ ../results/compare.json#settings.d_model }}, sequences of
{{ ../results/compare.json#settings.seq_len }} characters, batches of {{ ../results/compare.json#settings.batch_size }}. It
then times a training step of both at sequences of {{ ../results/compare.json#settings.speed_seq_len }}
characters, and generation one character at a time. Every number here is read from the
files it wrote in `results/`, on this project's 2-core CPU.

{{ include ../results/compare_val_loss.png }}

| | AFT-local | attention |
|---|---:|---:|
| validation loss (nats per character) | {{ ../results/compare.json#mixers.local.final_val_loss|.4f }} | {{ ../results/compare.json#mixers.attention.final_val_loss|.4f }} |
| bits per character | {{ ../results/compare.json#mixers.local.final_val_bpc|.3f }} | {{ ../results/compare.json#mixers.attention.final_val_bpc|.3f }} |
| parameters | {{ ../results/compare.json#mixers.local.parameters|, }} | {{ ../results/compare.json#mixers.attention.parameters|, }} |
| training steps per second, long sequences | {{ ../results/compare.json#mixers.local.steps_per_s_long|.2f }} | {{ ../results/compare.json#mixers.attention.steps_per_s_long|.2f }} |
| peak memory, long sequences (MiB) | {{ ../results/compare.json#mixers.local.peak_memory_mib_long|.0f }} | {{ ../results/compare.json#mixers.attention.peak_memory_mib_long|.0f }} |
| ms per generated character at position 256 | {{ ../results/compare.json#mixers.local.generation_ms_per_token.256|.3f }} | {{ ../results/compare.json#mixers.attention.generation_ms_per_token.256|.3f }} |
| ms per generated character at position 8192 | {{ ../results/compare.json#mixers.local.generation_ms_per_token.8192|.3f }} | {{ ../results/compare.json#mixers.attention.generation_ms_per_token.8192|.3f }} |

**Loss.** AFT-local ends at {{ ../results/compare.json#ratios.val_loss_local_over_attention|.3f }} times
attention's validation loss. The paper's Enwik8 table has AFT-local 2.1% behind a
Transformer in bits per character; at this small size and short training, the learned
position bias seems to help more than the query-key comparison it replaces. One run is no
proof of which is better in general: it shows that AFT-local learns as well as attention
here.

**Speed.** At the long sequences AFT-local trains {{ ../results/compare.json#ratios.steps_per_s_long_local_over_attention|.2f }}
times as fast as attention (the paper measured 1.3 times on GPUs at $T$ = 1024). The
token mixer is only part of a step: the feed-forward layers, projections and embeddings
cost the same in both models, and PyTorch's attention kernel is well optimised for a CPU,
so the difference a mixer can make is diluted. The same holds for memory: PyTorch's
attention never stores the $T \times T$ weights either, and our AFT-local keeps a few
copies of $[T, d]$ for its backward pass, so it uses
{{ ../results/compare.json#ratios.peak_memory_long_local_over_attention|.2f }} times attention's memory
here. The [benchmark](bench.py) shows where AFT-local's linear cost pays: longer
sequences and wider windows.

**Generation.** AFT-local's recurrent step keeps a fixed state, so a character at position
8192 costs {{ ../results/compare.json#ratios.generation_high_over_low_local|.2f }} times one at position 256.
Attention's key-value cache grows with the text: {{ ../results/compare.json#ratios.generation_high_over_low_attention|.2f }}
times.

A sample from the trained AFT-local model, temperature {{ ../results/compare.json#sample.temperature }}:

{{ include ../results/compare_sample.txt }}
"""

# ![Four panels, one for each layer of the trained AFT-local model: the learned bias of each
# query, from the first position at the top to the last at the bottom, for each key in its
# window, from the nearest on the left to the furthest on the right; orange above 0, blue
# below. The first layer shows sharp vertical stripes, strongly orange for the nearest few
# keys and faintly blue further away; the later layers are paler and patchier.](../results/figures/learned-biases.svg)
#
# What AFT-local's position bias $w_{t,t'} = u_t^\top v_{t'}$ learned in this comparison, one
# panel per layer: query $t$ runs down (rows averaged in groups of
# {{ ../results/figures/settings.json#learned_biases.row_group }}), the distance $t - t'$ to the
# key runs across the window, orange above 0 and blue below. Nothing forces $u_t^\top v_{t'}$
# to depend on the distance alone, yet in the first layer the distance accounts for
# {{ ../results/learned_biases.json#offset_share.0|.0% }} of the bias's variation (in the
# last layer, {{ ../results/learned_biases.json#offset_share.3|.0% }}): the model learned a
# mostly relative bias, like AFT-conv's. On average the first layer adds
# {{ ../results/learned_biases.json#mean_by_offset.0.1 }} to the key one position back and
# {{ ../results/learned_biases.json#mean_by_offset.0.0 }} to the query's own key: it looks
# at the last few characters first.

# What the two trained models of the comparison weigh, position by position and layer by
# layer, on a passage of their validation text: the
# [weights explorer](local.py#what-the-trained-model-weighs) on the AFT-local page shows it.

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from aft.data import CharCorpus
from aft.model import MIXERS, LanguageModel, ModelConfig, count_parameters

# The flags that define a run. `--resume` refuses a checkpoint saved with different ones: the
# shape would not load, and different optimiser settings would silently break exactness.
RUN_FLAGS = ("corpus", "seed", "batch_size", "lr", "min_lr", "warmup",
             "weight_decay", "grad_clip", "eval_every", "eval_windows")
METRIC_FIELDS = ("step", "train_loss", "val_loss", "lr", "tokens_per_s",
                 "elapsed_s")


def build_parser() -> argparse.ArgumentParser:
    """
    ## Flags

    The defaults are the model the comparison on this page uses, sized for a CPU: 4 blocks of
    width 128, AFT-local with the paper's window $s = 32$ (best in its Enwik8 ablation,
    Table 5), 256 characters of context and batches of 16 sequences.
    """
    p = argparse.ArgumentParser(
        prog="python -m aft.train",
        description="Train a character-level AFT (or softmax-attention) "
                    "language model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument("--corpus", default=None,
                   help="a UTF-8 text file; default: Shakespeare from the "
                        "'shakespeare' package")
    g = p.add_argument_group("model")
    g.add_argument("--mixer", default="local", choices=MIXERS,
                   help="the token mixer")
    g.add_argument("--seq-len", type=int, default=256, help="context length T")
    g.add_argument("--d-model", type=int, default=128, help="width d")
    g.add_argument("--n-layers", type=int, default=4,
                   help="number of blocks L")
    g.add_argument("--window", type=int, default=32,
                   help="window s of AFT-local and AFT-conv")
    g.add_argument("--d-bias", type=int, default=64,
                   help="rank d' of the factorised position bias "
                        "(AFT-local, AFT-full)")
    g.add_argument("--heads", type=int, default=4,
                   help="heads of attention and AFT-conv")
    g.add_argument("--d-ff", type=int, default=None,
                   help="feed-forward width; default 4*d-model")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, default=2000,
                   help="total optimiser steps")
    g.add_argument("--batch-size", type=int, default=16,
                   help="global batch in sequences, split over DDP processes")
    g.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    g.add_argument("--min-lr", type=float, default=2e-4,
                   help="learning rate at the last step")
    g.add_argument("--warmup", type=int, default=100,
                   help="linear warm-up steps")
    g.add_argument("--weight-decay", type=float, default=0.1,
                   help="AdamW weight decay")
    g.add_argument("--grad-clip", type=float, default=1.0,
                   help="max gradient norm (0: off)")
    g.add_argument("--seed", type=int, default=1337,
                   help="seeds the weights and the batches")
    g = p.add_argument_group("run")
    g.add_argument("--out", default=None,
                   help="run directory; default runs/<mixer>")
    g.add_argument("--eval-every", type=int, default=100,
                   help="validate every N steps")
    g.add_argument("--eval-windows", type=int, default=64,
                   help="validation windows of seq-len characters")
    g.add_argument("--ckpt-every", type=int, default=500,
                   help="checkpoint every N steps")
    g.add_argument("--resume", action="store_true",
                   help="continue from <out>/ckpt.pt")
    g.add_argument("--stop-after", type=int, default=None,
                   help="stop (checkpointed) after N steps of this "
                        "invocation, as if interrupted; continue later "
                        "with --resume")
    g.add_argument("--device", default="auto",
                   help="auto, cpu, cuda, cuda:1, mps, ...")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def model_config(args, vocab_size: int) -> ModelConfig:
    return ModelConfig(
        vocab_size=vocab_size,
        seq_len=args.seq_len,
        d_model=args.d_model,
        n_layers=args.n_layers,
        mixer=args.mixer,
        window=args.window,
        d_bias=args.d_bias,
        heads=args.heads,
        d_ff=args.d_ff or 4 * args.d_model,
    )


def learning_rate(step: int, args) -> float:
    r"""
    ## Learning-rate schedule

    Linear warm-up over `warmup` steps, then a cosine from `lr` down to `min_lr` at the last step:

    $$\eta(t) = \eta_{\min} + \tfrac12(\eta_{\max} - \eta_{\min})
      \left(1 + \cos \pi \tfrac{t - t_w}{t_{\text{end}} - t_w}\right)$$

    A pure function of the step, so a resumed run needs no scheduler state.
    """
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return args.min_lr + (args.lr - args.min_lr) * cosine


class Distributed:
    """
    ## Processes

    `torchrun` starts $N$ copies of this program and tells each its `RANK`, `LOCAL_RANK` and
    `WORLD_SIZE` in environment variables; without them we are the only process. GPUs talk
    through NCCL, CPUs through gloo. Rank 0 alone writes files and draws the progress bar.
    """

    def __init__(self, device_flag: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device_flag == "auto":
            device_flag = "cuda" if torch.cuda.is_available() else "cpu"
        if device_flag == "cuda" and self.world > 1:
            device_flag = f"cuda:{local_rank}"
        self.device = torch.device(device_flag)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda given but CUDA is not available")
        self.is_main = self.rank == 0

    def start(self):
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(
                backend, rank=self.rank, world_size=self.world
            )

    def mean(self, value: float) -> float:
        """The mean over processes of one number (a loss), so every rank logs the same."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.item() / self.world

    def stop(self):
        if dist.is_initialized():
            dist.destroy_process_group()


def check_args(args, world: int):
    """
    ## Checking the input before any work

    Everything that can be known from the flags is checked here; the corpus and the checkpoint
    are checked as soon as they are read, still before the first step.
    """
    for name in ("seq_len", "d_model", "n_layers", "steps", "batch_size",
                 "eval_every", "eval_windows", "ckpt_every", "d_bias",
                 "heads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch_size % world:
        raise ValueError(
            f"--batch-size {args.batch_size} is not divisible by "
            f"{world} processes"
        )
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError("--stop-after must be at least 1")
    # The model's own checks (mixer, window, heads), with a stand-in vocabulary size.
    model_config(args, vocab_size=1).check()


def load_checkpoint(path: Path, args, config: ModelConfig) -> dict:
    """
    ## Checking a checkpoint

    It must exist and have been saved for this model shape and these run flags; otherwise we say
    which flags differ instead of failing inside `load_state_dict` with a list of tensor sizes.
    """
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    saved = checkpoint["config"]
    diffs = [f"{k}={saved.get(k)!r} (checkpoint) vs {v!r} (now)"
             for k, v in config.to_dict().items() if saved.get(k) != v]
    diffs += [f"--{k.replace('_', '-')}={checkpoint['args'].get(k)!r} "
              f"(checkpoint) vs {getattr(args, k)!r} (now)"
              for k in RUN_FLAGS
              if checkpoint["args"].get(k) != getattr(args, k)]
    if diffs:
        raise ValueError(
            f"checkpoint {path} was saved for another run: " + "; ".join(diffs)
        )
    return checkpoint


def save_checkpoint(path: Path, model, optimizer, step: int,
                    config: ModelConfig, args, chars: str):
    """
    ## Saving a checkpoint

    Everything a resumed run needs: weights, AdamW's two moments per weight, the step, and the
    random-number generators' state (unused by training itself today — batches have their own
    generator and there is no dropout — but saved so that a change that draws random numbers
    keeps resume exact). The file is written beside the old one and renamed over it, so a run
    killed while saving leaves the previous checkpoint whole.
    """
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": config.to_dict(),
        "args": vars(args),
        "chars": chars,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": (torch.cuda.get_rng_state_all()
                     if torch.cuda.is_available() else None),
            "python": random.getstate(),
        },
    }
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)


def restore_rng(rng: dict):
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])


class MetricsLog:
    """
    ## Metrics

    A CSV file, one row per step and one per validation. On resume, rows after the checkpoint's
    step (written by the run that was interrupted) are dropped, so the file ends up as if the
    run had never stopped. Losses are written with `repr`, all the digits of the float.
    """

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        rows = []
        if resume_step is not None and path.is_file():
            with path.open(newline="") as f:
                rows = [
                    r
                    for r in csv.DictReader(f)
                    if int(r["step"]) <= resume_step
                ]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, METRIC_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, **row):
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, METRIC_FIELDS).writerow(
                {
                    k: repr(v) if isinstance(v, float) else v
                    for k, v in row.items()
                }
            )


def read_metrics(path) -> list[dict]:
    """Rows of a `metrics.csv` as dicts of floats (`None` where a cell is empty)."""
    with open(path, newline="") as f:
        return [
            {k: float(v) if v != "" else None for k, v in r.items()}
            for r in csv.DictReader(f)
        ]


@torch.no_grad()
def evaluate(model, corpus: CharCorpus, args, procs: Distributed) -> float:
    """
    ## Validation loss

    The mean loss over `eval_windows` fixed windows of the validation text. With several
    processes each takes every $N$-th window and the sums are added up, so the number is the
    same as one process would get.
    """
    model.eval()
    starts = corpus.val_starts(args.eval_windows, args.seq_len)[
        procs.rank :: procs.world
    ]
    total = torch.zeros(2, dtype=torch.float64, device=procs.device)
    for chunk in starts.split(args.batch_size):
        x, y = corpus.windows("val", chunk, args.seq_len)
        logits = model(x.to(procs.device))
        loss = F.cross_entropy(
            logits.flatten(0, 1), y.to(procs.device).flatten(), reduction="sum"
        )
        total += torch.stack(
            [loss.double(), torch.tensor(y.numel(), device=procs.device)]
        )
    if procs.world > 1:
        dist.all_reduce(total)
    model.train()
    return (total[0] / total[1]).item()


def decay_groups(model, weight_decay: float):
    """
    ## The optimiser

    AdamW, with weight decay on matrices only: decaying biases, layer-norm gains or AFT's
    1-D parameters toward zero would only fight the normalisation.
    """
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0}]


def train(args) -> dict:
    """
    ## The training loop

    Returns a summary (the last validation loss, steps per second, the run directory) for
    `aft.compare`.
    """
    # Everything that can fail on bad input comes first: flags, corpus, checkpoint. Only then
    # is a model built or a process group joined.
    procs = Distributed(args.device)
    check_args(args, procs.world)
    out = Path(args.out or f"runs/{args.mixer}")
    corpus = CharCorpus(args.corpus)
    corpus.check_seq_len(args.seq_len)
    config = model_config(args, corpus.vocab.size).check()
    checkpoint = (
        load_checkpoint(out / "ckpt.pt", args, config) if args.resume else None
    )

    # Same seed, same initial weights, in every process and for every resume.
    torch.manual_seed(args.seed)
    model = LanguageModel(config).to(procs.device)
    optimizer = torch.optim.AdamW(
        decay_groups(model, args.weight_decay),
        lr=args.lr,
        betas=(0.9, 0.95),
        fused=True,  # one kernel for all weights
    )
    # Resuming replaces the fresh weights and the empty optimiser with the saved ones.
    start = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        restore_rng(checkpoint["rng"])
        start = checkpoint["step"]

    # Under `torchrun`, DDP wraps the model: its forward is the model's, and its backward adds
    # an all-reduce that averages each gradient over the processes. Every process started from
    # the same weights, so they stay identical.
    procs.start()
    if procs.world > 1:
        ddp_kwargs = (
            {"device_ids": [procs.device.index]}
            if procs.device.type == "cuda"
            else {}
        )
        runner = torch.nn.parallel.DistributedDataParallel(model, **ddp_kwargs)
    else:
        runner = model

    # The run directory: the settings as JSON (for the reader, not for resuming) and the log.
    if procs.is_main:
        out.mkdir(parents=True, exist_ok=True)
        settings = {"model": config.to_dict(), "args": vars(args),
                    "parameters": count_parameters(model),
                    "processes": procs.world, "device": str(procs.device)}
        (out / "config.json").write_text(json.dumps(settings, indent=2) + "\n")
        log = MetricsLog(out / "metrics.csv", start if checkpoint else None)

    def checkpoint_now(step):
        if procs.is_main:
            save_checkpoint(out / "ckpt.pt", model, optimizer, step, config,
                            args, corpus.vocab.chars)

    # The loss before any training, $\approx \ln(\text{vocabulary size})$, starts the curve.
    val_loss = None
    if start == 0:
        val_loss = evaluate(model, corpus, args, procs)
        if procs.is_main:
            log.write(step=0, val_loss=val_loss)

    # Rank $r$ of $N$ takes rows $r, r+N, \dots$ of the global batch.
    rows = slice(procs.rank, None, procs.world)
    end = (args.steps if args.stop_after is None
           else min(args.steps, start + args.stop_after))
    bar = tqdm(total=args.steps, initial=start,
               disable=args.quiet or not procs.is_main, desc=f"{args.mixer}",
               dynamic_ncols=True)
    t0 = time.perf_counter()
    tokens_per_step = args.batch_size * args.seq_len
    step_times = []
    for step in range(start, end):
        # The step's learning rate and batch: functions of `step` alone.
        tick = time.perf_counter()
        lr = learning_rate(step, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # `[batch / N, seq_len]` inputs and targets
        x, y = corpus.train_batch(
            step, args.seed, args.batch_size, args.seq_len
        )
        x, y = x[rows].to(procs.device), y[rows].to(procs.device)

        # Forward and backward. Under DDP the backward pass also averages the gradients
        # across processes.
        logits = runner(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()

        # Log the global batch's loss (the mean over processes) and the speed.
        train_loss = procs.mean(loss.item())
        step_times.append(time.perf_counter() - tick)
        tokens_per_s = tokens_per_step / step_times[-1]
        done = step + 1
        if procs.is_main:
            log.write(
                step=done,
                train_loss=train_loss,
                lr=lr,
                tokens_per_s=round(tokens_per_s, 1),
                elapsed_s=round(time.perf_counter() - t0, 3),
            )
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.3f}", tok_s=f"{tokens_per_s:,.0f}",
                        val=f"{val_loss:.3f}" if val_loss is not None else "-")

        # Validate, then checkpoint, so that a checkpoint at step $k$ comes after every row of
        # the log up to $k$: resuming from it drops exactly the rows written after it.
        if done % args.eval_every == 0 or done == args.steps:
            val_loss = evaluate(model, corpus, args, procs)
            if procs.is_main:
                log.write(step=done, val_loss=val_loss)
        if done % args.ckpt_every == 0 or done == end:
            checkpoint_now(done)
    bar.close()
    # Let every process finish its last step, then drop DDP's hooks before closing the process
    # group: a DDP wrapper that outlives its group can hang at exit.
    if procs.world > 1:
        dist.barrier()
    del runner
    procs.stop()
    # Steps per second over the steps after the first few (which warm up allocators and
    # kernels), from the time of the steps alone — validation and checkpoints excluded.
    timed = step_times[min(3, len(step_times) // 2):]
    return {"out": str(out), "val_loss": val_loss, "steps_done": end,
            "steps_per_s": len(timed) / sum(timed) if timed else None,
            "parameters": count_parameters(model)}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = train(args)
    except (ValueError, FileNotFoundError, NotImplementedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.stop_after is not None and summary["steps_done"] < args.steps:
        print(
            f"stopped at step {summary['steps_done']}; continue with --resume",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
