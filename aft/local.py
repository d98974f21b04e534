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

import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from aft._checks import check_bias, check_qkv, compute_dtype
from aft.full import TAU, merge_sums, stable_levels

# Blocks of $C \approx s / 4$ rows (the benchmark page times $s$, $s / 2$ and $s / 4$),
# and at least 32 rows, so that each matrix product is big enough to run at full speed.
BLOCKS_PER_WINDOW = 4
MIN_BLOCK = 32


def aft_local(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w_band: torch.Tensor,
              causal: bool = False) -> torch.Tensor:
    """AFT-local (Eq. 4). `q`, `k`, `v` are `[batch, seq, d]`. Returns `[batch, seq, d]`.

    The window holds $s$ positions, and `w_band` its learned biases:

    * causal: `[seq, s]`; `w_band[t, j]` is the bias between query $t$ and key $t - j$;
    * non-causal: `[seq, 2s - 1]`; `w_band[t, j]` is the bias for key $t + j - (s - 1)$.

    Entries that name a key outside `[0, seq)` are ignored.
    """
    check_qkv(q, k, v)
    batch, seq, d = q.shape
    if not isinstance(w_band, torch.Tensor) or w_band.dim() != 2:
        shape = tuple(w_band.shape) if isinstance(w_band, torch.Tensor) else type(w_band).__name__
        raise ValueError(f"w_band must be [seq, width], got {shape}")
    width = w_band.shape[1]
    if causal:
        check_bias("w_band", w_band, (seq, max(width, 1)), q, "[seq, s] (causal)")
    else:
        if width % 2 == 0:
            raise ValueError(f"w_band must be [seq, 2s - 1] (non-causal): its width {width} "
                             f"is even; got w_band {tuple(w_band.shape)}")
        check_bias("w_band", w_band, (seq, width), q, "[seq, 2s - 1] (non-causal)")
    # The kernel takes the band oldest key first (causal: flipped)
    return gated_mean(q, k, v, w_band.flip(-1) if causal else w_band, causal)


def gated_mean(q, k, v, band, causal: bool) -> torch.Tensor:
    r"""`aft_local` without its checks, for a `band` `[seq, width]` whose column $j$ holds
    the bias for key $t - (s - 1) + j$, oldest first, in both modes."""
    in_dtype, dtype = q.dtype, compute_dtype(q)
    q, k, v, band = (x.to(dtype) for x in (q, k, v, band))
    # One "head" whose keys have one channel per value channel: `[batch, seq, 1, d]`;
    # $\sigma(Q_t) \odot$ the weighted average, in the same pass
    y = banded_weighted_mean(k.unsqueeze(2), v.unsqueeze(2), band.unsqueeze(0), causal,
                             gate=q.unsqueeze(2))
    return y.squeeze(2).to(in_dtype)


def banded_weighted_mean(k: torch.Tensor, v: torch.Tensor, band: torch.Tensor,
                         causal: bool, gate: torch.Tensor | None = None) -> torch.Tensor:
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
        mean = BandedMean.apply(k, v, band, gate, level.view(batch, 1, heads, -1), True, geometry)
        served = served.view(batch, seq, heads, -1)
        result = mean if result is None else torch.where(served, mean, result)
    return result


def sums_before(x, gap: int):
    r"""`out[:, j]` = the sum of `x[:, i]` over $i \le j -$ `gap`, along dimension 1."""
    n = x.shape[1]
    # Summed along the last dimension of a transposed view: on the CPU, PyTorch's running
    # sum is several times faster there than along a middle dimension. The result is made
    # contiguous again: the multiplications that read it run slower on a strided one
    running = x[:, :max(n - gap, 0)].transpose(1, 2).cumsum(-1)
    return nn.functional.pad(running, (min(gap, n), 0)).transpose(1, 2).contiguous()


