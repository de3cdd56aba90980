"""How much sequential and habitual structure an event table carries: the statistics the
data-overview report puts side by side for every dataset (simulated and real).

- `events_per_user_day`: mean events per user per active day;
- `behavior_entropy_bits`: mean over users of the entropy of their behaviour distribution;
- `weekly_repeat_rate`: of a user's (weekday, slot, behaviour) triples in one week, the share that
  also occur in the user's previous week (habits recur), mean over user-weeks with events in both;
- `weekly_repeat_rate_other_user`: the same against another user's previous week (the control:
  what shared daily rhythms alone give);
- `top_transition_share`: the share of consecutive event pairs (same user) whose next behaviour is
  the most frequent successor of the previous one in the whole table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from behaviorflow.data.events import in_order


def _entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _week_sets(ev: pd.DataFrame) -> dict[str, dict[int, set]]:
    week = (ev["ts"].dt.normalize() - pd.to_timedelta(ev["weekday"], unit="D"))
    keys = week.dt.strftime("%Y%m%d").astype(int)
    out: dict[str, dict[int, set]] = {}
    for (user, wk), g in ev.assign(week=keys).groupby(["user_id", "week"], sort=True):
        out.setdefault(user, {})[wk] = set(zip(g["weekday"], g["slot"], g["behavior"]))
    return out


def _repeat(current: set, previous: set) -> float:
    return len(current & previous) / len(current)


def structure_stats(events: pd.DataFrame) -> dict[str, float]:
    """The statistics above for events with user_id, ts, weekday, slot and behavior."""
    ev = in_order(events)
    days = ev.groupby(["user_id", ev["ts"].dt.date]).size()
    entropy = ev.groupby("user_id")["behavior"].agg(lambda b: _entropy_bits(b.value_counts().to_numpy()))
    weeks = _week_sets(ev)
    users = sorted(weeks)
    own, other = [], []
    for i, user in enumerate(users):
        neighbour = weeks[users[(i + 1) % len(users)]]
        for wk, triples in weeks[user].items():
            prev = int((pd.Timestamp(str(wk)) - pd.Timedelta(days=7)).strftime("%Y%m%d"))
            if prev in weeks[user]:
                own.append(_repeat(triples, weeks[user][prev]))
                if prev in neighbour:
                    other.append(_repeat(triples, neighbour[prev]))
    same_user = ev["user_id"].to_numpy()[1:] == ev["user_id"].to_numpy()[:-1]
    b = ev["behavior"].to_numpy()
    pairs = pd.DataFrame({"prev": b[:-1][same_user], "next": b[1:][same_user]})
    if len(pairs):
        counts = pairs.value_counts()
        top = counts.groupby(level="prev").max().sum() / len(pairs)
    else:
        top = float("nan")
    return {
        "users": int(ev["user_id"].nunique()),
        "events": int(len(ev)),
        "events_per_user_day": float(days.mean()),
        "behavior_entropy_bits": float(entropy.mean()),
        "weekly_repeat_rate": float(np.mean(own)) if own else float("nan"),
        "weekly_repeat_rate_other_user": float(np.mean(other)) if other else float("nan"),
        "top_transition_share": float(top),
    }
