"""The same guarantees on a GPU: skipped where there is none (CI has none).

The CPU tests prove each operation against the paper's formulas. Here the CPU is the
reference: every operation, layer and model must give the CPU's numbers on a CUDA device, in
float64 to rounding, and keep the promises that depend on the device — stability in half
precision, linear memory as CUDA's allocator counts it, exact resume, seeded sampling.
Run them on a machine with a GPU with `make test-gpu`. (`AFT_TEST_DEVICE=cpu` runs them on
the CPU against itself: a check of the tests, not of the code.)
"""

import os

import pytest
import torch
from test_aft_ops import random_qkv
from test_train import losses, run

from aft import AFTConv, AFTFull, AFTLocal, AFTSimple, aft_conv, aft_full, aft_local, aft_simple
from aft.model import LanguageModel, ModelConfig

DEVICE = os.environ.get("AFT_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                reason="no CUDA device")


def to_device(*tensors):
    return [t.to(DEVICE) for t in tensors]


def operations(seq, s, causal, dtype=torch.float64):
    """Each operation with its bias: `(name, function of q, k, v, key channels)`."""
    g = torch.Generator().manual_seed(seq + s)
    band = torch.randn(seq, s if causal else 2 * s - 1, generator=g, dtype=dtype)
    dense = torch.randn(seq, seq, generator=g, dtype=dtype)
    kernel = torch.randn(2, s if causal else 2 * s - 1, generator=g, dtype=dtype)

    def bias(x, like):
        return x.to(like.device)

    return [
        ("local", lambda q, k, v: aft_local(q, k, v, bias(band, q), causal=causal), None),
        ("full", lambda q, k, v: aft_full(q, k, v, bias(dense, q), causal=causal), None),
        ("simple", lambda q, k, v: aft_simple(q, k, v, causal=causal), None),
        ("conv", lambda q, k, v: aft_conv(q, k, v, bias(kernel, q), causal=causal), 2),
    ]


@pytest.mark.parametrize("seq,s", [(7, 3), (150, 40), (301, 130), (260, 1)])
@pytest.mark.parametrize("causal", [True, False])
def test_operations_and_gradients_equal_the_cpu(seq, s, causal):
    for name, op, key_channels in operations(seq, s, causal):
        q, k, v = random_qkv(2, seq, 4, key_channels=key_channels)
        if name == "local" and causal:
            k[0, seq // 2] += 90.0  # a huge later key: the running-maximum path too
        cpu = [x.clone().requires_grad_(True) for x in (q, k, v)]
        gpu = [x.to(DEVICE).requires_grad_(True) for x in (q, k, v)]
        y_cpu, y_gpu = op(*cpu), op(*gpu)
        assert y_gpu.device.type == DEVICE, name
        torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-9, atol=1e-11, msg=name)
        weights = torch.randn_like(y_cpu)
        (y_cpu * weights).sum().backward()
        (y_gpu * weights.to(DEVICE)).sum().backward()
        for a, b in zip(cpu, gpu, strict=True):
            torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-9, atol=1e-11, msg=name)


@pytest.mark.parametrize("causal", [True, False])
def test_extreme_biases_equal_the_cpu(causal):
    """Window biases of -300 in float32: rows with no far keys keep their weights."""
    q, k, v = random_qkv(2, 30, 4, scale=1.0)
    band = -300 + torch.randn(30, 20 if causal else 39, dtype=torch.float64)
    inputs = [x.float() for x in (q, k, v, band)]
    cpu = aft_local(*inputs, causal=causal)
    gpu = aft_local(*to_device(*inputs), causal=causal)
    assert torch.isfinite(gpu).all()
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_gradcheck_local(causal):
    q, k, v = to_device(*random_qkv(2, 70, 3, scale=1.0))
    w_band = torch.randn(70, 20 if causal else 39, dtype=torch.float64, device=DEVICE)
    inputs = [t.requires_grad_(True) for t in (q, k, v, w_band)]
    # (`nondet_tol`: a GPU may sum in another order when the backward pass runs again)
    assert torch.autograd.gradcheck(lambda *x: aft_local(*x, causal=causal), inputs,
                                    eps=1e-6, atol=1e-7, nondet_tol=1e-12)


