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
# # AFT-local from scratch
#
# This notebook computes AFT-local (Eq. 4 of the paper) by hand on tensors small enough to
# print, one step at a time, draws its position bias and the attention weights it implies,
# and checks that the fast kernel `aft_local` of this repository gives the same numbers.
#
# The page [AFT-local](https://aft-annotated.github.io/aft-annotated/aft/local.html) explains
# how the fast kernel works; here we only need the formula:
#
# $$
# Y_t = \sigma(Q_t) \odot
#   \frac{\sum_{t'} e^{K_{t'} + w_{t,t'}} \odot V_{t'}}{\sum_{t'} e^{K_{t'} + w_{t,t'}}}
# $$
#
# with a learned bias $w_{t,t'}$ for $|t - t'| < s$ and $w_{t,t'} = 0$ outside that window.
# We work in causal mode, so the sums stop at $t' \le t$.

# %% [markdown]
# The first cell installs this repository's package when the notebook runs in Colab, and
# finds it in the checkout when it runs from a clone. Nothing is installed anywhere else.

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
# The sizes: a short sequence of `SEQ` positions, `CHANNELS` channels and a window of `WINDOW`.
SEQ = 16
CHANNELS = 4
WINDOW = 5
SEED = 0

# %%
import matplotlib.pyplot as plt
import torch

from aft import AFTLocal, aft_local

torch.manual_seed(SEED)
torch.set_printoptions(precision=3, sci_mode=False, linewidth=100)

# %% [markdown]
# ## Queries, keys and values
#
# An AFT layer starts like attention: three linear maps of its input $X$ give $Q$, $K$ and
# $V$, each `[batch, seq, channels]`. We take them straight from a random generator, in
# float64 so that the comparisons at the end are exact to many digits.

# %%
q, k, v = torch.randn(3, 1, SEQ, CHANNELS, dtype=torch.float64)
print("K[0, :4] =\n", k[0, :4])

# %% [markdown]
# ## The position bias
#
# AFT-local learns $w_{t,t'}$ only inside the window. The layer `AFTLocal` stores it
# factorised as $w_{t,t'} = u_t^\top v_{t'}$ (the paper's Eq. 7) and hands the kernel only the
# band of the window, `[seq, s]`: `band[t, j]` is the bias between query $t$ and key $t - j$.
#
# A new layer's $u$ and $v$ are small random numbers, which would make a dull picture. We set
# them as training might: with $u_t = \sqrt{a}\,(\cos \theta t, \sin \theta t)$ and $v_{t'}$
# the same, $u_t^\top v_{t'} = a \cos \theta (t - t')$, a bias that depends only on the
# distance. Near keys get a positive bias, keys at the edge of the window a negative one.

# %%
layer = AFTLocal(d_model=CHANNELS, seq_len=SEQ, window=WINDOW, d_bias=2, causal=True).double()
theta, a = torch.pi / WINDOW, 2.0
positions = torch.arange(SEQ, dtype=torch.float64)
features = a**0.5 * torch.stack([torch.cos(theta * positions), torch.sin(theta * positions)], 1)
with torch.no_grad():
    layer.bias_u.copy_(features)
    layer.bias_v.copy_(features)
band = layer.band(SEQ).detach()  # `[seq, s]`
print("band[8] =", band[8])

# %% [markdown]
# To see the whole bias we spread the band over a `[seq, seq]` matrix: $w_{t,t-j}$ = `band[t, j]`
# inside the window, $0$ for the far keys, and $-\infty$ for the future (causal mode: those
# keys get weight $e^{-\infty} = 0$).

# %%
def dense_bias(band: torch.Tensor, seq: int) -> torch.Tensor:
    """`band` `[seq, s]` → the full bias `[seq, seq]`: 0 far away, -inf in the future."""
    w = torch.zeros(seq, seq, dtype=band.dtype)
    for t in range(seq):
        for j in range(band.shape[1]):
            if t - j >= 0:
                w[t, t - j] = band[t, j]
    future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    return w.masked_fill(future, float("-inf"))


w = dense_bias(band, SEQ)
fig, ax = plt.subplots(figsize=(5, 4))
image = ax.imshow(w.masked_fill(w.isinf(), float("nan")), cmap="RdBu_r", vmin=-a, vmax=a)
ax.set(title="position bias $w_{t,t'}$ (blank: the future)", xlabel="key $t'$",
       ylabel="query $t$")
