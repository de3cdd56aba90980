"""BUA's alignment substrate on a tiny random LLM and a tiny SASRec: the placeholder token, the
projector's scatter into the input embeddings, the encoder's states, and a stage-1 training step
through the one training module (only the projector learns)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_lm import build_tiny_model

from behaviorflow.bua.align import STATES, make_inject, placeholder_token, projector, sequence_states
from behaviorflow.lm.examples import encode_completion
from behaviorflow.lm.tuning import TuningSettings, apply_freeze_map, load_base
from behaviorflow.predictors.models import ModelSettings, build_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny LLM's folder and its tokenizer."""
    from transformers import AutoTokenizer

    path = build_tiny_model(tmp_path_factory.mktemp("tiny_bua") / "base", seed=4)
    return path, AutoTokenizer.from_pretrained(path)


def test_the_placeholder_is_one_token_the_chat_template_never_uses(tiny):
    tok = tiny[1]
    token, token_id = placeholder_token(tok)
    assert token == "<unk>" and tok.convert_ids_to_tokens(token_id) == token
    assert placeholder_token(tok, "<pad>") == ("<pad>", tok.pad_token_id)
    with pytest.raises(ValueError, match="one"):
        placeholder_token(tok, "two tokens")


def test_the_scatter_puts_each_projected_state_exactly_at_its_placeholder():
    torch.manual_seed(0)
    mlp = projector(6, 8, seed=1)
    inject = make_inject(placeholder_id=99)
    ids = torch.tensor([[5, 99, 7, 99, 3, 2], [99, 99, 4, 4, 4, 4]])  # placeholders at different places
    embeds = torch.randn(2, 6, 8)
    states = torch.randn(2, 2, 6)
    out = inject({"projector": mlp}, embeds, {"input_ids": ids, STATES: states})
    with torch.no_grad():
        want = mlp(states)
    at = ids == 99
    assert torch.equal(out[~at], embeds[~at])  # nothing else moves
    assert torch.equal(out[0, 1], want[0, 0]) and torch.equal(out[0, 3], want[0, 1])
    assert torch.equal(out[1, 0], want[1, 0]) and torch.equal(out[1, 1], want[1, 1])
    with pytest.raises(ValueError, match="placeholder"):
        inject({"projector": mlp}, embeds, {"input_ids": ids[:, 2:], STATES: states})


def test_encoder_states_never_see_the_target_behaviour_or_zone():
    model = build_model("sasrec", (8, 50, 9, 6), 6, ModelSettings(max_len=6, hidden=16, blocks=1, heads=1,
                                                                  dropout=0.0, mask_prob=0.2, ffn=0, copy=True))
    rng = np.random.default_rng(0)
    ctx = np.stack([rng.integers(2, [8, 50, 9, 6], size=(7, 4)) for _ in range(5)])
    other = ctx.copy()
    other[:, -1, 0], other[:, -1, 3] = 2, 2  # another behaviour and zone for every target
    a, b = sequence_states(model, ctx, 3), sequence_states(model, other, 3)
    assert a.shape == (5, 3, 16) and np.array_equal(a, b)
    moved = ctx.copy()
    moved[:, -2, 0] = 3  # the event before the target does count
    assert not np.allclose(sequence_states(model, moved, 3), a)


def test_stage_one_trains_the_projector_only_and_the_states_reach_the_llm(tiny):
    from behaviorflow.lm.tuning import _wrapped_class

    path, tok = tiny
    token, token_id = placeholder_token(tok)
    lm, _ = load_base(path, TuningSettings(rank=2, alpha=4, dropout=0.0, bf16=False, train=("projector",)))
    model = _wrapped_class()(lm, {"projector": projector(6, 48, seed=1)}, make_inject(token_id))
    trainable = apply_freeze_map(model, ("projector",))
    assert trainable and all(n.startswith("extras.projector.") for n in trainable)
    ex = encode_completion(tok, [{"role": "user", "content": f"events {token}{token} summary?"}], "ok", 128)
    batch = {"input_ids": torch.tensor([ex.input_ids]), "labels": torch.tensor([ex.labels]),
             "attention_mask": torch.ones(1, len(ex.input_ids), dtype=torch.long), STATES: torch.randn(1, 2, 6)}
    loss = model(**batch)["loss"]
    loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads and grads <= set(trainable)
    with torch.no_grad():
        other = model(**{**batch, STATES: torch.randn(1, 2, 6)})["loss"]
    assert float(other) != pytest.approx(loss.item())  # the states change what the LLM predicts