def test_future_key_spike_leaves_the_past_unchanged():
    seq, spike_at = 200, 130
    q, k, v = to_device(*(x.float() for x in random_qkv(1, seq, 4, scale=1.0)))
    w_band = torch.randn(seq, 5, generator=torch.Generator().manual_seed(seq)).to(DEVICE)
    before = aft_local(q, k, v, w_band, causal=True)
    k[0, spike_at] += 1e4
    after = aft_local(q, k, v, w_band, causal=True)
    assert torch.isfinite(after).all()
    torch.testing.assert_close(after[:, :spike_at], before[:, :spike_at], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_finite_and_close(dtype):
    seq = 4096
    q, k, v = to_device(*(x.float() for x in random_qkv(2, seq, 64, scale=3.0)))
    w_band = torch.randn(seq, 128, device=DEVICE)
    low = aft_local(*(x.to(dtype) for x in (q, k, v, w_band)), causal=True)
    assert low.dtype == dtype and low.device.type == DEVICE and torch.isfinite(low).all()
    reference = aft_local(*(x.to(dtype).float() for x in (q, k, v, w_band)), causal=True)
    tolerance = 1e-2 if dtype == torch.float16 else 5e-2
    torch.testing.assert_close(low.float(), reference, rtol=tolerance, atol=tolerance)


@pytest.mark.skipif(DEVICE != "cuda", reason="measures CUDA's allocator")
def test_memory_is_linear_in_sequence_length():
    """Forward and backward at T = 65536, where one T x T float32 matrix is 16 GiB: the peak
    that CUDA's allocator handed out above the inputs stays a small multiple of one input."""
    seq, d, s = 65536, 64, 128
    torch.cuda.empty_cache()
    q, k, v = (torch.randn(1, seq, d, device=DEVICE, requires_grad=True) for _ in range(3))
    w_band = torch.randn(seq, s, device=DEVICE, requires_grad=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    y = aft_local(q, k, v, w_band, causal=True)
    y.sum().backward()
    torch.cuda.synchronize()
    extra_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    tensor_mib = seq * d * 4 / 2**20  # one [T, d] float32 tensor: 16 MiB
    assert torch.isfinite(y).all()
    assert extra_mib < 60 * tensor_mib, extra_mib  # a T x T matrix would be 16384 MiB


@pytest.mark.parametrize("make", [
    lambda: AFTLocal(16, 90, 24, d_bias=8), lambda: AFTLocal(16, 90, 24, d_bias=8, causal=False),
    lambda: AFTFull(16, 90, d_bias=8), lambda: AFTSimple(16), lambda: AFTConv(16, 4, 9),
])
def test_layers_equal_the_cpu(make):
    torch.manual_seed(0)
    layer = make().double()
    twin = make().double().to(DEVICE)
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(3, 90, 16, dtype=torch.float64)
    y = layer(x)
    y_gpu = twin(x.to(DEVICE))
    torch.testing.assert_close(y_gpu.cpu(), y)
    y.square().sum().backward()
    y_gpu.square().sum().backward()
    for (name, p), p_gpu in zip(layer.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p_gpu.grad.cpu(), p.grad, msg=name)


@pytest.mark.parametrize("mixer", ["local", "simple", "attention"])
def test_recurrent_logits_equal_parallel_logits(mixer):
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=11, seq_len=40, d_model=16, n_layers=2, mixer=mixer,
                         window=8, d_bias=4, heads=2, d_ff=32)
    model = LanguageModel(config).double().to(DEVICE).eval()
    ids = torch.randint(0, 11, (2, 40), device=DEVICE)
    with torch.no_grad():
        parallel = model(ids)
        state, steps = model.init_state(2), []
        for t in range(40):
            logits, state = model.step(ids[:, t], state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), parallel)


