"""AFT-local's simple version against the fast kernel and the paper's formula.

The AFT-local page teaches `aft_local_simple` and says the fast kernel on the next page
computes the same thing; these tests hold both claims, and the one limit the page states.
"""

import pytest
import torch
from test_aft_ops import SIZES, band_to_dense, naive_aft, random_qkv

from aft import aft_local
from aft.kernel import MIN_BLOCK
from aft.local import aft_local_simple


def random_band(seq, s, causal, seed):
    width = s if causal else 2 * s - 1
    return torch.randn(seq, width, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed))


# SIZES (from the tests of the fast kernel): s = 1, s >= T, T not a multiple of a
# block, several blocks; and one more past MIN_BLOCK rows with a window of 1
@pytest.mark.parametrize("seq,s", SIZES + [(MIN_BLOCK * 3 + 5, 1)])
@pytest.mark.parametrize("causal", [True, False])
def test_simple_equals_dense_reference_and_fast_kernel(seq, s, causal):
    q, k, v = random_qkv(2, seq, 3)
    w_band = random_band(seq, s, causal, seed=s)
    simple = aft_local_simple(q, k, v, w_band, causal=causal)
    dense = naive_aft(q, k, v, band_to_dense(w_band, seq, causal), causal)
    torch.testing.assert_close(simple, dense, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(simple, aft_local(q, k, v, w_band, causal=causal),
                               rtol=1e-10, atol=1e-12)


def _grads(fn, *inputs):
    inputs = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*inputs)
    # A fixed random weighting, so that every output's gradient counts differently
    weights = torch.randn(out.shape, dtype=out.dtype,
                          generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    return out, [x.grad for x in inputs]


@pytest.mark.parametrize("seq,s", [(7, 1), (20, 5), (5, 9), (70, 33)])
@pytest.mark.parametrize("causal", [True, False])
def test_simple_gradients_equal_the_fast_kernel(seq, s, causal):
    q, k, v = random_qkv(2, seq, 3)
    w_band = random_band(seq, s, causal, seed=seq)
    out_simple, simple = _grads(
        lambda *x: aft_local_simple(*x, causal=causal), q, k, v, w_band)
    out_fast, fast = _grads(lambda *x: aft_local(*x, causal=causal), q, k, v, w_band)
    torch.testing.assert_close(out_simple, out_fast, rtol=1e-10, atol=1e-12)
    for name, a, b in zip("q k v w_band".split(), simple, fast, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=name)


def test_simple_gradcheck():
    q, k, v = random_qkv(1, 9, 2)
    w_band = random_band(9, 4, True, seed=0)
    inputs = [x.requires_grad_() for x in (q, k, v, w_band)]
    assert torch.autograd.gradcheck(lambda *x: aft_local_simple(*x, causal=True),
                                    inputs)


@pytest.mark.parametrize("jump", [120.0, 200.0])
def test_the_stated_limit_a_huge_later_key(jump):
    """The page's claim: a later key far above an earlier row's keys underflows that
    row in the simple version (0/0), while `aft_local` stays exact."""
    seq, s = 40, 4
    q, k, v = (x.float() for x in random_qkv(1, seq, 2))
    k[:, 30:, 0] += jump  # channel 0 only: channel 1 stays ordinary
    w_band = random_band(seq, s, True, seed=3).float()
    simple = aft_local_simple(q, k, v, w_band, causal=True)
    fast = aft_local(q, k, v, w_band, causal=True)
    dense = naive_aft(*(x.double() for x in (q, k, v)),
                      band_to_dense(w_band.double(), seq, True), True)
    # The rows before the jump, channel 0: NaN in the simple version, exact in the
    # fast one; the rest agrees
    assert torch.isnan(simple[:, :30, 0]).all()
    torch.testing.assert_close(fast.double(), dense, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(simple[:, 30:].double(), dense[:, 30:],
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(simple[..., 1].double(), dense[..., 1],
                               rtol=1e-5, atol=1e-6)


def test_without_the_jump_float32_is_fine():
    """The limit is the jump, not float32: the same keys without it agree."""
    seq, s = 40, 4
    q, k, v = (x.float() for x in random_qkv(1, seq, 2))
    w_band = random_band(seq, s, True, seed=3).float()
    torch.testing.assert_close(aft_local_simple(q, k, v, w_band, causal=True),
                               aft_local(q, k, v, w_band, causal=True),
                               rtol=1e-5, atol=1e-6)
