r"""
# AFT-local on the GPU: a fused kernel in Triton

The PyTorch kernel of the page before this one computes the operation with
PyTorch's own operations: block matrix products for the window, running sums
for the far keys. On a CPU that is fast. On a GPU it is not, and the reason is
not arithmetic. On the H200 of the last GPU run (`results/gpu-check/`, the
notebook's log `speed_and_memory.log`: $d$ = 512, $s$ = 256, float32, forward
and backward), that kernel took 2.35 ms at $T$ = 1024 and 3.14 ms at $T$ =
16384: sixteen times the work in about the same time. The GPU finishes each of
those small operations in microseconds and then waits for the next one: the
time goes into about a hundred launches per step, and into writing out and
reading back the $[T, d]$ tensors that pass from one operation to the next. In
the comparison model of that run (4 layers, $d$ = 128, $s$ = 32, sequences of
1024), AFT-local trained at
{{ ../results/gpu-check/compare.json#mixers.local.steps_per_s_long|.1f }}
steps/s, attention at
{{ ../results/gpu-check/compare.json#mixers.attention.steps_per_s_long|.1f }}.

AFT-local is *memory-bound*: each output reads the keys and values of its
window, and does a few multiply-adds with each. Such an operation is fast on
a GPU when it is *fused*: one kernel loads a block of keys and values into
the chip's fast memory, does all it has to do with them there, and writes
only the result. [Triton](https://triton-lang.org) is a language embedded in
Python for writing such kernels: one writes the program of *one instance*,
which works on whole blocks of a tensor, and the compiler spreads it over the
GPU's threads. Triton's tutorial on fused attention is the model for this
page.

## The plan

Cut the sequence into blocks of $C$ rows and the channels into groups of $c$.
One program instance computes one block of rows, for one group of channels,
of one sequence of the batch: $[C, c]$ outputs; thousands of instances run at
once. For the rows of block $j$ the keys are of three kinds:

* **the window**: the $k + 1$ blocks $j - k, \dots, j$ (up to $j + k$,
  non-causal), $k = \lceil (s - 1) / C \rceil$. The instance loads them one
  block at a time, and each makes two small matrix products, the weights
  $e^{w_{t,t'}}$ times $e^K \odot V$ and times $e^K$, as in the PyTorch
  kernel, but nothing is written out;
* **the far keys**, in every block before $j - k$ (and after $j + k$): one
  sum per channel, the same for every row of the block. A first pass writes
  each block's sums, a second turns them into running sums along the
  sequence, and the instance reads the one it needs;
* nothing else: a causal row gives its future keys weight 0.

The forward pass is four launches: the rows' bias shifts, the blocks' sums,
their running sums, the main pass. Nothing of size $T \times T$ or
$T \times s$ exists. The main pass writes the output, and one number per row
and channel for the backward pass.

## Never overflow, never lose the past

As on the other pages, each exponential is taken of a shifted argument, and
the shift must not let a huge later key make an earlier row $0/0$. Here the
shifts are carried like the running maximum of online softmax, and of the
recurrent `step`: a partial sum travels with the largest key it holds, $\mu$,
and two sums meet at the larger of theirs, the other rescaled by
$e^{\mu_a - \mu} \le 1$. The far sums are built that way, and the main pass
takes the blocks of its window in order and rescales what it has whenever a
block brings a larger key. That is exact for every row that sees all of
those keys. Only one block can hold a key that some of its rows must not
see: block $j$ itself, in causal mode. If its largest key is more than
$\tau$ = 30 above the running maximum of its first row, the instance takes
that block one key at a time, each row at its own running maximum: slower,
but only in a block where a key jumps like that.
"""

import inspect

import torch
import triton
import triton.language as tl

from aft.full import TAU

# Blocks of $C \approx s / 4$ rows, as in the PyTorch kernel, between 16 (the
# smallest matrix product Triton makes) and 32, and groups of $c$ = 32
# channels, for instances of four warps (128 threads): with blocks of 64 rows,
# what an instance holds no longer fits in its registers. Products of 32-bit
# floats run on the tensor cores in three passes (`tf32x3`): close to full
# float32 precision, and several times the speed of plain float32 arithmetic.
# The running sums take 16 channels at a time.
MAX_BLOCK, MIN_BLOCK, CHANNELS, SCAN_CHANNELS, WARPS = 32, 16, 32, 16, 4
FLOAT32_PRODUCTS = "tf32x3"


def available() -> bool:
    """Whether these kernels can run compiled here: Triton imports (this module
    did) and a CUDA device is present."""
    return torch.cuda.is_available()


def supports(q: torch.Tensor) -> bool:
    """Whether `gated_mean` should run `q` (and its `k`, `v`) here: a CUDA
    tensor of 32 or 16 bits. (Float64, kept for checking, stays with the
    PyTorch kernel.)"""
    return (available() and q.is_cuda
            and q.dtype in (torch.float32, torch.float16, torch.bfloat16))


def gated_mean(q, k, v, band, causal: bool, block=None) -> torch.Tensor:
    r"""$\sigma(Q) \odot$ the weighted mean of AFT-local, with the contract of
    the PyTorch kernel's `gated_mean`: `q`, `k`, `v` `[batch, seq, d]`; `band`
    `[seq, width]`, column $j$ the bias for key $t - (s - 1) + j$, oldest key
    first in both modes (causal width $s$, non-causal $2s - 1$); entries that
    name keys outside `[0, seq)` are ignored. Differentiable in all four.
    `block` sets $C$ (the tests use it to vary the number of blocks)."""
    return GatedMean.apply(q, k, v, band, causal, block)


