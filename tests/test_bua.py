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


# --- the curriculum end to end on the tiny LLM and a tiny SASRec --------------------------------------

ROUNDS_ALL = ["key_behaviours", "patterns", "summary"]
BUA = {"window": 10, "positions": 3, "text_events": 3, "placeholder": "auto", "understanding_tokens": 6,
       "batch_size": 4,
       "tuning": {"rank": 2, "alpha": 4, "layers": 0, "max_length": 1024, "batch_size": 4, "epochs": 1, "bf16": False,
                  "eval_steps": 2, "patience": 0, "save_steps": 100, "learning_rate": 0.01, "warmup_ratio": 0.0},
       "stage1": {"examples": 8}, "stage2": {"examples": 8, "generation_examples": 3},
       "stage3": {"pool": 6, "examples": 3, "max_new_tokens": 6},
       "generation": {"users": 2, "train_days": 6, "max_new_tokens": 120, "batch_size": 2}}


@pytest.fixture(scope="module")
def curriculum(tmp_path_factory, tiny):
    """States, stages 1-3 and the reflection pool of one seed, on a small split."""
    from test_behaviorlm import make_split

    from behaviorflow.bua import stages
    from behaviorflow.predictors.scenarios import PredictorSettings
    from behaviorflow.predictors.sequences import Vocab

    d = tmp_path_factory.mktemp("bua_run")
    split = make_split(n_users=8, events=40)
    split.to_parquet(d / "split.parquet")
    predictors = {"max_len": 12, "hidden": 16, "blocks": 1, "heads": 1}
    vocab = Vocab.from_split(split, 30)
    torch.manual_seed(0)
    encoder = build_model("sasrec", vocab.sizes, vocab.n_labels, PredictorSettings.from_config(predictors).model)
    torch.save(encoder.state_dict(), d / "encoder.pt")
    counts = stages.bua_states(d / "split.parquet", d / "encoder.pt", d / "states.npz", predictors=predictors,
                               slot_minutes=30, window=10, positions=3, pool=20, pool_seed=1, val=4, queries=6,
                               query_seed=2, generation=BUA["generation"])
    variant = {"rounds": ROUNDS_ALL, "balance": True}
    common = dict(bua=BUA, seed=1, variant=variant)
    paths = {"split": d / "split.parquet", "states": d / "states.npz", "model": tiny[0], "dir": d}
    reports = {1: stages.train_stage(1, paths["split"], paths["states"], tiny[0], d / "s1", **common)}
    reports[2] = stages.train_stage(2, paths["split"], paths["states"], tiny[0], d / "s2", init_from=d / "s1", **common)
    stages.bua_reflect(paths["split"], paths["states"], tiny[0], d / "s2", d / "reflect.parquet", **common)
    reports[3] = stages.train_stage(3, paths["split"], paths["states"], tiny[0], d / "s3", init_from=d / "s2",
                                    reflect_path=d / "reflect.parquet", **common)
    return paths, reports, counts


def _weights(folder):
    from safetensors.torch import load_file

    state = load_file(str(folder / "trainable.safetensors"))
    proj = {k: v for k, v in state.items() if k.startswith("extras.projector.")}
    lora = {k: v for k, v in state.items() if "lora_" in k}
    assert proj and lora
    return proj, lora


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_each_stage_trains_exactly_what_the_paper_unfreezes(curriculum):
    paths, reports, counts = curriculum
    assert counts == {"train": 20, "val": 4, "test": 6, "gen_train": 6, "gen_test": 2}
    assert [reports[s]["freeze"] for s in (1, 2, 3)] == [["projector"], ["projector", "lora"], ["lora"]]
    (p1, l1), (p2, l2), (p3, l3) = (_weights(paths["dir"] / f"s{s}") for s in (1, 2, 3))
    assert all(not v.any() for k, v in l1.items() if "lora_B" in k)  # stage 1: the adapter never moved
    assert not _same(p1, p2) and not _same(l1, l2)  # stage 2: both
    assert _same(p2, p3) and not _same(l2, l3)  # stage 3: the adapter only, the projector kept
    assert reports[3]["init_from"].endswith("s2") and reports[2]["init_from"].endswith("s1")


def test_stage_three_refines_the_weakest_drafts_of_the_stage_two_model(curriculum):
    import pandas as pd

    from behaviorflow.bua import stages

    paths, reports, _ = curriculum
    pool = pd.read_parquet(paths["dir"] / "reflect.parquet")
    assert len(pool) == 6 and pool["f1"].between(0, 1).all() and (pool["reference"].str.len() > 10).all()
    assert reports[3]["examples"] == BUA["stage3"]["examples"]
    with pytest.raises(ValueError, match="stage-2 model"):
        stages.train_stage(3, paths["split"], paths["states"], paths["model"], paths["dir"] / "bad", bua=BUA, seed=1,
                           variant={"rounds": ROUNDS_ALL, "balance": True})


