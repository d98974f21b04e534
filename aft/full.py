r"""
# AFT-full

AFT-full is the paper's general form (Eq. 2). Every position $t$ mixes the values of
all positions $t'$, weighted by the key $K_{t'}$ and a learned *pair-wise position bias*
$w_{t,t'}$:

$$
Y_t = \sigma(Q_t) \odot
\frac{\sum_{t'} \exp(K_{t'} + w_{t,t'}) \odot V_{t'}}
     {\sum_{t'} \exp(K_{t'} + w_{t,t'})}
$$

All products are element-wise: every one of the $d$ channels has its own
weighted average over time. Compare softmax attention, where a query and a key meet
in a dot product and produce *one* weight shared by all channels. Here the query
never meets a key: $\sigma(Q_t)$ only gates the result, and the weights
$\exp(K_{t'} + w_{t,t'})$ do not depend on $t$ except through the bias. That is why the
paper calls it *attention free*.

In causal (autoregressive) mode the sums stop at $t' \le t$ (the paper's footnote 2).

**Cost.** The bias is a $T \times T$ matrix, so time is $O(T^2 d)$; but the
$[T, T, d]$ tensor of weights that a naive implementation would build is never
needed: the bias is shared by all channels, so the sums are one matrix product of
$\exp(w)$ $[T, T]$ with $\exp(K) \odot V$ $[T, d]$. Memory is $O(T d)$ plus the bias
itself (the paper's Table 1).

**The factorised bias (Eq. 7).** A free $T \times T$ bias has $T^2$ parameters per
layer. The paper factorises it as $w_{t,t'} = u_t^\top v_{t'}$ with
$u, v \in \mathbb{R}^{T \times d'}$, which both saves parameters and trains better
(Table 3: 0.6M parameters per layer and 2.74 bits/dim, against 9.6M and 2.84).
`AFTFull` below uses it.
"""

import torch
from torch import nn

from aft._checks import check_bias, check_qkv, compute_dtype

# ## Computing $\exp$ without overflow, and without losing the past
#
# $\exp(K)$ overflows float32 above $K \approx 88$, so the keys are shifted first:
# any shift $m$ that is common to all the terms of one output cancels between
# numerator and denominator. The usual choice, the maximum over the whole
# sequence, is wrong in causal mode: a large *future* key raises $m$ for every
# earlier row, whose own terms $\exp(K_{t'} - m)$ then underflow to 0, and the
# row becomes $0/0$.
#
# The exact shift for row $t$ is the running maximum $\ell_t = \max_{t' \le t} K_{t'}$.
# A matrix product needs one shift for a whole group of rows, so we use *levels*:
# pick $L$, the largest running maximum among the rows still to do, and compute
# with keys $\exp(\min(K, L) - L) \le 1$. Every row whose $\ell_t$ is within
# $\tau$ of $L$ is now exact: none of its keys was clamped (they are all
# $\le \ell_t \le L$) and its largest term is at least $e^{-\tau}$, far from
# underflow. The clamp only touches keys that the row cannot see, whose weight is 0.
# Rows further below $L$ wait for the next level. Usually one level serves
# every row; a huge key spike costs one more pass, never a wrong answer.
TAU = 30.0


def stable_levels(running_max: torch.Tensor, tau: float = TAU):
    r"""Yield `(level, served)` until every row is served.

    `running_max` is $\ell$, `[..., rows, columns]`, non-decreasing along rows.
    `level` is `[..., 1, columns]`; `served` marks the rows this level computes exactly.
    """
    pending = torch.ones_like(running_max, dtype=torch.bool)
    while True:
        # $L$: the highest $\ell_t$ among pending rows of each group of rows
        level = running_max.masked_fill(~pending, float("-inf")).amax(
            dim=-2, keepdim=True
        )
        # A group with nothing left to do still needs a finite level
        level = torch.where(
            torch.isinf(level), running_max[..., -1:, :], level
        )
        served = pending & (running_max > level - tau)
        yield level, served
        pending = pending & ~served
        if not bool(pending.any()):
            return


def merge_sums(values_a, keys_a, max_a, values_b, keys_b, max_b):
    r"""Add two shifted sums, as online softmax does: $(\sum e^{K - \mu_a} V, \sum e^{K - \mu_a})$
    and the same at $\mu_b$ become one pair at $\mu = \max(\mu_a, \mu_b)$, each side scaled by
    $e^{\mu_\cdot - \mu} \le 1$ so nothing overflows. A single key $K$ with value $V$ is the pair
    $(V, 1)$ at $\mu = K$. Returns `(values, keys, max)`."""
    new_max = torch.maximum(max_a, max_b)
    scale_a, scale_b = torch.exp(max_a - new_max), torch.exp(max_b - new_max)
    return (
        values_a * scale_a + values_b * scale_b,
        keys_a * scale_a + keys_b * scale_b,
        new_max,
    )


