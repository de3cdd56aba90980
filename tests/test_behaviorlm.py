"""LLM next-behaviour prediction and BehaviorLM on a tiny random model: prompts, the label scorer,
anchors and label groups, the LLM test queries, difficulty selection, the chat corpus, and the
stages' training runs."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_lm import build_tiny_model

from behaviorflow.behaviorlm import data as bdata
from behaviorflow.behaviorlm import evaluate, stages
from behaviorflow.behaviorlm.prompts import FORMATS, PromptSettings, Query, formats_for, messages, queries_of
from behaviorflow.lm.examples import IGNORE
from behaviorflow.lm.scoring import candidate_ids, load_scorer, prompt_ids, score_labels

CATEGORY = {"alarm": "morning", "weather": "morning", "news": "morning", "music": "leisure", "game": "leisure",
            "golf": "leisure"}


def make_split(seed: int = 0, n_users: int = 8, events: int = 40) -> pd.DataFrame:
    """Users of train / val / test with a long tail: golf is rare, news and game medium."""
    rng = np.random.default_rng(seed)
    labels = list(CATEGORY)
    probs = np.array([0.3, 0.25, 0.15, 0.2, 0.08, 0.02])
    roles = ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    rows = []
    for u in range(n_users):
        start = dt.datetime(2024, 3, 4, 7)
        for i in range(events):
            ts = start + dt.timedelta(hours=5 * i)
            b = labels[rng.choice(len(labels), p=probs)]
            part = "train" if roles[u] == "train" else ("support" if i < events // 2 else "query")
            rows.append((f"u{u}", ts, ts.weekday(), ts.hour * 60, f"z{i % 3}", b, CATEGORY[b], roles[u], part, i))
    return pd.DataFrame(rows, columns=["user_id", "ts", "weekday", "slot", "location", "behavior", "category",
                                       "split", "part", "event_idx"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_lm") / "base", seed=3)


def _query(label="golf", history=(("alarm", 0), ("news", 1))):
    past = tuple((0, 420 + 30 * k, f"z{k}", b) for b, k in history)
    return Query("u1", 7, past, 2, 600, label)


def test_prediction_examples_supervise_exactly_the_label(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    prompt = PromptSettings(history=5, list_labels=True, seed=1)
    queries = [_query(label) for label in CATEGORY]
    examples = stages.encode_queries(tok, queries, prompt, sorted(CATEGORY), 1024)
    for q, e in zip(queries, examples):
        answer = tok.decode([i for i, lab in zip(e.input_ids, e.labels) if lab != IGNORE])
        assert answer == q.label + "<|end|>"  # the label and the template's end-of-turn, nothing else
        first = next(k for k, lab in enumerate(e.labels) if lab != IGNORE)
        assert all(lab == IGNORE for lab in e.labels[:first]) and len(e.labels) == len(e.input_ids)


def test_a_prompt_shows_the_target_time_never_its_behaviour():
    q = _query(label="golf")
    for fmt in range(FORMATS):
        text = json.dumps(messages(q, fmt))  # no label list
        assert "golf" not in text and "Wed" in text and "10:00" in text
        assert "alarm" in text and "news" in text
    with pytest.raises(ValueError, match="format"):
        messages(q, FORMATS)


def test_formats_are_drawn_per_query_from_the_seed():
    queries = [Query("u1", i, (), 0, 0, "x") for i in range(60)]
    a, b = formats_for(queries, 4), formats_for(queries[::-1], 4)[::-1]
    assert np.array_equal(a, b)  # a query's format does not depend on the others
    assert set(a) == set(range(FORMATS)) and not np.array_equal(a, formats_for(queries, 5))


def test_queries_carry_only_earlier_events():
    split = make_split()
    user = split[split.user_id == "u6"]
    queries = queries_of(user, user.part == "query", 3)
    assert len(queries) == (user.part == "query").sum()
    first = queries[0]
    before = user[user.event_idx < first.event_idx].tail(3)
    assert [h[3] for h in first.history] == list(before.behavior)
    assert first.label == user[user.event_idx == first.event_idx].behavior.item()


def test_scorer_equals_a_brute_force_log_likelihood(tiny):
    model, tok = load_scorer(tiny)
    labels = ["a", "ab", "music", "golf", "weather"]  # "a" is a prefix of "ab": the end-of-turn decides
    msgs = [messages(_query(), fmt, labels) for fmt in range(3)]
    prompts = [prompt_ids(tok, m) for m in msgs]
    cands = candidate_ids(tok, msgs[0], labels)
    assert [tok.decode(c) for c in cands] == [f"{lab}<|end|>" for lab in labels]
    fast = score_labels(model, prompts, cands, tok.pad_token_id, chunk=2)  # two queries per pass: left padding in a batch too
    brute = np.zeros_like(fast)
    with torch.no_grad():
        for i, p in enumerate(prompts):
            for j, c in enumerate(cands):
                logp = model(input_ids=torch.tensor([p + c])).logits[0].log_softmax(-1)
                brute[i, j] = sum(float(logp[len(p) - 1 + k, t]) for k, t in enumerate(c))
    np.testing.assert_allclose(fast, brute, atol=1e-4)


def test_anchors_and_label_groups_come_from_training_users_only():
    split = make_split()
    labels = sorted(CATEGORY)
    anchors, groups = bdata.anchors(split, labels, 0.05), evaluate.train_groups(split, labels)
    altered = split.copy()
    altered.loc[altered.split != "train", "behavior"] = "golf"  # every val/test event becomes the rare label
    assert bdata.anchors(altered, labels, 0.05) == anchors
    assert np.array_equal(evaluate.train_groups(altered, labels), groups)
    shares = split[split.part == "train"].behavior.value_counts(normalize=True)
    assert anchors == sorted(lab for lab in labels if shares.get(lab, 0) > 0.05) and "golf" not in anchors


def test_llm_test_queries_are_stratified_and_seeded():
    split = make_split(n_users=8, events=200)
    test = split[(split.split == "test") & (split.part == "query")]
    labels = test.behavior.nunique()
    n = 8 * labels  # a quarter label by label: 2 of each label first, the rest at random
    chosen = bdata.test_queries(split, 5, n, seed=1)
    assert len(chosen) == n and len({(q.user_id, q.event_idx) for q in chosen}) == n
    counts = pd.Series([q.label for q in chosen]).value_counts()
    assert set(counts.index) == set(test.behavior) and counts.min() >= 2  # golf, rare overall, appears
    assert counts["alarm"] > counts["golf"]  # beyond the floor the sample keeps the data's mix
    assert chosen == bdata.test_queries(split, 5, n, seed=1)
    assert chosen != bdata.test_queries(split, 5, n, seed=2)
    assert all(q.user_id in set(test.user_id) for q in chosen)
    pool = bdata.stratified(chosen, labels * 2, seed=3)  # floor_share 1: fully balanced
    assert pd.Series([q.label for q in pool]).value_counts().max() <= 2


def test_difficulty_selection_by_hand():
    pool = [Query("u", i, (), 0, 0, lab) for i, lab in enumerate(
        ["alarm", "alarm", "alarm", "news", "news", "golf", "golf", "music"])]
    predicted = ["weather", "weather", "alarm", "alarm", "music", "game", "music", "game"]
    # wrong and same category: 0, 1 (alarm->weather), 3 (news->alarm), 5, 6 (golf->game/music), 7 (music->game)
    # 4 (news->music) is wrong across categories, 2 is right
    chosen, report = bdata.select_difficult(pool, predicted, CATEGORY, per_label=1, seed=0)
    assert sorted(q.label for q in chosen) == ["alarm", "golf", "music", "news"]
    assert {q.event_idx for q in chosen} <= {0, 1, 3, 5, 6, 7}
    assert report["candidates"] == 6 and report["labels_with_fewer"] == {}
    chosen, report = bdata.select_difficult(pool, predicted, CATEGORY, per_label=2, seed=0)
    assert report["labels_with_fewer"] == {"music": 1, "news": 1} and len(chosen) == 6
    # the random ablation matches those counts per label, from every pool sample of the label
    counts = {"alarm": 2, "golf": 2, "music": 1, "news": 1}
    drawn = [bdata.select_random(pool, counts, seed=s)[0] for s in range(20)]
    assert all(sorted(q.label for q in d) == sorted(q.label for q in chosen) for d in drawn)
    assert {q.event_idx for d in drawn for q in d if q.label == "alarm"} == {0, 1, 2}  # the right one too


def test_the_chat_corpus_is_real_conversation_in_chat_roles(tmp_path):
    convs = bdata.chat_corpus("chitchat", 5, seed=1)
    assert len(convs) == 5 and convs == bdata.chat_corpus("chitchat", 5, seed=1)
    for conv in convs:
        assert [m["role"] for m in conv] == ["user", "assistant"] * (len(conv) // 2)
        assert all(m["content"].strip() for m in conv)
    bad = tmp_path / "chat.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                   "not json\n")
    with pytest.raises(ValueError, match=r"chat.jsonl:2"):
        bdata.chat_corpus(str(bad), 1, seed=0)
    assert bdata.aux_count(95, 0.05) == 5 and bdata.aux_count(95, 0.0) == 0


TUNING = dict(rank=4, alpha=8, dropout=0.0, learning_rate=5e-3, batch_size=4, max_steps=3, eval_steps=1,
              patience=0, bf16=False, warmup_ratio=0.0, scheduler="constant", max_length=1024, layers=0,
              target_modules=["q_proj", "v_proj"])
PROMPT = dict(history=4, list_labels=True, seed=1)


def test_stages_atune_select_btune_predict(tiny, tmp_path):
    """The four rules' functions end to end: A-tuning sees anchors (and conversation) only, B-tuning
    starts from the A-tuned adapter, prediction writes protocol rows and a score per label."""
    from safetensors.torch import load_file

    split = make_split(events=60)
    path = tmp_path / "split.parquet"
    split.to_parquet(path)
    a = stages.atune(path, tiny, tmp_path / "atune", tuning=TUNING, prompt=PROMPT, seed=1, train_examples=40,
                     anchor_share=0.1, aux_share=0.2, aux_corpus="chitchat", threads=1)
    assert set(a["labels_trained"]) <= set(a["anchors"]) and "golf" not in a["anchors"]
    assert a["aux_examples"] == 10 and a["steps"] == 3
    # a rerun (same seed, same data) trains the same adapter, bit for bit
    stages.atune(path, tiny, tmp_path / "again", tuning=TUNING, prompt=PROMPT, seed=1, train_examples=40,
                 anchor_share=0.1, aux_share=0.2, aux_corpus="chitchat", threads=1)
    assert (tmp_path / "atune/trainable.safetensors").read_bytes() == \
        (tmp_path / "again/trainable.safetensors").read_bytes()
    pool = stages.behaviorlm_score_pool(path, tiny, tmp_path / "atune", tmp_path / "pool.parquet", prompt=PROMPT, seed=1,
                             pool=60, threads=1)
    assert len(pool) == 60 and set(pool["predicted"]) <= set(CATEGORY)
    sel = stages.behaviorlm_select(path, tmp_path / "pool.parquet", tmp_path / "sel.parquet", tmp_path / "sel.json",
                        prompt=PROMPT, seed=1, per_label=3)
    chosen = pd.read_parquet(tmp_path / "sel.parquet")
    assert len(chosen) == sel["selected"] and (chosen.groupby("label").size() <= 3).all()
    merged = chosen.merge(pool, on=["user_id", "event_idx", "label"])
    assert len(merged) == len(chosen) and (merged["predicted"] != merged["label"]).all()  # mistakes only
    assert all(CATEGORY[p] == CATEGORY[t] for p, t in zip(merged["predicted"], merged["label"]))
    # learning rate 0: the B-tuned adapter is exactly the A-tuned one it started from
    stages.btune(path, tiny, tmp_path / "atune", tmp_path / "sel.parquet", tmp_path / "btune", tuning=TUNING,
                 btune_settings=dict(learning_rate=0.0, max_steps=1), prompt=PROMPT, seed=1, threads=1)
    before, after = (load_file(str(tmp_path / d / "trainable.safetensors")) for d in ("atune", "btune"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert any(float(v.abs().sum()) > 0 for k, v in before.items() if "lora_B" in k)  # A-tuning trained it
    out = {"metrics": tmp_path / "m.csv", "scores": tmp_path / "s.parquet"}
    rows = evaluate.behaviorlm_predict(path, tiny, tmp_path / "btune", out, dataset="toy", method="behaviorlm", seed=1,
                          prompt=PROMPT, queries=12, query_seed=5, threads=1)
    scores = pd.read_parquet(out["scores"])
    assert len(scores) == 12 and list(scores.columns[2:]) == sorted(CATEGORY)
    assert set(rows["metric"]) >= {"acc1", "acc3", "weighted_precision", "overall", "head", "medium", "tail"}
    assert (rows["queries"] == 12).all()


def test_a_stage_runs_data_parallel_under_torchrun(tiny, tmp_path):
    """behaviorlm.processes = 2: A-tuning under torchrun (2 gloo processes, batch 2 each) gives the
    loss curve of one process with batch 4; only rank 0 writes."""
    from behaviorflow.behaviorlm.stages import behaviorlm_atune

    split = make_split(events=60)
    path = tmp_path / "split.parquet"
    split.to_parquet(path)
    common = dict(split_path=str(path), model_dir=str(tiny), prompt=PROMPT, seed=1, train_examples=16,
                  anchor_share=0.1, aux_share=0.0, aux_corpus="chitchat", threads=2)
    behaviorlm_atune(1, out_dir=str(tmp_path / "one"), tuning={**TUNING, "batch_size": 4}, **common)
    behaviorlm_atune(2, out_dir=str(tmp_path / "two"), tuning={**TUNING, "batch_size": 2}, **common)
    one, two = (json.loads((tmp_path / d / "training_report.json").read_text()) for d in ("one", "two"))
    assert one["processes"] == 1 and two["processes"] == 2
    assert two["losses"] == pytest.approx(one["losses"], abs=2e-3) and two["tokens"] == one["tokens"]