def test_the_answer_writer_sees_the_window_and_never_the_target():
    """The openai writer's prompt (bua.answers.source: openai): every window event, the rules' fact
    and the question; the future scene's events only for that task; never the target's behaviour."""
    from dataclasses import replace

    from behaviorflow.behaviorlm.prompts import Query
    from behaviorflow.bua.tasks import Context, answers, event_line
    from behaviorflow.bua.writer import WRITTEN, fact_recall, writer_messages

    history = ((0, 22 * 60, "z1", "music"), (1, 8 * 60, "z1", "alarm"), (1, 10 * 60, "z2", "news"))
    ctx = Context(Query("u", 9, history, 1, 11 * 60, "golf"), future=((1, 11 * 60, "z3", "golf"),))
    other = replace(ctx, query=replace(ctx.query, label="news"))
    ref = answers(ctx, {"news": 0.5}, 3)
    for task in WRITTEN:
        msgs = writer_messages(ctx, task, ref[task], 3, 25)
        user = msgs[1]["content"]
        assert "at most 25 words" in msgs[0]["content"]
        assert all(event_line(e) in user for e in history) and f"Facts computed from these events: {ref[task]}" in user
        if task == "future_scene":
            assert "Tue 11:00 z3 golf" in user and "golf" in ref[task]  # the task is the training user's next hours
        else:
            assert "golf" not in user and msgs == writer_messages(other, task, ref[task], 3, 25)
    with pytest.raises(ValueError, match="understanding tasks"):
        writer_messages(ctx, "predict", "golf", 3, 25)
    facts = {"z1", "z2", "news", "music", "alarm"}
    # facts of "Lives in z1, works in z2; mostly news and music; active 08:00-22:00": z1 z2 news music 08:00 22:00
    rule = "Lives in z1, works in z2; mostly news and music; active 08:00-22:00; hobby news."
    assert fact_recall("Home z1, office z2, reads news from 08:00.", rule, facts) == pytest.approx(4 / 6)
    assert fact_recall("A calm person.", "home unknown, work unknown", facts) == 1.0  # no facts to keep


class LoopingBackend:
    """An endpoint whose first call on every prompt loops until the token cap (finish_reason
    "length"), as greedy decoding of a small model does, and answers on a sampled retry: the fault
    the loopback server cannot be made to show on demand."""

    def __init__(self):
        self.calls = 0

    def identity(self):
        return {"backend": "looping", "model": "m"}

    def complete_batch(self, requests):
        from behaviorflow.lm.backends import Completion

        self.calls += len(requests)
        return [Completion("z1 z1 z1", 20, 32, 0.0, "m", "length") if sampling.temperature == 0 else
                Completion(f"answer {seed} {len(msgs[1]['content'])}", 20, 4, 0.0, "m") for msgs, sampling, seed in requests]


def test_a_cut_answer_is_retried_sampled_and_a_rerun_asks_nothing(tmp_path):
    """A call cut at the cap is asked again with the next seed, sampled; the rerun takes each
    answer from the attempt that wrote it (no call, the same log summary); with no attempt left
    the writer fails, naming the fix."""
    from test_behaviorlm import make_split

    from behaviorflow.behaviorgen.outputs import summarize_log
    from behaviorflow.bua.stages import labels_and_shares
    from behaviorflow.bua.tasks import contexts_of
    from behaviorflow.bua.writer import write_answers
    from behaviorflow.lm.backends import CachedLLM, LLMCache

    split = make_split(n_users=8, events=40)
    train = split[split["split"] == "train"]
    samples = {"train": contexts_of(train, train["event_idx"] % 9 == 5, 10, with_future=True)[:3]}
    _, shares = labels_and_shares(split)
    settings = {"tasks": ["summary", "hobby"], "words": 20, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 32,
                "max_attempts": 3, "retry_temperature": 0.7, "seed": 17}
    backend = LoopingBackend()
    frame, calls = write_answers(CachedLLM(backend, LLMCache(tmp_path)), samples, shares, positions=3, settings=settings)
    assert len(frame) == 6 and backend.calls == 12 and frame["answer"].str.startswith("answer 18 ").all()
    rerun = CachedLLM(backend, LLMCache(tmp_path))
    again, again_calls = write_answers(rerun, samples, shares, positions=3, settings=settings)
    assert backend.calls == 12 and rerun.cache_hits == 6 and again.equals(frame)
    assert summarize_log(again_calls) == summarize_log(calls) and summarize_log(calls)["pass_at_1"] == 0
    with pytest.raises(RuntimeError, match=r"6 of 6 .* truncated .* bua.answers.max_new_tokens"):
        write_answers(CachedLLM(backend, LLMCache(tmp_path / "cold")), samples, shares, positions=3,
                      settings={**settings, "max_attempts": 1})


