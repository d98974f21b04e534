"""The four AFT operations against the paper's formulas, written as plain loops."""

import itertools

import pytest
import torch

from aft import aft_conv, aft_full, aft_local, aft_simple


def naive_aft(q, k, v, bias, causal):
    """Eq. 2 as written: for each t, a softmax over t' of K_{t'} + w_{t,t'}, per channel."""
    batch, seq, d = q.shape
    out = torch.zeros_like(q)
    for t in range(seq):
        keys = range(t + 1) if causal else range(seq)
        logits = torch.stack([k[:, j] + bias[t, j] for j in keys], dim=1)
        values = torch.stack([v[:, j] for j in keys], dim=1)
        out[:, t] = torch.sigmoid(q[:, t]) * (torch.softmax(logits, dim=1) * values).sum(1)
    return out


def band_to_dense(w_band, seq, causal):
    """The [seq, seq] bias that a band stands for: the band inside the window, 0 outside."""
    width = w_band.shape[1]
    s = width if causal else (width + 1) // 2
    dense = torch.zeros(seq, seq, dtype=w_band.dtype)
    for t in range(seq):
        for j in range(width):
            key = t - j if causal else t + j - (s - 1)
            if 0 <= key < seq:
                dense[t, key] = w_band[t, j]
    return dense


def random_qkv(batch, seq, d, scale=2.0, dtype=torch.float64, key_channels=None):
    g = torch.Generator().manual_seed(seq * 1000 + d)
    q = torch.randn(batch, seq, d, generator=g, dtype=dtype) * scale
    k = torch.randn(batch, seq, key_channels or d, generator=g, dtype=dtype) * scale
    v = torch.randn(batch, seq, d, generator=g, dtype=dtype) * scale
    return q, k, v


# (T, s) pairs: s = 1, s >= T, T not a multiple of any block size, several blocks
SIZES = [(1, 1), (7, 1), (7, 3), (20, 5), (5, 9), (67, 67), (150, 40), (301, 130), (260, 1)]


