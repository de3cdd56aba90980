"""The one training module (transformers.Trainer + peft) on a tiny random model: completion-only
labels, the weighted loss, the freeze map and extras, kill-and-resume, and DDP on CPU (gloo)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import child_env
from tiny_lm import build_tiny_model

from behaviorflow.lm.tuning import (
    IGNORE,
    LengthBuckets,
    TRAINABLE_FILE,
    TuningSettings,
    apply_freeze_map,
    encode_chat,
    encode_completion,
    load_base,
    load_trainable,
    round_balanced_weights,
    token_loss,
    tune,
)

HERE = Path(__file__).parent
BASE_SETTINGS = dict(rank=4, alpha=8, dropout=0.0, learning_rate=5e-3, batch_size=4, seed=3, bf16=False,
                     warmup_ratio=0.1, scheduler="cosine")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_base") / "base", seed=5)


@pytest.fixture(scope="module")
def tok(base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base)


def supervised_text(tok, example) -> str:
    return tok.decode([i for i, lab in zip(example.input_ids, example.labels) if lab != IGNORE])


def test_supervised_tokens_decode_to_exactly_the_answers(tok):
    one = encode_completion(tok, [{"role": "system", "content": "sys"}, {"role": "user", "content": "Q?"}],
                            "Monday, 08:00, z1, music", 512)
    assert supervised_text(tok, one) == "Monday, 08:00, z1, music<|end|>"  # the answer and the end-of-turn
    assert one.labels[: one.labels.index(next(lab for lab in one.labels if lab != IGNORE))] == \
        [IGNORE] * sum(lab == IGNORE for lab in one.labels)  # every prompt token before the answer is masked
    assert len(one.input_ids) == len(one.labels) == len(one.rounds)
    chat = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "first"},
            {"role": "user", "content": "b"}, {"role": "assistant", "content": "second answer"},
            {"role": "user", "content": "c"}, {"role": "assistant", "content": "3"}]
    multi = encode_chat(tok, chat, 512)
    assert supervised_text(tok, multi) == "first<|end|>second answer<|end|>3<|end|>"
    # the whole sequence is exactly the template's rendering of the conversation
    assert tok.decode(multi.input_ids) == tok.apply_chat_template(chat, tokenize=False)
    per_round = {r: tok.decode([i for i, k in zip(multi.input_ids, multi.rounds) if k == r]) for r in (0, 1, 2)}
    assert per_round == {0: "first<|end|>", 1: "second answer<|end|>", 2: "3<|end|>"}
    # a prompt that fills max_length teaches nothing: no example
    assert encode_completion(tok, [{"role": "user", "content": "x" * 50}], "y", 20) is None


def test_supervised_tokens_on_the_embedded_models_chat_template():
    from transformers import AutoTokenizer

    from behaviorflow.lm.convert import embedded_gguf

    gguf = embedded_gguf()
    smol = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    ex = encode_completion(smol, [{"role": "user", "content": "Next behaviour?"}], "music", 256)
    # the end-of-turn marker comes from the template (SmolLM2: <|im_end|>), not from a constant
    assert supervised_text(smol, ex) == "music<|im_end|>"
    prompt_ids = smol.apply_chat_template([{"role": "user", "content": "Next behaviour?"}],
                                          add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert ex.input_ids[: len(prompt_ids)] == prompt_ids and set(ex.labels[: len(prompt_ids)]) == {IGNORE}


def test_round_balanced_loss_equals_a_hand_computation_and_differs_from_the_token_mean():
    rounds = [-1, -1, -1, 0, 0, 0, 0, 1, 1, 2]  # a prompt, then 3 rounds of 4, 2 and 1 answer tokens
    weights = round_balanced_weights(rounds)
    assert weights == pytest.approx([0.0] * 3 + [7 / 12] * 4 + [7 / 6] * 2 + [7 / 3])
    assert sum(weights) == pytest.approx(7)  # the weights keep the total: the loss stays a mean
    torch.manual_seed(0)
    logits = torch.randn(1, 10, 6)
    labels = torch.tensor([[IGNORE, IGNORE, IGNORE, 1, 2, 3, 4, 5, 0, 1]])
    # position t's logits predict label t + 1
    ce = torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=IGNORE, reduction="none")
    by_round = [ce[2:6].mean(), ce[6:8].mean(), ce[8:9].mean()]
    balanced = float(token_loss(logits, labels, torch.tensor([weights])))
    assert balanced == pytest.approx(float(sum(by_round) / 3), rel=1e-5)
    token_mean = float(token_loss(logits, labels))
    assert token_mean == pytest.approx(float(ce[2:].mean()), rel=1e-5)
    assert abs(token_mean - balanced) > 1e-3


def wrapped(base, extras=None, inject=None):
    from behaviorflow.lm.tuning import _wrapped_class

    lm, _ = load_base(base, TuningSettings(**BASE_SETTINGS))
    return _wrapped_class()(lm, extras, inject)


def test_trainable_parameters_follow_the_freeze_map(base):
    model = wrapped(base, {"projector": torch.nn.Linear(4, 48)})
    lora_only = apply_freeze_map(model, ("lora",))
    assert lora_only and all("lora_" in n for n in lora_only)
    assert apply_freeze_map(model, ("projector",)) == ["extras.projector.weight", "extras.projector.bias"]
    both = apply_freeze_map(model, ("projector", "lora"))
    assert set(both) == set(lora_only) | {"extras.projector.weight", "extras.projector.bias"}
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and not any("lora_" in n or n.startswith("extras.") for n in frozen)  # the base stays frozen
    with pytest.raises(ValueError, match="encoder"):
        apply_freeze_map(model, ("encoder",))


def test_frozen_linears_in_bf16_give_the_bit_identical_bf16_step(base, tok):
    """Under bf16 autocast the frozen base's linear layers stored in bfloat16 give the same loss and
    the same gradients of every trained tensor as float32 layers cast at each call; only the base's
    plain linear layers change dtype (not the adapter, the extras or the tied output head)."""
    from behaviorflow.lm.tuning import _wrapped_class, frozen_linears_in_bf16

    examples = [encode_completion(tok, [{"role": "user", "content": f"question {i}"}], f"answer {i}", 128)
                for i in range(2)]
    width = max(len(e.input_ids) for e in examples)
    batch = {"input_ids": torch.tensor([e.input_ids + [0] * (width - len(e.input_ids)) for e in examples]),
             "attention_mask": torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids))
                                             for e in examples]),
             "labels": torch.tensor([e.labels + [IGNORE] * (width - len(e.labels)) for e in examples]),
             "features": torch.ones(2, 4)}
    runs = []
    for cast in (False, True):
        torch.manual_seed(0)  # the same adapter and projector initialisation
        lm, _ = load_base(base, TuningSettings(**BASE_SETTINGS))  # bf16=False: float32 layers
        model = _wrapped_class()(lm, {"projector": torch.nn.Linear(4, 48)}, add_features)
        apply_freeze_map(model, ("lora", "projector"))
        for name, p in model.named_parameters():  # a trained adapter (B starts at zero): A gets gradients
            if "lora_B" in name:
                p.data.normal_(0, 0.2)
        if cast:
            assert frozen_linears_in_bf16(model.lm) == 2 * 7  # q, k, v, o, gate, up, down in 2 blocks
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch)["loss"]
        loss.backward()
        runs.append((loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad},
                     {n: p.dtype for n, p in model.named_parameters()}))
    (loss32, grads32, _), (loss16, grads16, dtypes) = runs
    assert torch.equal(loss32, loss16)
    assert all(g.abs().sum() > 0 for g in grads32.values())
    assert grads32.keys() == grads16.keys() and all(torch.equal(grads32[n], grads16[n]) for n in grads32)
    cast_names = {n for n, d in dtypes.items() if d == torch.bfloat16}
    assert cast_names and all("base_layer" in n or ".mlp." in n for n in cast_names)
    assert not any("lora_" in n or n.startswith("extras.") or "embed" in n for n in cast_names)


def add_features(extras, embeds, batch):
    """A stand-in for BUA's scatter: the projected features added at the first position."""
    out = embeds.clone()
    out[:, 0] = out[:, 0] + extras["projector"](batch["features"])
    return out


