"""Event sequences as model input: vocabularies, feature ids, training windows, prediction contexts.

An event is four categorical features: behaviour, time slot, weekday and zone. Id 0 is padding
and id 1 the mask token of every feature; real values start at 2. Labels (what a predictor
outputs) are behaviour indices 0..n-1 over the closed behaviour vocabulary of the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from behaviorflow.data.events import in_order

PAD, MASK, OFFSET = 0, 1, 2
FEATURES = ("behavior", "slot", "weekday", "location")


@dataclass(frozen=True)
class Vocab:
    behaviors: tuple[str, ...]
    zones: tuple[str, ...]
    slot_minutes: int = 30

    @classmethod
    def from_split(cls, split: pd.DataFrame, slot_minutes: int) -> "Vocab":
        """The closed label set is every behaviour type of the dataset; zones likewise."""
        return cls(tuple(sorted(split["behavior"].unique())), tuple(sorted(split["location"].unique())), slot_minutes)

    @property
    def n_labels(self) -> int:
        return len(self.behaviors)

    @property
    def sizes(self) -> tuple[int, int, int, int]:
        """Embedding table sizes of the four features (with pad and mask)."""
        return (len(self.behaviors) + OFFSET, 24 * 60 // self.slot_minutes + OFFSET, 7 + OFFSET,
                len(self.zones) + OFFSET)

    def encode(self, events: pd.DataFrame) -> np.ndarray:
        """[n, 4] feature ids of time-ordered events; unknown zones map to padding, unknown
        behaviours raise (the label set is closed)."""
        b = pd.Categorical(events["behavior"], categories=self.behaviors).codes
        if (b < 0).any():
            unknown = sorted(set(events["behavior"][b < 0]))
            raise ValueError(f"behaviours outside the label vocabulary: {unknown[:5]}")
        z = pd.Categorical(events["location"], categories=self.zones).codes
        out = np.stack([b + OFFSET, events["slot"].to_numpy() // self.slot_minutes + OFFSET,
                        events["weekday"].to_numpy() + OFFSET, np.where(z >= 0, z + OFFSET, PAD)], axis=1)
        return out.astype(np.int64)


def sequences(events: pd.DataFrame, vocab: Vocab) -> list[np.ndarray]:
    """One encoded, time-ordered sequence per user (sorted by user id, deterministic)."""
    return [vocab.encode(g) for _, g in in_order(events).groupby("user_id", sort=True)]


def windows(seqs: list[np.ndarray], length: int, stride: int = 0) -> np.ndarray:
    """Training windows of at most `length` (= max_len + 1) events ending every `stride` events
    from each sequence's end, left-padded: [m, length, 4]. stride 0 = length - 1: non-overlapping,
    every event but each sequence's first a target exactly once (a window's first event is only
    history for the next). A smaller stride overlaps the windows, so each target is also seen
    with a longer history (sliding-window augmentation)."""
    step = stride or length - 1
    out = []
    for s in seqs:
        if len(s) < 2:
            continue
        for end in range(len(s), 1, -step):
            chunk = s[max(0, end - length):end]
            if len(chunk) >= 2:
                out.append(np.vstack([np.zeros((length - len(chunk), 4), np.int64), chunk]))
    return np.stack(out) if out else np.zeros((0, length, 4), np.int64)


def contexts(history: np.ndarray, targets: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Next-event examples: for each target position t of `history`, a left-padded window of the
    (up to) max_len events before it plus the target event itself with its behaviour and zone
    masked, [n, max_len + 1, 4], and the target's behaviour label. What a prediction may know of
    the event it predicts is its time (slot, weekday); its behaviour and place are masked here, so
    no model can read them."""
    ctx = np.zeros((len(targets), max_len + 1, 4), np.int64)
    for i, t in enumerate(targets):
        chunk = history[max(0, t - max_len):t + 1]
        ctx[i, max_len + 1 - len(chunk):] = chunk
    ctx[:, -1, 0] = MASK
    ctx[:, -1, 3] = MASK
    labels = history[targets, 0] - OFFSET
    return ctx, labels.astype(np.int64)


def query_examples(split: pd.DataFrame, vocab: Vocab, split_name: str, max_len: int):
    """Contexts and labels of the query events of every `split_name` user (history: all earlier
    events of the user, support and query), plus each example's user."""
    users = split[split["split"] == split_name].sort_values(["user_id", "event_idx"], kind="stable")
    ctx, labels, who = [], [], []
    for uid, ev in users.groupby("user_id", sort=True):
        hist = vocab.encode(ev)
        targets = np.flatnonzero(ev["part"].to_numpy() == "query")
        if len(targets):
            c, y = contexts(hist, targets, max_len)
            ctx.append(c)
            labels.append(y)
            who += [uid] * len(y)
    if not ctx:
        raise ValueError(f"no query events for {split_name} users")
    return np.concatenate(ctx), np.concatenate(labels), np.array(who)