@pytest.mark.parametrize("seq,s", SIZES)
@pytest.mark.parametrize("causal", [True, False])
def test_local_matches_loop(seq, s, causal):
    q, k, v = random_qkv(2, seq, 3)
    width = s if causal else 2 * s - 1
    w_band = torch.randn(seq, width, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(s))
    expected = naive_aft(q, k, v, band_to_dense(w_band, seq, causal), causal)
    torch.testing.assert_close(aft_local(q, k, v, w_band, causal=causal), expected,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seq", [1, 6, 33])
@pytest.mark.parametrize("causal", [True, False])
def test_full_matches_loop(seq, causal):
    q, k, v = random_qkv(2, seq, 4)
    w = torch.randn(seq, seq, dtype=torch.float64) * 3
    torch.testing.assert_close(aft_full(q, k, v, w, causal=causal), naive_aft(q, k, v, w, causal),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seq", [1, 9, 150])
@pytest.mark.parametrize("causal", [True, False])
def test_simple_matches_loop(seq, causal):
    q, k, v = random_qkv(3, seq, 5)
    expected = naive_aft(q, k, v, torch.zeros(seq, seq, dtype=torch.float64), causal)
    torch.testing.assert_close(aft_simple(q, k, v, causal=causal), expected,
                               rtol=1e-10, atol=1e-12)


def naive_conv(q, k, v, w, causal):
    """Eq. 6 per head: the key of head i is k[..., i], its bias w[i, offset]."""
    batch, seq, d = q.shape
    heads = k.shape[2]
    dh = d // heads
    out = torch.zeros_like(q)
    width = w.shape[1]
    s = width if causal else (width + 1) // 2
    for i in range(heads):
        dense = torch.zeros(seq, seq, dtype=w.dtype)
        for t, j in itertools.product(range(seq), range(width)):
            key = t - j if causal else t + j - (s - 1)
            if 0 <= key < seq:
                dense[t, key] = w[i, j]
        part = slice(i * dh, (i + 1) * dh)
        keys = k[:, :, i:i + 1].expand(-1, -1, dh)
        out[:, :, part] = naive_aft(q[:, :, part], keys, v[:, :, part], dense, causal)
    return out


@pytest.mark.parametrize("seq,s,heads", [(9, 3, 2), (70, 20, 4), (5, 8, 1)])
@pytest.mark.parametrize("causal", [True, False])
def test_conv_matches_loop(seq, s, heads, causal):
    q, k, v = random_qkv(2, seq, 8, key_channels=heads)
    w = torch.randn(heads, s if causal else 2 * s - 1, dtype=torch.float64)
    torch.testing.assert_close(aft_conv(q, k, v, w, causal=causal), naive_conv(q, k, v, w, causal),
                               rtol=1e-10, atol=1e-12)


def test_local_with_window_of_whole_sequence_is_full():
    """s >= T: every pair is in the window, so AFT-local is AFT-full."""
    q, k, v = random_qkv(1, 12, 3)
    w_band = torch.randn(12, 12, dtype=torch.float64)
    dense = band_to_dense(w_band, 12, causal=True)
    torch.testing.assert_close(aft_local(q, k, v, w_band, causal=True),
                               aft_full(q, k, v, dense, causal=True))


def test_local_agrees_with_labml_nn():
    """labml-nn's AFTLocal, projections set to identity, same bias: the same numbers.
    (Batch 1: labml-nn's einsum pairs its [seq, seq, 1] bias with the batch axis.)"""
    from labml_nn.transformers.aft import AFTLocal as LabmlAFTLocal

    seq, d, s = 40, 6, 7
    ref = LabmlAFTLocal(d, seq, s).double()
    with torch.no_grad():
        for layer in (ref.query, ref.key, ref.value, ref.output):
            layer.weight.copy_(torch.eye(d))
            layer.bias.zero_()
        ref.pos_bias.normal_()
    q, k, v = random_qkv(1, seq, d, scale=1.0)
    for causal in (True, False):
        mask = torch.ones(seq, seq, dtype=torch.bool)
        mask = (mask.tril() if causal else mask).view(seq, seq, 1)
        expected = ref(query=q.transpose(0, 1), key=k.transpose(0, 1), value=v.transpose(0, 1),
                       mask=mask).transpose(0, 1)
        # Our band layout, read off labml's dense bias
        width = s if causal else 2 * s - 1
        w_band = torch.zeros(seq, width, dtype=torch.float64)
        for t, j in itertools.product(range(seq), range(width)):
            key = t - j if causal else t + j - (s - 1)
            if 0 <= key < seq:
                w_band[t, j] = ref.pos_bias[t, key]
        with torch.no_grad():
            torch.testing.assert_close(aft_local(q, k, v, w_band, causal=causal), expected)


def _gradcheck(fn, *tensors):
    inputs = [t.detach().clone().requires_grad_(True) for t in tensors]
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("causal", [True, False])
def test_gradcheck_local(causal):
    q, k, v = random_qkv(2, 11, 3, scale=1.0)
    w_band = torch.randn(11, 4 if causal else 7, dtype=torch.float64)
    _gradcheck(lambda *x: aft_local(*x, causal=causal), q, k, v, w_band)


def test_gradcheck_local_through_two_levels():
    """A key spike splits a block into two levels; gradients must stay exact across both."""
    q, k, v = random_qkv(1, 10, 2, scale=1.0)
    k[0, 6, 1] += 80.0
    w_band = torch.randn(10, 3, dtype=torch.float64)
    _gradcheck(lambda *x: aft_local(*x, causal=True), q, k, v, w_band)


@pytest.mark.parametrize("causal", [True, False])
def test_gradcheck_full_simple_conv(causal):
    q, k, v = random_qkv(2, 8, 4, scale=1.0)
    w = torch.randn(8, 8, dtype=torch.float64)
    _gradcheck(lambda *x: aft_full(*x, causal=causal), q, k, v, w)
    _gradcheck(lambda *x: aft_simple(*x, causal=causal), q, k, v)
    w_conv = torch.randn(2, 3 if causal else 5, dtype=torch.float64)
    _gradcheck(lambda *x: aft_conv(*x, causal=causal), q, k[..., :2].clone(), v, w_conv)


def _causal_ops(seq):
    g = torch.Generator().manual_seed(seq)
    w_band = torch.randn(seq, 5, dtype=torch.float64, generator=g)
    w_full = torch.randn(seq, seq, dtype=torch.float64, generator=g)
    w_conv = torch.randn(2, 5, dtype=torch.float64, generator=g)
    return {
        "local": lambda q, k, v: aft_local(q, k, v, w_band, causal=True),
        "full": lambda q, k, v: aft_full(q, k, v, w_full, causal=True),
        "simple": lambda q, k, v: aft_simple(q, k, v, causal=True),
        "conv": lambda q, k, v: aft_conv(q, k[..., :2], v, w_conv, causal=True),
    }


@pytest.mark.parametrize("name", ["local", "full", "simple", "conv"])
def test_causal_gradient_is_exactly_zero_for_the_future(name):
    seq = 150  # several blocks
    op = _causal_ops(seq)[name]
    q, k, v = (x.requires_grad_(True) for x in random_qkv(1, seq, 4, scale=1.0))
    for t in (0, 63, 64, 100, seq - 2):
        grads = torch.autograd.grad(op(q, k, v)[0, t].sum(), (q, k, v))
        for g in grads:
            assert torch.count_nonzero(g[0, t + 1:]) == 0, f"output {t} depends on a later input"
        assert torch.count_nonzero(grads[2][0, : t + 1]) > 0  # and on the past, it does


@pytest.mark.parametrize("name", ["local", "full", "simple", "conv"])
def test_future_key_spike_leaves_the_past_unchanged(name):
    seq, spike_at = 200, 130
    op = _causal_ops(seq)[name]
    q, k, v = (x.float() for x in random_qkv(1, seq, 4, scale=1.0))
    before = op(q, k, v)
    k_spiked = k.clone()
    k_spiked[0, spike_at, :] += 1e4
    after = op(q, k_spiked, v)
    assert torch.isfinite(after).all()
    # Unchanged up to rounding: those rows may now be computed at another level, and a
    # weighted sum of values of both signs can lose a few digits (float32, values ~1)
    torch.testing.assert_close(after[:, :spike_at], before[:, :spike_at], rtol=1e-6, atol=1e-6)
    # From the spike on, its value is the whole weighted average
    spike_value = v[:, spike_at:spike_at + 1]
    torch.testing.assert_close(after[:, spike_at:], torch.sigmoid(q[:, spike_at:]) * spike_value)


def test_labml_nn_is_nan_where_ours_is_not():
    """The reason for levels: one large later key makes labml-nn's earlier rows 0/0."""
    from labml_nn.transformers.aft import AFTLocal as LabmlAFTLocal

    seq, d = 16, 4
    ref = LabmlAFTLocal(d, seq, 4)
    with torch.no_grad():
        for layer in (ref.query, ref.key, ref.value, ref.output):
            layer.weight.copy_(torch.eye(d))
            layer.bias.zero_()
    q, k, v = (x.float() for x in random_qkv(1, seq, d, scale=1.0))
    k[0, 10] += 200.0
    mask = torch.ones(seq, seq, dtype=torch.bool).tril().view(seq, seq, 1)
    with torch.no_grad():
        theirs = ref(query=q.transpose(0, 1), key=k.transpose(0, 1), value=v.transpose(0, 1),
                     mask=mask)
    assert torch.isnan(theirs[:10]).any()
    assert torch.isfinite(aft_local(q, k, v, torch.zeros(seq, 4), causal=True)).all()


def test_very_long_sequence_has_no_nan():
    seq = 65536
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, seq, 8, generator=g) * 4 for _ in range(3))
    k[0, ::977] += 300.0  # a few huge keys scattered along the way
    y = aft_local(q, k, v, torch.randn(seq, 32, generator=g), causal=True)
    assert torch.isfinite(y).all()
    assert torch.isfinite(aft_simple(q, k, v, causal=True)).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_finite_and_close(dtype):
    seq = 2048
    q, k, v = (x.float() for x in random_qkv(2, seq, 16, scale=3.0))
    w_band = torch.randn(seq, 64)
    exact = aft_local(q, k, v, w_band, causal=True)
    low = aft_local(q.to(dtype), k.to(dtype), v.to(dtype), w_band.to(dtype), causal=True)
    assert low.dtype == dtype and torch.isfinite(low).all()
    # Inputs rounded to 16 bits, sums in float32: the error is the inputs' rounding
    reference = aft_local(*(x.to(dtype).float() for x in (q, k, v, w_band)), causal=True)
    tolerance = 1e-2 if dtype == torch.float16 else 5e-2
    torch.testing.assert_close(low.float(), reference, rtol=tolerance, atol=tolerance)
    assert (low.float() - exact).abs().mean() < 0.1