def test_extras_train_with_the_adapter_and_reload_to_identical_logits(base, tok, tmp_path):
    examples = [encode_completion(tok, [{"role": "user", "content": f"q{i}"}], f"answer {i % 2}", 128)
                for i in range(8)]
    for i, e in enumerate(examples):
        e.extra["features"] = torch.full((4,), float(i % 2))
    torch.manual_seed(0)
    projector = torch.nn.Linear(4, 48)
    before = projector.weight.detach().clone()
    settings = TuningSettings(**{**BASE_SETTINGS, "epochs": 3, "train": ["lora", "projector"]})
    report = tune(base, examples, tmp_path / "out", settings, extras={"projector": projector},
                  inject=add_features, device="cpu", threads=1)
    assert report["steps"] == 6 and not torch.equal(before, projector.weight.detach())
    trained = wrapped(base, {"projector": projector}, add_features)
    load_trainable(trained, tmp_path / "out")
    fresh = wrapped(base, {"projector": torch.nn.Linear(4, 48)}, add_features)
    load_trainable(fresh, tmp_path / "out")
    batch = {"input_ids": torch.tensor([examples[0].input_ids]),
             "attention_mask": torch.ones(1, len(examples[0].input_ids), dtype=torch.long),
             "features": examples[0].extra["features"][None]}
    with torch.no_grad():
        assert torch.equal(trained.eval()(**batch)["logits"], fresh.eval()(**batch)["logits"])
    assert (tmp_path / "out" / TRAINABLE_FILE).is_file() and (tmp_path / "out" / "adapter_config.json").is_file()
    assert not (tmp_path / "out.run").exists() or not any((tmp_path / "out.run").iterdir())  # no stale checkpoints