class Blocks:
    r"""Where everything is when the sequence is cut into blocks of $C$ rows.

    Block $j$'s rows see keys in blocks $j - k, \dots, j$ through the window (and up to
    $j + k$, non-causal): `width` $= (k + 1) C$ or $(2k + 1) C$ key columns, `chunks`
    blocks of them. The keys are stored with `before` rows of zeros ahead of the sequence
    and `after` behind it, so that key block $j - k + i$, taken for all $n$ row blocks $j$
    at once, is one contiguous slice of rows, $[iC, (i + n)C)$."""

    def __init__(self, seq, s, block, reach, causal):
        self.seq, self.s, self.block, self.reach, self.causal = seq, s, block, reach, causal
        self.n_blocks = math.ceil(seq / block)
        self.rows = self.n_blocks * block
        self.chunks = reach + 1 if causal else 2 * reach + 1
        self.width = self.chunks * block
        self.before, self.after = reach * block, (0 if causal else reach * block)

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
        if not self.causal:  # the blocks after the window: the same, in reverse order
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
        first = self.reach * self.block - self.s + 1  # column of $t - t' = s - 1$ on row 0
        band_width = self.s if self.causal else 2 * self.s - 1
        heads_stride, block_stride, row_stride, column_stride = x.stride()
        return x.as_strided((*x.shape[:3], band_width),
                            (heads_stride, block_stride, row_stride + column_stride, column_stride),
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
        logits[:, seq - edge:].masked_fill_(offset > g.s - 1 + edge - 1 - row, float("-inf"))
    # $c_t$; a row has far keys if a key $s$ or more positions away exists
    t = torch.arange(seq, device=band.device).unsqueeze(1)
    has_far = t >= g.s if g.causal else (t >= g.s) | (t + g.s < seq)
    shift = logits.amax(dim=-1, keepdim=True)
    shift = torch.where(has_far, shift.clamp_min(0), shift)
    # Rows past the end of the sequence (padding of the last block) are never read
    def pad(x):
        return x if g.rows == seq else nn.functional.pad(x, (0, 0, 0, g.rows - seq))

    far_weight = pad(torch.where(has_far, torch.exp(-shift), 0.0))
    far_weight = far_weight.view(heads, g.n_blocks, g.block, 1)
    window, shift = pad(logits), pad(shift)
    # Far keys everywhere, then the window written over them, then the future removed
    weights = far_weight.expand(-1, -1, -1, g.width).contiguous()
    window_weights = g.band_view(weights)
    torch.sub(window.view(window_weights.shape), shift.view(heads, g.n_blocks, g.block, 1),
              out=window_weights)
    window_weights.exp_()
    if g.causal:
        weights[..., -g.block:].tril_()  # key column $c > r$ of block $j$ is in the future
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
def caller_layout(time_major, in_place: bool):
    """Where to write a result that the caller gets as `[batch, seq, heads, channels]`,
    computed from our time-major `[heads, seq, batch, channels]` buffer `time_major`.

    If the caller works time-major too (its tensors are views of `[seq, batch, ...]`
    memory; with one sequence the two layouts are the same), the result overwrites our
    buffer: no copy at all. Otherwise a new tensor in the caller's layout costs less than
    the copy that the caller's next operation would make of a strided one."""
    result = time_major.transpose(0, 2)
    return result if in_place else torch.empty_like(result, memory_format=torch.contiguous_format)


class BandedMean(torch.autograd.Function):
    @staticmethod
    def forward(ctx, k, v, band, gate, level, clamp: bool, g: Blocks):
        batch, seq, heads, dh = v.shape
        ck = k.shape[-1]
        weights, far_weight = block_weights(band, g)
        # ### The key columns $[e^{K - L} \odot V, e^{K - L}]$
        # Time-major `[heads, rows, batch, dh + ck]`: a block's rows are contiguous, and
        # batch and channels together are the columns of every product. Rows of padding
        # are 0. With `clamp` (a pass of the levels below the largest key), keys above the
        # level are clamped to it: no row that this level serves can see them.
        columns = k.new_empty(heads, g.before + g.rows + g.after, batch, dh + ck)
        columns[:, :g.before].zero_()
        columns[:, g.before + seq:].zero_()
        real = columns[:, g.before: g.before + seq]
        exp_keys, exp_values = real[..., dh:], real[..., :dh]
        torch.sub(k.transpose(0, 2), level.transpose(0, 2), out=exp_keys)
        if clamp:
            exp_keys.clamp_(max=0)
        exp_keys.exp_()
        torch.mul(exp_keys, v.transpose(0, 2), out=exp_values)
        flat = columns.flatten(2)  # `[heads, padded rows, X]`

        # ### The far keys: whole-block sums, weighted by $e^{-c_t}$ in row $t$
        block_sums = flat[:, g.before: g.before + g.rows].unflatten(1, (g.n_blocks, g.block))
        far = g.far_sums(block_sums.sum(2))
        sums = far_weight * far.unsqueeze(2)  # `[heads, n_blocks, C, X]`
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
        ctx.save_for_backward(columns, weights, far_weight, denominator, gates, scale, y)
        ctx.geometry, ctx.shapes = g, (batch, seq, heads, dh, ck)
        ctx.in_place = in_place
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        columns, weights, far_weight, denominator, gates, scale, y = ctx.saved_tensors
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
        per_key = grad_y.transpose(0, 2) if ck == dh else grad_y.transpose(0, 2).sum(-1, True)
        torch.addcdiv(grad.new_zeros(()), per_key, denominator, value=-1, out=h_keys)  # $-G Y / D$
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
        d_flat[:, g.before: g.before + g.rows].unflatten(1, (g.n_blocks, g.block)).copy_(
            far.unsqueeze(2).expand(-1, -1, g.block, -1))
        for h in range(heads):
            for i in range(g.chunks):
                part = weights[h, :, :, i * g.block: (i + 1) * g.block]
                g.keys(d_flat[h], i).baddbmm_(part.transpose(1, 2), h_blocks[h])

        # $\partial A = H [E V, E]^\top$, one product over every key block at once (an
        # overlapping view of the columns), computed as its transpose, which runs faster;
        # $\partial w = A \odot \partial A$ on the band
        d_band = None
        if ctx.needs_input_grad[2]:
            d_weights = weights.new_empty(heads, g.n_blocks, g.width, g.block)
            flat = columns.flatten(2)
            for h in range(heads):
                keys = flat[h].as_strided((g.n_blocks, g.width, flat.shape[-1]),
                                          (g.block * flat.shape[-1], flat.shape[-1], 1))
                torch.bmm(keys, h_blocks[h].transpose(1, 2), out=d_weights[h])
            d_weights = d_weights.transpose(-1, -2)
            d_band = (g.band_view(d_weights) * g.band_view(weights)).flatten(1, 2)[:, :seq]

        # $\partial K$ and $\partial V$ from $\partial E$ and $\partial (E V)$
        real, d_real = columns[:, g.before: g.before + seq], d_columns[:, g.before: g.before + seq]
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


# ## The layer
#
# `AFTLocal` learns the factorised bias $w_{t,t'} = u_t^\top v_{t'}$ (Eq. 7), but only
# ever forms the band: for each block of rows, one small product of its $u$ rows with
# the $v$ rows its window reaches, from which the band's diagonals are picked. The
# $T \times T$ product $u v^\top$ is never made.
class AFTLocal(nn.Module):
    """AFT-local on `[batch, seq, d_model]` with a window of `window` positions."""

    def __init__(self, d_model: int, seq_len: int, window: int, d_bias: int = 64,
                 causal: bool = True):
        super().__init__()
        if not 1 <= window <= seq_len:
            raise ValueError(f"window must be in [1, seq_len={seq_len}], got {window}")
        self.d_model, self.seq_len, self.window, self.causal = d_model, seq_len, window, causal
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
        """The learned biases oldest key first, the kernel's order (see `gated_mean`)."""
        s = self.window
        before, after = s - 1, 0 if self.causal else s - 1
        block = max(s, MIN_BLOCK)
        n_blocks = math.ceil(seq / block)
        # $u$ in blocks `[n_blocks, C, d']`; $v$ padded by the window's reach on each side and
        # cut into blocks too. Block $j$'s window reaches `keys` rows of the padded $v$, which
        # lie in its blocks $j, \dots, j + $ `pieces` $- 1$
        keys = block + before + after
        pieces = math.ceil(keys / block)
        u = nn.functional.pad(self.bias_u[:seq], (0, 0, 0, n_blocks * block - seq))
        v = nn.functional.pad(self.bias_v[:seq],
                              (0, 0, before, (n_blocks + pieces - 1) * block - before - seq))
        u, v = u.view(n_blocks, block, -1), v.view(n_blocks + pieces - 1, block, -1)
        # Those blocks side by side, `[n_blocks, pieces C, d']`: a small copy (a view of
        # overlapping windows would make the backward pass slow to add them up again)
        v = torch.cat([v[m: m + n_blocks] for m in range(pieces)], dim=1)
        # $u_t^\top v_{t'}$ for the block and its window: `[n_blocks, C, pieces C]`
        products = u @ v.transpose(1, 2)
        # Row $r$ needs columns $r + j$ (key $t' = t - (s-1) + j$) for $j$ in the band: the
        # diagonals of each block's product, as a view that steps one column right per row
        width, columns = before + after + 1, pieces * block
        band = products.as_strided((n_blocks, block, width), (block * columns, columns + 1, 1))
        return band.reshape(n_blocks * block, width)[:seq]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.shape[1]
        if seq > self.seq_len:
            raise ValueError(f"x has {seq} positions but the bias covers seq_len={self.seq_len}")
        # The kernel works time-major, `[seq, batch, d]`; projecting in that layout from
        # the start saves it a transposed copy of each input, output and gradient
        x = x.transpose(0, 1).contiguous()
        q, k, v = (projection(x).transpose(0, 1) for projection in (self.query, self.key,
                                                                     self.value))
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
        return {"position": 0, "keys": zeros, "values": zeros, "far_ev": far,
                "far_e": far.clone(), "far_max": torch.full_like(far, float("-inf"))}

    def step(self, x: torch.Tensor, state: dict):
        """One token `x` `[batch, d_model]` → `(y [batch, d_model], new state)`."""
        if not self.causal:
            raise ValueError("step() needs a causal AFTLocal: a non-causal one sees the future")
        t = state["position"]
        if t >= self.seq_len:
            raise ValueError(f"step() at position {t}: the bias covers seq_len={self.seq_len}")
        q, k, v = self.query(x), self.key(x), self.value(x)
        keys = torch.cat([state["keys"], k.unsqueeze(1)], 1)
        values = torch.cat([state["values"], v.unsqueeze(1)], 1)
        far_ev, far_e, far_max = state["far_ev"], state["far_e"], state["far_max"]
        # The key at $t - s$ leaves the window and joins the far sums
        if keys.shape[1] > self.window:
            old_k, old_v = keys[:, 0], values[:, 0]
            keys, values = keys[:, 1:], values[:, 1:]
            far_ev, far_e, far_max = merge_sums(far_ev, far_e, far_max,
                                                old_v, torch.ones_like(old_k), old_k)
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
        return y, {"position": t + 1, "keys": keys, "values": values, "far_ev": far_ev,
                   "far_e": far_e, "far_max": far_max}


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