def test_bad_input_names_argument_and_shape():
    q, k, v = random_qkv(1, 10, 4, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"k must be \(1, 10, 4\), got k \(1, 9, 4\)"):
        aft_local(q, k[:, :9], v, torch.zeros(10, 3), causal=True)
    with pytest.raises(ValueError, match=r"w_band must be \[seq, s\].*got \(9, 3\)"):
        aft_local(q, k, v, torch.zeros(9, 3), causal=True)
    with pytest.raises(ValueError, match=r"w_band must be \[seq, 2s - 1\].*width 4 is even"):
        aft_local(q, k, v, torch.zeros(10, 4), causal=False)
    with pytest.raises(ValueError, match="q must be a floating-point tensor"):
        aft_simple(torch.ones(1, 10, 4, dtype=torch.long), k, v)
    with pytest.raises(ValueError, match=r"w must be \[seq, seq\] = \(10, 10\).*got \(10, 9\)"):
        aft_full(q, k, v, torch.zeros(10, 9))
    with pytest.raises(ValueError, match=r"q and v must have one shape"):
        aft_full(q, k, v[..., :3], torch.zeros(10, 10))
    with pytest.raises(ValueError, match=r"q's 4 channels do not split into k's 3 heads"):
        aft_conv(q, k[..., :3], v, torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"w must be \[heads, s\].*\(2, 3\)"):
        aft_conv(q, k[..., :2], v, torch.zeros(3, 3), causal=True)