# Triton compiles a kernel anew for each new value of an integer argument that
# is 1 or a multiple of 16, which lets it use wider memory operations. That
# pays for strides and channel counts, which rarely change; lengths change from
# call to call and gain nothing from it. `kernel` is `triton.jit` told not to
# specialise on them: one compilation serves every length.
LENGTHS = ("seq", "s", "reach", "n_blocks", "batch", "part")


def kernel(fn):
    names = inspect.signature(fn).parameters
    return triton.jit(fn, do_not_specialize=[n for n in LENGTHS if n in names])


# ## Small pieces every kernel uses
#
# A Triton function decorated with `@triton.jit` runs inside a kernel; it works
# on whole blocks (`tl.arange` makes a block of indices, and arithmetic on
# blocks is element-wise, with broadcasting as in PyTorch). `load_tile` reads a
# block of rows and channels of a `[batch, seq, d]` tensor whose channels are
# contiguous; rows or channels past the end read `other`.
@triton.jit
def load_tile(ptr, b, rows, chans, stride_b, stride_t, seq, d, other, ACC):
    mask = (rows[:, None] < seq) & (chans[None, :] < d)
    pointers = ptr + offsets(b, rows, chans, stride_b, stride_t)
    return tl.load(pointers, mask=mask, other=other).to(ACC)


# And writes one back, in the tensor's own type, leaving out what lies past
# the end.
@triton.jit
def store_tile(ptr, b, rows, chans, stride_b, stride_t, seq, d, x):
    mask = (rows[:, None] < seq) & (chans[None, :] < d)
    pointers = ptr + offsets(b, rows, chans, stride_b, stride_t)
    tl.store(pointers, x.to(ptr.dtype.element_ty), mask=mask)


# Where row `rows` and channel `chans` of sequence `b` lie, counted in 64
# bits: a batch of long sequences has more than $2^{31}$ entries.
@triton.jit
def offsets(b, rows, chans, stride_b, stride_t):
    b, rows = tl.cast(b, tl.int64), rows.to(tl.int64)
    return b * stride_b + rows[:, None] * stride_t + chans[None, :]


# The keys of a block, with $-\infty$ for positions past the end (weight
# $e^{-\infty} = 0$), and their values.
@triton.jit
def load_keys(k_ptr, v_ptr, b, keys, chans, stride_b, stride_t, seq, d, ACC):
    k = load_tile(k_ptr, b, keys, chans, stride_b, stride_t, seq, d, 0.0, ACC)
    k = tl.where(keys[:, None] < seq, k, float("-inf"))
    v = load_tile(v_ptr, b, keys, chans, stride_b, stride_t, seq, d, 0.0, ACC)
    return k, v


# $e^{\mu_a - \mu}$, the factor that moves a sum kept at $\mu_a$ to a larger
# $\mu$; 0 for an empty sum ($\mu_a = -\infty$), even when $\mu$ is too.
@triton.jit
def rescale(old, new):
    return tl.exp(old - tl.where(new == float("-inf"), 0.0, new))



# The combining function of a running maximum, for `tl.associative_scan`.
@triton.jit
def maximum(a, b):
    return tl.maximum(a, b)


# ## Which pairs see each other, and with what weight
#
# Row $t$ meets key $t'$ at $\delta = t - t'$. In the window ($0 \le \delta <
# s$ causal, $|\delta| < s$ non-causal) its bias is band entry $t' - t + s -
# 1$; further away it is a far key; a causal row does not see $\delta < 0$.
# `rows` and `keys` are blocks of positions that broadcast against each other
# (a column and a row), so one call gives a whole `[rows, keys]` block. Returns
# the window's biases ($-\infty$ elsewhere), and where the pair is in the
# window, and where it is far.
@triton.jit
def pair_biases(band_ptr, band_stride, rows, keys, seq, s, CAUSAL):
    delta = rows - keys
    exists = (rows < seq) & (keys >= 0) & (keys < seq)
    if CAUSAL:
        near = exists & (delta >= 0) & (delta < s)
        far = exists & (delta >= s)
    else:
        near = exists & (delta > -s) & (delta < s)
        far = exists & ((delta >= s) | (delta <= -s))
    pointers = band_ptr + rows * band_stride + keys - rows + s - 1
    bias = tl.load(pointers, mask=near, other=float("-inf"))
    return bias, near, far


# The log of each weight, shifted by the row's $c_t$ (given broadcastable
# against the pairs): $w_{t,t'} - c_t$ in the window, $-c_t$ for a far key,
# $-\infty$ for a pair that does not exist or that the row may not see.
@triton.jit
def log_weights(band_ptr, band_stride, shift, rows, keys, seq, s, CAUSAL):
    bias, near, far = pair_biases(band_ptr, band_stride, rows, keys, seq, s,
                                  CAUSAL)
    return tl.where(far, 0.0, bias.to(shift.dtype)) - shift


