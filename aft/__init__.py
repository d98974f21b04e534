r"""
# An Attention Free Transformer, annotated

This site is a reading of *An Attention Free Transformer* (Shuangfei Zhai, Walter
Talbott, Nitish Srivastava, Chen Huang, Hanlin Goh, Ruixiang Zhang and Josh Susskind,
2021; [arXiv 2105.14103](https://arxiv.org/abs/2105.14103)) through a complete PyTorch
implementation. Each page is one source file: the prose on the left is its comments,
the code on the right is what runs.

## The idea

A Transformer layer mixes information across positions with attention: every query
$Q_t$ is compared with every key $K_{t'}$, a softmax turns the $T$ scores into weights,
and the output is the weighted sum of the values. That costs $O(T^2 d)$ time and a
$T \times T$ matrix per head.

AFT replaces the comparison of query and key with something much simpler. The weight
of position $t'$ is $\exp(K_{t'} + w_{t,t'})$: its key plus a learned bias that depends
only on the two positions. The weights are per *channel*, not per head, and the
query only gates the result:

$$
Y_t = \sigma(Q_t) \odot
\frac{\sum_{t'} \exp(K_{t'} + w_{t,t'}) \odot V_{t'}}
     {\sum_{t'} \exp(K_{t'} + w_{t,t'})}
$$

No dot product of $Q$ and $K$ is ever taken, hence *attention free*. Because the bias
$w$ is shared by all channels and the keys by all queries, the sums are matrix products
of a $T \times T$ matrix $e^{w}$ with $T \times d$ matrices, or, when $w$ has structure,
much less.

## The family

| variant | bias $w_{t,t'}$ | time | memory | page |
|---|---|---|---|---|
| AFT-full | learned for every pair (Eq. 2), factorised $u_t^\top v_{t'}$ (Eq. 7) | $O(T^2 d)$ | $O(T d)$ | [AFT-full](full.md) |
| AFT-local | learned for $\lvert t - t' \rvert < s$, **0** outside (Eq. 4) | $O(T s d)$ | $O(T d)$ | [AFT-local](local.md) |
| AFT-simple | none (Eq. 5) | $O(T d)$ | $O(T d)$ | [AFT-simple](simple.md) |
| AFT-conv | relative, a kernel of $s$ per head (Eq. 6, 8) | $O(T s d)$ | $O(T d)$ | [AFT-conv](conv.md) |

AFT-local is the variant that the paper's language-modelling and image-modelling
results rest on, and the focus of this site: it keeps the whole sequence in view (far
keys still count, with bias 0) while learning position only nearby.

## What is in this package

Each operation is a pure function of tensors, tested against the paper's formula
written as a plain loop; each layer is a thin `nn.Module` that holds the projections
and the bias and calls it:
"""

from aft.conv import AFTConv, aft_conv
from aft.full import AFTFull, aft_full
from aft.local import AFTLocal, aft_local
from aft.simple import AFTSimple, aft_simple

__all__ = [
    "aft_full", "aft_local", "aft_simple", "aft_conv",
    "AFTFull", "AFTLocal", "AFTSimple", "AFTConv",
]