def test_stages_train_on_the_written_answers_and_reject_a_file_for_other_samples(curriculum, tiny):
    """With an answers file (rule bua_answers' layout) the stages' references are the written answers:
    stage 2's dialogues end their rounds in them, the reflection pool scores against them."""
    import pandas as pd

    from behaviorflow.bua import stages
    from behaviorflow.bua.tasks import ROUNDS
    from behaviorflow.bua.writer import answer_book, needed_samples, requests_of

    paths, _, _ = curriculum
    split, samples = stages.load_samples(paths["split"], paths["states"], BUA["window"], ("train", "val", "gen_train"))
    _, shares = stages.labels_and_shares(split)
    train, gen = samples["train"][0], samples["gen_train"][0]
    picks = stages.draws(BUA, 1, len(train), len(gen))
    needed = needed_samples(train, gen, samples["val"][0], picks)
    assert {c.key for c in needed["train"]} == {train[i].key for k in ("stage1", "stage2", "reflect") for i in picks[k]}
    frame = requests_of(needed, shares, BUA["positions"], ("summary", "patterns", "hobby"))
    assert set(frame.loc[frame["part"] == "gen_train", "task"]) == {"summary", "patterns"}  # stage 2's rounds only
    frame["answer"] = [f"written {t} {u[-4:]} {i}" for u, i, t in zip(frame["user_id"], frame["event_idx"], frame["task"])]
    path = paths["dir"] / "answers.parquet"
    frame.to_parquet(path)
    book = answer_book(path)

    tok = tiny[1]
    examples = stages.stage_examples(2, tok, [train[i] for i in picks["stage2"]], samples["train"][1][picks["stage2"]],
                                     shares=shares, placeholder="<unk>", positions=3, text_events=3, max_length=2048,
                                     seed=1, rounds=tuple(ROUNDS), written=book["train"])
    for ex, i in zip(examples, picks["stage2"]):
        taught = tok.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != -100])
        u, idx = train[i].key
        assert f"written summary {u[-4:]} {idx}" in taught and f"written patterns {u[-4:]} {idx}" in taught
        assert "Lives in" not in taught  # the rules' summary is gone

    common = dict(bua=BUA, seed=1, variant={"rounds": ROUNDS_ALL, "balance": True})
    report = stages.train_stage(2, paths["split"], paths["states"], paths["model"], paths["dir"] / "s2w",
                                init_from=paths["dir"] / "s1", answers_path=path, **common)
    assert report["stage"] == 2 and (paths["dir"] / "s2w" / "trainable.safetensors").is_file()
    pool = stages.bua_reflect(paths["split"], paths["states"], paths["model"], paths["dir"] / "s2w",
                              paths["dir"] / "reflect_w.parquet", answers_path=path, **common)
    assert all(r == book["train"][(u, i)]["summary"] for u, i, r in zip(pool["user_id"], pool["event_idx"],
                                                                        pool["reference"]))
    short = frame[frame["user_id"] != train[picks["stage1"][0]].key[0]]
    short.to_parquet(paths["dir"] / "short.parquet")
    with pytest.raises(ValueError, match="no written answers"):
        stages.train_stage(1, paths["split"], paths["states"], paths["model"], paths["dir"] / "bad1",
                           answers_path=paths["dir"] / "short.parquet", **common)


def test_the_reloaded_model_gives_the_trained_models_logits(curriculum):
    """The projector saved beside the adapter: merged and reloaded for inference, it gives the
    logits of the training wrapper with the saved weights loaded."""
    from behaviorflow.bua.infer import BuaModel
    from behaviorflow.lm.tuning import TuningSettings, _wrapped_class, load_base, load_trainable

    paths, _, _ = curriculum
    bua = BuaModel.load(paths["model"], paths["dir"] / "s2", dtype="float32")
    lm, tok = load_base(paths["model"], TuningSettings(rank=2, alpha=4, dropout=0.0, layers=0, bf16=False))
    wrapped = _wrapped_class()(lm, {"projector": projector(16, 48, seed=9)}, make_inject(bua.placeholder_id))
    load_trainable(wrapped, paths["dir"] / "s2")
    wrapped.eval()
    ids = torch.tensor([tok(f"ab {bua.placeholder * 3} cd", add_special_tokens=False)["input_ids"]])
    states = torch.randn(1, 3, 16)
    with torch.no_grad():
        want = wrapped(input_ids=ids, attention_mask=torch.ones_like(ids), **{STATES: states})["logits"]
        got = bua.model(inputs_embeds=bua.embed(ids, states)).logits
    assert torch.allclose(got, want, atol=1e-5)