# ## Pass 1: each row's bias shift
#
# As in the PyTorch kernel, the weights of row $t$ are taken as
# $e^{w_{t,t'} - c_t}$ with $c_t$ the row's largest bias, or 0 (a far key's) if
# that is larger and the row has far keys: the largest weight is exactly 1, so
# no row's weights all underflow, and $c_t$ cancels in the ratio. One instance
# per block of rows reads the band through the same blocks of keys as the main
# pass.
@kernel
def row_shift_kernel(band_ptr, band_stride, shift_ptr, seq, s, reach,
                     n_blocks, CAUSAL: tl.constexpr, BLOCK: tl.constexpr):
    j = tl.program_id(0)
    rows = j * BLOCK + tl.arange(0, BLOCK)
    largest = tl.full([BLOCK], float("-inf"), tl.float32)
    last = j if CAUSAL else tl.minimum(j + reach, n_blocks - 1)
    for i in range(tl.maximum(j - reach, 0), last + 1):
        keys = i * BLOCK + tl.arange(0, BLOCK)
        bias, near, far = pair_biases(band_ptr, band_stride, rows[:, None],
                                      keys[None, :], seq, s, CAUSAL)
        largest = tl.maximum(largest, tl.max(bias.to(tl.float32), 1))
    if CAUSAL:
        has_far = rows >= s
    else:
        has_far = (rows >= s) | (rows + s < seq)
    largest = tl.where(has_far, tl.maximum(largest, 0.0), largest)
    tl.store(shift_ptr + rows, largest.to(shift_ptr.dtype.element_ty),
             mask=rows < seq)


# ## Passes 2 and 3: the far sums
#
# A *summary* of a block is, per channel, its largest exponent $\mu$ and two
# sums $\sum e^{x - \mu} a$, $\sum e^{x - \mu} b$. For the forward pass $x$ is
# $K$, $a$ is $V$ and $b$ is 1: the numerator's and the denominator's share of
# the block's keys. Summaries are stored as `[3, batch, n_blocks, d]`: maxima,
# first sums, second sums.
@triton.jit
def summarize(x, a, b):
    mu = tl.max(x, 0)
    e = tl.exp(x - tl.where(mu == float("-inf"), 0.0, mu)[None, :])
    return mu, tl.sum(e * a, 0), tl.sum(e * b, 0)



# Two summaries make one: both move to the larger maximum, then add up. The
# order does not matter (the operation is associative), which is what lets a
# running sum be taken block by block.
@triton.jit
def merge(mu_a, a1, a2, mu_b, b1, b2):
    mu = tl.maximum(mu_a, mu_b)
    scale_a, scale_b = rescale(mu_a, mu), rescale(mu_b, mu)
    return mu, a1 * scale_a + b1 * scale_b, a2 * scale_a + b2 * scale_b



# A summary's three parts, for a vector of channels; an absent one reads as
# empty ($\mu = -\infty$, sums 0).
@triton.jit
def load_summary(ptr, part, offsets, mask):
    mu = tl.load(ptr + offsets, mask=mask, other=float("-inf"))
    first = tl.load(ptr + part + offsets, mask=mask, other=0.0)
    second = tl.load(ptr + 2 * part + offsets, mask=mask, other=0.0)
    return mu, first, second



@triton.jit
def store_summary(ptr, part, offsets, mask, mu, first, second):
    tl.store(ptr + offsets, mu, mask=mask)
    tl.store(ptr + part + offsets, first, mask=mask)
    tl.store(ptr + 2 * part + offsets, second, mask=mask)



# Pass 2, one instance per block of keys and group of channels: the block's
# summary of $K$ and $V$.
@kernel
def key_sums_kernel(k_ptr, v_ptr, sums_ptr, stride_b, stride_t, part, seq, d,
                    n_blocks, BLOCK: tl.constexpr, CHANNELS: tl.constexpr,
                    ACC: tl.constexpr):
    i, cb, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    keys = i * BLOCK + tl.arange(0, BLOCK)
    chans = cb * CHANNELS + tl.arange(0, CHANNELS)
    k, v = load_keys(k_ptr, v_ptr, b, keys, chans, stride_b, stride_t, seq, d,
                     ACC)
    mu, first, second = summarize(k, v, 1.0)
    offsets = (b * n_blocks + i) * d + chans
    store_summary(sums_ptr, part, offsets, chans < d, mu, first, second)


# The running sums: one instance per sequence and group of channels walks the
# blocks in order, merging each summary into what came before, and writes the
# total so far after every block (`prefix`, inclusive); non-causal, it also
# walks back from the end (`suffix`). This is the only sequential loop, and it
# is short: one step per block of rows, on vectors of channels.
@kernel
def scan_kernel(sums_ptr, prefix_ptr, suffix_ptr, part, d, n_blocks,
                PREFIX: tl.constexpr, SUFFIX: tl.constexpr,
                CHANNELS: tl.constexpr):
    cb, b = tl.program_id(0), tl.program_id(1)
    chans = cb * CHANNELS + tl.arange(0, CHANNELS)
    mask = chans < d
    empty = tl.full([CHANNELS], float("-inf"), prefix_ptr.dtype.element_ty)
    zero = tl.zeros([CHANNELS], prefix_ptr.dtype.element_ty)
    if PREFIX:
        mu, first, second = empty, zero, zero
        for i in range(0, n_blocks):
            offsets = (b * n_blocks + i) * d + chans
            block_mu, block_first, block_second = load_summary(
                sums_ptr, part, offsets, mask)
            mu, first, second = merge(mu, first, second, block_mu,
                                      block_first, block_second)
            store_summary(prefix_ptr, part, offsets, mask, mu, first, second)
    if SUFFIX:
        mu, first, second = empty, zero, zero
        for back in range(0, n_blocks):
            offsets = (b * n_blocks + n_blocks - 1 - back) * d + chans
            block_mu, block_first, block_second = load_summary(
                sums_ptr, part, offsets, mask)
            mu, first, second = merge(mu, first, second, block_mu,
                                      block_first, block_second)
            store_summary(suffix_ptr, part, offsets, mask, mu, first, second)


