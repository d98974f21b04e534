"""The model: every mixer builds and runs; the recurrent step equals the parallel forward."""

import pytest
import torch

from aft.model import MIXERS, RECURRENT_MIXERS, LanguageModel, ModelConfig


def tiny(mixer="local", **kw):
    config = dict(vocab_size=11, seq_len=12, d_model=16, n_layers=2, mixer=mixer, window=3,
                  d_bias=4, heads=2, d_ff=32)
    config.update(kw)
    torch.manual_seed(0)
    return LanguageModel(ModelConfig(**config))


@pytest.mark.parametrize("mixer", MIXERS)
def test_every_mixer_gives_logits_of_the_right_shape(mixer):
    model = tiny(mixer)
    ids = torch.randint(0, 11, (3, 12))
    assert model(ids).shape == (3, 12, 11)
    assert model(ids[:, :5]).shape == (3, 5, 11)


@pytest.mark.parametrize("mixer", MIXERS)
def test_the_model_is_causal(mixer):
    """Changing a later character never changes an earlier prediction."""
    model = tiny(mixer).double()
    ids = torch.randint(0, 11, (2, 12))
    changed = ids.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 11
    torch.testing.assert_close(model(ids)[:, :7], model(changed)[:, :7])


@pytest.mark.parametrize("mixer", RECURRENT_MIXERS)
def test_recurrent_logits_equal_parallel_logits(mixer):
    model = tiny(mixer).double().eval()
    # Give AFT-local's position bias and the embeddings non-trivial values.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    ids = torch.randint(0, 11, (2, 12))
    with torch.no_grad():
        parallel = model(ids)
        state = model.init_state(2)
        recurrent = []
        for t in range(12):
            logits, state = model.step(ids[:, t], state)
            recurrent.append(logits)
    torch.testing.assert_close(torch.stack(recurrent, 1), parallel, rtol=1e-9, atol=1e-9)


def test_step_past_seq_len_and_step_less_mixers_are_clear_errors():
    model = tiny("attention")
    state = model.init_state(1)
    for _ in range(12):
        _, state = model.step(torch.zeros(1, dtype=torch.long), state)
    with pytest.raises(ValueError, match="past seq_len"):
        model.step(torch.zeros(1, dtype=torch.long), state)
    with pytest.raises(NotImplementedError, match="no recurrent step"):
        tiny("conv").init_state(1)


@pytest.mark.parametrize(
    "change, message",
    [({"mixer": "lstm"}, "unknown mixer"),
     ({"window": 13}, "window 13 is not allowed"),
     ({"mixer": "attention", "heads": 3}, "not divisible")],
)
def test_bad_shapes_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        tiny(**change)