def test_label_scores_with_states_equal_a_plain_forward_pass(curriculum):
    """The shared scorer with the states scattered in (and its prefix cache stopping before the
    first placeholder) gives each label the log-likelihood a plain forward pass gives it."""
    import numpy as np

    from behaviorflow.bua.infer import BuaModel
    from behaviorflow.lm.scoring import candidate_ids, prompt_ids

    paths, _, _ = curriculum
    bua = BuaModel.load(paths["model"], paths["dir"] / "s3", dtype="float32")
    msgs = [[{"role": "system", "content": "s"}, {"role": "user", "content": f"x{bua.placeholder * 3}{tail}"}]
            for tail in ("a", "bcd")]
    prompts = [prompt_ids(bua.tok, m) for m in msgs]
    labels = ["golf", "news", "game"]
    cands = candidate_ids(bua.tok, msgs[0], labels)
    states = np.random.default_rng(0).normal(size=(2, 3, 16)).astype(np.float32)
    scores = bua.score(prompts, states, cands)
    for r, p in enumerate(prompts):
        for c, cand in enumerate(cands):
            ids = torch.tensor([p + cand])
            with torch.no_grad():
                logp = bua.model(inputs_embeds=bua.embed(ids, states[r:r + 1])).logits[0].float().log_softmax(-1)
            want = sum(logp[len(p) - 1 + k, t].item() for k, t in enumerate(cand))
            assert scores[r, c] == pytest.approx(want, abs=1e-3)


def test_decoding_from_embeddings_on_the_static_cache_is_plain_generation(curriculum):
    """BuaModel.generate (static cache read up to its used prefix, per-row causal prefill, a
    contiguous LM head) writes the greedy answers of transformers' default generation from the same
    left-padded embeddings."""
    import numpy as np
    from transformers import AutoModelForCausalLM

    from behaviorflow.bua.infer import BuaModel

    paths, _, _ = curriculum
    bua = BuaModel.load(paths["model"], paths["dir"] / "s2", dtype="float32")
    plain = AutoModelForCausalLM.from_pretrained(paths["model"], dtype=torch.float32, attn_implementation="sdpa")
    plain.load_state_dict(bua.model.state_dict())  # the merged adapter's weights, default attention and cache
    prompts = [bua.tok(f"ab {bua.placeholder * 3} {tail}", add_special_tokens=False)["input_ids"]
               for tail in ("cd", "efg hij klm nop")]
    states = np.random.default_rng(0).normal(size=(2, 3, 16)).astype(np.float32)
    ours = bua.generate(prompts, states, 12)
    width, pad = max(map(len, prompts)), bua.tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = (torch.arange(width)[None] >= torch.tensor([width - len(p) for p in prompts])[:, None]).long()
    with torch.no_grad():
        new = plain.eval().generate(inputs_embeds=bua.embed(ids, states), attention_mask=mask, max_new_tokens=12,
                                    do_sample=False, pad_token_id=pad)
    assert ours == [t.strip() for t in bua.tok.batch_decode(new, skip_special_tokens=True)]
    assert any(ours)
    assert bua.model.config._attn_implementation == "sdpa_used_prefix"


def test_a_dialogue_continued_on_its_cache_answers_as_fresh_prefills_do(curriculum):
    """The understanding rounds on one cache per batch (each round prefills only what its prompt
    adds) give the answers of a fresh prefill of every round's whole prompt, with the states
    embedded once per batch."""
    from behaviorflow.bua.infer import BuaModel, understand
    from behaviorflow.bua.stages import load_samples
    from behaviorflow.bua.tasks import dialogue
    from behaviorflow.lm.scoring import prompt_ids

    paths, _, _ = curriculum
    bua = BuaModel.load(paths["model"], paths["dir"] / "s2", dtype="float32")
    _, samples = load_samples(paths["split"], paths["states"], BUA["window"], ("test",))
    contexts, states = samples["test"]
    rounds = tuple(ROUNDS_ALL)
    fresh = [{} for _ in contexts]
    for task in rounds:  # every round's whole dialogue prefilled anew
        prompts = [prompt_ids(bua.tok, dialogue(c, {}, bua.placeholder, BUA["positions"], BUA["text_events"],
                                                rounds=rounds, replies=r)) for c, r in zip(contexts, fresh)]
        for r, text in zip(fresh, bua.generate(prompts, states, 6)):
            r[task] = text
    embeds = []
    embed = bua.embed
    bua.embed = lambda ids, st: embeds.append(ids.shape) or embed(ids, st)
    got, _ = understand(bua, contexts, states, positions=BUA["positions"], text_events=BUA["text_events"],
                        rounds=rounds, max_new_tokens=6)
    assert got == fresh and any(any(r.values()) for r in got)
    assert len(embeds) == 1  # one batch of 6: the states enter once, later rounds continue the cache


