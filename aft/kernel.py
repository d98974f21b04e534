r"""
# AFT-local, fast

This page computes exactly what `aft_local_simple` on the [AFT-local](local.py) page
computes, to rounding: the tests hold the two equal, gradients included. `aft_local` and
the layer `AFTLocal` call it. It differs from the simple version in two ways. It is
faster: the simple version makes one pass over `[batch, T, d]` tensors for every
position in the window, where this one does batched matrix products. And it stays exact
when a later key is far above an earlier row's keys, where the simple version's rows
become $0/0$.

## How we compute it

Split each sum into the *window* (the $s$ keys nearest $t$, with their learned bias)
and the *far* keys (weight $e^0 = 1$):

$$
\sum_{t'} e^{K_{t'} + w_{t,t'}} V_{t'}
= \underbrace{\sum_{|t - t'| < s} e^{w_{t,t'}} \, e^{K_{t'}} V_{t'}}_{\text{window}}
+ \underbrace{\sum_{|t - t'| \ge s} e^{K_{t'}} V_{t'}}_{\text{far}}
$$

and the same without $V$ for the denominator. Cut the sequence into blocks of $C$
rows, and let $A_{j,b}$ `[C, C]` hold the weights of the rows of block $j$ for the
keys of block $j - b$: $e^{w_{t,t'}}$ inside the window, 1 for a far key, 0 for a key
that row may not see (the future, in causal mode). When $C k \ge s - 1$, every row of
block $j$ finds its whole window in blocks $j - k, \dots, j$ (and up to $j + k$,
non-causal). So:

* **The window** is a sum of small matrix products, one per block offset $b$:
  $\sum_b A_{j,b} \, [e^K \odot V]_{j-b}$, computed for all blocks $j$ at once. The
  weights depend on positions only, so one $A_{j,b}$ serves every batch element and
  channel: the band is batched matrix multiplication, what CPUs and GPUs do fastest.
* **The far keys** of blocks outside that range enter as whole-block sums: block $j$
  needs the sum over every block before $j - k$ (and after $j + k$), which for all
  blocks at once is a running sum of the block sums, shifted by $k + 1$ blocks.

With $C \approx s/4$, each row's products touch about $1.25\,s$ keys, for the $s$ it
needs (for windows of 128 or more; a smaller window keeps blocks of 32 rows). Every
term is non-negative: nothing cancels. The paper's form with $e^w - 1$ corrections is
equivalent, but subtracts, and loses precision when $w \ll 0$.
The keys are shifted by a *level* per channel, as in AFT-full, so a huge future key
never touches an earlier row. The backward pass is written by hand: it is the same
products, transposed, and it keeps only what it needs.
"""

import functools
import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from aft._checks import compute_dtype
from aft.full import TAU, stable_levels

# ![Two grids cut into square blocks, causal on the left and non-causal on the right,
# queries down and keys across. Along the diagonal, a band of orange blocks: the
# blocks the window's matrix products cover, with the window itself outlined inside.
# Below the band, and in the non-causal grid above it too, blue blocks: far keys,
# added as whole-block running sums. In the causal grid, the blocks above the
# diagonal are blank: the future, skipped.](../results/figures/kernel-blocks.svg)
#
# The blocks of a sequence of $T$ =
# {{ ../results/figures/settings.json#kernel_blocks.seq }} positions with a window of
# $s$ = {{ ../results/figures/settings.json#kernel_blocks.window }}, cut into blocks of
# $C$ = {{ ../results/figures/settings.json#kernel_blocks.block }} rows, as the
# kernel's own `Blocks` sees them: each row block reaches $k$ =
# {{ ../results/figures/settings.json#kernel_blocks.reach }} blocks back (and forward,
# non-causal) with matrix products, in orange; every block beyond that is a far block,
# in blue, added as one running sum; blank blocks are the future, never computed.

# Blocks of $C \approx s / 4$ rows (the benchmark page times $s$, $s / 2$ and $s / 4$),
# and at least 32 rows, so that each matrix product is big enough to run at full speed.
BLOCKS_PER_WINDOW = 4
MIN_BLOCK = 32


