"""
# Argument checks

Shared by every AFT operation: each check names the argument and the shapes it saw,
so that a wrong call fails at once with a message that says what to fix, instead of
deep inside a matrix product.
"""

import torch


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, key_channels=None):
    """`q`, `k`, `v` must be floating `[batch, seq, d]` tensors of one dtype and device.

    `key_channels` is the number of channels `k` must have (AFT-conv's keys have one
    per head); by default it must match `q`.
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() != 3:
            raise ValueError(f"{name} must be [batch, seq, d], got shape {tuple(x.shape)}")
    if q.shape != v.shape:
        raise ValueError(f"q and v must have one shape, got q {tuple(q.shape)}, v {tuple(v.shape)}")
    expected_k = (q.shape[0], q.shape[1], q.shape[2] if key_channels is None else key_channels)
    if tuple(k.shape) != expected_k:
        raise ValueError(f"k must be {expected_k}, got k {tuple(k.shape)} with q {tuple(q.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must share a device, got {q.device}, {k.device}, {v.device}")


def check_bias(name: str, w: torch.Tensor, expected: tuple, like: torch.Tensor, what: str):
    """A position bias must be a floating tensor of exactly the `expected` shape."""
    if not isinstance(w, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(w).__name__}")
    if not w.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {w.dtype}")
    if tuple(w.shape) != tuple(expected):
        raise ValueError(
            f"{name} must be {what} = {tuple(expected)} for q of shape {tuple(like.shape)}, "
            f"got {tuple(w.shape)}"
        )
    if w.device != like.device:
        raise ValueError(f"{name} is on {w.device} but q is on {like.device}")


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """16-bit inputs are accumulated in float32; float32 and float64 stay as they are."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