def test_labels_scored_on_the_dialogues_cache_equal_a_fresh_scoring_of_the_final_prompt(curriculum):
    """After the rounds every label is scored on each batch's own cache (only the last answer and
    the final question added before the label tree): the scores of the shared scorer run on the
    whole final prompt, in two batches (batch size 5: 3 and 3 of the 6 queries), and the same answers."""
    import numpy as np

    from behaviorflow.bua.infer import BuaModel, understand, understand_and_score
    from behaviorflow.bua.stages import labels_and_shares, load_samples
    from behaviorflow.lm.scoring import candidate_ids, prompt_ids

    paths, _, _ = curriculum
    bua = BuaModel.load(paths["model"], paths["dir"] / "s3", dtype="float32")
    split, samples = load_samples(paths["split"], paths["states"], BUA["window"], ("test",))
    labels, _ = labels_and_shares(split)
    contexts, states = samples["test"]
    kw = dict(positions=BUA["positions"], text_events=BUA["text_events"], rounds=tuple(ROUNDS_ALL), max_new_tokens=6)
    fresh = bua.score
    calls = []
    bua.score = lambda *a, **k: calls.append(1) or fresh(*a, **k)
    scores, said = understand_and_score(bua, contexts, states, labels, batch_size=5, **kw)
    assert not calls  # every batch scored on its cache
    replies, final = understand(bua, contexts, states, batch_size=5, **kw)
    want = fresh([prompt_ids(bua.tok, m) for m in final], states, candidate_ids(bua.tok, final[0], labels))
    assert said[ROUNDS_ALL].to_dict("records") == replies
    assert scores.shape == (len(contexts), len(labels)) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores, want, atol=2e-4)


def test_prediction_writes_the_understanding_rounds_then_scores_every_label(curriculum, tmp_path):
    import pandas as pd

    from behaviorflow.bua.infer import bua_predict

    paths, _, _ = curriculum
    out = {"metrics": tmp_path / "m.csv", "scores": tmp_path / "s.parquet", "answers": tmp_path / "a.parquet"}
    rows = bua_predict(paths["split"], paths["states"], paths["model"], paths["dir"] / "s3", out, dataset="tiny",
                       method="bua", seed=1, bua=BUA, variant={"rounds": ROUNDS_ALL, "balance": True})
    assert set(rows["queries"]) == {6} and {"acc1", "tail", "overall"} <= set(rows["metric"])
    answers = pd.read_parquet(out["answers"])
    assert list(answers.columns[2:5]) == ROUNDS_ALL and len(answers) == 6
    scores = pd.read_parquet(out["scores"])
    assert (answers["predicted"] == scores.iloc[:, 2:].idxmax(axis=1)).all()


def test_dialogue_goes_easy_to_hard_and_answers_never_see_the_target():
    from behaviorflow.behaviorlm.prompts import Query
    from behaviorflow.bua.tasks import Context, answers, dialogue, home_work

    history = ((0, 22 * 60, "z1", "music"), (1, 8 * 60, "z1", "alarm"), (1, 10 * 60, "z2", "news"),
               (1, 11 * 60, "z2", "news"), (1, 23 * 60, "z1", "game"))
    ctx = Context(Query("u", 9, history, 1, 23 * 60 + 30, "golf"), future=((1, 23 * 60 + 30, "z1", "golf"),))
    ref = answers(ctx, {"news": 0.5, "music": 0.1, "alarm": 0.2, "game": 0.2}, positions=3)
    assert home_work(history) == ("z1", "z2")
    assert ref["current_scene"] == "at z1: game" and ref["future_scene"] == "at z1: golf"
    assert ref["reconstruct"].splitlines() == ["Tue 10:00 z2 news", "Tue 11:00 z2 news", "Tue 23:00 z1 game"]
    other = Context(Query("u", 9, history, 1, 23 * 60 + 30, "news"), future=ctx.future)
    changed = {k for k, v in answers(other, {"news": 0.5}, 3).items() if v != answers(ctx, {"news": 0.5}, 3)[k]}
    assert changed == {"predict"}  # only the final round's answer is the label
    msgs = dialogue(ctx, ref, "<unk>", 3, 2)
    asked = [m["content"] for m in msgs if m["role"] == "user"]
    assert [q.splitlines()[-1][:12] for q in asked] == ["Identify the", "Which recurr", "Summarise th",
                                                         "The next eve"]
    assert asked[0].count("<unk>") == 3 and all("<unk>" not in q for q in asked[1:])
    assert msgs[-1] == {"role": "assistant", "content": "golf"}
    partial = dialogue(ctx, {}, "<unk>", 3, 2, replies={"key_behaviours": "k"})
    assert partial[-1]["role"] == "user" and "recurring" in partial[-1]["content"]  # stops at its next question