# On a GPU, the fused kernel of [AFT-local on the GPU](triton.py) computes the same in
# a few launches, where this page's kernel launches many small operations, one after
# another.
# `gated_mean` hands CUDA tensors to it when Triton is installed; everything else, and
# every tensor on the CPU, stays here.
@functools.cache
def fused_kernel():
    try:
        from aft import triton as fused
    except ImportError:
        return None
    return fused


def gated_mean(q, k, v, band, causal: bool) -> torch.Tensor:
    r"""`aft_local` without its checks, for a `band` `[seq, width]` whose column $j$ holds
    the bias for key $t - (s - 1) + j$, oldest first, in both modes."""
    if q.is_cuda and fused_kernel() is not None and fused_kernel().supports(q):
        return fused_kernel().gated_mean(q, k, v, band, causal)
    in_dtype, dtype = q.dtype, compute_dtype(q)
    q, k, v, band = (x.to(dtype) for x in (q, k, v, band))
    # One "head" whose keys have one channel per value channel: `[batch, seq, 1, d]`;
    # $\sigma(Q_t) \odot$ the weighted average, in the same pass
    y = banded_weighted_mean(k.unsqueeze(2), v.unsqueeze(2),
                             band.unsqueeze(0), causal, gate=q.unsqueeze(2))
    return y.squeeze(2).to(in_dtype)


def banded_weighted_mean(k: torch.Tensor, v: torch.Tensor,
                         band: torch.Tensor, causal: bool,
                         gate: torch.Tensor | None = None) -> torch.Tensor:
    r"""The heart of AFT-local, AFT-simple and AFT-conv:
    $\sum_{t'} e^{K_{t'} + w_{t,t'}} V_{t'} / \sum_{t'} e^{K_{t'} + w_{t,t'}}$ with a banded $w$.

    `k` is `[batch, seq, heads, ck]`, `v` is `[batch, seq, heads, dh]`, where `ck` is `dh`
    (a key per channel) or 1 (a key per head, shared by its channels); `band` is
    `[heads, seq, width]`, column $j$ the bias for key $t - (s - 1) + j$, oldest key
    first (`aft_local`'s layout, flipped if causal). Returns `[batch, seq, heads, dh]`:
    the weighted averages, or, given `gate` (the queries, shaped like `v`), $\sigma(Q)
    \odot$ the averages, all of Eq. 4 in one pass.
    """
    batch, seq, heads, dh = v.shape

    # ### Window and blocks
    # $s$, the keys in the learned window on each side; a window wider than the
    # sequence is cut to the keys that exist.
    s = band.shape[-1] if causal else (band.shape[-1] + 1) // 2
    if s > seq:
        band = band[..., s - seq: s + seq - 1]
        s = seq
    # Block size $C$, and $k$, the number of blocks the window reaches on each side
    block = min(seq, max(math.ceil((s - 1) / BLOCKS_PER_WINDOW), MIN_BLOCK))
    reach = math.ceil((s - 1) / block)
    geometry = Blocks(seq, s, block, reach, causal)

    # ### One level, almost always
    # Keys are shifted by a level $L$ per channel, as in AFT-full. The largest key of all
    # serves every row whose running maximum $\ell_t$ is within $\tau$ of it; since
    # $\ell_t$ only rises, if it serves the first row, it serves them all.
    # (Non-causal, every row sees the largest key: one level always serves.)
    level = k.detach().amax(dim=1, keepdim=True)
    if not causal or bool((k[:, :1].detach() > level - TAU).all()):
        return BandedMean.apply(k, v, band, gate, level, False, geometry)
    # A huge key later on: the levels of the running maximum, exactly as in AFT-full
    running_max = k.detach().cummax(dim=1).values
    result = None
    for level, served in stable_levels(running_max.flatten(2)):
        level = level.view(batch, 1, heads, -1)
        mean = BandedMean.apply(k, v, band, gate, level, True, geometry)
        served = served.view(batch, seq, heads, -1)
        result = mean if result is None else torch.where(served, mean, result)
    return result