# ## Pass 4: the window, one block of keys at a time
#
# `add_keys` adds key block $i$ to the sums of a block of rows. The sums are
# kept at a level $\mu$ per channel, the largest key seen so far: if block $i$
# brings a larger one, the sums are first rescaled to it. Then the block's $E =
# e^{K - \mu}$ (every entry $\le 1$) and its weights $A = e^{w - c}$ `[C, C]`
# make two matrix products, $A (E \odot V)$ and $A E$, accumulated in float32.
@triton.jit
def add_keys(k_ptr, v_ptr, band_ptr, band_stride, shift, b, rows, i, chans,
             stride_b, stride_t, seq, d, s, level, numerator, denominator,
             CAUSAL, BLOCK, ACC, PRECISION):
    keys = i * BLOCK + tl.arange(0, BLOCK)
    k, v = load_keys(k_ptr, v_ptr, b, keys, chans, stride_b, stride_t, seq, d,
                     ACC)
    new_level = tl.maximum(level, tl.max(k, 0))
    scale = rescale(level, new_level)[None, :]
    e = tl.exp(k - new_level[None, :])
    weights = tl.exp(log_weights(band_ptr, band_stride, shift[:, None],
                                 rows[:, None], keys[None, :], seq, s, CAUSAL))
    numerator = numerator * scale + tl.dot(weights, e * v,
                                           input_precision=PRECISION)
    denominator = denominator * scale + tl.dot(weights, e,
                                               input_precision=PRECISION)
    return new_level, numerator, denominator


# The slow, exact way through the diagonal block, for when a key in it jumps
# far above what its first rows have seen. Each row $r$ gets its own level
# $\ell_r$, the running maximum of the keys it sees; the sums so far (kept at
# $\mu \le \ell_r$) are moved to it, and the block's keys are added one at a
# time, each term $e^{w - c + K - \ell_r} \le 1$. Rows before the jump never
# meet the large key, as in the recurrent `step`.
@triton.jit
def add_diagonal_per_row(k_ptr, v_ptr, band_ptr, band_stride, shift, b, rows,
                         j, chans, stride_b, stride_t, seq, d, s, level,
                         numerator, denominator, k, BLOCK, ACC):
    levels = tl.maximum(tl.associative_scan(k, 0, maximum), level[None, :])
    scale = rescale(level[None, :], levels)
    numerator, denominator = numerator * scale, denominator * scale
    for column in range(0, BLOCK):
        key = j * BLOCK + column + tl.zeros([1], tl.int32)
        k_key, v_key = load_keys(k_ptr, v_ptr, b, key, chans, stride_b,
                                 stride_t, seq, d, ACC)
        weights = log_weights(band_ptr, band_stride, shift[:, None],
                              rows[:, None], key[None, :], seq, s, True)
        terms = tl.exp(weights + k_key - levels)
        numerator += terms * v_key
        denominator += terms
    return levels, numerator, denominator


# The main pass. Each instance starts from the far sums of its block of rows,
# weighted $e^{-c_t}$ per row (all its far keys are far from all its rows),
# adds the window's blocks in order, and writes
# $Y = \sigma(Q) \odot N / D$ and, for the backward pass, the log of the
# denominator with its level put back, $\log D + \mu$: the log of
# $\sum_{t'} e^{w_{t,t'} - c_t + K_{t'}}$, one number per row and channel.
@kernel
def forward_kernel(q_ptr, k_ptr, v_ptr, y_ptr, lse_ptr, band_ptr, shift_ptr,
                   prefix_ptr, suffix_ptr, stride_b, stride_t, band_stride,
                   part, seq, d, s, reach, n_blocks, tau,
                   CAUSAL: tl.constexpr, BLOCK: tl.constexpr,
                   CHANNELS: tl.constexpr, ACC: tl.constexpr,
                   PRECISION: tl.constexpr):
    j, cb, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rows = j * BLOCK + tl.arange(0, BLOCK)
    chans = cb * CHANNELS + tl.arange(0, CHANNELS)
    shift = tl.load(shift_ptr + rows, mask=rows < seq, other=0.0)
    far_weight = tl.exp(-shift)[:, None]

    # The far keys before the window (and after it, non-causal)
    level = tl.full([CHANNELS], float("-inf"), ACC)
    numerator = tl.zeros([BLOCK, CHANNELS], ACC)
    denominator = tl.zeros([BLOCK, CHANNELS], ACC)
    if j - reach - 1 >= 0:
        offsets = (b * n_blocks + j - reach - 1) * d + chans
        level, first, second = load_summary(prefix_ptr, part, offsets,
                                            chans < d)
        numerator = far_weight * first[None, :]
        denominator = far_weight * second[None, :]
    if not CAUSAL:
        if j + reach + 1 < n_blocks:
            offsets = (b * n_blocks + j + reach + 1) * d + chans
            after, first, second = load_summary(suffix_ptr, part, offsets,
                                                chans < d)
            new_level = tl.maximum(level, after)
            scale = rescale(level, new_level)[None, :]
            after_scale = rescale(after, new_level)[None, :]
            numerator = (numerator * scale
                         + far_weight * first[None, :] * after_scale)
            denominator = (denominator * scale
                           + far_weight * second[None, :] * after_scale)
            level = new_level

    # The window's blocks, oldest first; causal, the diagonal block comes last
    last = j - 1 if CAUSAL else tl.minimum(j + reach, n_blocks - 1)
    for i in range(tl.maximum(j - reach, 0), last + 1):
        level, numerator, denominator = add_keys(
            k_ptr, v_ptr, band_ptr, band_stride, shift, b, rows, i, chans,
            stride_b, stride_t, seq, d, s, level, numerator, denominator,
            CAUSAL, BLOCK, ACC, PRECISION)
    levels = tl.zeros([BLOCK, CHANNELS], ACC) + level[None, :]
    if CAUSAL:
        # Does a key of this block rise more than tau above the running
        # maximum of its first row? Then row by row
        k, v = load_keys(k_ptr, v_ptr, b, rows, chans, stride_b, stride_t,
                         seq, d, ACC)
        first_row = tl.arange(0, BLOCK)[:, None] == 0
        first_max = tl.maximum(level, tl.max(tl.where(first_row, k, -1e30), 0))
        if tl.max(tl.max(k, 0) - first_max) > tau:
            levels, numerator, denominator = add_diagonal_per_row(
                k_ptr, v_ptr, band_ptr, band_stride, shift, b, rows, j,
                chans, stride_b, stride_t, seq, d, s, level, numerator,
                denominator, k, BLOCK, ACC)
        else:
            level, numerator, denominator = add_keys(
                k_ptr, v_ptr, band_ptr, band_stride, shift, b, rows, j,
                chans, stride_b, stride_t, seq, d, s, level, numerator,
                denominator, CAUSAL, BLOCK, ACC, PRECISION)
            levels = tl.zeros([BLOCK, CHANNELS], ACC) + level[None, :]

    q = load_tile(q_ptr, b, rows, chans, stride_b, stride_t, seq, d, 0.0, ACC)
    y = tl.sigmoid(q) * numerator / denominator
    store_tile(y_ptr, b, rows, chans, stride_b, stride_t, seq, d, y)
    store_tile(lse_ptr, b, rows, chans, stride_b, stride_t, seq, d,
               tl.log(denominator) + levels)


