r"""
# AFT-simple

AFT-simple (Eq. 5) drops the position bias altogether, which is AFT-local with a
window of $s = 0$:

$$
Y_t = \sigma(Q_t) \odot \sum_{t'} \mathrm{softmax}(K)_{t'} \odot V_{t'}
    = \sigma(Q_t) \odot \frac{\sum_{t'} \exp(K_{t'}) \odot V_{t'}}{\sum_{t'} \exp(K_{t'})}
$$

where the softmax runs over time, separately for each channel. Without causality,
the weighted average is the same for every position: one "context" vector of size $d$,
which each position gates with its own $\sigma(Q_t)$. Time and memory are $O(T d)$, and
nothing here is quadratic in anything: the paper's Table 1 puts AFT-simple at the
bottom of the cost scale.

In causal mode the sums stop at $t' \le t$, which makes them running sums. A running
sum of $e^{K}$ needs the same care as AFT-local: a huge later key must not wash out
earlier rows. So causal AFT-simple simply calls AFT-local's kernel with a bias of zero.

For generation, those running sums are all the state there is: AFT-simple is an RNN
whose state is three vectors of size $d$.
"""

import torch
from torch import nn

from aft._checks import check_qkv, compute_dtype
from aft.full import merge_sums
from aft.kernel import banded_weighted_mean


def aft_simple(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               causal: bool = False) -> torch.Tensor:
    """AFT-simple (Eq. 5) on `[batch, seq, d]` tensors. Returns `[batch, seq, d]`."""
    check_qkv(q, k, v)
    in_dtype, dtype = q.dtype, compute_dtype(q)
    q, k, v = (x.to(dtype) for x in (q, k, v))
    if causal:
        # A window of one key with bias 0: $e^{0} = 1$ for every key, near or far
        zero_band = torch.zeros(1, q.shape[1], 1, dtype=dtype, device=q.device)
        mean = banded_weighted_mean(
            k.unsqueeze(2), v.unsqueeze(2), zero_band, True
        ).squeeze(2)
    else:
        # $\mathrm{softmax}$ over time (dimension 1), then the weighted sum: `[batch, 1, d]`
        mean = (torch.softmax(k, dim=1) * v).sum(dim=1, keepdim=True)
    # $\sigma(Q_t) \odot$ the weighted average
    return (torch.sigmoid(q) * mean).to(in_dtype)


# ## The layer
#
# Projections around `aft_simple`, and a recurrent `step` for generation: the running
# sums $\sum e^{K} V$ and $\sum e^{K}$, kept shifted by their largest key $\mu$.
class AFTSimple(nn.Module):
    """AFT-simple on `[batch, seq, d_model]`."""

    def __init__(self, d_model: int, causal: bool = True):
        super().__init__()
        self.d_model, self.causal = d_model, causal
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.output = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(
            aft_simple(self.query(x), self.key(x), self.value(x), self.causal)
        )

    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        r"""The empty state: no keys seen, sums 0, $\mu = -\infty$."""
        zeros = torch.zeros(
            batch,
            self.d_model,
            device=device or self.query.weight.device,
            dtype=dtype or self.query.weight.dtype,
        )
        return {
            "ev": zeros,
            "e": zeros.clone(),
            "max": torch.full_like(zeros, float("-inf")),
        }

    def step(self, x: torch.Tensor, state: dict):
        """One token `x` `[batch, d_model]` → `(y [batch, d_model], new state)`."""
        if not self.causal:
            raise ValueError(
                "step() needs a causal AFTSimple: "
                "a non-causal one sees the future"
            )
        q, k, v = self.query(x), self.key(x), self.value(x)
        # Add $e^{K_t}$ to the sums: $\mu' = \max(\mu, K_t)$, old sums scaled by $e^{\mu - \mu'}$
        ev, e, new_max = merge_sums(
            state["ev"], state["e"], state["max"], v, torch.ones_like(k), k
        )
        y = self.output(torch.sigmoid(q) * ev / e)
        return y, {"ev": ev, "e": e, "max": new_max}
