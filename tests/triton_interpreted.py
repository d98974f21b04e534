"""The fused Triton kernel (aft/triton.py) under Triton's interpreter, which runs its kernels
on the CPU with CPU tensors: they must give the paper's formula (the dense loop of
test_aft_ops.py, in float64), forward and backward.

Not collected by itself: tests/test_triton.py runs this file in a fresh process with
`TRITON_INTERPRET=1`. Triton reads that variable when each `@triton.jit` decorator runs,
its own library's included, so it must be set before Triton is first imported, and a
process that compiles kernels for a GPU cannot also interpret them. The interpreter is
slow: the sizes are small, with blocks of 16 rows to have several blocks anyway.
"""

import dataclasses
import os

import numpy as np
import pytest
import torch
from test_aft_ops import band_to_dense, naive_aft, random_qkv

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("run by tests/test_triton.py, with TRITON_INTERPRET=1",
                allow_module_level=True)


def prepare_interpreter():
    """Two changes to Triton 3.6's interpreter, for this process only. A loop whose bounds
    are computed in the kernel (`range(lo, hi)`) fails with NumPy >= 2.4, which no longer
    turns a one-element array into an int (triton-lang/triton#9171; the fix upstream is
    the same). And its check of every integer operation for overflow, which cannot
    happen at these sizes, takes a third of the time."""
    from triton.runtime import interpreter

    patch_tensor = interpreter._patch_lang_tensor

    def patched(tensor, scope):
        patch_tensor(tensor, scope)
        scope.set_attr(tensor, "__index__",
                       lambda self: int(np.asarray(self.handle.data).reshape(-1)[0]))

    interpreter._patch_lang_tensor = patched
    builder = interpreter.interpreter_builder
    builder.options = dataclasses.replace(builder.options, sanitize_overflow=False)


prepare_interpreter()


@pytest.fixture(scope="module")
def fused():
    from aft import triton

    return triton


# Rows and channels past the end are computed (0 / 0) and never stored
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def random_band(seq, s, causal, scale=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seq * 10 + s)
    return torch.randn(seq, s if causal else 2 * s - 1, generator=g, dtype=dtype) * scale


def dense_reference(q, k, v, band, causal):
    """Eq. 4 as written, in float64: the `[seq, seq]` bias that the band stands for (0
    outside the window), a softmax over the keys per channel, gated by sigmoid(Q)."""
    seq, width = band.shape
    s = width if causal else (width + 1) // 2
    rows, keys = torch.arange(seq)[:, None], torch.arange(seq)[None, :]
    column = keys - rows + s - 1  # the band column that holds the pair's bias
    in_band = (column >= 0) & (column < width)
    bias = torch.where(in_band, band.gather(1, column.clamp(0, width - 1)), 0.0)
    logits = k[:, None] + bias[None, :, :, None]  # [batch, t, t', d]
    if causal:
        logits = logits.masked_fill((keys > rows)[None, :, :, None], float("-inf"))
    weights = torch.softmax(logits, dim=2)
    return torch.sigmoid(q) * (weights * v[:, None]).sum(2)


def test_the_reference_is_the_loop_of_test_aft_ops():
    q, k, v = random_qkv(2, 23, 3)
    for causal in (True, False):
        band = random_band(23, 6, causal)
        loop = naive_aft(q, k, v, band_to_dense(band.flip(-1) if causal else band, 23,
                                                causal), causal)
        torch.testing.assert_close(dense_reference(q, k, v, band, causal), loop)


def outputs_and_grads(fn, inputs, weights):
    inputs = [x.detach().clone().requires_grad_(True) for x in inputs]
    y = fn(*inputs)
    (y.double() * weights).sum().backward()
    return y.detach(), [x.grad for x in inputs]


def relative_error(a, b):
    return ((a.double() - b).abs().max() / b.abs().max()).item()


# (T, s, C): one block, s = 1, s > T, T not a multiple of C, several blocks with and
# without far keys, a window of more than one block
SIZES = [(1, 1, None), (7, 3, None), (5, 9, None), (37, 1, 16), (40, 7, 16), (50, 20, 16)]


@pytest.mark.parametrize("seq,s,block", SIZES)
@pytest.mark.parametrize("causal", [True, False])
def test_forward_and_gradients_equal_the_formula(fused, seq, s, block, causal):
    q, k, v = random_qkv(2, seq, 5)
    band = random_band(seq, s, causal)
    weights = torch.randn(2, seq, 5, dtype=torch.float64)
    y, grads = outputs_and_grads(lambda *x: fused.gated_mean(*x, causal, block),
                                 (q, k, v, band), weights)
    y_ref, grads_ref = outputs_and_grads(lambda *x: dense_reference(*x, causal),
                                         (q, k, v, band), weights)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    for name, grad, grad_ref in zip("qkvw", grads, grads_ref, strict=True):
        torch.testing.assert_close(grad, grad_ref, rtol=1e-9, atol=1e-11, msg=name)


