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

# ![Five square weight matrices side by side, queries down and keys across. AFT-full gives
# every earlier key its own shade. AFT-local, causal and non-causal, has a band of varied
# shades along the diagonal, outlined, and one even shade per row for every key outside it.
# AFT-simple gives every key a row can see the same shade. AFT-conv repeats the same few
# shades along the diagonal and has an even shade elsewhere.](../results/figures/variant-weights.svg)
#
# The weights each variant gives each key, computed by the functions imported above with
# every key $K = 0$, so that only the bias is left: in each panel, row $t$ is a query and
# column $t'$ a key, for $T$ = {{ ../results/figures/settings.json#variant_weights.seq }}
# positions, a window of $s$ = {{ ../results/figures/settings.json#variant_weights.window }}
# and biases drawn at random. Each row is scaled so that its largest weight is the darkest; a
# blank cell is a key the row may not see. The outline is AFT-local's window, where it learns
# a bias. Every key outside it keeps the bias 0, so a row gives all its far keys one and the
# same weight, never none: that is what sets AFT-local apart from windowed attention.
__all__ = [
    "aft_full", "aft_local", "aft_simple", "aft_conv",
    "AFTFull", "AFTLocal", "AFTSimple", "AFTConv",
]
