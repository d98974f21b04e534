"""The character corpus: stripping, vocabulary, a deterministic split and batches."""

import pytest
import torch

from aft.data import CharCorpus, Vocabulary, strip_gutenberg


def test_strip_gutenberg_keeps_the_book_only():
    text = ("The Project Gutenberg EBook of X\r\nlicence\r\n"
            "*** START OF THIS PROJECT GUTENBERG EBOOK X ***\r\nTo be, or not to be\r\n"
            "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\r\nmore licence\r\n")
    assert strip_gutenberg(text) == "To be, or not to be\n"
    assert strip_gutenberg("no markers\n") == "no markers\n"


def test_shakespeare_corpus_split_is_deterministic_and_clean():
    a, b = CharCorpus(), CharCorpus()
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    assert 0.08 < len(a.val) / (len(a.train) + len(a.val)) < 0.12
    text = a.vocab.decode(a.train[:200_000])
    assert "Gutenberg" not in text and "\r" not in text
    assert a.vocab.size < 100


def test_batches_are_a_function_of_seed_and_step(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abcdefghij" * 100)
    corpus = CharCorpus(str(path))
    x1, y1 = corpus.train_batch(step=3, seed=1, batch_size=4, seq_len=8)
    x2, y2 = corpus.train_batch(step=3, seed=1, batch_size=4, seq_len=8)
    x3, _ = corpus.train_batch(step=4, seed=1, batch_size=4, seq_len=8)
    assert x1.shape == (4, 8) and torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    # targets are the inputs shifted by one character
    assert torch.equal(x1[:, 1:], y1[:, :-1])


def test_vocabulary_round_trip_and_unknown_characters():
    vocab = Vocabulary.from_texts(["hello", "world"])
    assert vocab.decode(vocab.encode("low")) == "low"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("xyz")


def test_missing_corpus_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        CharCorpus(str(tmp_path / "missing.txt"))
