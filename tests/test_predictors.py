"""Predictors, the evaluation protocol and the per-user fine-tuning scenarios."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import torch

import behaviorflow.predictors.scenarios as scenarios
from behaviorflow.predictors.evaluation import evaluate, label_groups
from behaviorflow.predictors.models import (
    FitSettings,
    ModelSettings,
    build_model,
    fit,
    predict_logits,
)
from behaviorflow.predictors.scenarios import (
    PredictorSettings,
    finetune_users,
    pretrain,
    query_examples,
)
from behaviorflow.predictors.sequences import (
    MASK,
    OFFSET,
    Vocab,
    contexts,
    sequences,
    windows,
)


def test_metrics_on_a_hand_made_confusion_matrix():
    # 3 labels; true: 0 0 0 0 1 1 2 2 ; predicted (argmax): 0 0 0 1 1 0 2 1
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 0, 2, 1])
    second = np.array([1, 1, 1, 0, 2, 1, 0, 2])  # second-best label of each row
    logits = np.full((8, 3), -5.0)
    logits[np.arange(8), pred] = 5.0
    logits[np.arange(8), second] = 1.0
    groups = np.array(["head", "medium", "tail"])
    m = evaluate(logits, labels, groups)
    assert m["acc1"] == pytest.approx(5 / 8)
    # top-3 of 3 labels is everything; top-2 is checked through acc3 on 4 labels below
    assert m["acc3"] == pytest.approx(1.0)
    # precision: label 0 predicted 4x, right 3x; label 1 predicted 3x, right 1x; label 2: 1x, 1x
    assert m["weighted_precision"] == pytest.approx(0.5 * 3 / 4 + 0.25 * 1 / 3 + 0.25 * 1.0)
    # per-label recall: 3/4, 1/2, 1/2 -> macro 7/12
    assert m["overall"] == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert (m["head"], m["medium"], m["tail"]) == pytest.approx((3 / 4, 1 / 2, 1 / 2))
    four = np.concatenate([logits, np.full((8, 1), 3.0)], axis=1)  # label 3 always ranks 2nd
    m4 = evaluate(four, labels, np.array(["head", "medium", "tail", "tail"]))
    # top 3 = argmax, label 3, and the second-best: hits where true is pred or second
    assert m4["acc3"] == pytest.approx(np.mean((labels == pred) | (labels == second)))


def test_label_groups_follow_training_shares():
    train = np.array([0] * 94 + [1] * 5 + [2] * 1)  # 94 %, 5 % and 1 % (boundaries: medium), label 3 unseen
    assert list(label_groups(train, 4)) == ["head", "medium", "medium", "tail"]


def _cycle_split(n_users=6, events=120, cycle=("a", "b", "c", "d", "e")):
    rows = []
    start = dt.datetime(2024, 3, 4)
    for u in range(n_users):
        for i in range(events):
            ts = start + dt.timedelta(minutes=30 * (i + u))
            rows.append((f"u{u}", ts, ts.weekday(), ts.hour * 60 + ts.minute // 30 * 30, f"z{i % 3}",
                         cycle[(i + u) % len(cycle)], i))
    return pd.DataFrame(rows, columns=["user_id", "ts", "weekday", "slot", "location", "behavior", "event_idx"])


@pytest.mark.parametrize("kind", ["sasrec", "bert4rec"])
def test_predictor_learns_a_deterministic_cycle(kind):
    events = _cycle_split()
    vocab = Vocab.from_split(events, 30)
    ms = ModelSettings(max_len=12, hidden=32, blocks=2, heads=1, dropout=0.0)
    seqs = sequences(events[events.user_id != "u5"], vocab)
    torch.manual_seed(0)  # the initial weights too, whatever ran before
    model = build_model(kind, vocab.sizes, vocab.n_labels, ms)
    hist = fit(model, windows(seqs, 13), None,
               FitSettings(lr=3e-3, batch_size=16, max_epochs=60, patience=3), seed=0, mask_prob=0.3)
    held_out = sequences(events[events.user_id == "u5"], vocab)[0]
    ctx, labels = contexts(held_out, np.arange(5, len(held_out)), 12)
    acc = (predict_logits(model, ctx).argmax(1) == labels).mean()
    assert hist["epochs"] == 60 and acc > 0.95


def _personal_cycles(n_users=12, events=60, n_labels=10, length=6):
    """Each user repeats a cycle of their own (a random 6 of 10 labels, in a random order): the
    previous behaviour says nothing across users, the user's own past says everything."""
    labels = [f"b{i}" for i in range(n_labels)]
    rng = np.random.default_rng(0)
    rows = []
    start = dt.datetime(2024, 3, 4)
    for u in range(n_users):
        cycle = rng.permutation(labels)[:length]
        for i in range(events):
            ts = start + dt.timedelta(minutes=30 * i)
            rows.append((f"u{u:02d}", ts, ts.weekday(), ts.hour * 60 + ts.minute // 30 * 30, "z0", cycle[i % length], i))
    return pd.DataFrame(rows, columns=["user_id", "ts", "weekday", "slot", "location", "behavior", "event_idx"])


@pytest.mark.parametrize("kind", ["sasrec", "bert4rec"])
def test_the_copy_head_learns_a_users_own_transitions(kind):
    """Held-out users with cycles of their own: the copy head predicts them from the window (what
    followed the same behaviour before); the same model without it, trained alike, cannot."""
    events = _personal_cycles()
    vocab = Vocab.from_split(events, 30)
    train, held = events[events.user_id < "u10"], events[events.user_id >= "u10"]
    acc = {}
    for copy in (False, True):
        torch.manual_seed(0)
        model = build_model(kind, vocab.sizes, vocab.n_labels,
                            ModelSettings(max_len=12, hidden=32, blocks=2, heads=1, dropout=0.0, copy=copy))
        fit(model, windows(sequences(train, vocab), 13, 4), None,
            FitSettings(lr=3e-3, batch_size=16, max_epochs=20, patience=3), seed=0, mask_prob=0.3)
        hits = []
        for seq in sequences(held, vocab):
            ctx, labels = contexts(seq, np.arange(12, len(seq)), 12)
            logp = predict_logits(model, ctx)
            hits.append(logp.argmax(1) == labels)
        acc[copy] = np.concatenate(hits).mean()
        if copy:  # log-probabilities of a mixture: each row sums to one
            assert np.allclose(np.exp(logp).sum(1), 1.0, atol=1e-4)
    assert acc[True] > 0.9 and acc[False] < 0.3, acc


def test_contexts_hold_earlier_events_and_only_the_time_of_the_target():
    seq = np.arange(10 * 4).reshape(10, 4) + OFFSET
    ctx, labels = contexts(seq, np.array([0, 3, 9]), 4)
    assert ctx.shape == (3, 5, 4)
    assert (ctx[0, :-1] == 0).all()  # nothing before the first event
    assert (ctx[1, -4:-1] == seq[:3]).all() and (ctx[1, 0] == 0).all()
    assert (ctx[2, :-1] == seq[5:9]).all() and list(labels) == list(seq[[0, 3, 9], 0] - OFFSET)
    # the target: its slot and weekday are known, its behaviour and zone are masked
    assert (ctx[:, -1, 0] == MASK).all() and (ctx[:, -1, 3] == MASK).all()
    assert (ctx[2, -1, 1:3] == seq[9, 1:3]).all()


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("kind", ["sasrec", "bert4rec"])
def test_a_prediction_cannot_see_the_behaviour_it_predicts(kind, copy):
    """Changing the target event's behaviour or zone in the history changes nothing predicted
    (the copy head included: it copies only behaviours the model may see)."""
    events = _cycle_split(n_users=2, events=30)
    vocab = Vocab.from_split(events, 30)
    model = build_model(kind, vocab.sizes, vocab.n_labels,
                        ModelSettings(max_len=8, hidden=16, dropout=0.0, copy=copy))
    seq = sequences(events, vocab)[0]
    altered = seq.copy()
    altered[20, 0], altered[20, 3] = OFFSET + (seq[20, 0] - OFFSET + 1) % vocab.n_labels, OFFSET
    a = predict_logits(model, contexts(seq, np.array([20]), 8)[0])
    b = predict_logits(model, contexts(altered, np.array([20]), 8)[0])
    c = predict_logits(model, contexts(altered, np.array([21]), 8)[0])  # as history it does count
    assert np.array_equal(a, b) and not np.array_equal(c, predict_logits(model, contexts(seq, np.array([21]), 8)[0]))


def _split_with_query_marker():
    """Cycle data split like split_users does; every query event sits in zone `zq`, which no
    training, support or synthetic event has."""
    events = _cycle_split(n_users=8, events=90)
    user_split = {f"u{i}": s for i, s in enumerate(["train"] * 4 + ["val"] * 2 + ["test"] * 2)}
    events["split"] = events["user_id"].map(user_split)
    events["part"] = np.where(events["split"] == "train", "train",
                              np.where(events["event_idx"] < 40, "support", "query"))
    events.loc[events["part"] == "query", "location"] = "zq"
    return events


def test_per_user_fine_tuning_never_trains_on_query_events(monkeypatch):
    split = _split_with_query_marker()
    vocab = Vocab.from_split(split, 30)
    zq = vocab.zones.index("zq") + OFFSET
    settings = PredictorSettings(model=ModelSettings(max_len=10, hidden=16, blocks=1, heads=1),
                                 pretrain=FitSettings(max_epochs=2), finetune=FitSettings(max_epochs=2))
    base, _, _, _ = pretrain(split, None, "sasrec", 0, settings, vocab)
    test_users = sorted(split.loc[split.split == "test", "user_id"].unique())
    synthetic = _cycle_split(n_users=2, events=50).assign(source_user=lambda d: d.user_id.map(
        dict(zip(["u0", "u1"], test_users))))
    seen = []
    real_fit = scenarios.fit

    def spy(model, train_windows, val, *args, **kwargs):
        seen.append((train_windows, val))
        return real_fit(model, train_windows, val, *args, **kwargs)

    monkeypatch.setattr(scenarios, "fit", spy)
    metrics, runs = finetune_users(base, split, {"markov": synthetic}, "sasrec", 0, settings, vocab)
    assert len(seen) == 3 * len(test_users)  # real, synthetic, real+synthetic per user
    for train_windows, val in seen:
        assert not (train_windows[..., 3] == zq).any()
        assert val is None or not (val[0][..., 3] == zq).any()
    # the check has teeth: the evaluation contexts do hold query events (as history)
    ctx, _, _ = query_examples(split, vocab, "test", 10)
    assert (ctx[..., 3] == zq).any()
    assert set(metrics) == {("none", "none"), ("none", "real"), ("markov", "synthetic"),
                            ("markov", "real+synthetic")}
    assert set(runs["setting"]) == {"real", "synthetic", "real+synthetic"}


def test_training_is_deterministic_for_a_seed():
    split = _split_with_query_marker()
    vocab = Vocab.from_split(split, 30)
    settings = PredictorSettings(model=ModelSettings(max_len=10, hidden=16, blocks=1, heads=1),
                                 pretrain=FitSettings(max_epochs=3))
    a = pretrain(split, None, "bert4rec", 7, settings, vocab)
    b = pretrain(split, None, "bert4rec", 7, settings, vocab)
    c = pretrain(split, None, "bert4rec", 8, settings, vocab)
    assert pd.Series(a[2]).equals(pd.Series(b[2])) and a[1]["train_loss"] == b[1]["train_loss"]
    assert a[1]["train_loss"] != c[1]["train_loss"]


def test_dropout_drops_the_configured_share_reproducibly():
    from behaviorflow.predictors.models import _dropout

    x = torch.ones(200, 500)
    a = _dropout(x, 0.1, np.random.default_rng(3))
    assert (a == 0).float().mean().item() == pytest.approx(0.1, abs=0.005)
    assert a.mean().item() == pytest.approx(1.0, abs=0.01)  # kept values are scaled by 1 / (1 - p)
    assert torch.equal(a, _dropout(x, 0.1, np.random.default_rng(3)))
    assert not torch.equal(a, _dropout(x, 0.1, np.random.default_rng(4)))
    assert _dropout(x, 0.1, None) is x  # evaluation: no dropout


def test_bert4rec_training_hides_a_masked_event_in_its_successor_too():
    from behaviorflow.predictors.models import _training_batch

    events = _cycle_split(n_users=1, events=40)
    vocab = Vocab.from_split(events, 30)
    data = torch.as_tensor(windows(sequences(events, vocab), 13))
    tokens, targets = _training_batch("bert4rec", data, torch.Generator().manual_seed(0), 0.4)
    masked = targets != -100
    assert masked.any() and masked[:, -1].all()
    assert (tokens[..., 0][masked] == MASK).all() and (tokens[..., 3][masked] == MASK).all()
    # the next token carries the previous event's behaviour and zone: masked there as well
    after = torch.zeros_like(masked)
    after[:, 1:] = masked[:, :-1]
    assert (tokens[..., 4][after] == MASK).all() and (tokens[..., 5][after] == MASK).all()
    unmasked_before = ~after & (tokens[..., 4] != 0)
    assert (tokens[..., 4][unmasked_before] >= OFFSET).all()


def _baseline_split():
    """Two training users with a -> b -> a -> c ...; one test user whose own habit is a -> c."""
    rows = []
    start = dt.datetime(2024, 3, 4)
    plans = {"t1": "abababac" * 3, "t2": "ababab" * 4, "q1": "acacacacac" + "acab"}
    for user, seq in plans.items():
        for i, b in enumerate(seq):
            ts = start + dt.timedelta(minutes=30 * i)
            split = "test" if user == "q1" else "train"
            part = "train" if split == "train" else ("support" if i < 10 else "query")
            rows.append((user, ts, ts.weekday(), ts.hour * 60 + ts.minute // 30 * 30, "z1", b, split, part, i))
    return pd.DataFrame(rows, columns=["user_id", "ts", "weekday", "slot", "location", "behavior", "split", "part",
                                       "event_idx"])


def test_counting_baselines_by_hand():
    from behaviorflow.predictors.baselines import baseline_logits

    split = _baseline_split()
    vocab = Vocab.from_split(split, 30)  # a, b, c
    out = baseline_logits(split, vocab)
    labels = query_examples(split, vocab, "test", 4)[1]
    assert all(len(v) == len(labels) == 4 for v in out.values())
    names = np.array(vocab.behaviors)
    # training shares: a 24, b 20, c 3 -> always a
    assert list(names[out["global_mf"].argmax(1)]) == ["a", "a", "a", "a"]
    # the user so far: a 5, c 5 (ties broken by training share: a), then a 6 c 5 ...
    assert list(names[out["user_mf"].argmax(1)]) == ["a", "a", "a", "a"]
    # queries a, c, a, b after c, a, c, a: the user's own transitions (c -> a, a -> c) win over the
    # population's a -> b
    assert list(names[out["markov1"].argmax(1)]) == ["a", "c", "a", "c"]
    assert list(names[labels]) == ["a", "c", "a", "b"]


def test_leaderboard_rows_share_their_queries():
    from behaviorflow.predictors.baselines import query_fingerprint
    from behaviorflow.reporting.leaderboard import check_shared_queries

    split = _baseline_split()
    print_a = query_fingerprint(split)
    assert print_a["queries"] == 4 and print_a["query_users"] == 1
    vocab = Vocab.from_split(split, 30)
    settings = PredictorSettings(model=ModelSettings(max_len=4, hidden=8), pretrain=FitSettings(max_epochs=1))
    val = split.assign(split="val", user_id=split["user_id"] + "v")
    both = pd.concat([split, val[val["user_id"] == "q1v"]], ignore_index=True)
    history = scenarios.pretrain(both, None, "sasrec", 1, settings, vocab)[1]
    assert {k: history[k] for k in print_a} == print_a
    assert check_shared_queries({"d": [print_a, history]})["d"]["queries"] == 4
    moved = split.copy()
    moved.loc[moved["event_idx"] == 10, "part"] = "support"
    with pytest.raises(ValueError, match="different queries"):
        check_shared_queries({"d": [print_a, query_fingerprint(moved)]})
