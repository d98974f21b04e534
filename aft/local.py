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
* **The far keys** of blocks outside that range enter as whole-block sums, carried
  from block to block as a running sum (rescaled as the running maximum grows, as
  online softmax does).

With $C \approx s/2$, each row's products touch about $1.5\,s$ keys, for the $s$ it
needs. Every term is non-negative: nothing cancels. The paper's form with $e^w - 1$
corrections is equivalent, but subtracts, and loses precision when $w \ll 0$.
The keys are shifted by *levels* of their running maximum, as in AFT-full, so a huge
future key never touches an earlier row.
"""

import math

import torch
from torch import nn

from aft._checks import check_bias, check_qkv, compute_dtype
from aft.full import TAU, merge_sums, stable_levels

# Blocks of $C \approx s / 2$ rows (measured fastest on the benchmark page, against $s$
# and $s / 4$), and at least 64 rows, so that each matrix product is big enough to run
# at full speed and the loop over blocks stays short.
BLOCKS_PER_WINDOW = 2
MIN_BLOCK = 64


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
    in_dtype, dtype = q.dtype, compute_dtype(q)
    q, k, v, w_band = (x.to(dtype) for x in (q, k, v, w_band))

    # One "head" whose keys have one channel per value channel: `[batch, seq, 1, d]`
    mean = banded_weighted_mean(k.unsqueeze(2), v.unsqueeze(2), w_band.unsqueeze(0), causal)
    # $\sigma(Q_t) \odot$ the weighted average
    return (torch.sigmoid(q) * mean.squeeze(2)).to(in_dtype)


def banded_weighted_mean(k: torch.Tensor, v: torch.Tensor, band: torch.Tensor,
                         causal: bool) -> torch.Tensor:
    r"""The heart of AFT-local, AFT-simple and AFT-conv:
    $\sum_{t'} e^{K_{t'} + w_{t,t'}} V_{t'} / \sum_{t'} e^{K_{t'} + w_{t,t'}}$ with a banded $w$.

    `k` is `[batch, seq, heads, ck]`, `v` is `[batch, seq, heads, dh]`, where `ck` is `dh`
    (a key per channel) or 1 (a key per head, shared by its channels); `band` is
    `[heads, seq, width]` in `aft_local`'s layout. Returns `[batch, seq, heads, dh]`.
    """
    batch, seq, heads, dh = v.shape
    ck = k.shape[-1]

    # ### Window and blocks
    # $s$, the keys in the learned window on each side; a window wider than the
    # sequence is cut to the keys that exist.
    s = band.shape[-1] if causal else (band.shape[-1] + 1) // 2
    if s > seq:
        band = band[..., :seq] if causal else band[..., s - seq: s + seq - 1]
        s = seq
    # Block size $C$, and $k$, the number of blocks the window reaches on each side
    block = min(seq, max(math.ceil((s - 1) / BLOCKS_PER_WINDOW), MIN_BLOCK))
    reach = math.ceil((s - 1) / block)
    n_blocks = math.ceil(seq / block)
    padded = n_blocks * block
    # Block offsets $b = j - i$ between a block of rows $j$ and a block of keys $i$
    offsets = list(range(0 if causal else -reach, reach + 1))

    weights, row_shift = block_weights(band, s, block, reach, offsets, seq, causal)

    # ### Keys and values in blocks
    # Time-major `[heads, blocks, C, batch, channels]`: a block's rows are contiguous, and
    # batch and channels together are the columns of every product. `reach` empty blocks
    # pad each end, so that "block $j - b$" exists for every $j$; padding keys are $-\infty$
    # (weight $e^{-\infty} = 0$), padding values 0.
    def blocks_of(x, pad_value):
        before, after = reach * block, padded - seq + reach * block
        x = nn.functional.pad(x.permute(2, 1, 0, 3), (0, 0, 0, 0, before, after), value=pad_value)
        return x.view(heads, n_blocks + 2 * reach, block, batch, x.shape[-1])

    keys_padded, values_padded = blocks_of(k, float("-inf")), blocks_of(v, 0.0)
    real = slice(reach, reach + n_blocks)  # the blocks that hold the sequence
    # $\mu_i$: each block's largest key (0 for empty blocks; non-causal: the largest of all)
    block_max = keys_padded.detach().amax(dim=2, keepdim=True)
    block_max = torch.where(torch.isinf(block_max), torch.zeros_like(block_max), block_max)
    if not causal:
        block_max = block_max[:, real].amax(dim=1, keepdim=True).expand_as(block_max)

    # $e^{K - \mu_i} \le 1$ for every block (the empty ones included), and $e^{K} \odot V$
    exp_keys = torch.exp(keys_padded - block_max)
    exp_values = exp_keys * values_padded
    far = FarSums(exp_values[:, real].sum(dim=2), exp_keys[:, real].sum(dim=2),
                  block_max[:, real].squeeze(2), reach, causal)
    keys, values = keys_padded[:, real], values_padded[:, real]
    far_weight = torch.exp(-row_shift).unsqueeze(-1)  # the same at every level

    def mix(block_weights, columns):
        # `[.., C, C] @ [.., C, batch, channels]`: batch and channels are the product's columns
        return (block_weights @ columns.flatten(-2)).unflatten(-1, columns.shape[-2:])

    # ### One pass per level (almost always exactly one)
    result = None
    for level, served in block_levels(keys, block_max[:, real], causal):
        # The far keys first: $e^{-c_t}$ (the weight of a key outside the window) times the
        # sums over the blocks that the window does not reach
        far_values, far_keys = far.at(level)
        numerator, denominator = far_weight * far_values, far_weight * far_keys
        for index, b in enumerate(offsets):
            if causal and b == 0:
                # The diagonal block: a key later in the block may exceed this level, so
                # its keys are clamped, $e^{\min(K, L) - L}$ (only unseen keys change)
                # (`where`, not `minimum`: at a tie `minimum` would send half the gradient to $L$)
                diagonal = torch.exp(torch.where(keys > level, level, keys) - level)
                numerator = numerator + mix(weights[:, index], diagonal * values)
                denominator = denominator + mix(weights[:, index], diagonal)
                continue
            # Block $j - b$ for every block $j$ at once: a shifted view of the padded blocks
            blocks = slice(reach - b, reach - b + n_blocks)
            block_num = mix(weights[:, index], exp_values[:, blocks])
            block_den = mix(weights[:, index], exp_keys[:, blocks])
            if causal:
                # Those keys were shifted by $\mu_{j-b}$; this level wants $L_j \ge \mu_{j-b}$
                scale = torch.exp(block_max[:, blocks] - level)
                numerator = torch.addcmul(numerator, block_num, scale)
                denominator = torch.addcmul(denominator, block_den, scale)
            else:
                numerator, denominator = numerator + block_num, denominator + block_den

        # Back to `[heads, seq, batch, channels]`, without padding rows, and divide
        numerator = numerator.view(heads, padded, batch, dh)[:, :seq]
        denominator = denominator.view(heads, padded, batch, ck)[:, :seq]
        if served is None:
            result = numerator / denominator  # the usual case: one level did every row
            break
        served = served.view(heads, padded, batch, ck)[:, :seq]
        # Rows of a later level divide by 1 here, so not even their discarded gradient is NaN
        denominator = torch.where(served, denominator, torch.ones_like(denominator))
        mean = numerator / denominator
        result = mean if result is None else torch.where(served, mean, result)

    # `[batch, seq, heads, dh]`
    return result.permute(2, 1, 0, 3)


def block_levels(keys, block_max, causal):
    r"""The levels $L$ for `keys` `[heads, n_blocks, C, batch, ck]`: yields `(level, served)`,
    `level` `[heads, n_blocks, 1, batch, ck]`, `served` the rows it serves, or `None` for all.

    Non-causal, one level serves every row: the largest key of all. Causal, the running
    maximum only rises, so a block's first row has the lowest $\ell$ and its last row the
    highest. If those are within $\tau$ in every block, which is the usual case, one level,
    $L_j = \ell$ at block $j$'s last row, serves every row, and $\ell$ is never needed row
    by row. Otherwise we fall back to `stable_levels` on the rows' own $\ell$."""
    if not causal:
        yield block_max, None
        return
    # $\ell$ at each block's last row and first row
    last = block_max.cummax(dim=1).values
    before = torch.cat([torch.full_like(last[:, :1], float("-inf")), last[:, :-1]], 1)
    first = torch.maximum(before, keys[:, :, :1].detach())
    if bool((first > last - TAU).all()):
        yield last, None
        return
    # $\ell$ row by row: the blocks before, then the running maximum inside the block
    running_max = torch.maximum(before, keys.detach().cummax(dim=2).values)
    shape = running_max.shape
    for level, served in stable_levels(running_max.flatten(-2)):
        yield level.view(*shape[:2], 1, *shape[3:]), served.view(shape)


def block_weights(band, s, block, reach, offsets, seq, causal):
    """$A_{j,b}$, the weights of rows of block $j$ for keys of block $j - b$:
    `[heads, n_offsets, n_blocks, C, C]`, and each row's shift $c_t$, `[heads, n_blocks, C, 1]`.

    $A = e^{w - c_t}$ in the window, $e^{-c_t}$ for a far key, 0 for a key the row cannot
    see (the future, in causal mode, and keys outside the sequence)."""
    heads, _, width = band.shape
    n_blocks = math.ceil(seq / block)
    device = band.device
    rows = torch.arange(block, device=device).view(1, 1, block, 1)
    cols = torch.arange(block, device=device).view(1, 1, 1, block)
    b = torch.tensor(offsets, device=device).view(-1, 1, 1, 1)
    j = torch.arange(n_blocks, device=device).view(1, -1, 1, 1)
    # $t - t'$ for row $t = jC + r$ and key $t' = (j - b)C + c$: `[n_offsets, 1, C, C]`
    distance = b * block + rows - cols
    key_pos = (j - b) * block + cols  # `[n_offsets, n_blocks, 1, C]`
    exists = (key_pos >= 0) & (key_pos < seq)
    if causal:
        index, in_window, visible = distance, (distance >= 0) & (distance < s), distance >= 0
    else:
        index, in_window, visible = s - 1 - distance, distance.abs() < s, exists
    visible = visible & exists  # `[n_offsets, n_blocks, C, C]`
    # Gather each pair's bias from `band`: `[heads, n_offsets, n_blocks, C, C]`
    band_rows = nn.functional.pad(band, (0, 0, 0, n_blocks * block - seq))
    band_rows = band_rows.view(heads, 1, n_blocks, block, width)
    band_rows = band_rows.expand(-1, len(offsets), -1, -1, -1)
    index = index.clamp(0, width - 1).expand(len(offsets), n_blocks, block, block)
    window_bias = band_rows.gather(-1, index.unsqueeze(0).expand(heads, -1, -1, -1, -1))
    # $w$ in the window, 0 for far keys, $-\infty$ for keys the row cannot see
    logits = torch.where(in_window, window_bias, torch.zeros_like(window_bias))
    logits = logits.masked_fill(~visible, float("-inf"))
    # $c_t$, the row's largest visible bias (at least 0, a far key's), cancels in the
    # ratio and keeps every weight $\le 1$. Padding rows see nothing: $c_t = 0$.
    row_shift = logits.detach().amax(dim=-1, keepdim=True).amax(dim=1, keepdim=True)
    row_shift = torch.where(torch.isinf(row_shift), torch.zeros_like(row_shift), row_shift)
    weights = torch.exp(logits - row_shift)
    return weights, row_shift.view(heads, n_blocks, block, 1)


# ## The far keys
#
# For block $j$, the keys outside blocks $j-k, \dots, j+k$ only ever enter as sums
# over whole blocks. Non-causal, every row shares one shift (the largest key), so these
# are plain cumulative sums, taken from each end so that nothing is subtracted.
# Causal, the shift changes from block to block: we carry the sum together with the
# largest key in it, $\mu$, and rescale by $e^{\mu - L}$ when block $j$ uses it at its
# level $L$. A level is at least every key before the block, so $e^{\mu - L} \le 1$.
class FarSums:
    """Sums of $e^K V$ and $e^K$ over the blocks outside each block's window."""

    def __init__(self, value_sums, key_sums, block_max, reach, causal):
        # Per block: `value_sums` `[heads, n_blocks, batch, dh]`, `key_sums` and `block_max`
        # `[heads, n_blocks, batch, ck]`; each block's sums are shifted by its `block_max`
        self.causal = causal
        n_blocks = block_max.shape[1]
        if not causal:
            # Sums over blocks $< j - k$ plus sums over blocks $> j + k$
            def outside(x):
                zeros = torch.zeros_like(x[:, :1]).expand(-1, reach + 1, -1, -1)
                before = torch.cat([zeros, x.cumsum(1)], 1)[:, :n_blocks]
                after = torch.cat([zeros, x.flip(1).cumsum(1)], 1)[:, :n_blocks].flip(1)
                return before + after

            self.values, self.keys, self.max = outside(value_sums), outside(key_sums), block_max
            return
        # Causal: walk the blocks, adding block $j - k - 1$ just before block $j$ needs it
        carried_values = torch.zeros_like(value_sums[:, 0])
        carried_keys = torch.zeros_like(key_sums[:, 0])
        carried_max = torch.full_like(block_max[:, 0], float("-inf"))
        all_values, all_keys, all_max = [], [], []
        for j in range(n_blocks):
            i = j - reach - 1
            if i >= 0:
                carried_values, carried_keys, carried_max = merge_sums(
                    carried_values, carried_keys, carried_max,
                    value_sums[:, i], key_sums[:, i], block_max[:, i])
            all_values.append(carried_values)
            all_keys.append(carried_keys)
            all_max.append(carried_max)
        self.values, self.keys, self.max = (torch.stack(x, 1)
                                            for x in (all_values, all_keys, all_max))

    def at(self, level):
        """The sums at `level` (`[heads, n_blocks, 1, batch, ck]`), as one row per block."""
        values, keys = self.values.unsqueeze(2), self.keys.unsqueeze(2)
        if not self.causal:
            return values, keys
        scale = torch.exp(self.max.unsqueeze(2) - level)  # $e^{\mu - L} \le 1$
        return values * scale, keys * scale


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
        s = self.window
        before, after = s - 1, 0 if self.causal else s - 1
        block = max(s, MIN_BLOCK)
        n_blocks = math.ceil(seq / block)
        # $u$ in blocks `[n_blocks, C, d']`; $v$ padded by the window's reach on each side
        u = nn.functional.pad(self.bias_u[:seq], (0, 0, 0, n_blocks * block - seq))
        v = nn.functional.pad(self.bias_v[:seq], (0, 0, before, n_blocks * block - seq + after))
        u = u.view(n_blocks, block, -1)
        # Each block's $v$ rows, `[n_blocks, C + before + after, d']`, as a view
        v = v.unfold(0, block + before + after, block).transpose(1, 2)
        # $u_t^\top v_{t'}$ for the block and its window: `[n_blocks, C, C + before + after]`
        products = u @ v.transpose(1, 2)
        # Row $r$ needs columns $r + j$: key $t' = t - (s-1) + j$, for $j$ in the band
        width = before + after + 1
        index = torch.arange(block).unsqueeze(1) + torch.arange(width).unsqueeze(0)
        band = products.gather(-1, index.expand(n_blocks, block, width).to(products.device))
        band = band.reshape(n_blocks * block, width)[:seq]
        # Causal layout counts back from $t$: column $j$ is key $t - j$
        return band.flip(-1) if self.causal else band

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.shape[1]
        if seq > self.seq_len:
            raise ValueError(f"x has {seq} positions but the bias covers seq_len={self.seq_len}")
        y = aft_local(self.query(x), self.key(x), self.value(x), self.band(seq),
                      causal=self.causal)
        return self.output(y)

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