# ## The blocks
#
# Everything about the blocks in one place: where each block's rows find the keys of
# their window, and the far keys' sums, running sums over whole blocks.
def sums_before(x, gap: int):
    r"""`out[:, j]` = the sum of `x[:, i]` over $i \le j -$ `gap`, along dimension 1."""
    n = x.shape[1]
    # Summed along the last dimension of a transposed view: on the CPU, PyTorch's running
    # sum is several times faster there than along a middle dimension. The result is made
    # contiguous again: the multiplications that read it run slower on a strided one
    running = x[:, :max(n - gap, 0)].transpose(1, 2).cumsum(-1)
    running = nn.functional.pad(running, (min(gap, n), 0))
    return running.transpose(1, 2).contiguous()


class Blocks:
    r"""Where everything is when the sequence is cut into blocks of $C$ rows.

    Block $j$'s rows see keys in blocks $j - k, \dots, j$ through the window (and up to
    $j + k$, non-causal): `width` $= (k + 1) C$ or $(2k + 1) C$ key columns, `chunks`
    blocks of them. The keys are stored with `before` rows of zeros ahead of the sequence
    and `after` behind it, so that key block $j - k + i$, taken for all $n$ row blocks $j$
    at once, is one contiguous slice of rows, $[iC, (i + n)C)$."""

    def __init__(self, seq, s, block, reach, causal):
        """`seq` rows in blocks of `block`; the window of `s` keys reaches
        `reach` blocks to each side."""
        self.seq, self.s, self.block = seq, s, block
        self.reach, self.causal = reach, causal
        self.n_blocks = math.ceil(seq / block)
        self.rows = self.n_blocks * block
        self.chunks = reach + 1 if causal else 2 * reach + 1
        self.width = self.chunks * block
        self.before = reach * block
        self.after = 0 if causal else reach * block

    def far_sums(self, x, transposed: bool = False):
        r"""For every block $j$, the sum of `x` `[heads, n_blocks, X]` over the blocks beyond
        its window: before it, $i \le j - k - 1$, and non-causal, after it too,
        $i \ge j + k + 1$. Running sums of positive terms: nothing is ever subtracted.
        (A product with a 0/1 matrix of the far blocks would do the same, but that matrix
        has $(T / C)^2$ entries: the one term of the cost that would grow faster than $T$.)
        `transposed` answers the backward pass's question instead: the sum over the blocks
        $j$ whose far sums hold block $i$ (causal: $j \ge i + k + 1$)."""
        gap = self.reach + 1
        if self.causal and transposed:
            return sums_before(x.flip(1), gap).flip(1)
        far = sums_before(x, gap)
        if not self.causal:  # the blocks after the window, in reverse order
            far = far + sums_before(x.flip(1), gap).flip(1)
        return far

    def keys(self, columns, chunk):
        """Key block $j - k + i$ for every row block $j$: `[n_blocks, C, X]` of `[rows, X]`."""
        n, c = self.n_blocks, self.block
        return columns[chunk * c: (chunk + n) * c].view(n, c, -1)

    def band_view(self, x):
        r"""The entries of block matrices `x` `[heads, n_blocks, C, width]` that the band
        holds, as `[heads, n_blocks, C, band width]`, in order of decreasing $t - t'$.

        Row $r$ of a block meets key column $c$ at $t - t' = kC + r - c$, so along a row
        the band is `band width` consecutive entries that start one column further right
        on each next row: a view (row stride plus column stride), no copy."""
        # Row 0 meets the key $s - 1$ positions back in column `first`
        first = self.reach * self.block - self.s + 1
        band_width = self.s if self.causal else 2 * self.s - 1
        heads_stride, block_stride, row_stride, column_stride = x.stride()
        strides = (heads_stride, block_stride, row_stride + column_stride,
                   column_stride)
        return x.as_strided((*x.shape[:3], band_width), strides,
                            x.storage_offset() + first * column_stride)