def test_early_stopping_keeps_the_best_evaluated_adapter(base, tok, tmp_path):
    # evaluation asks for the opposite answers: once training fits its own, evaluation gets worse
    train = [encode_completion(tok, [{"role": "user", "content": f"q{i}"}], "yes", 64) for i in range(8)]
    held = [encode_completion(tok, [{"role": "user", "content": f"q{i}"}], "no", 64) for i in range(4)]
    settings = TuningSettings(**{**BASE_SETTINGS, "learning_rate": 3e-2, "max_steps": 40, "eval_steps": 2,
                                 "patience": 2})
    report = tune(base, train, tmp_path / "out", settings, eval_examples=held, device="cpu", threads=1)
    assert report["steps"] < 40  # stopped early
    evals = report["eval_losses"]
    assert len(evals) >= 3 and report["best_checkpoint"] == f"checkpoint-{2 * (evals.index(min(evals)) + 1)}"


def run_tune(base, out, settings: dict, *extra, torchrun: int = 0, wait: bool = True):
    cmd = [sys.executable, str(HERE / "tune_run.py"), str(base), str(out), json.dumps(settings), *extra]
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}",
               *cmd[1:]]
    env = child_env({"OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)})
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_length_buckets_hold_every_example_once_per_epoch_in_batches_of_neighbouring_lengths():
    lengths = [5, 40, 7, 33, 12, 12, 90, 1, 64, 20]
    sampler = LengthBuckets(lengths, 3, seed=4)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
    ranked = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    want = [ranked[i:i + 3] for i in range(0, len(ranked), 3)]  # sorted by length, cut in batches
    for order in epochs:
        assert sorted(order) == list(range(len(lengths))) and len(order) == len(sampler)
        pos = 0
        for batch in sorted(want, key=lambda b: order.index(b[0])):  # the batches appear whole, in some order
            assert order[pos:pos + len(batch)] == batch
            pos += len(batch)
    assert len({tuple(o) for o in epochs}) > 1  # a new order each epoch, seeded
    again = LengthBuckets(lengths, 3, seed=4)
    again.set_epoch(1)
    assert list(again) == epochs[1]


@pytest.mark.parametrize("buckets", [False, True], ids=["random_batches", "length_buckets"])
def test_a_killed_run_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(base, tmp_path, buckets):
    settings = {**BASE_SETTINGS, "max_steps": 12, "save_steps": 3, "length_buckets": buckets}
    whole = run_tune(base, tmp_path / "whole", settings)
    proc = run_tune(base, tmp_path / "killed", settings, "slow", wait=False)
    run_root = tmp_path / "killed.run"
    deadline = time.time() + 300
    while time.time() < deadline and not list(run_root.glob("*/checkpoint-6/trainer_state.json")):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.1)
    time.sleep(0.2)  # inside the next steps, before checkpoint 9
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed").exists()  # nothing final was written
    resumed = run_tune(base, tmp_path / "killed", settings)
    assert resumed["resumed_from"] in {"checkpoint-6", "checkpoint-9"}
    assert resumed["steps"] == whole["steps"] == 12
    assert resumed["losses"] == pytest.approx(whole["losses"], abs=1e-4)
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "whole" / TRAINABLE_FILE), load_file(tmp_path / "killed" / TRAINABLE_FILE)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_two_ddp_processes_give_the_loss_curve_of_one_process_with_the_same_global_batch(base, tmp_path):
    one = run_tune(base, tmp_path / "one", {**BASE_SETTINGS, "max_steps": 6, "batch_size": 4})
    two = run_tune(base, tmp_path / "two", {**BASE_SETTINGS, "max_steps": 6, "batch_size": 2}, torchrun=2)
    assert two["processes"] == 2 and one["processes"] == 1
    assert len(two["losses"]) == len(one["losses"]) == 6  # one logged loss per step
    assert two["losses"] == pytest.approx(one["losses"], abs=2e-3)
    assert two["tokens"] == one["tokens"]