def _grads(fn, *tensors):
    inputs = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*inputs)
    weight = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(9))
    return out, torch.autograd.grad((out * weight).sum(), inputs)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("spike", [False, True])
def test_local_gradients_across_many_blocks(causal, spike):
    """gradcheck runs on one block; here several blocks, far keys and (with a spike) two
    levels, against autograd through AFT-full with the same dense bias."""
    seq, s = 150, 40  # blocks of 32 rows, a window reaching two blocks back, far keys beyond
    q, k, v = random_qkv(2, seq, 3, scale=1.0)
    if spike:
        k[0, 90, 1] += 80.0
    width = s if causal else 2 * s - 1
    w_band = torch.randn(seq, width, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(3))
    ours, our_grads = _grads(lambda *x: aft_local(*x, causal=causal), q, k, v, w_band)
    theirs, their_grads = _grads(
        lambda q, k, v, w: aft_full(q, k, v, band_to_dense(w, seq, causal), causal=causal),
        q, k, v, w_band)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    for name, a, b in zip("qkvw", our_grads, their_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=f"gradient of {name}")


@pytest.mark.parametrize("causal", [True, False])
def test_conv_gradients_across_many_blocks(causal):
    seq, s, heads = 150, 20, 2
    q, k, v = random_qkv(2, seq, 4, scale=1.0, key_channels=heads)
    w = torch.randn(heads, s if causal else 2 * s - 1, dtype=torch.float64)
    ours, our_grads = _grads(lambda *x: aft_conv(*x, causal=causal), q, k, v, w)

    def dense(q, k, v, w):
        # Each head as AFT-full with its kernel laid out as a dense bias
        out = []
        for i in range(heads):
            band = w[i].expand(seq, -1)
            part = slice(i * 2, (i + 1) * 2)
            out.append(aft_full(q[..., part], k[..., i:i + 1].expand(-1, -1, 2), v[..., part],
                                band_to_dense(band, seq, causal), causal=causal))
        return torch.cat(out, -1)

    theirs, their_grads = _grads(dense, q, k, v, w)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    for name, a, b in zip("qkvw", our_grads, their_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=f"gradient of {name}")


