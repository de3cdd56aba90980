"""Who BehaviorGen and the Markov baseline generate for: source users, what they may see, the vocabularies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd


def next_monday(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=7 - day.weekday())


@dataclass
class UserContext:
    """Everything a generator needs about one source user."""

    user_id: str
    synthetic_id: str
    profile_text: str
    events: pd.DataFrame  # visible events (train: all; val/test: support), ts-sorted
    start: dt.date  # first Monday to generate


POPULATION_SOURCES = ("representative", "random")


def _mix_gap(counts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (base 2, as `validation.metrics.jsd`) of each row of `counts` from `target`."""
    from scipy.spatial.distance import jensenshannon

    return jensenshannon(counts, np.broadcast_to(target, counts.shape), base=2, axis=1) ** 2


def representative_users(events: pd.DataFrame, users: list[str], n: int, seed: int) -> list[str]:
    """`n` of `users` whose events together show the behaviour mix and hour-of-day mix of all of
    them (greedy: each step adds the user that brings the pooled mixes closest, in JSD, to the
    whole group's; ties go to the earlier user in a seeded order).

    A population generated from its source users can only be as close to all training users as
    the sources' own events are: 8 users drawn at random from 80 sit 0.023 (behaviour JSD) from
    the pool on the default data, more than the Markov baseline's chain fitted on all of them.
    """
    order = list(np.random.default_rng(seed).permutation(users))
    mine = events[events["user_id"].isin(order)]
    stacked = []
    for values in (mine["behavior"], mine["ts"].dt.hour):
        table = pd.crosstab(mine["user_id"], values).reindex(order, fill_value=0).to_numpy(float)
        stacked.append(table)
    targets = [t.sum(axis=0) / t.sum() for t in stacked]
    chosen: list[int] = []
    sums = [np.zeros(t.shape[1]) for t in stacked]
    for _ in range(min(n, len(order))):
        gap = sum(_mix_gap(s + t, target) for s, t, target in zip(sums, stacked, targets, strict=True))
        gap[chosen] = np.inf
        best = int(np.argmin(gap))
        chosen.append(best)
        sums = [s + t[best] for s, t in zip(sums, stacked, strict=True)]
    return sorted(order[i] for i in chosen)


def user_contexts(split: pd.DataFrame, profiles: pd.DataFrame, population_users: int, seed: int,
                  personal_splits: tuple[str, ...] = ("val", "test"), population_sources: str = "random"):
    """Source users for population (`population_users` train users: `representative_users`, or a
    seeded random sample) and personal (every user of `personal_splits`)."""
    if population_sources not in POPULATION_SOURCES:
        raise ValueError(f"unknown population_sources {population_sources!r}; choose one of {POPULATION_SOURCES}")
    visible = split[split["part"].isin(["train", "support"])].sort_values(["user_id", "event_idx"])
    by_user = dict(tuple(visible.groupby("user_id")))
    summary = profiles.set_index("user_id")["summary"].to_dict()
    train = sorted(profiles.loc[profiles["split"] == "train", "user_id"])
    if not train:
        chosen = []
    elif population_sources == "representative":
        chosen = representative_users(visible, train, population_users, seed)
    else:
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(train, size=min(population_users, len(train)), replace=False))

    def ctx(uid, synthetic_id):
        ev = by_user[uid]
        return UserContext(uid, synthetic_id, summary[uid], ev, next_monday(ev["ts"].max().date()))

    population = [ctx(u, f"syn-{u}") for u in chosen]
    personal = [ctx(u, u) for u in sorted(profiles.loc[profiles["split"].isin(list(personal_splits)), "user_id"])]
    return population, personal


def max_events_per_day(split: pd.DataFrame) -> int:
    """The most events any visible user-day has: the grammar's cap on a generated day."""
    visible = split[split["part"].isin(["train", "support"])]
    return int(visible.groupby(["user_id", visible["ts"].dt.date]).size().max())


def vocabularies(split: pd.DataFrame, top_zones: int) -> tuple[list[str], list[str]]:
    """Zones z1..zN, z_other and the behaviours seen in the visible events."""
    zones = [f"z{i}" for i in range(1, top_zones + 1)] + ["z_other"]
    visible = split[split["part"].isin(["train", "support"])]
    return zones, sorted(visible["behavior"].unique())


def own_mix(events: pd.DataFrame, column: str) -> tuple[tuple[str, int], ...]:
    """How often the user's own visible events show each value of `column` (`hour`: of the day) —
    the grammar's quotas."""
    values = events["ts"].dt.hour if column == "hour" else events[column]
    counts = values.value_counts().sort_index()
    return tuple((str(k), int(n)) for k, n in counts.items())


def mixes(events: pd.DataFrame, on: bool) -> tuple[tuple[tuple[str, int], ...], ...]:
    """The grammar's behaviour, zone and hour mixes from a user's own events (empty when off or
    when the user has no events)."""
    if not on or events.empty:
        return (), (), ()
    return own_mix(events, "behavior"), own_mix(events, "location"), own_mix(events, "hour")


def day_caps(events: pd.DataFrame, days: list[dt.date], rng: np.random.Generator, ceiling: int) -> tuple[int, ...]:
    """A cap on each requested day's events, drawn from the user's own days of the same kind
    (weekday or weekend; the other kind when the user has none), at most `ceiling`."""
    dates = events["ts"].dt.date
    counts = dates.value_counts()
    weekend = np.array([d.weekday() >= 5 for d in counts.index], dtype=bool)
    sizes = {w: counts.to_numpy()[weekend == w] for w in (False, True)}
    caps = []
    for day in days:
        w = day.weekday() >= 5
        pool = sizes[w] if len(sizes[w]) else sizes[not w]
        caps.append(int(min(ceiling, rng.choice(pool))) if len(pool) else ceiling)
    return tuple(caps)


def longest_run(events: pd.DataFrame) -> int:
    """The most consecutive events of one behaviour within a day in a user's (time-ordered) events."""
    if events.empty:
        return 1
    day = events["ts"].dt.date
    new_run = (events["behavior"] != events["behavior"].shift()) | (day != day.shift())
    return int(events.groupby(new_run.cumsum()).size().max())


def user_grammar(events: pd.DataFrame, days: list[dt.date], zones, behaviors, slot_minutes: int,
                 rng: np.random.Generator, ceiling: int, user_mix: bool, fill_days: bool):
    """The event grammar of a user's generated `days` (BehaviorGen's weeks, BUA's and BehaviorGen's
    one-day answers): each day's cap drawn from the user's own days (at most `ceiling`), no behaviour
    in a row longer than the user's longest run, with `user_mix` the user's behaviour, zone and hour
    mix as quotas (rounded without bias, seeded from `rng`), with `fill_days` each cap as the day's
    floor too."""
    from behaviorflow.lm.grammar import EventGrammar

    caps = day_caps(events, days, rng, ceiling)
    return EventGrammar(tuple(d.weekday() for d in days), tuple(zones), tuple(behaviors), slot_minutes, caps,
                        longest_run(events), *mixes(events, user_mix), min_per_day=caps if fill_days else 1,
                        quota_seed=int(rng.integers(2**31)) if user_mix else None)
