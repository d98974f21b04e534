"""Sampling: deterministic under a seed, longer than seq_len, clear errors."""

import pytest
import torch

from aft.data import Vocabulary
from aft.model import LanguageModel, ModelConfig
from aft.sample import generate, main

CHARS = "\n abcdefghij"


def checkpoint(tmp_path, mixer):
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=len(CHARS), seq_len=16, d_model=16, n_layers=2, mixer=mixer,
                         window=4, d_bias=4, heads=2, d_ff=32)
    path = tmp_path / f"{mixer}.pt"
    torch.save({"model": LanguageModel(config).state_dict(), "config": config.to_dict(),
                "chars": CHARS}, path)
    return str(path)


def test_sampling_is_deterministic_under_a_seed(tmp_path, capsys):
    path = checkpoint(tmp_path, "local")
    outputs = []
    for seed in (1, 1, 2):
        assert main(["--checkpoint", path, "--prompt", "abc", "--length", "40", "--seed",
                     str(seed), "--top-k", "5", "--device", "cpu"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] != outputs[2]
    assert outputs[0].startswith("abc") and len(outputs[0]) == len("abc") + 40 + 1


@pytest.mark.parametrize("mixer", ["local", "simple", "attention", "conv", "full"])
def test_generation_runs_past_seq_len(tmp_path, mixer):
    from aft.sample import load_model

    model, vocab = load_model(checkpoint(tmp_path, mixer))
    ids = generate(model, vocab.encode("ab")[None], length=40, temperature=1.0, seed=0)
    assert ids.shape == (1, 42) and ids.max() < len(CHARS)


def test_top_k_one_is_greedy(tmp_path):
    from aft.sample import load_model

    model, vocab = load_model(checkpoint(tmp_path, "local"))
    prompt = vocab.encode("abc")[None]
    greedy = generate(model, prompt, 10, temperature=0.0)
    assert torch.equal(generate(model, prompt, 10, temperature=1.5, top_k=1, seed=3), greedy)


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["--checkpoint", checkpoint(tmp_path, "local"), "--prompt", "XYZ"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err
    assert Vocabulary(CHARS).size == 12