fig.colorbar(image)
plt.show()

# %% [markdown]
# The band of colour along the diagonal is the window: $s$ keys per row, the query's own
# position and the $s - 1$ before it. Everything to the left of the band is white, a bias of
# exactly $0$, not $-\infty$: those keys still take part.

# %% [markdown]
# ## The implicit attention weights
#
# For each channel $c$, the output at $t$ is a weighted average of the values
# $V_{t',c}$ with the weights
#
# $$\alpha^c_{t,t'} = \frac{e^{K_{t',c} + w_{t,t'}}}{\sum_{t''} e^{K_{t'',c} + w_{t,t''}}}$$
#
# which is a softmax over $t'$ of $K_{t',c} + w_{t,t'}$. Unlike attention, no query enters
# these weights, and every channel has its own: the keys are per channel, the bias is shared.

# %%
# `[seq (t), seq (t'), channels]`: a softmax over t' for every query and channel
weights = torch.softmax(k[0].unsqueeze(0) + w.unsqueeze(-1), dim=1)
print("each row sums to 1:", torch.allclose(weights.sum(dim=1), torch.ones(SEQ, CHANNELS,
                                                                             dtype=weights.dtype)))

fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for channel, ax in enumerate(axes):
    image = ax.imshow(weights[:, :, channel], cmap="viridis", vmin=0, vmax=1)
    ax.set(title=fr"$\alpha^{{{channel}}}_{{t,t'}}$ (channel {channel})", xlabel="key $t'$",
           ylabel="query $t$")
fig.colorbar(image, ax=axes)
plt.show()

# %% [markdown]
# Two channels, two different pictures: where a channel's key $K_{t',c}$ is large, that
# position draws weight in every later row, inside the window or not. The bias then tilts each
# row toward the keys near the diagonal.

# %% [markdown]
# ## The output, three ways
#
# First as written, with one loop per sum; then with the weights above; then with the fast
# kernel, which never builds a `[seq, seq]` matrix.

# %%
def aft_local_loops(q, k, v, w):
    """The formula as written: for each query t and channel c, two sums over t' <= t."""
    batch, seq, channels = q.shape
    y = torch.zeros_like(q)
    for b in range(batch):
        for t in range(seq):
            for c in range(channels):
                numerator = denominator = 0.0
                for t_key in range(t + 1):
                    weight = torch.exp(k[b, t_key, c] + w[t, t_key])
                    numerator += weight * v[b, t_key, c]
                    denominator += weight
                y[b, t, c] = torch.sigmoid(q[b, t, c]) * numerator / denominator
    return y


y_loops = aft_local_loops(q, k, v, w)
y_weights = torch.sigmoid(q) * torch.einsum("tsc,bsc->btc", weights, v)
y_kernel = aft_local(q, k, v, band, causal=True)
print("loops vs weights:", (y_loops - y_weights).abs().max().item())
print("loops vs aft_local:", (y_loops - y_kernel).abs().max().item())

# %% [markdown]
# The three agree to about $10^{-16}$, the precision of float64. The layer itself does the
# same after its linear maps: `layer(x)` is `output(aft_local(query(x), key(x), value(x), band))`.

# %%
x = torch.randn(1, SEQ, CHANNELS, dtype=torch.float64)
with torch.no_grad():
    by_hand = layer.output(aft_local(layer.query(x), layer.key(x), layer.value(x), band, True))
    print("layer vs by hand:", (layer(x) - by_hand).abs().max().item())

# %% [markdown]
# ## Why 0 and not $-\infty$ outside the window
#
# With $-\infty$ outside the window, AFT-local would be a *local* model: position $t$ could
# not see further back than $s - 1$ steps. With $0$ the far keys still count, unbiased. Put
# $-\infty$ there and the outputs change wherever a row has far keys, that is from
# $t = s$ on:

# %%
far = torch.ones(SEQ, SEQ, dtype=torch.bool).tril(-WINDOW)
y_hard = aft_local_loops(q, k, v, w.masked_fill(far, float("-inf")))
changed = (y_hard - y_loops).abs().amax(dim=(0, 2))
print("largest change per position:\n", changed)

# %% [markdown]
# The first $s$ rows are the same (they have no far keys); all later ones differ. The paper
# measured what that global reach is worth: a hard window cost 0.9 points of ImageNet accuracy.