# ## The backward pass
#
# With $P_{t,t'} = e^{w_{t,t'} - c_t + K_{t'} - L_t}$ the normalised weight of
# key $t'$ in row $t$ ($L_t$ the log the forward pass kept; every $P \le 1$),
# $O_t = \sum_{t'} P_{t,t'} V_{t'}$ the mean and $G$ the gradient of $Y$, per
# channel:
#
# $$
# \frac{\partial \mathcal{L}}{\partial V_{t'}} = \sum_t P_{t,t'} H_t, \qquad
# \frac{\partial \mathcal{L}}{\partial K_{t'}} = V_{t'} \sum_t P_{t,t'} H_t
#   - \sum_t P_{t,t'} G_t Y_t, \qquad
# \frac{\partial \mathcal{L}}{\partial Q_t} = G_t Y_t (1 - \sigma(Q_t))
# $$
#
# with $H_t = G_t \sigma(Q_t)$, and for a bias in the window, summed over the
# batch and the channels, $\partial \mathcal{L} / \partial w_{t,t'} = \sum
# P_{t,t'} (H_t V_{t'} - G_t Y_t)$. The sums over $t$ are the forward pass's
# sums transposed: for each block of *keys*, the rows that see it through the
# window (blocks $i, \dots, i + k$, and from $i - k$ non-causal), and the far
# rows, whose share comes from running sums again, this time of the rows: with
# $x_t = -(L_t + c_t)$, a far row's weight is $P_{t,t'} = e^{K_{t'} + x_t}$, so
# the summaries of $x$, $H$ and $G Y$ serve every key at once. Since every $P
# \le 1$, $K_{t'} + x_t \le 0$: the largest $x$ of the far rows never makes the
# key's factor overflow.
#
# `row_terms` gives a block of rows' $L$ ($+\infty$ past the end: weight 0),
# $H$ and $G Y$.
@triton.jit
def row_terms(q_ptr, y_ptr, lse_ptr, g_ptr, stride_b, stride_t, g_stride_b,
              g_stride_t, b, rows, chans, seq, d, ACC):
    lse = load_tile(lse_ptr, b, rows, chans, stride_b, stride_t, seq, d,
                    float("inf"), ACC)
    q = load_tile(q_ptr, b, rows, chans, stride_b, stride_t, seq, d, 0.0, ACC)
    y = load_tile(y_ptr, b, rows, chans, stride_b, stride_t, seq, d, 0.0, ACC)
    g = load_tile(g_ptr, b, rows, chans, g_stride_b, g_stride_t, seq, d, 0.0,
                  ACC)
    return lse, g * tl.sigmoid(q), g * y


# The rows' pass: $\partial Q$, and each block's summary of $x$, $H$, $G Y$.
@kernel
def row_sums_kernel(q_ptr, y_ptr, lse_ptr, g_ptr, dq_ptr, shift_ptr, sums_ptr,
                    stride_b, stride_t, g_stride_b, g_stride_t, part, seq, d,
                    n_blocks, BLOCK: tl.constexpr, CHANNELS: tl.constexpr,
                    ACC: tl.constexpr):
    j, cb, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rows = j * BLOCK + tl.arange(0, BLOCK)
    chans = cb * CHANNELS + tl.arange(0, CHANNELS)
    lse, h, gy = row_terms(q_ptr, y_ptr, lse_ptr, g_ptr, stride_b, stride_t,
                           g_stride_b, g_stride_t, b, rows, chans, seq, d, ACC)
    q = load_tile(q_ptr, b, rows, chans, stride_b, stride_t, seq, d, 0.0, ACC)
    store_tile(dq_ptr, b, rows, chans, stride_b, stride_t, seq, d,
               gy * (1 - tl.sigmoid(q)))
    shift = tl.load(shift_ptr + rows, mask=rows < seq, other=0.0)
    mu, first, second = summarize(-(lse + shift[:, None]), h, gy)
    offsets = (b * n_blocks + j) * d + chans
    store_summary(sums_ptr, part, offsets, chans < d, mu, first, second)