# ## The weights
#
# $A_j$ `[C, width]` weighs the keys of blocks $j - k, \dots$ for the rows of block $j$:
# $e^{w_{t,t'} - c_t}$ in the window, $e^{-c_t}$ for a far key, 0 for a key the row
# may not see (the future, in causal mode, and positions outside the sequence). $c_t$ is
# the row's largest logit: its largest bias, or 0 (a far key's) if that is larger. It
# cancels in the ratio, keeps every weight $\le 1$ and makes the largest exactly 1, so
# no row underflows. A row with no far keys (the first $s$, causal) does not count the 0:
# with biases of $-200$ it would round all its weights to 0. The weights depend on
# positions only, so one $A_j$ serves every batch element and channel.
def block_weights(band, g: Blocks):
    """`(weights [heads, n_blocks, C, width], far weight [heads, n_blocks, C, 1])`."""
    heads, seq, band_width = band.shape
    # The biases, oldest key first like the weights' columns. Entries that name a key
    # before the start (or after the end) of the sequence are ignored: only the first
    # (and last) $s$ rows have any
    logits = band.clone()
    edge = min(seq, g.s)
    offset = torch.arange(band_width, device=band.device)
    row = torch.arange(edge, device=band.device).unsqueeze(1)
    logits[:, :edge].masked_fill_(offset < g.s - 1 - row, float("-inf"))
    if not g.causal:
        after_end = offset > g.s - 1 + edge - 1 - row
        logits[:, seq - edge:].masked_fill_(after_end, float("-inf"))
    # $c_t$; a row has far keys if a key $s$ or more positions away exists
    t = torch.arange(seq, device=band.device).unsqueeze(1)
    has_far = t >= g.s if g.causal else (t >= g.s) | (t + g.s < seq)
    shift = logits.amax(dim=-1, keepdim=True)
    shift = torch.where(has_far, shift.clamp_min(0), shift)
    # Rows past the end of the sequence (padding of the last block) are never read
    def pad(x):
        if g.rows == seq:
            return x
        return nn.functional.pad(x, (0, 0, 0, g.rows - seq))

    far_weight = pad(torch.where(has_far, torch.exp(-shift), 0.0))
    far_weight = far_weight.view(heads, g.n_blocks, g.block, 1)
    window, shift = pad(logits), pad(shift)
    # Far keys everywhere, then the window written over them, then the future removed
    weights = far_weight.expand(-1, -1, -1, g.width).contiguous()
    window_weights = g.band_view(weights)
    torch.sub(window.view(window_weights.shape),
              shift.view(heads, g.n_blocks, g.block, 1), out=window_weights)
    window_weights.exp_()
    # Causal: the last $C$ columns are the keys of the row's own block, where key
    # column $c > r$ is in the future of row $r$
    if g.causal:
        weights[..., -g.block:].tril_()
    return weights, far_weight