def key_running_max(k: torch.Tensor, causal: bool) -> torch.Tensor:
    r"""$\ell_t$ along dimension 1 of `k`: the running maximum in causal mode, else the maximum
    over the whole sequence (every row sees every key). No gradient flows through a shift."""
    k = k.detach()
    if causal:
        return k.cummax(dim=1).values
    return k.amax(dim=1, keepdim=True).expand_as(k)


def aft_full(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    w: torch.Tensor,
    causal: bool = False,
) -> torch.Tensor:
    """AFT-full (Eq. 2). `q`, `k`, `v` are `[batch, seq, d]`; `w` is the bias `[seq, seq]`,
    `w[t, t']` between query $t$ and key $t'$. Returns `[batch, seq, d]`."""
    check_qkv(q, k, v)
    seq = q.shape[1]
    check_bias("w", w, (seq, seq), q, "[seq, seq]")
    in_dtype, dtype = q.dtype, compute_dtype(q)
    q, k, v, w = (x.to(dtype) for x in (q, k, v, w))

    # $\exp(w_{t,t'})$, `[seq, seq]`, with causal pairs $t' > t$ removed. Each row is shifted
    # by its own largest visible bias (it cancels in the ratio), so every weight is $\le 1$.
    if causal:
        w = w.masked_fill(
            torch.ones_like(w, dtype=torch.bool).triu(1), float("-inf")
        )
    pair_weights = torch.exp(w - w.detach().amax(dim=1, keepdim=True))

    # $\ell_t$ for each batch and channel, `[batch, seq, d]`
    running_max = key_running_max(k, causal)
    out = torch.zeros_like(v)
    for level, served in stable_levels(running_max):
        # $\exp(\min(K, L) - L)$, `[batch, seq, d]`
        # (`where`, not `minimum`: at a tie `minimum` would send half the gradient to $L$)
        exp_keys = torch.exp(torch.where(k > level, level, k) - level)
        # $\sum_{t'} e^{w_{t,t'}} e^{K_{t'}} V_{t'}$ and $\sum_{t'} e^{w_{t,t'}} e^{K_{t'}}$ as
        # matrix products: `[seq, seq] @ [batch, seq, d]`
        numerator = pair_weights @ (exp_keys * v)
        denominator = pair_weights @ exp_keys
        # Rows of a later level may be $0/0$ here: divide them by 1 instead, so that
        # not even their (discarded) gradient is NaN
        denominator = torch.where(
            served, denominator, torch.ones_like(denominator)
        )
        out = torch.where(served, numerator / denominator, out)

    # $\sigma(Q_t) \odot$ the weighted average
    return (torch.sigmoid(q) * out).to(in_dtype)


# ## The layer
#
# `AFTFull` holds the projections $Q = X W^Q$, $K = X W^K$, $V = X W^V$ and the
# factorised bias $w = u v^\top$ (Eq. 7), and calls `aft_full`. It works on any
# length up to `seq_len`, the number of positions the bias was learned for.
class AFTFull(nn.Module):
    r"""AFT-full on `[batch, seq, d_model]`, with bias $w_{t,t'} = u_t^\top v_{t'}$."""

    def __init__(
        self, d_model: int, seq_len: int, d_bias: int = 64, causal: bool = True
    ):
        super().__init__()
        self.seq_len, self.causal = seq_len, causal
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.output = nn.Linear(d_model, d_model)
        # $u, v \in \mathbb{R}^{T \times d'}$, initialised $\mathcal{N}(0, 10^{-2})$ as in the
        # paper: the bias starts near 0, so training starts close to AFT-simple
        self.bias_u = nn.Parameter(torch.randn(seq_len, d_bias) * 0.1)
        self.bias_v = nn.Parameter(torch.randn(seq_len, d_bias) * 0.1)

    def position_bias(self, seq: int) -> torch.Tensor:
        r"""$w = u v^\top$ for the first `seq` positions, `[seq, seq]`."""
        return self.bias_u[:seq] @ self.bias_v[:seq].T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.shape[1]
        if seq > self.seq_len:
            raise ValueError(
                f"x has {seq} positions but the bias covers "
                f"seq_len={self.seq_len}"
            )
        y = aft_full(
            self.query(x),
            self.key(x),
            self.value(x),
            self.position_bias(seq),
            causal=self.causal,
        )
        return self.output(y)
