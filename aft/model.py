r"""
# An autoregressive model, and its softmax-attention twin

The AFT layers on the other pages are token mixers: they take `[batch, seq, d_model]` and return
the same shape, each position a mix of the positions before it. To predict text they need the rest
of a language model around them. This page builds that model, in the familiar pre-LN decoder form
of GPT-2 and nanoGPT:

$$
\begin{aligned}
h^0_t &= E_{x_t} + P_t \\
a^l &= h^{l-1} + \operatorname{Mix}^l(\operatorname{LN}(h^{l-1})) \\
h^l &= a^l + \operatorname{FFN}^l(\operatorname{LN}(a^l)) \\
p(x_{t+1} \mid x_{\le t}) &= \operatorname{softmax}(W \operatorname{LN}(h^L_t))
\end{aligned}
$$

where $E$ embeds characters, $P$ embeds positions, and $\operatorname{Mix}$ is one of

| `mixer`     | layer                                   | cost per layer     |
|-------------|-----------------------------------------|--------------------|
| `local`     | AFT-local, window $s$ (paper Eq. 4)     | $O(Tsd)$           |
| `full`      | AFT-full (Eq. 2)                        | $O(T^2 d)$         |
| `simple`    | AFT-simple (Eq. 5)                      | $O(Td)$            |
| `conv`      | AFT-conv, $h$ heads, window $s$ (Eq. 6) | $O(Tsd)$           |
| `attention` | causal multi-head softmax attention     | $O(T^2 d)$         |

**Everything except the mixer is identical**: the embeddings, the layer norms, the feed-forward
blocks, the initialisation, the optimiser (on the training page) and the data. So when the
comparison on the training page shows a difference in loss or speed, the mixer caused it.

The paper's Transformer baseline on Enwik8 (Table 4) is the same kind of twin: same depth
$L = 24$, same width $d = 256$, attention swapped for AFT-local with $s = 32$.

Generation gets a second code path. `forward` runs a whole sequence at once, which is how we
train. `step` takes one token and a *state* and returns the next token's logits and the new state:

* for AFT-local and AFT-simple the state is the layer's recurrent state — for AFT-local the last
  $s$ keys and values plus running sums, $O(sd)$ per layer however long the text is;
* for attention it is the usual KV cache, which grows by one key and one value per token, so each
  step costs $O(td)$ at position $t$.

A test checks that both paths give the same logits.
"""

# What the trained model and its attention twin weigh, position by position and layer by layer,
# on a passage of real text: the [weights explorer](local.py#what-the-trained-model-weighs) on
# the AFT-local page shows it.

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aft import AFTConv, AFTFull, AFTLocal, AFTSimple

# The token mixers this model can be built with.
MIXERS = ("local", "full", "simple", "conv", "attention")
# The ones with a recurrent `step` for generation.
RECURRENT_MIXERS = ("local", "simple", "attention")