def test_stage_two_weights_balance_rounds_unless_the_ablation_turns_it_off(tiny):
    from test_behaviorlm import make_split

    from behaviorflow.bua.stages import labels_and_shares, stage_examples
    from behaviorflow.bua.tasks import contexts_of

    _, tok = tiny
    split = make_split(n_users=8, events=40)
    train = split[split["split"] == "train"]
    contexts = contexts_of(train, train["event_idx"] % 9 == 5, 10, with_future=True)[:3]
    _, shares = labels_and_shares(split)
    states = np.zeros((3, 3, 16), np.float32)
    common = dict(shares=shares, placeholder="<unk>", positions=3, text_events=3, max_length=2048,
                  seed=1, rounds=tuple(ROUNDS_ALL))
    balanced = stage_examples(2, tok, contexts, states, balance=True, **common)
    plain = stage_examples(2, tok, contexts, states, balance=False, **common)
    assert [e.weights for e in plain] == [None] * 3
    for ex in balanced:
        per_round = {}
        for r, w in zip(ex.rounds, ex.weights):
            if r >= 0:
                per_round[r] = per_round.get(r, 0.0) + w
        assert len(per_round) == 4 and np.allclose(list(per_round.values()), sum(per_round.values()) / 4)
        assert ex.extra[STATES].shape == (3, 16)


def test_a_stage_runs_data_parallel_under_torchrun(curriculum, tmp_path):
    """bua.processes = 2: stage 2 under torchrun (2 gloo processes, batch 2 each) gives the loss curve
    of one process with batch 4 (the round-balanced weights and the states sharded with the batch)."""
    import json

    from behaviorflow.bua.stages import bua_stage

    paths, _, _ = curriculum
    tuning = {**BUA["tuning"], "dropout": 0.0, "eval_steps": 100}
    stage2 = {**BUA["stage2"], "generation_examples": 0}  # 8 dialogues: no sample padded onto a process
    common = dict(stage=2, split_path=str(paths["split"]), states_path=str(paths["states"]),
                  model_dir=str(paths["model"]), seed=1, variant={"rounds": ROUNDS_ALL, "balance": True},
                  init_from=str(paths["dir"] / "s1"), threads=2)
    bua_stage(1, out_dir=str(tmp_path / "one"), bua={**BUA, "stage2": stage2, "tuning": {**tuning, "batch_size": 4}},
              **common)
    bua_stage(2, out_dir=str(tmp_path / "two"), bua={**BUA, "stage2": stage2, "tuning": {**tuning, "batch_size": 2}},
              **common)
    one, two = (json.loads((tmp_path / d / "training_report.json").read_text()) for d in ("one", "two"))
    assert one["processes"] == 1 and two["processes"] == 2
    assert two["losses"] == pytest.approx(one["losses"], abs=2e-3) and two["tokens"] == one["tokens"]


# --- one-day generation (table 8) ---------------------------------------------------------------------


def test_generation_days_are_whole_days_after_the_history():
    """Test users' day: the first day after the support, all of it query events; training days have
    at least `window` events before them; each sample's real day is every event of that date."""
    from test_behaviorlm import make_split

    from behaviorflow.bua.days import day_keys, real_days

    split = make_split(n_users=8, events=40)
    test_keys = day_keys(split, "test", 10, 10, seed=1)
    assert len(test_keys) == 2 and len({u for u, _ in test_keys}) == 2  # one day per test user
    for user, idx in test_keys:
        ev = split[split["user_id"] == user].sort_values("event_idx")
        first = ev[ev["event_idx"] == idx].iloc[0]
        assert first["part"] == "query" and first["ts"].date() > ev.loc[ev["part"] == "support", "ts"].max().date()
        before = ev[ev["event_idx"] < idx]
        assert before["ts"].max().date() < first["ts"].date()  # the first event of its date
    train_keys = day_keys(split, "train", 10, 50, seed=1)
    assert train_keys and all(idx >= 10 for _, idx in train_keys)
    three = day_keys(split, "train", 10, 3, seed=1)
    assert three == day_keys(split, "train", 10, 3, seed=1) and set(three) < set(train_keys)  # a seeded draw
    days = real_days(split, test_keys)
    for user, idx in test_keys:
        date = split.loc[(split["user_id"] == user) & (split["event_idx"] == idx), "ts"].iloc[0].date()
        whole = split[(split["user_id"] == user) & (split["ts"].dt.date == date)]
        assert sorted(days.loc[days["user_id"] == user, "event_idx"]) == sorted(whole["event_idx"])