def train(corpus, out, *flags):
    """`aft.train` at the CPU tests' tiny size, on this module's device."""
    return run(corpus, out, "--device", DEVICE, *flags)


def test_training_on_cuda_lowers_the_loss_and_resumes_exactly(corpus, tmp_path):
    flags = ["--steps", "16", "--eval-every", "8", "--lr", "1e-2"]
    assert train(corpus, tmp_path / "whole", *flags) == 0
    val = losses(tmp_path / "whole", "val_loss")
    assert len(val) == 3 and val[2] < val[0] - 0.5
    assert train(corpus, tmp_path / "parts", *flags, "--stop-after", "8") == 0
    assert train(corpus, tmp_path / "parts", *flags, "--resume") == 0
    for column in ("train_loss", "val_loss"):
        assert losses(tmp_path / "parts", column) == losses(tmp_path / "whole", column)


def test_sampling_on_cuda_is_deterministic_under_a_seed(corpus, tmp_path, capsys):
    from aft.sample import main

    assert train(corpus, tmp_path, "--steps", "4", "--eval-every", "4") == 0
    outputs = []
    for seed in (1, 1, 2):
        assert main(["--checkpoint", str(tmp_path / "ckpt.pt"), "--prompt", "KING", "--length",
                     "60", "--seed", str(seed), "--top-k", "5", "--device", DEVICE]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] != outputs[2]


# ## The fused Triton kernel (aft/triton.py)
#
# The same checks as its interpreter tests (tests/triton_interpreted.py), compiled for the
# GPU: float32 against the CPU's float64, the dispatch, and memory at T = 65536.


def fused_kernel():
    pytest.importorskip("triton")
    from aft import triton as fused

    if DEVICE != "cuda":
        pytest.skip("the Triton kernel is compiled for CUDA")
    return fused


def cpu_reference(q, k, v, band, causal):
    """The CPU's float64 `aft_local`, from the kernel's band (oldest key first)."""
    return aft_local(q, k, v, band.flip(-1) if causal else band, causal=causal)


# (T, s, C, d): one block, s > T, several blocks, s = 1, a partial group of channels (d =
# 40: every other d is a multiple of 16, so that the kernels compile only a few times)
@pytest.mark.parametrize("seq,s,block,d", [(1, 1, None, 32), (7, 3, None, 32),
                                           (5, 9, None, 32), (150, 40, None, 40),
                                           (301, 130, 16, 32), (260, 1, 32, 32),
                                           (1000, 256, None, 64)])
@pytest.mark.parametrize("causal", [True, False])
def test_triton_float32_agrees_with_the_cpu_float64(seq, s, block, d, causal):
    fused = fused_kernel()
    q, k, v = random_qkv(2, seq, d, scale=1.0)
    g = torch.Generator().manual_seed(seq + s)
    band = torch.randn(seq, s if causal else 2 * s - 1, generator=g, dtype=torch.float64)
    weights = torch.randn(2, seq, d, dtype=torch.float64)
    cpu = [x.clone().requires_grad_(True) for x in (q, k, v, band)]
    gpu = [x.float().to(DEVICE).requires_grad_(True) for x in (q, k, v, band)]
    y_cpu = cpu_reference(*cpu, causal)
    y_gpu = fused.gated_mean(*gpu, causal, block)
    (y_cpu * weights).sum().backward()
    (y_gpu * weights.float().to(DEVICE)).sum().backward()

    def relative(a, b):
        return ((a.cpu().double() - b).abs().max() / b.abs().max()).item()

    assert relative(y_gpu, y_cpu.detach()) < 1e-5
    for name, a, b in zip("qkvw", gpu, cpu, strict=True):
        assert relative(a.grad, b.grad) < 1e-5, name


