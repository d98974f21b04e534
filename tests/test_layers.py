"""The layers: factorised biases, AFT-conv's start, recurrent steps, linear memory."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from aft import AFTConv, AFTFull, AFTLocal, AFTSimple, aft_full, aft_local, aft_simple
from aft.kernel import MIN_BLOCK


def dense_local_bias(layer: AFTLocal, seq: int) -> torch.Tensor:
    """u v^T inside the window |t - t'| < s, 0 outside: what AFTLocal's band stands for."""
    full = layer.bias_u[:seq] @ layer.bias_v[:seq].T
    distance = torch.arange(seq).view(-1, 1) - torch.arange(seq).view(1, -1)
    return torch.where(distance.abs() < layer.window, full, torch.zeros_like(full))


@pytest.mark.parametrize("seq,window", [(10, 3), (200, 70), (50, 50), (9, 1)])
@pytest.mark.parametrize("causal", [True, False])
def test_local_layer_is_full_layer_with_banded_bias(seq, window, causal):
    torch.manual_seed(0)
    layer = AFTLocal(8, seq_len=seq + 5, window=window, d_bias=4, causal=causal).double()
    x = torch.randn(2, seq, 8, dtype=torch.float64)
    expected = layer.output(aft_full(layer.query(x), layer.key(x), layer.value(x),
                                     dense_local_bias(layer, seq), causal=causal))
    torch.testing.assert_close(layer(x), expected)


def test_full_layer_uses_factorised_bias():
    torch.manual_seed(0)
    layer = AFTFull(6, seq_len=12, d_bias=3).double()
    x = torch.randn(1, 10, 6, dtype=torch.float64)
    w = layer.bias_u[:10] @ layer.bias_v[:10].T
    expected = layer.output(aft_full(layer.query(x), layer.key(x), layer.value(x), w, causal=True))
    torch.testing.assert_close(layer(x), expected)


def test_conv_starts_as_simple():
    """Eq. 8 with gamma = beta = 0 gives w = 0: AFT-conv is AFT-simple until it learns."""
    torch.manual_seed(0)
    conv = AFTConv(8, heads=2, window=5, causal=True).double()
    x = torch.randn(2, 30, 8, dtype=torch.float64)
    keys = conv.key(x).repeat_interleave(4, dim=-1)  # each head's key for its 4 channels
    expected = conv.output(aft_simple(conv.query(x), keys, conv.value(x), causal=True))
    torch.testing.assert_close(conv(x), expected)
    # and it does learn position: gamma and beta receive gradients
    conv(x).sum().backward()
    assert conv.gamma.grad.abs().sum() > 0 and conv.beta.grad.abs().sum() > 0


@pytest.mark.parametrize("window", [1, 4, 40])
def test_local_step_reproduces_forward(window):
    torch.manual_seed(0)
    seq = 50
    layer = AFTLocal(8, seq_len=seq, window=window, d_bias=4).double()
    x = torch.randn(3, seq, 8, dtype=torch.float64)
    x[1, 20] *= 30  # large keys on the way, so the far sums must rescale
    state = layer.init_state(3)
    steps = []
    for t in range(seq):
        y, state = layer.step(x[:, t], state)
        steps.append(y)
        assert state["keys"].shape[1] <= window  # O(s d) state
    torch.testing.assert_close(torch.stack(steps, 1), layer(x))
    with pytest.raises(ValueError, match="seq_len=50"):
        layer.step(x[:, 0], state)


def test_simple_step_reproduces_forward():
    torch.manual_seed(0)
    layer = AFTSimple(8).double()
    x = torch.randn(2, 40, 8, dtype=torch.float64)
    state = layer.init_state(2)
    steps = []
    for t in range(40):
        y, state = layer.step(x[:, t], state)
        steps.append(y)
    torch.testing.assert_close(torch.stack(steps, 1), layer(x))


def test_layer_arguments_are_checked():
    with pytest.raises(ValueError, match=r"window must be in \[1, seq_len=8\], got 9"):
        AFTLocal(4, seq_len=8, window=9)
    with pytest.raises(ValueError, match="covers seq_len=8"):
        AFTLocal(4, seq_len=8, window=2)(torch.zeros(1, 9, 4))
    with pytest.raises(ValueError, match="d_model=6 must be a multiple of heads=4"):
        AFTConv(6, heads=4, window=3)
    with pytest.raises(ValueError, match="needs a causal"):
        layer = AFTLocal(4, seq_len=8, window=2, causal=False)
        layer.step(torch.zeros(1, 4), layer.init_state(1))


MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys, torch
    from aft import aft_local
    seq, d, s = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, seq, d, generator=g).requires_grad_() for _ in range(3))
    w_band = torch.randn(seq, s, generator=g).requires_grad_()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    aft_local(q, k, v, w_band, causal=True).sum().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finite = bool(torch.isfinite(q.grad).all())
    print(json.dumps({"extra_mib": (peak - base) / 1024, "finite": finite}))
""")


def test_memory_is_linear_in_sequence_length():
    """Forward and backward at T = 32768, where one T x T float32 matrix alone is 4 GiB.

    Measured honestly: the peak resident memory of a fresh process, above what it held
    once its inputs existed."""
    seq, d, s = 32768, 64, 128
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(seq), str(d), str(s)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["finite"]
    tensor_mib = seq * d * 4 / 2**20  # one [T, d] float32 tensor: 8 MiB
    assert result["extra_mib"] < 512, result  # a T x T matrix would be 4096 MiB
    assert result["extra_mib"] < 60 * tensor_mib, result


class LargestTensor(TorchDispatchMode):
    """Records the largest storage, in numbers, that any operation returns."""

    largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for x in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(x, torch.Tensor):
                numbers = x.untyped_storage().nbytes() // x.element_size()
                self.largest = max(self.largest, numbers)
        return out


@pytest.mark.parametrize("causal", [True, False])
def test_no_tensor_grows_faster_than_the_sequence(causal):
    """A window of 1 at T = 131072: 4096 blocks of 32 rows. The far keys' sums are running
    sums over the blocks; a [blocks, blocks] matrix of which blocks are far would hold 16.8
    million numbers, four times the largest tensor the kernel needs, the block weights."""
    seq, d = 131072, 2
    q, k, v = (torch.randn(1, seq, d).requires_grad_() for _ in range(3))
    w_band = torch.randn(seq, 1).requires_grad_()  # s = 1: width 1 in either layout
    with LargestTensor() as mode:
        aft_local(q, k, v, w_band, causal=causal).sum().backward()
    block_weights = seq * MIN_BLOCK  # one block of 32 key columns for each row
    assert mode.largest <= block_weights, mode.largest
