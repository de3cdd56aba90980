"""BUA's curriculum tasks, derived from the data by rules (§3.3, App. A): what each understanding
question's reference answer is, and the conversations each stage trains on.

A `Context` is one next-behaviour sample: a user's window of events before a target event (what the
encoder sees), the target's time, its label, and, for training users only, the events of the two hours
from the target on (the future-scene task's answer). Every answer below is computed from the window
alone (the future scene from those later events), never from the target's behaviour or zone, so an
answer can be a prompt's context at test time without leaking the label.

Stage 1 (projector only): sequence reconstruction, current scene (last two hours), future scene
(next two hours), home / work zone, hobby: one question per example, the sequence given only as
embeddings. Stage 2 (projector + LoRA): one multi-round dialogue, easy to hard: key behaviours,
recurring patterns, the user-feature summary, then the final round: the next behaviour, or the next
day's events (one-day generation: a `Context` whose `future` is that day, `contexts_of(...,
horizon="day")`). Stage 3 (LoRA): the stage-2 model's weakest summaries, reviewed and corrected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from behaviorflow.behaviorlm.prompts import Query, queries_of
from behaviorflow.data.events import WEEKDAYS, format_event, hhmm, in_order

WEEK = 7 * 1440
SCENE_MINUTES = 120  # "the past / next two hours" (§3.3.1)
STAGE1_TASKS = ("reconstruct", "current_scene", "future_scene", "home_work", "hobby")
ROUNDS = ("key_behaviours", "patterns", "summary")  # stage 2's understanding rounds, in the enforced order
SYSTEM = ("You understand a person's daily behaviour from an embedding of their recent event sequence "
          "and answer questions about it.")
QUESTIONS = {
    "reconstruct": "Write out the last {n} events of the sequence, oldest first (day, time, zone, behaviour).",
    "current_scene": "Summarise the current scene: what happened in the two hours before {when}?",
    "future_scene": "Infer the scene of the next two hours from {when}: where and what?",
    "home_work": "Which zones are this person's home and workplace?",
    "hobby": "What is this person's hobby, the behaviour most typical of them?",
    "key_behaviours": "Identify the user's key behaviours.",
    "patterns": "Which recurring patterns does the sequence show?",
    "summary": "Summarise the user's features.",
    "predict": "The next event happens on {when}. Which behaviour is it? Answer with one behaviour name only.",
    "generate": ("Write this user's events for the next day, {day}: one per line as `Weekday, HH:MM, zone, "
                 "behaviour`, in time order."),
    "reflect": ("Here is an earlier summary of this user: \"{draft}\". Review it against the sequence (zones, "
                "behaviours, times) and write a corrected summary."),
}


@dataclass(frozen=True)
class Context:
    """One sample: the encoder's window before a target event, the target's time and label, and the
    events of the two hours from the target on (training users only; empty otherwise)."""

    query: Query
    future: tuple[tuple[int, int, str, str], ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        return self.query.user_id, self.query.event_idx

    @property
    def when(self) -> str:
        return f"{WEEKDAYS[self.query.weekday]} {hhmm(self.query.slot)}"


def contexts_of(events: pd.DataFrame, targets: pd.Series, window: int, with_future: bool,
                horizon: str = "scene") -> list[Context]:
    """Contexts of the events where `targets` is true (each with the user's `window` events before it);
    `with_future` adds the events from each target on (its own included): the two hours of the
    future-scene task (`horizon` "scene") or the rest of the target's date ("day": generation)."""
    if horizon not in ("scene", "day"):
        raise ValueError(f"horizon is scene or day, not {horizon!r}")
    queries = queries_of(events, targets, window)
    if not with_future:
        return [Context(q) for q in queries]
    rows = {}
    for uid, g in in_order(events).groupby("user_id", sort=True):
        minute = g["weekday"].to_numpy().astype(np.int64) * 1440 + g["slot"].to_numpy().astype(np.int64)
        ts = pd.to_datetime(g["ts"]).to_numpy() if "ts" in g else None
        rows[str(uid)] = ({int(e): i for i, e in enumerate(g["event_idx"])}, minute, ts,
                          list(g[["weekday", "slot", "location", "behavior"]].itertuples(index=False, name=None)))
    out = []
    for q in queries:
        position, minute, ts, ev = rows[q.user_id]
        t = position[q.event_idx]
        end = t
        while end < len(ev) and (_same_date(ts, t, end) if horizon == "day"
                                 else _ahead(minute, ts, t, end) < SCENE_MINUTES):
            end += 1
        out.append(Context(q, tuple((int(w), int(s), str(z), str(b)) for w, s, z, b in ev[t:end])))
    return out


def _ahead(minute: np.ndarray, ts, t: int, j: int) -> float:
    """Minutes from event t to event j (timestamps when there are, else week minutes)."""
    if ts is not None:
        return float((ts[j] - ts[t]) / np.timedelta64(1, "m"))
    return float((minute[j] - minute[t]) % WEEK)


def _same_date(ts, t: int, j: int) -> bool:
    if ts is None:
        raise ValueError("a day's events need timestamps (column ts)")
    return ts[j].astype("datetime64[D]") == ts[t].astype("datetime64[D]")


def day_answer(ctx: Context) -> str:
    """The generation round's reference: the day's events as BehaviorGen's event lines."""
    return "\n".join(format_event(*e) for e in ctx.future)


def event_line(event) -> str:
    w, s, z, b = event
    return f"{WEEKDAYS[w][:3]} {hhmm(s)} {z} {b}"


def _before(history, weekday: int, slot: int, minutes: int) -> list:
    """The window's events within `minutes` before the target time (week minutes, wrapping)."""
    now = weekday * 1440 + slot
    return [e for e in history if (now - (e[0] * 1440 + e[1])) % WEEK <= minutes]


def _scene(events) -> str:
    if not events:
        return "no events"
    zones = Counter(e[2] for e in events).most_common(1)[0][0]
    seen = list(dict.fromkeys(e[3] for e in events))
    return f"at {zones}: {', '.join(seen)}"


def home_work(history) -> tuple[str, str]:
    """Home: the zone most frequent at night (21:00-07:00); work: the most frequent other zone on
    weekdays 09:00-17:00 ("unknown" where the window has no such event)."""
    night = Counter(e[2] for e in history if e[1] >= 21 * 60 or e[1] < 7 * 60)
    home = night.most_common(1)[0][0] if night else "unknown"
    day = Counter(e[2] for e in history if e[0] < 5 and 9 * 60 <= e[1] < 17 * 60 and e[2] != home)
    return home, day.most_common(1)[0][0] if day else "unknown"


def hobby(history, shares: dict[str, float]) -> str:
    """The behaviour most over-represented in the window against the population's shares (at least
    twice in the window); the most frequent one when none repeats."""
    counts = Counter(e[3] for e in history)
    n = sum(counts.values())
    repeated = {b: c for b, c in counts.items() if c >= 2}
    if not repeated:
        return counts.most_common(1)[0][0]
    return max(sorted(repeated), key=lambda b: (repeated[b] / n) / max(shares.get(b, 0.0), 1e-6))


def key_behaviours(history, k: int = 3) -> str:
    counts = Counter(e[3] for e in history).most_common(k)
    return ", ".join(f"{b} ({c}x)" for b, c in counts)


def patterns(ctx: Context) -> str:
    """The most frequent consecutive pair, and the behaviour most frequent within an hour of the
    target's time of day (any day)."""
    h = ctx.query.history
    pairs = Counter((a[3], b[3]) for a, b in zip(h, h[1:]))
    parts = []
    if pairs:
        (a, b), c = pairs.most_common(1)[0]
        parts.append(f"{a} then {b} ({c}x)")
    near = Counter(e[3] for e in h if min(abs(e[1] - ctx.query.slot), 1440 - abs(e[1] - ctx.query.slot)) <= 60)
    if near:
        parts.append(f"{near.most_common(1)[0][0]} around {hhmm(ctx.query.slot - ctx.query.slot % 60)}")
    return "; ".join(parts) or "none"


def summary(ctx: Context, shares: dict[str, float]) -> str:
    """The user-feature summary: home and work, main behaviours, active hours, hobby."""
    h = ctx.query.history
    home, work = home_work(h)
    slots = sorted(e[1] for e in h)
    top = [b for b, _ in Counter(e[3] for e in h).most_common(2)]
    return (f"Lives in {home}, works in {work}; mostly {' and '.join(top)}; active {hhmm(slots[0])}-"
            f"{hhmm(slots[-1])}; hobby {hobby(h, shares)}.")


def answers(ctx: Context, shares: dict[str, float], positions: int) -> dict[str, str]:
    """Every task's reference answer for one context."""
    h = ctx.query.history
    home, work = home_work(h)
    return {
        "reconstruct": "\n".join(event_line(e) for e in h[-positions:]),
        "current_scene": _scene(_before(h, ctx.query.weekday, ctx.query.slot, SCENE_MINUTES)),
        "future_scene": _scene(ctx.future),
        "home_work": f"home {home}, work {work}",
        "hobby": hobby(h, shares),
        "key_behaviours": key_behaviours(h),
        "patterns": patterns(ctx),
        "summary": summary(ctx, shares),
        "predict": ctx.query.label,
    }


def sequence_block(placeholder: str, positions: int, ctx: Context | None = None, text_events: int = 0) -> str:
    """The user message's sequence part: `positions` placeholder tokens (the encoder states go there)
    and, with `text_events`, the last events as text too."""
    text = ""
    if ctx is not None and text_events > 0:
        text = "\nRecent events (day, time, zone, behaviour):\n" + "\n".join(event_line(e) for e in
                                                                              ctx.query.history[-text_events:])
    return f"Behaviour sequence embedding: {placeholder * positions}{text}"


def question(task: str, ctx: Context, positions: int, draft: str = "") -> str:
    return QUESTIONS[task].format(n=min(positions, len(ctx.query.history)), when=ctx.when, draft=draft,
                                  day=WEEKDAYS[ctx.query.weekday])


def stage1_messages(ctx: Context, task: str, answer: str, placeholder: str, positions: int,
                    system: str = SYSTEM) -> list[dict]:
    """One stage-1 question about a sequence given only as embeddings, with its answer."""
    user = sequence_block(placeholder, positions) + "\n" + question(task, ctx, positions)
    return [{"role": "system", "content": system}, {"role": "user", "content": user},
            {"role": "assistant", "content": answer}]


def dialogue(ctx: Context, ref: dict[str, str], placeholder: str, positions: int, text_events: int,
             rounds: tuple[str, ...] = ROUNDS, final: str | None = "predict",
             replies: dict[str, str] | None = None) -> list[dict]:
    """Stage 2's multi-round dialogue: the sequence (embeddings + recent events as text) opens the
    first round, then `rounds` in order, then the `final` round. `replies` replaces reference answers
    (the model's own, at inference); a round missing from both ends the dialogue at its question.
    The label list is not in the prompt (BehaviorLM's zero-shot row needs it, a tuned model does not,
    and the scorer ranks every label anyway): it would double every prompt."""
    system = SYSTEM
    head = sequence_block(placeholder, positions, ctx, text_events) + "\n"
    out = [{"role": "system", "content": system}]
    for task in [*rounds, *([final] if final else [])]:
        out.append({"role": "user", "content": head + question(task, ctx, positions)})
        head = ""
        answer = (replies or {}).get(task, ref.get(task))
        if answer is None:
            return out
        out.append({"role": "assistant", "content": answer})
    return out


def reflection(ctx: Context, ref: dict[str, str], draft: str, placeholder: str, positions: int,
               text_events: int) -> list[dict]:
    """Stage 3's example: the dialogue's first rounds, a weak earlier summary to review, its
    correction (the reference), then the final round."""
    msgs = dialogue(ctx, ref, placeholder, positions, text_events, rounds=ROUNDS[:-1], final=None)
    msgs += [{"role": "user", "content": question("reflect", ctx, positions, draft)},
             {"role": "assistant", "content": ref["summary"]},
             {"role": "user", "content": question("predict", ctx, positions)},
             {"role": "assistant", "content": ref["predict"]}]
    return msgs


def unigram_f1(candidate: str, reference: str) -> float:
    """Token-overlap F1 of a generated summary against the reference (words, punctuation stripped)."""
    def words(s):
        return Counter(w.strip(".,;:()").lower() for w in s.split() if w.strip(".,;:()"))

    c, r = words(candidate), words(reference)
    common = sum((c & r).values())
    if not common:
        return 0.0
    p, q = common / sum(c.values()), common / sum(r.values())
    return 2 * p * q / (p + q)
