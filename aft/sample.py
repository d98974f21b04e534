r"""
# Sampling

```sh
python -m aft.sample --checkpoint runs/local/ckpt.pt --prompt "ROMEO." --length 500
```

A trained model gives $p(x_{t+1} \mid x_{\le t})$; text comes from drawing a character, appending
it and asking again. Two knobs shape the draw:

* **temperature** $\tau$ divides the logits before the softmax, $p \propto e^{z / \tau}$:
  $\tau < 1$ sharpens the distribution (safer, more repetitive text), $\tau > 1$ flattens it;
* **top-k** keeps only the $k$ likeliest characters and renormalises, cutting the long tail of
  unlikely ones that, drawn once in a while, derail a sentence.

A seed fixes the draws, so the same checkpoint, prompt and seed give the same text.

## One character at a time, with a state

The obvious loop reruns the whole model on the whole text for every new character:
$O(T)$ positions of work per character for any mixer, $O(T^2)$ for attention. Models with a
recurrent `step` (AFT-local, AFT-simple, attention) instead keep a state and feed one character
per call. AFT-local's state is fixed in size — the last $s$ keys and values and two running sums
per block — so generating the ten-thousandth character costs what the tenth did. Attention's KV
cache grows by one key and one value per character, and each step reads all of it.

The model still has a longest context, `seq_len`: its position embedding and AFT-local's position
bias have that many rows. To write longer text we slide: when the state reaches `seq_len`, we
start a fresh state from the last `seq_len / 2` characters, feeding them through `step`. That
re-reading costs `seq_len / 2` steps once every `seq_len / 2` characters — at most twice the work
of plain stepping — and the state stays bounded. AFT-full and AFT-conv have no `step`; for them we
run `forward` on the last `seq_len` characters for each new one, as nanoGPT does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from aft.data import Vocabulary
from aft.model import LanguageModel, ModelConfig


def load_model(
    path: str | Path, device="cpu"
) -> tuple[LanguageModel, Vocabulary]:
    """
    ## Loading a checkpoint

    A checkpoint carries its model shape and its vocabulary, so nothing else is needed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model", "config", "chars"):
        if key not in checkpoint:
            raise ValueError(
                f"{path} is not a checkpoint of aft.train (no {key!r})"
            )
    model = LanguageModel(ModelConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval(), Vocabulary(checkpoint["chars"])


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None,
               generator: torch.Generator) -> torch.Tensor:
    """
    ## Drawing one character

    `logits` `[batch, vocab]` → ids `[batch]`. Temperature 0 means greedy: always the likeliest.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        # The $k$-th largest logit of each row; everything below it gets probability zero.
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.no_grad()
def generate(
    model: LanguageModel,
    prompt: torch.Tensor,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """
    ## The generation loop

    `prompt` `[batch, prompt_len]` (at least one character) → `[batch, prompt_len + length]`.
    """
    if prompt.shape[1] < 1:
        raise ValueError("the prompt needs at least one character")
    device = model.head.weight.device
    generator = torch.Generator(device=device).manual_seed(seed)
    ids = prompt.to(device)
    seq_len = model.config.seq_len

    if not model.can_step:
        # AFT-full and AFT-conv: the whole (cropped) context for every character.
        for _ in range(length):
            logits = model(ids[:, -seq_len:])[:, -1]
            ids = torch.cat(
                [
                    ids,
                    next_token(logits, temperature, top_k, generator)[:, None],
                ],
                1,
            )
        return ids

    def read(context: torch.Tensor):
        """A fresh state that has read `context`; returns the last logits and the state."""
        state = model.init_state(ids.shape[0])
        for t in range(context.shape[1]):
            logits, state = model.step(context[:, t], state)
        return logits, state

    # The prompt is read one character at a time too; its tail if it is longer than `seq_len`.
    logits, state = read(ids[:, -seq_len:])
    for _ in range(length):
        token = next_token(logits, temperature, top_k, generator)
        ids = torch.cat([ids, token[:, None]], 1)
        if state["position"] == seq_len:
            # Slide: re-read the last half of the context into a fresh state.
            logits, state = read(ids[:, -(seq_len // 2 or 1) :])
        else:
            logits, state = model.step(token, state)
    return ids


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m aft.sample",
        description="Generate text from an aft.train checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--checkpoint",
        default="runs/local/ckpt.pt",
        help="a checkpoint of aft.train",
    )
    p.add_argument("--prompt", default="\n", help="text to continue")
    p.add_argument(
        "--length", type=int, default=500, help="characters to generate"
    )
    p.add_argument(
        "--temperature", type=float, default=0.8, help="0 for greedy"
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="keep the k likeliest characters",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the draws")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if (
            args.length < 0
            or args.temperature < 0
            or (args.top_k is not None and args.top_k < 1)
        ):
            raise ValueError(
                "--length and --temperature must be >= 0, --top-k >= 1"
            )
        device = args.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, vocab = load_model(args.checkpoint, device)
        prompt = vocab.encode(args.prompt or "\n")[None]
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    ids = generate(
        model, prompt, args.length, args.temperature, args.top_k, args.seed
    )
    print(vocab.decode(ids[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