@pytest.mark.parametrize("causal", [True, False])
def test_float32_agrees_with_float64_to_1e_5(fused, causal):
    q, k, v = random_qkv(1, 50, 20)
    band = random_band(50, 20, causal)
    weights = torch.randn(1, 50, 20, dtype=torch.float64)
    y, grads = outputs_and_grads(lambda *x: fused.gated_mean(*x, causal, 16),
                                 [x.float() for x in (q, k, v, band)], weights)
    y_ref, grads_ref = outputs_and_grads(lambda *x: dense_reference(*x, causal),
                                         (q, k, v, band), weights)
    assert y.dtype == torch.float32
    assert relative_error(y, y_ref) < 1e-5
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        assert grad.dtype == torch.float32
        assert relative_error(grad, grad_ref) < 1e-5


def test_a_huge_later_key_leaves_earlier_rows_unchanged(fused):
    """A key 1e4 above the rest, in the middle of a block: the rows before it (in its
    block, the one-key-at-a-time path) keep their values; the rows after are finite."""
    seq, spike_at = 40, 21
    q, k, v = (x.float() for x in random_qkv(1, seq, 5, scale=1.0))
    band = random_band(seq, 6, True).float()
    before = fused.gated_mean(q, k, v, band, True, 16)
    k[0, spike_at] += 1e4
    after = fused.gated_mean(q, k, v, band, True, 16)
    assert torch.isfinite(after).all()
    torch.testing.assert_close(after[:, :spike_at], before[:, :spike_at], rtol=1e-6,
                               atol=1e-7)


@pytest.mark.parametrize("causal", [True, False])
def test_gradients_through_a_key_spike_and_extreme_biases(fused, causal):
    """A key 90 above the others (causal: the diagonal block row by row, forward and
    backward) and window biases of -300 (rows whose weights are all tiny: the backward
    pass row by row in both modes) still give the formula's values."""
    seq = 40
    q, k, v = random_qkv(1, seq, 5, scale=1.0)
    k[0, 25] += 90.0
    band = random_band(seq, 6, causal)
    band[:20] -= 300.0
    weights = torch.randn(1, seq, 5, dtype=torch.float64)
    y, grads = outputs_and_grads(lambda *x: fused.gated_mean(*x, causal, 16),
                                 (q, k, v, band), weights)
    y_ref, grads_ref = outputs_and_grads(lambda *x: dense_reference(*x, causal),
                                         (q, k, v, band), weights)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    for name, grad, grad_ref in zip("qkvw", grads, grads_ref, strict=True):
        torch.testing.assert_close(grad, grad_ref, rtol=1e-8, atol=1e-10, msg=name)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_finite_and_close(fused, dtype):
    """16-bit inputs, accumulated in float32: the output and gradients keep the input's
    type and are as close to float64 as the inputs' rounding allows."""
    q, k, v = random_qkv(1, 40, 16, scale=3.0)
    band = random_band(40, 10, True)
    inputs = [x.to(dtype) for x in (q, k, v, band)]
    weights = torch.randn(1, 40, 16, dtype=torch.float64)
    y, grads = outputs_and_grads(lambda *x: fused.gated_mean(*x, True, 16), inputs, weights)
    y_ref, grads_ref = outputs_and_grads(lambda *x: dense_reference(*x, True),
                                         [x.double() for x in inputs], weights)
    tolerance = 1e-2 if dtype == torch.float16 else 5e-2
    assert y.dtype == dtype and torch.isfinite(y).all()
    assert relative_error(y, y_ref) < tolerance
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        assert grad.dtype == dtype and torch.isfinite(grad).all()
        assert relative_error(grad, grad_ref) < tolerance


def test_time_major_inputs_and_strided_gradients(fused):
    """Inputs that are views of `[seq, batch, d]` memory (as the layer makes them), and an
    incoming gradient with stride 0 (the gradient of a sum): nothing changes."""
    q, k, v = random_qkv(3, 20, 5)
    band = random_band(20, 4, True)
    time_major = [x.transpose(0, 1).contiguous().transpose(0, 1) for x in (q, k, v)]
    inputs = [x.clone().requires_grad_(True) for x in (*time_major, band)]
    y = fused.gated_mean(*inputs, True)
    y.sum().backward()
    assert y.stride() == time_major[0].stride()
    y_ref, grads_ref = outputs_and_grads(lambda *x: dense_reference(*x, True),
                                         (q, k, v, band), torch.ones(3, 20, 5,
                                                                     dtype=torch.float64))
    torch.testing.assert_close(y.detach(), y_ref, rtol=1e-10, atol=1e-12)
    for x, grad_ref in zip(inputs, grads_ref, strict=True):
        torch.testing.assert_close(x.grad, grad_ref, rtol=1e-9, atol=1e-11)


def test_without_a_band_gradient_the_band_pass_is_skipped(fused):
    q, k, v = random_qkv(1, 20, 5)
    band = random_band(20, 4, False)
    inputs = [x.clone().requires_grad_(True) for x in (q, k, v)]
    fused.gated_mean(*inputs, band, False).sum().backward()
    assert all(x.grad is not None for x in inputs)