# For one block of keys and one block of rows, both transposed sums. The fast
# way splits $P = A \cdot e^{K - \mu} \cdot e^{\mu - L}$ ($\mu$ the keys'
# largest, $A = e^{w - c}$), a matrix product between a factor of the keys and
# one of the rows. That is safe when no row factor $e^{\mu - L_t}$ is huge,
# that is, when every row sees a key near $\mu$: always, except for causal rows
# before a jump in the diagonal block (or biases so negative that a row's
# weights are all tiny). Otherwise the block is taken row by row, with $P =
# e^{w - c + K - L_t}$ directly.
@triton.jit
def key_grads_from_rows(q_ptr, y_ptr, lse_ptr, g_ptr, band_ptr, band_stride,
                        shift_ptr, stride_b, stride_t, g_stride_b, g_stride_t,
                        b, j, keys, chans, k, e, mu, seq, d, s, tau, sum_h,
                        sum_gy, CAUSAL, BLOCK, ACC, PRECISION):
    rows = j * BLOCK + tl.arange(0, BLOCK)
    lse, h, gy = row_terms(q_ptr, y_ptr, lse_ptr, g_ptr, stride_b, stride_t,
                           g_stride_b, g_stride_t, b, rows, chans, seq, d, ACC)
    shift = tl.load(shift_ptr + rows, mask=rows < seq, other=0.0)
    if tl.max(mu[None, :] - lse) <= tau:
        row_factor = tl.exp(mu[None, :] - lse)
        weights = tl.exp(log_weights(band_ptr, band_stride, shift[None, :],
                                     rows[None, :], keys[:, None], seq, s,
                                     CAUSAL))
        sum_h += e * tl.dot(weights, row_factor * h,
                            input_precision=PRECISION)
        sum_gy += e * tl.dot(weights, row_factor * gy,
                             input_precision=PRECISION)
    else:
        for r in range(0, BLOCK):
            row = j * BLOCK + r + tl.zeros([1], tl.int32)
            lse_r, h_r, gy_r = row_terms(q_ptr, y_ptr, lse_ptr, g_ptr,
                                         stride_b, stride_t, g_stride_b,
                                         g_stride_t, b, row, chans, seq, d,
                                         ACC)
            shift_r = tl.load(shift_ptr + row, mask=row < seq, other=0.0)
            weights = log_weights(band_ptr, band_stride, shift_r[None, :],
                                  row[None, :], keys[:, None], seq, s, CAUSAL)
            p = tl.exp(weights + k - lse_r)
            sum_h += p * h_r
            sum_gy += p * gy_r
    return sum_h, sum_gy


# The keys' pass: one instance per block of keys and group of channels, with
# the far rows' share from the running sums, then the window's rows, then
# $\partial V$ and $\partial K$.
@kernel
def key_grads_kernel(q_ptr, k_ptr, v_ptr, y_ptr, lse_ptr, g_ptr, dk_ptr,
                     dv_ptr, band_ptr, shift_ptr, prefix_ptr, suffix_ptr,
                     stride_b, stride_t, g_stride_b, g_stride_t, band_stride,
                     part, seq, d, s, reach, n_blocks, tau,
                     CAUSAL: tl.constexpr, BLOCK: tl.constexpr,
                     CHANNELS: tl.constexpr, ACC: tl.constexpr,
                     PRECISION: tl.constexpr):
    i, cb, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    keys = i * BLOCK + tl.arange(0, BLOCK)
    chans = cb * CHANNELS + tl.arange(0, CHANNELS)
    k, v = load_keys(k_ptr, v_ptr, b, keys, chans, stride_b, stride_t, seq, d,
                     ACC)
    mu = tl.max(k, 0)
    e = tl.exp(k - mu[None, :])
    sum_h = tl.zeros([BLOCK, CHANNELS], ACC)
    sum_gy = tl.zeros([BLOCK, CHANNELS], ACC)

    # The far rows after the window (and before it, non-causal)
    if i + reach + 1 < n_blocks:
        offsets = (b * n_blocks + i + reach + 1) * d + chans
        x, first, second = load_summary(suffix_ptr, part, offsets, chans < d)
        factor = tl.exp(k + x[None, :])
        sum_h += factor * first[None, :]
        sum_gy += factor * second[None, :]
    if not CAUSAL:
        if i - reach - 1 >= 0:
            offsets = (b * n_blocks + i - reach - 1) * d + chans
            x, first, second = load_summary(prefix_ptr, part, offsets,
                                            chans < d)
            factor = tl.exp(k + x[None, :])
            sum_h += factor * first[None, :]
            sum_gy += factor * second[None, :]

    # The rows that see this block through the window
    first_rows = i if CAUSAL else tl.maximum(i - reach, 0)
    for j in range(first_rows, tl.minimum(i + reach, n_blocks - 1) + 1):
        sum_h, sum_gy = key_grads_from_rows(
            q_ptr, y_ptr, lse_ptr, g_ptr, band_ptr, band_stride, shift_ptr,
            stride_b, stride_t, g_stride_b, g_stride_t, b, j, keys, chans, k,
            e, mu, seq, d, s, tau, sum_h, sum_gy, CAUSAL, BLOCK, ACC,
            PRECISION)
    store_tile(dv_ptr, b, keys, chans, stride_b, stride_t, seq, d, sum_h)
    store_tile(dk_ptr, b, keys, chans, stride_b, stride_t, seq, d,
               v * sum_h - sum_gy)