@pytest.mark.parametrize("causal", [True, False])
def test_band_entries_outside_the_sequence_are_ignored(causal):
    """Entries naming a key before 0 or after the end change nothing, however large,
    and get no gradient."""
    seq, s = 70, 9
    q, k, v = random_qkv(1, seq, 3, scale=1.0)
    width = s if causal else 2 * s - 1
    w_band = torch.randn(seq, width, dtype=torch.float64)
    t = torch.arange(seq).unsqueeze(1)
    j = torch.arange(width).unsqueeze(0)
    key = t - j if causal else t + j - (s - 1)
    outside = (key < 0) | (key >= seq)
    assert outside.any()
    hostile = w_band.masked_fill(outside, 1e4)
    clean, _ = _grads(lambda *x: aft_local(*x, causal=causal), q, k, v, w_band)
    ours, grads = _grads(lambda *x: aft_local(*x, causal=causal), q, k, v, hostile)
    torch.testing.assert_close(ours, clean, rtol=1e-12, atol=1e-12)
    assert torch.count_nonzero(grads[3][outside]) == 0


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("bias", [-300.0, 300.0])
def test_extreme_window_biases_stay_exact(causal, bias):
    """Biases far below or above 0, in float32: every row keeps its largest weight at 1.
    (The first rows have no far keys; with biases of -300 they must not compare them with
    a far key's weight of 1, which would round every weight they have to 0. Non-causal, the
    rows in the middle of a sequence shorter than 2s have none.)"""
    seq, s = (90, 20) if causal else (30, 20)
    q, k, v = random_qkv(2, seq, 3, scale=1.0)
    width = s if causal else 2 * s - 1
    w_band = bias + torch.randn(seq, width, dtype=torch.float64,
                                generator=torch.Generator().manual_seed(seq))
    expected = naive_aft(q, k, v, band_to_dense(w_band, seq, causal), causal)
    ours = aft_local(*(x.float() for x in (q, k, v, w_band)), causal=causal)
    assert torch.isfinite(ours).all()
    # (float32 holds 300 to about 3e-5, so each weight is good to about that, relatively)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-4, atol=1e-4)


def test_memory_layout_of_the_inputs_changes_nothing():
    """Time-major views (what `AFTLocal` passes) and ordinary batch-major tensors: the same
    outputs and gradients, and a backward pass that can run twice on one graph."""
    seq, s = 100, 12
    q, k, v = random_qkv(3, seq, 4, scale=1.0)
    w_band = torch.randn(seq, s, dtype=torch.float64)

    def time_major(x):
        return x.transpose(0, 1).contiguous().transpose(0, 1)

    out_a, grads_a = _grads(lambda *x: aft_local(*x, causal=True), q, k, v, w_band)
    out_b, grads_b = _grads(lambda q, k, v, w: aft_local(time_major(q), time_major(k),
                                                         time_major(v), w, causal=True),
                            q, k, v, w_band)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=1e-14)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    inputs = [x.detach().clone().requires_grad_(True) for x in (q, k, v, w_band)]
    out = aft_local(*inputs, causal=True).sum()
    first = torch.autograd.grad(out, inputs, retain_graph=True)
    second = torch.autograd.grad(out, inputs)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