@dataclass
class ModelConfig:
    r"""
    ## The model's shape

    Everything that decides the parameters' shapes lives here, and a checkpoint stores it, so
    that a checkpoint rebuilds its own model and a mismatch with a run's flags is caught before
    training (see `aft.train`).

    * `seq_len` — the longest context: AFT-local's position bias $w$ and the position embedding
      $P$ both have `seq_len` rows;
    * `window` — $s$ for AFT-local and AFT-conv;
    * `d_bias` — $d'$, the rank of AFT-local's and AFT-full's factorised bias $w = u v^\top$
      (paper Eq. 7);
    * `heads` — heads of softmax attention and of AFT-conv.
    """

    vocab_size: int
    seq_len: int = 256
    d_model: int = 128
    n_layers: int = 4
    mixer: str = "local"
    window: int = 32
    d_bias: int = 64
    heads: int = 4
    d_ff: int = 512

    def check(self):
        """Reject a shape that cannot be built, with a message that says which flag to change."""
        if self.mixer not in MIXERS:
            raise ValueError(
                f"unknown mixer {self.mixer!r}; "
                f"choose one of {', '.join(MIXERS)}"
            )
        for name in ("vocab_size", "seq_len", "d_model", "n_layers", "d_bias",
                     "heads", "d_ff"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be at least 1, got {getattr(self, name)}"
                )
        if (
            self.mixer in ("local", "conv")
            and not 1 <= self.window <= self.seq_len
        ):
            raise ValueError(
                f"window {self.window} is not allowed with "
                f"seq_len {self.seq_len}: "
                f"AFT-{self.mixer} needs 1 <= window <= seq_len"
            )
        if self.mixer in ("attention", "conv") and self.d_model % self.heads:
            raise ValueError(
                f"d_model {self.d_model} is not divisible by "
                f"heads {self.heads}"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    r"""
    ## The twin: causal softmax attention

    $$\operatorname{Attn}(Q, K, V)_t = \sum_{t' \le t}
      \operatorname{softmax}_{t'}\!\left(\frac{Q_t \cdot K_{t'}}{\sqrt{d_h}}\right) V_{t'}$$

    per head, with $d_h = d / h$. It has exactly the projections an AFT layer has — $W^Q$, $W^K$,
    $W^V$ and an output projection, $4d^2$ weights — so the two models differ in how positions
    are mixed and in nothing else. AFT-local adds only its position bias $u, v$
    ($2 \cdot$ `seq_len` $\cdot d'$ numbers per layer).

    `F.scaled_dot_product_attention` picks PyTorch's fastest kernel for the device (a
    FlashAttention-style one on CPU and GPU), so attention is compared at its best, not as a
    naive $T \times T$ matrix.
    """

    def __init__(self, d_model: int, heads: int, seq_len: int):
        super().__init__()
        self.heads, self.seq_len = heads, seq_len
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.output = nn.Linear(d_model, d_model)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """`[batch, seq, d_model]` → `[batch, heads, seq, d_head]`, the layout SDPA expects."""
        batch, seq, d_model = x.shape
        d_head = d_model // self.heads
        return x.view(batch, seq, self.heads, d_head).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.split_heads(self.query(x))
        k = self.split_heads(self.key(x))
        v = self.split_heads(self.value(x))
        # `[batch, heads, seq, d_head]`; `is_causal` masks $t' > t$
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.output(y.transpose(1, 2).flatten(2))

    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        """
        ### The KV cache

        Keys and values of every position so far, preallocated for `seq_len` positions so that a
        step writes in place instead of concatenating (which would copy the whole cache every
        token). `length` counts the positions filled.
        """
        d_head = self.query.out_features // self.heads
        shape = (batch, self.heads, self.seq_len, d_head)
        dtype = dtype or self.query.weight.dtype
        device = device or self.query.weight.device
        return {
            "keys": torch.zeros(shape, device=device, dtype=dtype),
            "values": torch.zeros(shape, device=device, dtype=dtype),
            "length": 0,
        }

    def step(
        self, x_t: torch.Tensor, state: dict
    ) -> tuple[torch.Tensor, dict]:
        """
        One new position: its query attends to every cached key, its own included, so no mask
        is needed. The work grows with the cache: $O(td)$ at position $t$.
        """
        t = state["length"]
        if t >= self.seq_len:
            raise ValueError(
                f"position {t} is past seq_len {self.seq_len}, "
                "the KV cache's size"
            )
        # `[batch, heads, 1, d_head]` each
        q, k, v = (self.split_heads(proj(x_t[:, None])) for proj in
                   (self.query, self.key, self.value))
        state["keys"][:, :, t : t + 1] = k
        state["values"][:, :, t : t + 1] = v
        y = F.scaled_dot_product_attention(
            q, state["keys"][:, :, : t + 1], state["values"][:, :, : t + 1]
        )
        state["length"] = t + 1
        return self.output(y.transpose(1, 2).flatten(1)), state


def make_mixer(config: ModelConfig) -> nn.Module:
    r"""
    ## Choosing the mixer

    The one place where the models differ. AFT-local and AFT-full factorise their position bias
    as $w = u v^\top$ with rank $d'$ = `d_bias` (paper Eq. 7); AFT-simple has no bias; AFT-conv
    learns one kernel of width $s$ per head.
    """
    c = config
    if c.mixer == "local":
        return AFTLocal(
            c.d_model, c.seq_len, c.window, d_bias=c.d_bias, causal=True
        )
    if c.mixer == "full":
        return AFTFull(c.d_model, c.seq_len, d_bias=c.d_bias, causal=True)
    if c.mixer == "simple":
        return AFTSimple(c.d_model, causal=True)
    if c.mixer == "conv":
        return AFTConv(c.d_model, c.heads, c.window, causal=True)
    if c.mixer == "attention":
        return CausalSelfAttention(c.d_model, c.heads, c.seq_len)
    raise ValueError(
        f"unknown mixer {c.mixer!r}; choose one of {', '.join(MIXERS)}"
    )


class FeedForward(nn.Module):
    r"""
    ## The feed-forward block

    $\operatorname{FFN}(x) = W_2\, \operatorname{GELU}(W_1 x)$, applied to each position on its
    own. The mixer moves information between positions; this block transforms it within a
    position. With `d_ff` $= 4d$ it holds two thirds of a block's weights.
    """

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    r"""
    ## A block

    Pre-LN: each sub-layer sees a normalised copy of the residual stream and adds its output
    back, $h \leftarrow h + f(\operatorname{LN}(h))$. The residual path stays an identity from the
    embedding to the head, so gradients reach the first block undiminished and the start of
    training is stable (GPT-2 and nanoGPT use the same arrangement).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.mix_norm = nn.LayerNorm(config.d_model)
        self.mixer = make_mixer(config)
        self.ffn_norm = nn.LayerNorm(config.d_model)
        self.ffn = FeedForward(config.d_model, config.d_ff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.mix_norm(x))
        return x + self.ffn(self.ffn_norm(x))

    def step(self, x_t: torch.Tensor, state) -> tuple[torch.Tensor, object]:
        """The same block for one position `[batch, d_model]`; only the mixer needs a state."""
        mixed, state = self.mixer.step(self.mix_norm(x_t), state)
        x_t = x_t + mixed
        return x_t + self.ffn(self.ffn_norm(x_t)), state


class LanguageModel(nn.Module):
    """
    ## The model

    ### Positions

    A causal model needs to know where it is. Softmax attention is blind to order apart from the
    causal mask; AFT-local's bias $w_{t,t'}$ carries position, but only inside the window, and
    AFT-simple has none. We give *every* model the same learned position embedding $P$ (as GPT-2
    does) and leave the mixers exactly as the paper defines them. The alternative — an embedding
    for attention only — would make the models differ outside the mixer, and AFT-local would be
    compared with one less input. With $P$ for all, AFT-local's bias is an addition on top, which
    is what the paper measures too.

    $P$ has `seq_len` rows, like AFT-local's bias, so neither path runs past `seq_len` positions;
    the sampler handles longer text (see `aft.sample`).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config.check()
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.seq_len, config.d_model)
        self.blocks = nn.ModuleList(
            Block(config) for _ in range(config.n_layers)
        )
        self.final_norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size)
        # Embeddings start small, $\mathcal{N}(0, 0.02^2)$ as in GPT-2, so that no input
        # dominates the first layer norms; every `nn.Linear` — in the mixers too — keeps
        # PyTorch's default initialisation, the same for every mixer.
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """`ids` `[batch, seq]` of character ids → logits `[batch, seq, vocab]`."""
        seq = ids.shape[1]
        if seq > self.config.seq_len:
            raise ValueError(
                f"{seq} tokens are more than seq_len {self.config.seq_len}"
            )
        positions = torch.arange(seq, device=ids.device)
        # $h^0$ `[batch, seq, d_model]`
        h = self.token_embedding(ids) + self.position_embedding(positions)
        for block in self.blocks:
            h = block(h)
        return self.head(self.final_norm(h))

    @property
    def can_step(self) -> bool:
        """Whether this model's mixer has a recurrent `step` (AFT-full and AFT-conv do not)."""
        return self.config.mixer in RECURRENT_MIXERS

    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        """
        ## Recurrent generation

        The state is the position reached plus one mixer state per block.
        """
        if not self.can_step:
            raise NotImplementedError(
                f"mixer {self.config.mixer!r} has no recurrent step; "
                f"use one of {', '.join(RECURRENT_MIXERS)} "
                "or run forward() on a window"
            )
        device = device or self.head.weight.device
        dtype = dtype or self.head.weight.dtype
        layers = [
            b.mixer.init_state(batch, device=device, dtype=dtype)
            for b in self.blocks
        ]
        return {"position": 0, "layers": layers}

    def step(
        self, ids_t: torch.Tensor, state: dict
    ) -> tuple[torch.Tensor, dict]:
        """
        One character per sequence, `ids_t` `[batch]`, → the next character's logits
        `[batch, vocab]` and the new state: the parallel `forward` computed one position at a
        time.
        """
        t = state["position"]
        if t >= self.config.seq_len:
            raise ValueError(
                f"position {t} is past seq_len {self.config.seq_len}: "
                "the position embedding and AFT-local's bias end there"
            )
        # $h^0_t$ `[batch, d_model]`
        h = self.token_embedding(ids_t) + self.position_embedding.weight[t]
        layers = []
        for block, layer_state in zip(
            self.blocks, state["layers"], strict=True
        ):
            h, layer_state = block.step(h, layer_state)
            layers.append(layer_state)
        return self.head(self.final_norm(h)), {
            "position": t + 1,
            "layers": layers,
        }


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def bits_per_character(loss_nats: float) -> float:
    r"""The paper reports Enwik8 in bits per character: $\text{bpc} = \text{loss} / \ln 2$."""
    return loss_nats / math.log(2)
