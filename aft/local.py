r"""
# AFT-local

AFT-local (Eq. 4) is AFT-full with the position bias learned only near the diagonal:

$$
w_{t,t'} =
\begin{cases}
  w_{t,t'} & \text{if } |t - t'| < s \\
  0        & \text{otherwise}
\end{cases}
$$

so that

$$
Y_t = \sigma(Q_t) \odot
\frac{\sum_{t'} \exp(K_{t'} + w_{t,t'}) \odot V_{t'}}
     {\sum_{t'} \exp(K_{t'} + w_{t,t'})}
$$

with $w_{t,t'} = 0$ outside a window of $s$ positions. Note the **0, not $-\infty$**:
keys outside the window still count, with weight $\exp(K_{t'})$ alone. This is what
distinguishes AFT-local from local (windowed) attention: every position still sees
the whole sequence, only the *learned part* of the bias is local. The paper found
this matters: a hard window cost 0.9 points of ImageNet accuracy (80.8 → 79.9).

**Cost.** The paper's Table 1 gives AFT-local $O(T s d)$ time and $O(T d)$ memory.
Published implementations (labml-nn's among them) build the $T \times T$ bias and
pay $O(T^2)$ memory and time. Here nothing of size $T \times T$ exists, forward or
backward: only the band of $T \times s$ biases and a few copies of the
$[T, d]$ inputs. The benchmark page measures the difference.

This page computes AFT-local first in the plainest way that keeps that cost, in a
few lines to check against the equation; then come the layer that learns the bias,
and generation one token at a time. The layer runs a faster kernel that gives the
same numbers; it has a page of its own, [AFT-local, fast](kernel.py).
"""

import math

import torch
from torch import nn

from aft._checks import check_bias, check_qkv
from aft.full import merge_sums
from aft.kernel import MIN_BLOCK, gated_mean

# ![A triangle of weights, queries down and keys across. Along the diagonal, an
# outlined band of varied shades: each row weighs its nearest keys by their learned
# bias. Left of the band, all the older keys of a row share one shade, never blank:
# far keys keep the bias 0.](../results/figures/local-weights.svg)
#
# The weights of causal AFT-local for $T$ =
# {{ ../results/figures/settings.json#local_weights.seq }} positions and a window of
# $s$ = {{ ../results/figures/settings.json#local_weights.window }}, computed by
# `aft_local` with every key $K = 0$ and biases drawn at random, so that only the bias
# is left: row $t$ is a query, column $t'$ a key, the darkest cell a row's largest
# weight. Inside the outlined window each key has a weight of its own; every older key
# has the same one, $e^0$ times its $e^{K_{t'}}$, and a blank cell is a future key.

