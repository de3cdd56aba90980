"""What BehaviorLM trains and is scored on: anchors, training pools, the LLM test queries, the
general-conversation corpus, and difficulty selection.

Everything is drawn with seeds from config and computed from training users' data only (label
shares, anchors, head/medium/tail): a test user's events are only ever prompts and answers to score.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from behaviorflow.behaviorlm.prompts import Query, queries_of

log = logging.getLogger(__name__)


def label_shares(split: pd.DataFrame, labels: list[str]) -> pd.Series:
    """Each label's share of the training users' events (0 for labels they never show)."""
    train = split.loc[split["part"] == "train", "behavior"]
    return train.value_counts(normalize=True).reindex(labels, fill_value=0.0)


def anchors(split: pd.DataFrame, labels: list[str], share: float) -> list[str]:
    """Anchor behaviours: training share above `share` (the paper: 1 %)."""
    shares = label_shares(split, labels)
    return [lab for lab in labels if shares[lab] > share]


def training_queries(split: pd.DataFrame, history: int) -> list[Query]:
    """Every training user's event with at least one event before it, as a query."""
    train = split[split["part"] == "train"]
    return queries_of(train, pd.Series(True, index=train.index), history)


def draw(queries: list[Query], n: int, seed: int) -> list[Query]:
    """A seeded sample of `n` queries (all when there are fewer), in their original order."""
    if n >= len(queries):
        return list(queries)
    keep = np.sort(np.random.default_rng(seed).choice(len(queries), n, replace=False))
    return [queries[i] for i in keep]


def stratified(queries: list[Query], n: int, seed: int, floor_share: float = 1.0) -> list[Query]:
    """A seeded subsample of `n` queries in which rare labels appear. Labels take turns (in a seeded
    order), each giving its next unused query, until `floor_share` of `n` is drawn; the rest is a
    uniform draw from the remaining queries, so the sample keeps the data's label mix apart from
    that floor (`floor_share` 1: fully balanced, what difficulty selection's pool needs).
    Returned in the original order; all of them when there are no more than `n`."""
    if n >= len(queries):
        return list(queries)
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i in rng.permutation(len(queries)):
        by_label.setdefault(queries[i].label, []).append(int(i))
    order = [by_label[k] for k in rng.permutation(sorted(by_label))]
    floor = max(1, round(floor_share * n))
    chosen: list[int] = []
    depth = 0
    while len(chosen) < floor:
        for pool in order:
            if depth < len(pool) and len(chosen) < floor:
                chosen.append(pool[depth])
        depth += 1
    if len(chosen) < n:
        taken = set(chosen)
        rest = np.array([i for i in range(len(queries)) if i not in taken])
        chosen += rng.choice(rest, n - len(chosen), replace=False).tolist()
    return [queries[i] for i in sorted(chosen)]


TEST_FLOOR_SHARE = 0.25  # of the LLM test queries, drawn label by label (the rest: the data's mix)


def test_queries(split: pd.DataFrame, history: int, n: int, seed: int) -> list[Query]:
    """The LLM rows' test queries: the test users' query events, `stratified` to `n` with a quarter
    drawn label by label (every label with a query appears when n allows) and three quarters at
    random, so Acc@1 stays close to what the same rows score on every query."""
    test = split[split["split"] == "test"]
    return stratified(queries_of(test, test["part"] == "query", history), n, seed, TEST_FLOOR_SHARE)


def chat_corpus(source: str, n: int, seed: int, max_turns: int = 4) -> list[list[dict]]:
    """`n` general conversations (user/assistant turns) drawn with `seed` from `source`: `chitchat`
    (the MIT-licensed chitchat-dataset package: two people chatting; the first speaker is the user)
    or a JSONL file with one {"messages": [{"role", "content"}, ...]} per line."""
    if n <= 0:
        return []
    if source == "chitchat":
        try:
            import chitchat_dataset
        except ImportError as exc:
            raise ImportError("behaviorlm.aux_corpus is chitchat: `pip install chitchat-dataset`") from exc
        data = chitchat_dataset.Dataset()
        convs = []
        for key in sorted(data):
            turns = [" ".join(u["text"] for u in turn) for turn in data[key]["messages"]]
            turns = [t.strip() for t in turns if t.strip()][:max_turns]
            if len(turns) >= 2:
                convs.append([{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                              for i, t in enumerate(turns[: len(turns) // 2 * 2])])
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"behaviorlm.aux_corpus: {source} is neither `chitchat` nor a JSONL file")
        convs = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                messages = json.loads(line)["messages"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: expected {{\"messages\": [{{\"role\", \"content\"}}, ...]}} "
                                 f"({exc})") from exc
            if not any(m.get("role") == "assistant" for m in messages):
                raise ValueError(f"{path}:{number}: a conversation needs an assistant turn to learn from")
            convs.append(messages)
    if not convs:
        raise ValueError(f"behaviorlm.aux_corpus {source}: no conversation with two turns")
    keep = np.random.default_rng(seed).choice(len(convs), min(n, len(convs)), replace=False)
    return [convs[i] for i in sorted(keep)]


def aux_count(n_task: int, share: float) -> int:
    """Auxiliary examples so they make up `share` of the mixed set."""
    return round(n_task * share / (1.0 - share)) if share > 0 else 0


def select_difficult(pool: list[Query], predicted: list[str], category: dict[str, str], per_label: int,
                     seed: int) -> tuple[list[Query], dict]:
    """BehaviorLM's difficulty selection: keep the samples the A-tuned model gets wrong where its
    prediction and the truth share a category, then balance to `per_label` per label (a seeded draw;
    a label with fewer keeps all and is reported)."""
    hard: dict[str, list[int]] = {}
    for i, (q, p) in enumerate(zip(pool, predicted)):
        if p != q.label and category[p] == category[q.label]:
            hard.setdefault(q.label, []).append(i)
    return _balance(pool, hard, per_label, seed, "difficulty")


def select_random(pool: list[Query], per_label: int | dict[str, int], seed: int) -> tuple[list[Query], dict]:
    """The ablation: samples drawn at random per label, difficulty ignored. `per_label` is F, or a
    count per label (the difficulty selection's, so the ablation changes which samples B-tuning
    sees and not how many: with few mistakes in the pool, a random F per label would be a larger set)."""
    by_label: dict[str, list[int]] = {}
    for i, q in enumerate(pool):
        if isinstance(per_label, int) or q.label in per_label:
            by_label.setdefault(q.label, []).append(i)
    return _balance(pool, by_label, per_label, seed, "random")


def _balance(pool, candidates: dict[str, list[int]], per_label: int | dict[str, int], seed: int, how: str):
    rng = np.random.default_rng(seed)
    chosen, short = [], {}
    for label in sorted(candidates):
        idx = candidates[label]
        want = per_label if isinstance(per_label, int) else per_label[label]
        if len(idx) < want:
            short[label] = len(idx)
        chosen += list(rng.choice(idx, want, replace=False)) if len(idx) > want else idx
    report = {"how": how, "pool": len(pool), "candidates": int(sum(len(v) for v in candidates.values())),
              "selected": len(chosen), "labels": len(candidates),
              "per_label": per_label if isinstance(per_label, int) else "matched to difficulty selection",
              "labels_with_fewer": short}
    if short:
        log.info("selection (%s): %d label(s) have fewer than %s samples and keep all: %s", how, len(short),
                 per_label, dict(sorted(short.items())[:8]))
    return [pool[i] for i in sorted(chosen)], report