def test_stage_two_generation_dialogue_ends_in_the_real_day(tiny):
    """The generation round's answer is the day's events as BehaviorGen's lines (they parse under
    BehaviorGen's one-day parser), after the same understanding rounds as prediction."""
    import datetime as dt

    from test_behaviorlm import make_split

    from behaviorflow.behaviorgen.prompts import WeekRequest
    from behaviorflow.behaviorgen.responses import parse_response
    from behaviorflow.bua.days import day_keys
    from behaviorflow.bua.stages import labels_and_shares, stage_examples
    from behaviorflow.bua.tasks import answers, contexts_of, day_answer, dialogue

    _, tok = tiny
    split = make_split(n_users=8, events=40)
    keys = set(day_keys(split, "train", 10, 4, seed=1))
    mask = split.apply(lambda r: (r["user_id"], r["event_idx"]) in keys, axis=1)
    contexts = contexts_of(split, mask, 10, with_future=True, horizon="day")
    assert len(contexts) == 4 and all(c.future and c.future[0][3] == c.query.label for c in contexts)
    _, shares = labels_and_shares(split)
    for ctx in contexts:
        ref = {**answers(ctx, shares, 3), "generate": day_answer(ctx)}
        msgs = dialogue(ctx, ref, "<unk>", 3, 3, final="generate")
        assert "next day" in msgs[-2]["content"] and msgs[-1]["content"] == ref["generate"]
        day = dt.date(2024, 3, 4) + dt.timedelta(days=(ctx.query.weekday - 0) % 7)
        parsed = parse_response(msgs[-1]["content"], WeekRequest("u", day, n_days=1), {"z0", "z1", "z2"},
                                set(shares))
        assert parsed.valid and len(parsed.events) == len(ctx.future)
    examples = stage_examples(2, tok, contexts, np.zeros((4, 3, 16), np.float32), shares=shares,
                              placeholder="<unk>", positions=3, text_events=3, max_length=2048, seed=1,
                              rounds=tuple(ROUNDS_ALL), final="generate")
    assert len(examples) == 4 and all(len(set(r for r in e.rounds if r >= 0)) == 4 for e in examples)