# ## The simplest exact version
#
# Split each sum of Eq. 4 into the *window*, the keys with a learned bias, and the
# *far* keys, whose weight is $e^0 = 1$:
#
# $$
# \sum_{t'} e^{K_{t'} + w_{t,t'}} V_{t'}
# = \underbrace{\sum_{|t - t'| < s} e^{w_{t,t'}} \, e^{K_{t'}} V_{t'}}_{\text{window}}
# + \underbrace{\sum_{|t - t'| \ge s} e^{K_{t'}} V_{t'}}_{\text{far}}
# $$
#
# and the same without $V$ for the denominator (causal: only the keys $t' \le t$).
# Each part takes a few operations on whole `[batch, T, d]` tensors:
#
# * **The window.** Column $j$ of the band holds one offset: the bias between every
#   row $t$ and the key $t - j$ (causal). So the window is $s$ element-wise sums, one
#   per offset $j$: the terms $e^{K} \odot V$ moved $j$ rows down, times
#   $e^{w_{t,t-j}}$ in row $t$. Non-causal, the band has $2s - 1$ offsets, keys on
#   both sides.
# * **The far keys** of row $t$ are all the keys up to $t - s$: one running sum over
#   the sequence, read $s$ rows further down. Non-causal, the far keys after the
#   window are the same running sum, taken from the end.
#
# Every term is positive: nothing is subtracted, not even "all keys minus the
# window", so nothing cancels. Time is $O(T s d)$, memory $O(T d)$.
def aft_local_simple(q, k, v, w_band, causal=True):
    r"""AFT-local (Eq. 4) in plain PyTorch, with `aft_local`'s arguments: `q`, `k`,
    `v` are `[batch, seq, d]`; `w_band[t, j]` is the bias for the key $t - j$ (causal,
    `[seq, s]`) or $t + j - (s - 1)$ (non-causal, `[seq, 2s - 1]`)."""
    seq, width = q.shape[1], w_band.shape[1]
    s = width if causal else (width + 1) // 2
    # $E = e^{K - m}$, with $m$ the largest key of its channel in the whole
    # sequence, so that no term exceeds 1. The numerator's terms $E \odot V$ and the
    # denominator's $E$ go side by side, `[batch, seq, 2d]`.
    #
    # **This shift is the simple version's one limit.** In causal mode it can be too
    # much for an early row: if a later key is far above every key the row can see
    # (by more than about 100 in float32), all the row's terms round to 0 and the row
    # is $0/0$, NaN; a little less, and they lose their precision. The
    # [fast kernel](kernel.py) shifts each row by a *level* close to its own largest
    # key, and stays exact. (The biases are used as they are, which suits learned
    # biases, small numbers; the fast kernel shifts them too.)
    e = torch.exp(k - k.amax(dim=1, keepdim=True))
    terms = torch.cat([e * v, e], dim=-1)
    # The far keys $t' \le t - s$: the running sum, moved $s$ rows down; non-causal,
    # also $t' \ge t + s$: the running sum from the end, moved $s$ rows up
    sums = nn.functional.pad(terms.cumsum(1), (0, 0, s, 0))[:, :seq]
    if not causal:
        from_end = terms.flip(1).cumsum(1).flip(1)
        sums = sums + nn.functional.pad(from_end, (0, 0, 0, s))[:, s:]
    # The window. With $s - 1$ rows of zeros before the terms (and after them,
    # non-causal), row $t$ finds the key of column $j$ in padded row $t$ + `start`
    before = s - 1
    terms = nn.functional.pad(terms, (0, 0, before, 0 if causal else before))
    for j in range(width):
        start = before - j if causal else j
        weight = torch.exp(w_band[:, j, None])  # seq, 1
        sums = sums + weight * terms[:, start: start + seq]
    # $Y = \sigma(Q) \odot N / D$
    numerator, denominator = sums.chunk(2, dim=-1)
    return torch.sigmoid(q) * numerator / denominator


