"""Instruction prompts for next-behaviour prediction (BehaviorLM; shared with BUA).

A prompt holds a user's most recent events (a configurable number, compact text: weekday, time,
zone, behaviour) and the time of the event to predict, never its behaviour or zone; the answer is
the behaviour label. Three formats say the same thing in different words (the paper draws one per
example so the model learns the task, not a template); which one an example gets is drawn from a
seed, so a rerun builds the same prompts. The label list, when shown, is the closed vocabulary in
a fixed order: the scorer ranks exactly these labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from behaviorflow.config import from_schema
from behaviorflow.data.events import WEEKDAYS, hhmm, in_order

SYSTEM = ("You predict a person's next daily behaviour from their recent events. "
          "Answer with one behaviour name only.")
FORMATS = 3


@dataclass(frozen=True)
@from_schema("$defs/behaviorlm_prompt")
class PromptSettings:
    history: int  # most recent events shown
    list_labels: bool  # name the candidate behaviours in the system message
    seed: int  # draws each example's format


@dataclass(frozen=True)
class Query:
    """One next-behaviour example: the user's events before it and the target event's time."""

    user_id: str
    event_idx: int
    history: tuple[tuple[int, int, str, str], ...]  # (weekday, slot, zone, behaviour), oldest first
    weekday: int
    slot: int
    label: str


def _line(w: int, s: int, z: str, b: str, fmt: int) -> str:
    if fmt == 0:
        return f"{WEEKDAYS[w][:3]} {hhmm(s)} {z} {b}"
    if fmt == 1:
        return f"- {WEEKDAYS[w]} {hhmm(s)} at {z}: {b}"
    return f"{b} ({WEEKDAYS[w][:3]} {hhmm(s)}, {z})"


def messages(query: Query, fmt: int, labels: list[str] | None = None) -> list[dict]:
    """Chat messages for one query in format `fmt` (0, 1 or 2)."""
    if not 0 <= fmt < FORMATS:
        raise ValueError(f"prompt format must be 0..{FORMATS - 1}, got {fmt}")
    lines = [_line(*e, fmt) for e in query.history]
    when = f"{WEEKDAYS[query.weekday]} {hhmm(query.slot)}"
    if fmt == 0:
        user = "Recent events (day, time, zone, behaviour):\n" + "\n".join(lines) + f"\nNext event at {when}. Behaviour?"
    elif fmt == 1:
        user = ("Here is what this person did recently:\n" + "\n".join(lines)
                + f"\nWhat will they do next, on {when}?")
    else:
        user = "History: " + "; ".join(lines) + f". The next event happens on {when}. Which behaviour is it?"
    system = SYSTEM if labels is None else f"{SYSTEM} Behaviours: {', '.join(labels)}."
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def formats_for(queries: list[Query], seed: int) -> np.ndarray:
    """Each query's format, drawn from `seed` and the query's identity (user, event): a query has
    the same format in every stage and run, whatever else is in the batch."""
    import hashlib

    out = np.empty(len(queries), dtype=np.int64)
    for i, q in enumerate(queries):
        h = hashlib.sha256(f"{seed}\t{q.user_id}\t{q.event_idx}".encode()).digest()
        out[i] = int.from_bytes(h[:4], "little") % FORMATS
    return out


def queries_of(events: pd.DataFrame, targets: pd.Series, history: int) -> list[Query]:
    """Queries for the events where `targets` is true, each with the user's `history` events before it
    (all earlier events of the user count, whatever their part)."""
    out = []
    ev = in_order(events.assign(_target=targets.to_numpy()))
    for uid, g in ev.groupby("user_id", sort=True):
        rows = list(g[["weekday", "slot", "location", "behavior"]].itertuples(index=False, name=None))
        idx = g["event_idx"].to_numpy()
        for t in np.flatnonzero(g["_target"].to_numpy()):
            if t == 0:
                continue  # nothing before it to predict from
            w, s, _, b = rows[t]
            past = tuple((int(a), int(c), str(z), str(y)) for a, c, z, y in rows[max(0, t - history):t])
            out.append(Query(str(uid), int(idx[t]), past, int(w), int(s), str(b)))
    return out