def test_triton_spike_leaves_the_past_unchanged_and_is_exact():
    fused = fused_kernel()
    seq, spike_at = 300, 130
    q, k, v = random_qkv(1, seq, 32, scale=1.0)
    band = torch.randn(seq, 20, dtype=torch.float64)
    inputs = [x.float().to(DEVICE) for x in (q, k, v, band)]
    before = fused.gated_mean(*inputs, True)
    inputs[1][0, spike_at] += 1e4
    k[0, spike_at] += 1e4
    after = fused.gated_mean(*inputs, True)
    assert torch.isfinite(after).all()
    torch.testing.assert_close(after[:, :spike_at], before[:, :spike_at], rtol=1e-6,
                               atol=1e-7)
    reference = cpu_reference(q, k, v, band, True)
    torch.testing.assert_close(after.cpu().double(), reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_triton_half_precision_is_finite_and_close(dtype):
    fused = fused_kernel()
    q, k, v = random_qkv(2, 4096, 64, scale=3.0)
    band = torch.randn(4096, 128, dtype=torch.float64)
    inputs = [x.to(dtype) for x in (q, k, v, band)]
    low = fused.gated_mean(*(x.to(DEVICE).requires_grad_(True) for x in inputs), True)
    assert low.dtype == dtype and torch.isfinite(low).all()
    reference = cpu_reference(*(x.double() for x in inputs), True)
    tolerance = 1e-2 if dtype == torch.float16 else 5e-2
    torch.testing.assert_close(low.cpu().double(), reference, rtol=tolerance, atol=tolerance)
    low.float().square().sum().backward()


def test_aft_local_on_cuda_uses_the_triton_kernel():
    fused_kernel()
    q, k, v = to_device(*(x.float() for x in random_qkv(1, 64, 8)))
    band = torch.randn(64, 16, device=DEVICE, requires_grad=True)
    y = aft_local(q, k, v, band, causal=True)
    assert type(y.grad_fn).__name__ == "GatedMeanBackward", type(y.grad_fn).__name__
    layer = AFTLocal(8, 64, 16).to(DEVICE)
    out = layer(torch.randn(2, 64, 8, device=DEVICE))
    names, todo = set(), [out.grad_fn]
    while todo:  # every node of the autograd graph
        node = todo.pop()
        if node is not None and type(node).__name__ not in names:
            names.add(type(node).__name__)
            todo += [child for child, _ in node.next_functions]
    assert "GatedMeanBackward" in names, names


def test_triton_peak_memory_at_65536_is_at_most_the_pytorch_kernels():
    """Forward and backward at T = 65536 (one T x T float32 matrix would be 16 GiB): the
    peak that CUDA's allocator handed out above the inputs, Triton against PyTorch."""
    fused = fused_kernel()
    from aft.bench import pytorch_kernel

    seq, d, s = 65536, 64, 128

    def peak_mib(fn):
        torch.cuda.empty_cache()
        q, k, v = (torch.randn(1, seq, d, device=DEVICE, requires_grad=True) for _ in range(3))
        band = torch.randn(seq, s, device=DEVICE, requires_grad=True)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        y = fn(q, k, v, band, True)
        y.sum().backward()
        torch.cuda.synchronize()
        assert torch.isfinite(y).all() and torch.isfinite(k.grad).all()
        return (torch.cuda.max_memory_allocated() - base) / 2**20

    triton_mib, pytorch_mib = peak_mib(fused.gated_mean), peak_mib(pytorch_kernel)
    tensor_mib = seq * d * 4 / 2**20  # one [T, d] float32 tensor: 16 MiB
    print(f"peak above the inputs: triton {triton_mib:.0f} MiB, pytorch {pytorch_mib:.0f} MiB")
    assert triton_mib <= pytorch_mib
    assert triton_mib < 20 * tensor_mib