# ## Forward and backward by hand
#
# Written with autograd, every exponential, product and slice above would keep its
# inputs and replay its own backward pass over $[T, d]$ tensors. The gradient of a
# weighted average is short enough to write out instead. With $N_t$ and $D_t$ the
# numerator and denominator (window and far keys together), the output
# $Y_t = \sigma(Q_t) \odot N_t / D_t$ and $G_t$ the incoming gradient of $Y_t$, per channel:
#
# $$
# \frac{\partial \mathcal{L}}{\partial N_t} = \frac{G_t \odot \sigma(Q_t)}{D_t}, \qquad
# \frac{\partial \mathcal{L}}{\partial D_t} = -\frac{G_t \odot Y_t}{D_t}, \qquad
# \frac{\partial \mathcal{L}}{\partial Q_t} = G_t \odot Y_t \odot (1 - \sigma(Q_t))
# $$
#
# Both sums are the same weights $A$ applied to the columns $[e^{K} \odot V, e^{K}]$, so
# the gradient of those columns is $A^\top$ applied to $H = [\partial N, \partial D]$:
# the same banded products, transposed. Then, with $E = e^{K - L}$,
#
# $$
# \frac{\partial \mathcal{L}}{\partial V} = E \odot \partial(E V), \qquad
# \frac{\partial \mathcal{L}}{\partial K} = E V \odot \partial(E V) + E \odot \partial E
# $$
#
# and the gradient of each weight is $H$ times its key's columns, $\partial A = H [E V, E]^\top$,
# from which the band's entries are read ($\partial w = A \odot \partial A$ in the window).
# The shifts $L$ and $c_t$ cancel in the ratio: they get no gradient.
class BandedMean(torch.autograd.Function):
    r"""The weighted averages of `banded_weighted_mean` for one level $L$, with
    their backward pass written out as above."""

    @staticmethod
    def forward(ctx, k, v, band, gate, level, clamp: bool, g: Blocks):
        r"""The numerators and denominators of every row at once: the far keys'
        share, then the window's products; returns $Y$ `[batch, seq, heads, dh]`."""
        batch, seq, heads, dh = v.shape
        ck = k.shape[-1]
        weights, far_weight = block_weights(band, g)
        # ### The key columns $[e^{K - L} \odot V, e^{K - L}]$
        # Time-major `[heads, rows, batch, dh + ck]`: a block's rows are contiguous, and
        # batch and channels together are the columns of every product. Rows of padding
        # are 0. With `clamp` (a pass of the levels below the largest key), keys above the
        # level are clamped to it: no row that this level serves can see them.
        padded_rows = g.before + g.rows + g.after
        columns = k.new_empty(heads, padded_rows, batch, dh + ck)
        columns[:, :g.before].zero_()
        columns[:, g.before + seq:].zero_()
        real = columns[:, g.before: g.before + seq]
        exp_keys, exp_values = real[..., dh:], real[..., :dh]
        torch.sub(k.transpose(0, 2), level.transpose(0, 2), out=exp_keys)
        if clamp:
            exp_keys.clamp_(max=0)
        exp_keys.exp_()
        torch.mul(exp_keys, v.transpose(0, 2), out=exp_values)
        flat = columns.flatten(2)  # heads, padded rows, X

        # ### The far keys: whole-block sums, weighted by $e^{-c_t}$ in row $t$
        block_sums = flat[:, g.before: g.before + g.rows].unflatten(
            1, (g.n_blocks, g.block))
        far = g.far_sums(block_sums.sum(2))
        sums = far_weight * far.unsqueeze(2)  # heads, n_blocks, C, X
        # ### The window: `chunks` matrix products, accumulated in place
        for h in range(heads):
            for i in range(g.chunks):
                part = weights[h, :, :, i * g.block: (i + 1) * g.block]
                sums[h].baddbmm_(part, g.keys(flat[h], i))

        # $Y = N / D$, times $\sigma(Q)$. With `clamp`, a row that a later level serves may
        # have $D = 0$: it divides by the smallest float instead, so that not even its
        # discarded gradient is NaN.
        sums = sums.view(heads, g.rows, batch, dh + ck)[:, :seq]
        numerator, denominator = sums[..., :dh], sums[..., dh:]
        if clamp:
            denominator.clamp_min_(torch.finfo(sums.dtype).tiny)
        in_place = batch == 1 or v.stride(0) < v.stride(1)
        y = caller_layout(numerator, in_place)
        gates = scale = None
        if gate is None:
            torch.div(numerator, denominator, out=y.transpose(0, 2))
        else:
            # $\sigma(Q) / D$, kept: the backward pass multiplies by it too
            gates = torch.sigmoid(gate)
            scale = gates.transpose(0, 2) / denominator
            torch.mul(numerator, scale, out=y.transpose(0, 2))
        ctx.save_for_backward(columns, weights, far_weight, denominator,
                              gates, scale, y)
        ctx.geometry, ctx.shapes = g, (batch, seq, heads, dh, ck)
        ctx.in_place = in_place
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        r"""The gradients of `k`, `v`, `band` and `gate` from `grad`, the gradient
        of $Y$; the level, `clamp` and the geometry get none."""
        (columns, weights, far_weight, denominator,
         gates, scale, y) = ctx.saved_tensors
        g, (batch, seq, heads, dh, ck) = ctx.geometry, ctx.shapes
        # $H = [\partial N, \partial D] = [G \odot \sigma(Q) / D, -\sum G \odot Y / D]$ (the sum
        # over the channels that share a key; without a gate, $\sigma(Q)$ is 1)
        h_all = grad.new_empty(heads, g.rows, batch, dh + ck)
        h_all[:, seq:].zero_()
        h_values, h_keys = h_all[:, :seq, :, :dh], h_all[:, :seq, :, dh:]
        if scale is None:
            torch.div(grad.transpose(0, 2), denominator, out=h_values)
        else:
            torch.mul(grad.transpose(0, 2), scale, out=h_values)
        grad_y = grad * y
        per_key = grad_y.transpose(0, 2)
        if ck != dh:
            per_key = per_key.sum(-1, True)
        torch.addcdiv(grad.new_zeros(()), per_key, denominator, value=-1,
                      out=h_keys)  # minus G Y / D
        # $\partial Q = G \odot Y \odot (1 - \sigma(Q))$, as $Y = \sigma(Q) \odot N / D$
        d_gate = None
        if gates is not None and ctx.needs_input_grad[3]:
            d_gate = grad_y.addcmul_(grad_y, gates, value=-1)
        h_blocks = h_all.flatten(2).unflatten(1, (g.n_blocks, g.block))

        # $\partial [E V, E]$: the far keys' share, the transpose of the far sums, spread
        # over every row of the key's block; then the window's products, transposed
        far_rows = (far_weight.transpose(-1, -2) @ h_blocks).squeeze(2)
        far = g.far_sums(far_rows, transposed=True)
        d_columns = torch.empty_like(columns)
        d_columns[:, :g.before].zero_()
        d_columns[:, g.before + g.rows:].zero_()
        d_flat = d_columns.flatten(2)
        d_flat[:, g.before: g.before + g.rows].unflatten(
            1, (g.n_blocks, g.block)).copy_(
            far.unsqueeze(2).expand(-1, -1, g.block, -1))
        for h in range(heads):
            for i in range(g.chunks):
                part = weights[h, :, :, i * g.block: (i + 1) * g.block]
                g.keys(d_flat[h], i).baddbmm_(part.transpose(1, 2),
                                              h_blocks[h])

        # $\partial A = H [E V, E]^\top$, one product over every key block at once (an
        # overlapping view of the columns), computed as its transpose, which runs faster;
        # $\partial w = A \odot \partial A$ on the band
        d_band = None
        if ctx.needs_input_grad[2]:
            d_weights = weights.new_empty(heads, g.n_blocks, g.width, g.block)
            flat = columns.flatten(2)
            n_columns = flat.shape[-1]
            for h in range(heads):
                keys = flat[h].as_strided((g.n_blocks, g.width, n_columns),
                                          (g.block * n_columns, n_columns, 1))
                torch.bmm(keys, h_blocks[h].transpose(1, 2), out=d_weights[h])
            d_weights = d_weights.transpose(-1, -2)
            d_band = g.band_view(d_weights) * g.band_view(weights)
            d_band = d_band.flatten(1, 2)[:, :seq]

        # $\partial K$ and $\partial V$ from $\partial E$ and $\partial (E V)$
        real = columns[:, g.before: g.before + seq]
        d_real = d_columns[:, g.before: g.before + seq]
        exp_keys, exp_values = real[..., dh:], real[..., :dh]
        d_exp_keys, d_exp_values = d_real[..., dh:], d_real[..., :dh]
        d_k = caller_layout(d_exp_keys, ctx.in_place)
        d_keys = d_k.transpose(0, 2)
        torch.mul(d_exp_keys, exp_keys, out=d_keys)
        if ck == dh:
            d_keys.addcmul_(d_exp_values, exp_values)
        else:
            d_keys.add_((d_exp_values * exp_values).sum(-1, keepdim=True))
        d_v = caller_layout(d_exp_values, ctx.in_place)
        torch.mul(d_exp_values, exp_keys, out=d_v.transpose(0, 2))
        return d_k, d_v, d_band, d_gate, None, None, None


def caller_layout(time_major, in_place: bool):
    """Where to write a result that the caller gets as `[batch, seq, heads, channels]`,
    computed from our time-major `[heads, seq, batch, channels]` buffer `time_major`.

    If the caller works time-major too (its tensors are views of `[seq, batch, ...]`
    memory; with one sequence the two layouts are the same), the result overwrites our
    buffer: no copy at all. Otherwise a new tensor in the caller's layout costs less than
    the copy that the caller's next operation would make of a strided one."""
    result = time_major.transpose(0, 2)
    if in_place:
        return result
    return torch.empty_like(result, memory_format=torch.contiguous_format)
