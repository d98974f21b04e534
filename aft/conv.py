r"""
# AFT-conv

AFT-conv (Eq. 6) makes the bias *relative*: $w_{t,t'}$ depends only on the offset
$t - t'$, like a convolution kernel, and it is learned per head. The $d$ channels of
$Q$ and $V$ are cut into $h$ heads, and $K$ has just **one channel per head**: every
channel of a head shares its key, as every channel of an attention head shares its
attention weights. For head $i$, with kernel $w^{i} \in \mathbb{R}^{s}$:

$$
Y^{i}_t = \sigma(Q^{i}_t) \odot
\frac{\sum_{t'} \exp(K^{i}_{t'} + w^{i}_{t - t'}) \, V^{i}_{t'}}
     {\sum_{t'} \exp(K^{i}_{t'} + w^{i}_{t - t'})}
$$

where $w^i_{t - t'} = 0$ outside the kernel, as in AFT-local. The paper writes the sums
as a convolution of $e^{K} \odot V$ with $e^{w} - 1$ plus a global sum (both sides of
Eq. 6), which is how it runs on image libraries. We compute it with AFT-local's kernel
instead, whose terms are all positive.

**Re-parameterisation (Eq. 8).** A free kernel trained poorly in the paper, so each
head's kernel is normalised and rescaled:
$w = \gamma \cdot \frac{w - \mathrm{mean}(w)}{\mathrm{std}(w)} + \beta$,
with learned $\gamma, \beta$ that start at 0. At initialisation $w = 0$ and AFT-conv
*is* AFT-simple; it learns how much position to use.

Cost: $O(T s d)$ time, $O(T d)$ memory, like AFT-local, and the kernel has only
$h \cdot s$ parameters whatever the sequence length.
"""

import torch
from torch import nn

from aft._checks import check_bias, check_qkv, compute_dtype
from aft.kernel import banded_weighted_mean


def aft_conv(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    w: torch.Tensor,
    causal: bool = False,
) -> torch.Tensor:
    """AFT-conv (Eq. 6) with $h$ heads.

    * `q`, `v`: `[batch, seq, d]`, with `d` a multiple of $h$;
    * `k`: `[batch, seq, h]`, one key channel per head;
    * `w`: the kernels. Causal: `[h, s]`, `w[i, j]` is head $i$'s bias for key $t - j$.
      Non-causal: `[h, 2s - 1]`, `w[i, j]` is the bias for key $t + j - (s - 1)$.

    Returns `[batch, seq, d]`.
    """
    if not isinstance(k, torch.Tensor) or k.dim() != 3:
        tensor = isinstance(k, torch.Tensor)
        got = tuple(k.shape) if tensor else type(k).__name__
        raise ValueError(f"k must be [batch, seq, heads], got {got}")
    heads = k.shape[2]
    check_qkv(q, k, v, key_channels=heads)
    batch, seq, d = q.shape
    if d % heads:
        raise ValueError(
            f"q's {d} channels do not split into k's {heads} heads "
            f"(q {tuple(q.shape)}, k {tuple(k.shape)})"
        )
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        tensor = isinstance(w, torch.Tensor)
        got = tuple(w.shape) if tensor else type(w).__name__
        raise ValueError(f"w must be [heads, width], got {got}")
    if not causal and w.shape[1] % 2 == 0:
        raise ValueError(
            f"w must be [heads, 2s - 1] (non-causal): its width {w.shape[1]} "
            f"is even; got w {tuple(w.shape)}"
        )
    check_bias(
        "w",
        w,
        (heads, w.shape[1]),
        q,
        "[heads, s]" if causal else "[heads, 2s - 1]",
    )
    in_dtype, dtype = q.dtype, compute_dtype(q)
    q, k, v, w = (x.to(dtype) for x in (q, k, v, w))

    # Heads: keys `[batch, seq, h, 1]`, values `[batch, seq, h, d/h]`; the kernel is the same
    # for every position, so the band is a view that repeats it: `[h, seq, width]`, oldest
    # key first (causal: flipped)
    w = w.flip(-1) if causal else w
    band = w.unsqueeze(1).expand(heads, seq, w.shape[1])
    mean = banded_weighted_mean(
        k.unsqueeze(-1), v.view(batch, seq, heads, d // heads), band, causal
    )
    # $\sigma(Q_t) \odot$ the weighted average, heads joined again
    return (torch.sigmoid(q) * mean.reshape(batch, seq, d)).to(in_dtype)


# ## The layer
#
# Projections (the key projection has only $h$ outputs), the raw kernels, and the
# per-head $\gamma, \beta$ of Eq. 8, both zero at the start.
class AFTConv(nn.Module):
    """AFT-conv on `[batch, seq, d_model]` with `heads` kernels of `window` positions."""

    def __init__(
        self, d_model: int, heads: int, window: int, causal: bool = True
    ):
        super().__init__()
        if d_model % heads:
            raise ValueError(
                f"d_model={d_model} must be a multiple of heads={heads}"
            )
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.causal = causal
        width = window if causal else 2 * window - 1
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, heads)
        self.value = nn.Linear(d_model, d_model)
        self.output = nn.Linear(d_model, d_model)
        self.kernel = nn.Parameter(torch.randn(heads, width))
        self.gamma = nn.Parameter(torch.zeros(heads, 1))
        self.beta = nn.Parameter(torch.zeros(heads, 1))

    def kernels(self) -> torch.Tensor:
        r"""Eq. 8: $w = \gamma (w - \mathrm{mean}) / \mathrm{std} + \beta$, per head."""
        w = self.kernel
        if w.shape[1] == 1:  # one tap: no spread to normalise, only β is left
            return self.beta.expand_as(w)
        mean = w.mean(dim=1, keepdim=True)
        normalised = (w - mean) / (w.std(dim=1, keepdim=True) + 1e-6)
        return self.gamma * normalised + self.beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = aft_conv(
            self.query(x),
            self.key(x),
            self.value(x),
            self.kernels(),
            self.causal,
        )
        return self.output(y)