# The band's pass. A bias is shared by the whole batch and every channel, so
# its gradient is a sum over all of them: one instance per block of rows and
# block of keys in its window, looping over the sequences and groups of
# channels, with the same two ways as above. Each band entry belongs to
# exactly one such pair of blocks, so no two instances write the same entry.
@kernel
def band_grads_kernel(q_ptr, k_ptr, v_ptr, y_ptr, lse_ptr, g_ptr, dband_ptr,
                      band_ptr, shift_ptr, stride_b, stride_t, g_stride_b,
                      g_stride_t, band_stride, dband_stride, batch, seq, d, s,
                      reach, n_blocks, tau, CAUSAL: tl.constexpr,
                      BLOCK: tl.constexpr, CHANNELS: tl.constexpr,
                      ACC: tl.constexpr, PRECISION: tl.constexpr):
    j, i = tl.program_id(0), tl.program_id(0) - reach + tl.program_id(1)
    if (i >= 0) & (i < n_blocks):
        rows = j * BLOCK + tl.arange(0, BLOCK)
        keys = i * BLOCK + tl.arange(0, BLOCK)
        shift = tl.load(shift_ptr + rows, mask=rows < seq, other=0.0)
        log_w = log_weights(band_ptr, band_stride, shift[:, None],
                            rows[:, None], keys[None, :], seq, s, CAUSAL)
        weights = tl.exp(log_w)
        grad = tl.zeros([BLOCK, BLOCK], ACC)
        for b in range(0, batch):
            for cb in range(0, tl.cdiv(d, CHANNELS)):
                chans = cb * CHANNELS + tl.arange(0, CHANNELS)
                k, v = load_keys(k_ptr, v_ptr, b, keys, chans, stride_b,
                                 stride_t, seq, d, ACC)
                lse, h, gy = row_terms(q_ptr, y_ptr, lse_ptr, g_ptr,
                                       stride_b, stride_t, g_stride_b,
                                       g_stride_t, b, rows, chans, seq, d,
                                       ACC)
                mu = tl.max(k, 0)
                if tl.max(mu[None, :] - lse) <= tau:
                    e = tl.exp(k - mu[None, :])
                    row_factor = tl.exp(mu[None, :] - lse)
                    products = (
                        tl.dot(row_factor * h, tl.trans(e * v),
                               input_precision=PRECISION)
                        - tl.dot(row_factor * gy, tl.trans(e),
                                 input_precision=PRECISION))
                    grad += weights * products
                else:
                    grad += band_grads_per_row(
                        q_ptr, y_ptr, lse_ptr, g_ptr, band_ptr, band_stride,
                        shift_ptr, stride_b, stride_t, g_stride_b,
                        g_stride_t, b, j, keys, chans, k, v, seq, d, s,
                        CAUSAL, BLOCK, ACC)
        bias, near, far = pair_biases(band_ptr, band_stride, rows[:, None],
                                      keys[None, :], seq, s, CAUSAL)
        pointers = (dband_ptr + rows[:, None] * dband_stride + keys[None, :]
                    - rows[:, None] + s - 1)
        tl.store(pointers, grad.to(dband_ptr.dtype.element_ty), mask=near)



# The band's gradient for one pair of blocks, row by row, for the blocks where
# the fast way could overflow: $P = e^{w - c + K - L_t}$ for row $t$ and every
# key of the block, summed over the channels into the row of entries.
@triton.jit
def band_grads_per_row(q_ptr, y_ptr, lse_ptr, g_ptr, band_ptr, band_stride,
                       shift_ptr, stride_b, stride_t, g_stride_b, g_stride_t,
                       b, j, keys, chans, k, v, seq, d, s, CAUSAL, BLOCK,
                       ACC):
    grad = tl.zeros([BLOCK, BLOCK], ACC)
    for r in range(0, BLOCK):
        row = j * BLOCK + r + tl.zeros([1], tl.int32)
        lse_r, h_r, gy_r = row_terms(q_ptr, y_ptr, lse_ptr, g_ptr, stride_b,
                                     stride_t, g_stride_b, g_stride_t, b, row,
                                     chans, seq, d, ACC)
        shift_r = tl.load(shift_ptr + row, mask=row < seq, other=0.0)
        weights = log_weights(band_ptr, band_stride, shift_r[None, :],
                              row[None, :], keys[:, None], seq, s, CAUSAL)
        p = tl.exp(weights + k - lse_r)
        entries = tl.sum(p * (h_r * v - gy_r), 1)
        grad += tl.where(tl.arange(0, BLOCK)[:, None] == r, entries[None, :],
                         0.0)
    return grad


