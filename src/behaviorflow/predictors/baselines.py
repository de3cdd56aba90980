"""Counting baselines of the prediction leaderboard: what a predictor must beat to have learned more
than frequencies.

Each scores every label for every query event, in the order of `sequences.query_examples`, from
the same information a model has: the training users' events and the test user's events before
the query (never the query's own behaviour or zone).
- `global_mf`: the training events' label shares (the same ranking for every query);
- `user_mf`: the user's own label counts so far, ties and unseen labels by the training shares;
- `markov1`: the previous behaviour -> the most frequent next behaviour, the user's own
  transitions first, then the training users' transitions, then the user's and the training
  shares (so a user count of one outranks any population evidence).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from behaviorflow.predictors.sequences import OFFSET, Vocab, query_examples

BASELINES = ("global_mf", "user_mf", "markov1")


def _labels(events: pd.DataFrame, vocab: Vocab) -> np.ndarray:
    return vocab.encode(events)[:, 0] - OFFSET


def baseline_logits(split: pd.DataFrame, vocab: Vocab, split_name: str = "test") -> dict[str, np.ndarray]:
    """Scores [n_queries, n_labels] of every baseline for the query events of `split_name` users."""
    n = vocab.n_labels
    train = split[split["part"] == "train"].sort_values(["user_id", "event_idx"], kind="stable")
    y_train = _labels(train, vocab)
    share = np.bincount(y_train, minlength=n) / max(len(y_train), 1)
    same_user = train["user_id"].to_numpy()[1:] == train["user_id"].to_numpy()[:-1]
    pop = np.zeros((n, n))
    np.add.at(pop, (y_train[:-1][same_user], y_train[1:][same_user]), 1.0)
    pop_next = pop / np.maximum(pop.sum(axis=1, keepdims=True), 1.0)
    out = {name: [] for name in BASELINES}
    users = split[split["split"] == split_name].sort_values(["user_id", "event_idx"], kind="stable")
    for _, ev in users.groupby("user_id", sort=True):
        y = _labels(ev, vocab)
        targets = np.flatnonzero(ev["part"].to_numpy() == "query")
        counts = np.zeros(n)
        trans = np.zeros((n, n))
        done = 0
        for t in targets:
            for i in range(done, t):  # the user's events before the query
                counts[y[i]] += 1
                if i:
                    trans[y[i - 1], y[i]] += 1
            done = t
            user_share = counts / max(counts.sum(), 1.0)
            out["global_mf"].append(share)
            out["user_mf"].append(counts + 0.5 * share)
            prev = y[t - 1] if t else None
            own = trans[prev] if prev is not None else np.zeros(n)
            popn = pop_next[prev] if prev is not None else share
            out["markov1"].append(own + 0.5 * popn + 0.01 * user_share + 0.001 * share)
    return {name: np.asarray(rows, dtype=np.float64).reshape(-1, n) for name, rows in out.items()}


def query_fingerprint(split: pd.DataFrame, split_name: str = "test") -> dict:
    """Which events are the queries: their count and a hash of (user, event index), so every
    leaderboard row can show it was scored on the same queries."""
    import hashlib

    q = split[(split["split"] == split_name) & (split["part"] == "query")].sort_values(["user_id", "event_idx"])
    text = "\n".join(f"{u}\t{i}" for u, i in zip(q["user_id"], q["event_idx"]))
    return {"queries": int(len(q)), "query_users": int(q["user_id"].nunique()),
            "queries_sha256": hashlib.sha256(text.encode()).hexdigest()}


def predictability(split_path, events_path, outputs: dict, dataset: str, slot_minutes: int) -> pd.DataFrame:
    """Rule predictability: the counting baselines' leaderboard rows (deterministic: seed 0), the
    label groups and the query fingerprint, and the dataset's structure statistics."""
    from behaviorflow.atomic import write_csv, write_json
    from behaviorflow.data.structure import structure_stats
    from behaviorflow.predictors.evaluation import evaluate, label_groups, long_rows

    split = pd.read_parquet(split_path)
    vocab = Vocab.from_split(split, slot_minutes)
    groups = label_groups(_labels(split[split["part"] == "train"], vocab), vocab.n_labels)
    _, labels, _ = query_examples(split, vocab, "test", 1)
    rows = [long_rows(evaluate(logits, labels, groups), dataset=dataset, model=name, generator="none",
                      setting="real", seed=0)
            for name, logits in baseline_logits(split, vocab).items()]
    table = pd.concat(rows, ignore_index=True)
    write_csv(table, outputs["metrics"])
    stats = structure_stats(pd.read_parquet(events_path))
    counts = {f"{g}_labels": int((groups == g).sum()) for g in ("head", "medium", "tail")}
    stats.update(labels=int(vocab.n_labels), **counts, **query_fingerprint(split),
                 categories=int(split["category"].nunique()) if "category" in split else None)
    write_json(outputs["structure"], stats)
    return table