def test_bua_generation_parses_under_the_one_day_grammar(curriculum, tmp_path):
    """BUA's day for each sampled test user: the understanding rounds, then the day sampled under the
    event grammar; every answer parses as that one day, within its cap, and the fidelity rows
    carry the nine metrics of BUA's Table 2."""
    import pandas as pd

    from behaviorflow.behaviorgen.prompts import WeekRequest
    from behaviorflow.behaviorgen.responses import parse_response
    from behaviorflow.behaviorgen.contexts import max_events_per_day
    from behaviorflow.bua.days import METRICS, history_contexts
    from behaviorflow.bua.infer import bua_generate, day_grammars

    paths, _, _ = curriculum
    out = {"days": tmp_path / "d.parquet", "answers": tmp_path / "a.parquet", "metrics": tmp_path / "m.csv"}
    sampling = {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 120}
    rows = bua_generate(paths["split"], paths["states"], paths["model"],
                        paths["dir"] / "s3", out, dataset="tiny", method="bua", seed=1, bua=BUA,
                        variant={"rounds": ROUNDS_ALL, "balance": True}, sampling=sampling, slot_minutes=30,
                        top_zones=2)
    answers, days = pd.read_parquet(out["answers"]), pd.read_parquet(out["days"])
    assert len(answers) == 2 and list(answers.columns[2:5]) == ROUNDS_ALL
    split = pd.read_parquet(paths["split"])
    for user, idx, text in zip(answers["user_id"], answers["event_idx"], answers["day"]):
        date = split.loc[(split["user_id"] == user) & (split["event_idx"] == idx), "ts"].iloc[0].date()
        parsed = parse_response(text, WeekRequest(user, date, n_days=1), {"z1", "z2", "z_other"},
                                set(split["behavior"]))
        assert parsed.valid and parsed.events, text
        mine = days[days["user_id"] == user]
        assert len(mine) == len(parsed.events) and set(mine["ts"].dt.date) == {date}
        assert len(mine) <= split[split["user_id"] == user].groupby(split["ts"].dt.date).size().max()
    got = rows.set_index("metric")["value"]
    assert set(METRICS) <= set(got.index) and got["days_generated"] == 2 and set(rows["days"]) == {2}
    assert got[[m for m in METRICS if m.endswith(("tvd", "jsd"))]].between(0, 1).all()
    again = bua_generate(paths["split"], paths["states"], paths["model"],
                         paths["dir"] / "s3", {k: tmp_path / f"again_{v.name}" for k, v in out.items()},
                         dataset="tiny", method="bua", seed=1, bua=BUA, variant={"rounds": ROUNDS_ALL, "balance": True},
                         sampling=sampling, slot_minutes=30, top_zones=2)
    assert again.equals(rows)  # seeded: the same days again
    mixed = {k: tmp_path / f"mix_{v.name}" for k, v in out.items()}
    bua_generate(paths["split"], paths["states"], paths["model"], paths["dir"] / "s3", mixed, dataset="tiny",
                 method="bua", seed=1, bua=BUA, variant={"rounds": ROUNDS_ALL, "balance": True}, sampling=sampling,
                 slot_minutes=30, top_zones=2, user_mix=True)
    for user, day in pd.read_parquet(mixed["days"]).groupby("user_id"):  # quotas: only the user's own behaviours
        assert set(day["behavior"]) <= set(split.loc[split["user_id"] == user, "behavior"])
    # with filled days each day is as long as its drawn cap (BUA ended its days early without a floor)
    filled = {k: tmp_path / f"fill_{v.name}" for k, v in out.items()}
    roomy = {**BUA, "generation": {**BUA["generation"], "max_new_tokens": 400}}  # the budget thins no cap
    bua_generate(paths["split"], paths["states"], paths["model"], paths["dir"] / "s3", filled, dataset="tiny",
                 method="bua", seed=1, bua=roomy, variant={"rounds": ROUNDS_ALL, "balance": True}, sampling=sampling,
                 slot_minutes=30, top_zones=2, user_mix=True, fill_days=True)
    history = history_contexts(split, None, list(zip(answers["user_id"], answers["event_idx"])))
    grammars = day_grammars(history, ["z1", "z2", "z_other"], sorted(split["behavior"].unique()), 30, 1,
                            max_events_per_day(split), True, True)
    lengths = pd.read_parquet(filled["days"]).groupby("user_id").size()
    assert [lengths[h.user_id] for h in history] == [g.cap(0) for g in grammars]


def test_day_fidelity_is_perfect_on_the_real_days_and_markov_writes_the_asked_day():
    import pandas as pd
    from test_behaviorlm import make_split

    from behaviorflow.bua.days import day_keys, day_metrics, history_contexts, markov_days, real_days

    split = make_split(n_users=8, events=40)
    keys = day_keys(split, "test", 10, 10, seed=1)
    real = real_days(split, keys)
    same = day_metrics(real, real)
    assert all(same[f"{s}_bleu"] == pytest.approx(1.0) for s in ("event", "timestamp", "location"))
    assert all(same[k] == pytest.approx(0.0) for k in same if k.endswith(("tvd", "jsd")))
    shifted = real.assign(location="z9")
    assert day_metrics(real, shifted)["location_tvd"] == pytest.approx(1.0)
    profiles = pd.DataFrame({"user_id": sorted(split["user_id"].unique()), "summary": "x"})
    contexts = history_contexts(split, profiles, keys)
    assert all(c.events["event_idx"].max() < idx for c, (_, idx) in zip(contexts, keys))
    days = markov_days(split, contexts, alpha=5.0, seed=1, slot_minutes=30)
    for ctx in contexts:
        mine = days[days["user_id"] == ctx.user_id]
        assert len(mine) and set(mine["ts"].dt.date) == {ctx.start}


def test_even_batches_take_the_fewest_batches_of_near_equal_size():
    from behaviorflow.bua.infer import even_batches

    assert [len(r) for r in even_batches(150, 48)] == [38, 38, 37, 37]
    assert [len(r) for r in even_batches(150, 50)] == [50, 50, 50]
    assert [len(r) for r in even_batches(6, 5)] == [3, 3]
    assert even_batches(3, 16) == [range(0, 3)] and even_batches(0, 4) == []
    for n, size in ((1, 1), (7, 3), (101, 10)):
        batches = even_batches(n, size)
        assert [i for r in batches for i in r] == list(range(n))  # every row once, in order
        assert len(batches) == -(-n // size) and max(map(len, batches)) <= size