# ## Putting it together
#
# `Plan` holds the sizes every launch needs: the block size $C$, the reach $k$
# of the window in blocks, the number of blocks and of groups of channels, and
# the type in which everything is accumulated (float32, or float64 for
# float64 inputs).
class Plan:
    def __init__(self, q, band, causal, block=None):
        self.batch, self.seq, self.d = q.shape
        self.causal = causal
        width = band.shape[1]
        self.s = width if causal else (width + 1) // 2
        if block is None:
            quarter = triton.next_power_of_2(max(-(-self.s // 4), 1))
            block = min(MAX_BLOCK, max(MIN_BLOCK, quarter),
                        max(MIN_BLOCK, triton.next_power_of_2(self.seq)))
        self.block = block
        self.reach = -(-(self.s - 1) // block)
        self.n_blocks = triton.cdiv(self.seq, block)
        self.channels = min(CHANNELS, max(16, triton.next_power_of_2(self.d)))
        self.channel_blocks = triton.cdiv(self.d, self.channels)
        wide = q.dtype == torch.float64
        self.dtype = torch.float64 if wide else torch.float32
        self.acc = tl.float64 if wide else tl.float32
        self.precision = "ieee" if wide else FLOAT32_PRODUCTS
        # Are there far keys at all? (Not when the window covers the sequence)
        self.has_far = self.n_blocks > self.reach + 1

    def grid(self):
        return (self.n_blocks, self.channel_blocks, self.batch)

    def running_sums(self, sums, prefix: bool, suffix: bool):
        """Pass 3: the running sums of block summaries `[3, batch, n, d]`."""
        out_prefix = torch.empty_like(sums) if prefix else sums
        out_suffix = torch.empty_like(sums) if suffix else sums
        grid = (triton.cdiv(self.d, SCAN_CHANNELS), self.batch)
        scan_kernel[grid](sums, out_prefix, out_suffix, sums[0].numel(),
                          self.d, self.n_blocks, PREFIX=prefix,
                          SUFFIX=suffix, CHANNELS=SCAN_CHANNELS)
        return out_prefix, out_suffix


def channels_contiguous(*tensors):
    """The kernels take rows and sequences at any stride, channels packed; `q`,
    `k`, `v` share one layout (they do when made alike, as the layers make
    them)."""
    q = tensors[0]
    if any(x.stride(-1) != 1 or x.stride() != q.stride() for x in tensors):
        return [x.contiguous() for x in tensors]
    return list(tensors)



# The operation for autograd: the forward pass launches passes 1 to 4 and
# keeps the inputs, the bias shifts, the output and the logs $L$; the backward
# pass launches the rows' pass, their running sums, the keys' pass and, if the
# band needs a gradient, the band's pass. Nothing else is kept or made: the
# largest tensors are the gradients themselves.
class GatedMean(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, band, causal: bool, block=None):
        q, k, v = channels_contiguous(q, k, v)
        if band.stride(-1) != 1:
            band = band.contiguous()
        plan = Plan(q, band, causal, block)
        stride_b, stride_t = q.stride(0), q.stride(1)
        flags = dict(CAUSAL=causal, BLOCK=plan.block)

        shift = torch.empty(plan.seq, dtype=plan.dtype, device=q.device)
        row_shift_kernel[(plan.n_blocks,)](
            band, band.stride(0), shift, plan.seq, plan.s, plan.reach,
            plan.n_blocks, **flags)
        sums = torch.empty(3, plan.batch, plan.n_blocks, plan.d,
                           dtype=plan.dtype, device=q.device)
        prefix = suffix = sums
        if plan.has_far:
            key_sums_kernel[plan.grid()](
                k, v, sums, stride_b, stride_t, sums[0].numel(), plan.seq,
                plan.d, plan.n_blocks, BLOCK=plan.block,
                CHANNELS=plan.channels, ACC=plan.acc, num_warps=WARPS)
            prefix, suffix = plan.running_sums(sums, True, not causal)

        y = torch.empty_like(q)
        lse = torch.empty_like(q, dtype=plan.dtype)
        forward_kernel[plan.grid()](
            q, k, v, y, lse, band, shift, prefix, suffix, stride_b, stride_t,
            band.stride(0), sums[0].numel(), plan.seq, plan.d, plan.s,
            plan.reach, plan.n_blocks, TAU, CHANNELS=plan.channels,
            ACC=plan.acc, PRECISION=plan.precision, num_warps=WARPS, **flags)
        ctx.save_for_backward(q, k, v, band, shift, y, lse)
        ctx.plan = plan
        return y

    @staticmethod
    def backward(ctx, grad):
        q, k, v, band, shift, y, lse = ctx.saved_tensors
        plan = ctx.plan
        if grad.stride(-1) != 1:
            grad = grad.contiguous()
        stride_b, stride_t = q.stride(0), q.stride(1)
        grad_strides = (grad.stride(0), grad.stride(1))
        flags = dict(CAUSAL=plan.causal, BLOCK=plan.block,
                     CHANNELS=plan.channels, ACC=plan.acc)

        # The rows' pass: dQ and the summaries of the rows, then their
        # running sums (causal, only the rows after a key are far from it)
        dq = torch.empty_like(q)
        sums = torch.empty(3, plan.batch, plan.n_blocks, plan.d,
                           dtype=plan.dtype, device=q.device)
        row_sums_kernel[plan.grid()](
            q, y, lse, grad, dq, shift, sums, stride_b, stride_t,
            *grad_strides, sums[0].numel(), plan.seq, plan.d, plan.n_blocks,
            BLOCK=plan.block, CHANNELS=plan.channels, ACC=plan.acc,
            num_warps=WARPS)
        prefix = suffix = sums
        if plan.has_far:
            prefix, suffix = plan.running_sums(sums, not plan.causal, True)

        dk, dv = torch.empty_like(k), torch.empty_like(v)
        key_grads_kernel[plan.grid()](
            q, k, v, y, lse, grad, dk, dv, band, shift, prefix, suffix,
            stride_b, stride_t, *grad_strides, band.stride(0),
            sums[0].numel(), plan.seq, plan.d, plan.s, plan.reach,
            plan.n_blocks, TAU, PRECISION=plan.precision, num_warps=WARPS,
            **flags)

        d_band = None
        if ctx.needs_input_grad[3]:
            d_band = torch.zeros_like(
                band, memory_format=torch.contiguous_format)
            chunks = plan.reach + 1 if plan.causal else 2 * plan.reach + 1
            band_grads_kernel[(plan.n_blocks, chunks)](
                q, k, v, y, lse, grad, d_band, band, shift, stride_b,
                stride_t, *grad_strides, band.stride(0), d_band.stride(0),
                plan.batch, plan.seq, plan.d, plan.s, plan.reach,
                plan.n_blocks, TAU, PRECISION=plan.precision,
                num_warps=WARPS, **flags)
        return dq, dk, dv, d_band, None, None