# ## The function the project calls
#
# `aft_local` checks its arguments and hands them to the fast kernel of
# [AFT-local, fast](kernel.py), which computes what `aft_local_simple` computes,
# faster, and stays exact where the simple version's rows underflow. The layer below,
# the model and the benchmark all use it.
def aft_local(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              w_band: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """AFT-local (Eq. 4). `q`, `k`, `v` are `[batch, seq, d]`. Returns `[batch, seq, d]`.

    The window holds $s$ positions, and `w_band` its learned biases:

    * causal: `[seq, s]`; `w_band[t, j]` is the bias between query $t$ and key $t - j$;
    * non-causal: `[seq, 2s - 1]`; `w_band[t, j]` is the bias for key $t + j - (s - 1)$.

    Entries that name a key outside `[0, seq)` are ignored.
    """
    check_qkv(q, k, v)
    batch, seq, d = q.shape
    if not isinstance(w_band, torch.Tensor) or w_band.dim() != 2:
        if isinstance(w_band, torch.Tensor):
            shape = tuple(w_band.shape)
        else:
            shape = type(w_band).__name__
        raise ValueError(f"w_band must be [seq, width], got {shape}")
    width = w_band.shape[1]
    if causal:
        check_bias("w_band", w_band, (seq, max(width, 1)), q,
                   "[seq, s] (causal)")
    else:
        if width % 2 == 0:
            raise ValueError(
                f"w_band must be [seq, 2s - 1] (non-causal): its width "
                f"{width} is even; got w_band {tuple(w_band.shape)}")
        check_bias("w_band", w_band, (seq, width), q,
                   "[seq, 2s - 1] (non-causal)")
    # The kernel takes the band oldest key first (causal: flipped)
    return gated_mean(q, k, v, w_band.flip(-1) if causal else w_band, causal)


# ## The layer
#
# `AFTLocal` learns the factorised bias $w_{t,t'} = u_t^\top v_{t'}$ (Eq. 7), but only
# ever forms the band: for each block of rows, one small product of its $u$ rows with
# the $v$ rows its window reaches, from which the band's diagonals are picked. The
# $T \times T$ product $u v^\top$ is never made.
class AFTLocal(nn.Module):
    """AFT-local on `[batch, seq, d_model]` with a window of `window` positions."""

    def __init__(self, d_model: int, seq_len: int, window: int,
                 d_bias: int = 64, causal: bool = True):
        r"""The four projections of `d_model` channels, and the bias factors $u$,
        $v$ of `d_bias` channels for `seq_len` positions; `window` is $s$."""
        super().__init__()
        if not 1 <= window <= seq_len:
            raise ValueError(
                f"window must be in [1, seq_len={seq_len}], got {window}")
        self.d_model, self.seq_len = d_model, seq_len
        self.window, self.causal = window, causal
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.output = nn.Linear(d_model, d_model)
        # $u, v \in \mathbb{R}^{T \times d'}$, $\mathcal{N}(0, 10^{-2})$ as in the paper
        self.bias_u = nn.Parameter(torch.randn(seq_len, d_bias) * 0.1)
        self.bias_v = nn.Parameter(torch.randn(seq_len, d_bias) * 0.1)

    def band(self, seq: int) -> torch.Tensor:
        """The learned biases in `aft_local`'s layout, `[seq, s]` or `[seq, 2s - 1]`."""
        band = self.window_biases(seq)
        return band.flip(-1) if self.causal else band

    def window_biases(self, seq: int) -> torch.Tensor:
        """The learned biases oldest key first, the order of the fast kernel,
        `gated_mean` on [AFT-local, fast](kernel.py)."""
        s = self.window
        before, after = s - 1, 0 if self.causal else s - 1
        block = max(s, MIN_BLOCK)
        n_blocks = math.ceil(seq / block)
        # $u$ in blocks `[n_blocks, C, d']`; $v$ padded by the window's reach on each side and
        # cut into blocks too. Block $j$'s window reaches `keys` rows of the padded $v$, which
        # lie in its blocks $j, \dots, j + $ `pieces` $- 1$
        keys = block + before + after
        pieces = math.ceil(keys / block)
        v_blocks = n_blocks + pieces - 1
        u = nn.functional.pad(self.bias_u[:seq],
                              (0, 0, 0, n_blocks * block - seq))
        v = nn.functional.pad(self.bias_v[:seq],
                              (0, 0, before, v_blocks * block - before - seq))
        u, v = u.view(n_blocks, block, -1), v.view(v_blocks, block, -1)
        # Those blocks side by side, `[n_blocks, pieces C, d']`: a small copy (a view of
        # overlapping windows would make the backward pass slow to add them up again)
        v = torch.cat([v[m: m + n_blocks] for m in range(pieces)], dim=1)
        # $u_t^\top v_{t'}$ for the block and its window: `[n_blocks, C, pieces C]`
        products = u @ v.transpose(1, 2)
        # Row $r$ needs columns $r + j$ (key $t' = t - (s-1) + j$) for $j$ in the band: the
        # diagonals of each block's product, as a view that steps one column right per row
        width, columns = before + after + 1, pieces * block
        band = products.as_strided((n_blocks, block, width),
                                   (block * columns, columns + 1, 1))
        return band.reshape(n_blocks * block, width)[:seq]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` `[batch, seq, d_model]` → `[batch, seq, d_model]`: the projections,
        the band, and the fast kernel between them."""
        seq = x.shape[1]
        if seq > self.seq_len:
            raise ValueError(f"x has {seq} positions but the bias covers "
                             f"seq_len={self.seq_len}")
        # The kernel works time-major, `[seq, batch, d]`; projecting in that layout from
        # the start saves it a transposed copy of each input, output and gradient
        x = x.transpose(0, 1).contiguous()
        q, k, v = (projection(x).transpose(0, 1)
                   for projection in (self.query, self.key, self.value))
        y = gated_mean(q, k, v, self.window_biases(seq), self.causal)
        return self.output(y.transpose(0, 1)).transpose(0, 1)

    # ## Generation, one token at a time
    #
    # A causal AFT-local layer needs only a fixed state to produce the next output: the
    # last $s$ keys and values (their bias is learned), and the far sums
    # $\sum e^{K} V$, $\sum e^{K}$ over everything older, kept with their largest key
    # $\mu$ so they never overflow. When a key leaves the window it joins the far sums:
    # $\mu' = \max(\mu, K)$, sums $\leftarrow$ sums $\cdot e^{\mu - \mu'} + e^{K - \mu'}(\cdot)$.
    # Work and memory per token are $O(s d)$, however long the text.
    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        """The empty state before the first token."""
        dtype = dtype or self.query.weight.dtype
        device = device or self.query.weight.device
        zeros = torch.zeros(batch, 0, self.d_model, device=device, dtype=dtype)
        far = torch.zeros(batch, self.d_model, device=device, dtype=dtype)
        return {"position": 0, "keys": zeros, "values": zeros,
                "far_ev": far, "far_e": far.clone(),
                "far_max": torch.full_like(far, float("-inf"))}

    def step(self, x: torch.Tensor, state: dict):
        """One token `x` `[batch, d_model]` → `(y [batch, d_model], new state)`."""
        if not self.causal:
            raise ValueError("step() needs a causal AFTLocal: "
                             "a non-causal one sees the future")
        t = state["position"]
        if t >= self.seq_len:
            raise ValueError(f"step() at position {t}: the bias covers "
                             f"seq_len={self.seq_len}")
        q, k, v = self.query(x), self.key(x), self.value(x)
        keys = torch.cat([state["keys"], k.unsqueeze(1)], 1)
        values = torch.cat([state["values"], v.unsqueeze(1)], 1)
        far_ev, far_e = state["far_ev"], state["far_e"]
        far_max = state["far_max"]
        # The key at $t - s$ leaves the window and joins the far sums
        if keys.shape[1] > self.window:
            old_k, old_v = keys[:, 0], values[:, 0]
            keys, values = keys[:, 1:], values[:, 1:]
            far_ev, far_e, far_max = merge_sums(
                far_ev, far_e, far_max, old_v, torch.ones_like(old_k), old_k)
        # $w_{t,t'} = u_t^\top v_{t'}$ for the keys in the window, oldest first: `[n]`
        n = keys.shape[1]
        bias = self.bias_v[t - n + 1: t + 1] @ self.bias_u[t]
        # Shift by $m$, the largest $K + w$ (and far $\mu$), then weigh and average
        logits = keys + bias.view(1, n, 1)
        shift = torch.maximum(logits.amax(dim=1), far_max)
        exp_logits = torch.exp(logits - shift.unsqueeze(1))
        far_scale = torch.exp(far_max - shift)
        num = (exp_logits * values).sum(1) + far_ev * far_scale
        den = exp_logits.sum(1) + far_e * far_scale
        y = self.output(torch.sigmoid(q) * num / den)
        return y, {"position": t + 1, "keys": keys, "values": values,
                   "far_ev": far_ev, "far_e": far_e, "far_max": far_max}


# ## What the trained model weighs
#
# The equations say that every earlier character still counts. Here is what the trained model
# of the [comparison](train.py) does with that, on a passage of
# {{ ../results/explorer-summary.json#seq_len }} characters of its validation text (as long
# as its context). Choose a character: every character up to it is shaded by the weight it
# gets, $\exp(K_{t'} + w_{t,t'})$ over the sum, averaged over the
# {{ ../results/explorer-summary.json#d_model }} channels, and the window of the last
# $s$ = {{ ../results/explorer-summary.json#window }} characters is outlined. The switches show
# each layer, and softmax attention — the same model with attention as its mixer, trained the
# same way — on the same text.
#
# {{ explorer ../results/explorer.json }}
#
# What to look for, on average over the positions from $s$ to the end of the passage (those
# that have far keys at all):
#
# * **The far keys still count.** In AFT-local, the keys beyond the window get
#   {{ ../results/explorer-summary.json#local.layers.0.far_percent|.0f }} % of the weight in
#   layer 1, {{ ../results/explorer-summary.json#local.layers.1.far_percent|.0f }} % in layer 2,
#   {{ ../results/explorer-summary.json#local.layers.2.far_percent|.0f }} % in layer 3 and
#   {{ ../results/explorer-summary.json#local.layers.3.far_percent|.0f }} % in layer 4. A hard
#   window, a bias of $-\infty$ outside it, would give them nothing. Each far key weighs little,
#   so their shading is faint and their bars are low, but there are many of them. Some channels
#   lean on them far more: in the channel that gives them the most, they get
#   {{ ../results/explorer-summary.json#local.layers.0.far_percent_top_channel|.0f }} % in
#   layer 1 and {{ ../results/explorer-summary.json#local.layers.3.far_percent_top_channel|.0f }} %
#   in layer 4.
# * **Each layer learns its own window.** In layer 1 the character just before gets
#   {{ ../results/explorer-summary.json#local.layers.0.window_profile_percent.1|.0f }} % of the
#   weight, more than any other, and the four nearest characters together
#   {{ ../results/explorer-summary.json#local.layers.0.nearest4_percent|.0f }} %: the first layer
#   reads the last few letters. In layers 2 and 3 the weight spreads over the window, and the four
#   nearest get only {{ ../results/explorer-summary.json#local.layers.1.nearest4_percent|.0f }} %
#   and {{ ../results/explorer-summary.json#local.layers.2.nearest4_percent|.0f }} %. Layer 4
#   gives the far keys more than the window: it looks at the whole passage.
# * **Attention looks closer.** The softmax-attention twin gives the keys at distance $s$ or more
#   less: {{ ../results/explorer-summary.json#attention.layers.0.far_percent|.0f }} %,
#   {{ ../results/explorer-summary.json#attention.layers.1.far_percent|.0f }} %,
#   {{ ../results/explorer-summary.json#attention.layers.2.far_percent|.0f }} % and
#   {{ ../results/explorer-summary.json#attention.layers.3.far_percent|.0f }} % in layers 1 to 4
#   (if every earlier character weighed the same, they would get
#   {{ ../results/explorer-summary.json#far_percent_if_uniform|.0f }} %). It also gives the
#   character itself much more weight: in layer 1,
#   {{ ../results/explorer-summary.json#attention.layers.0.self_percent|.0f }} % against
#   AFT-local's {{ ../results/explorer-summary.json#local.layers.0.self_percent|.0f }} %. And
#   attention weighs each key by comparing it with the query, so the pattern over distant
#   characters changes from one position to the next. In AFT-local a far key's weight in a channel,
#   $e^{K_{t'}}$, is the same for every later position: only its share of the total changes.
