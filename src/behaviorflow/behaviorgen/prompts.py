"""BehaviorGen prompts: role, profile, ~7 days of the user's own events, strict output format.

One call generates one week (weekly segmentation); every call of a user gets the same profile
context and the week's dates. Ablation variants drop one ingredient each:
`no_role`, `no_profile`, `no_format`, or `no_segment` (one call for the whole period).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from behaviorflow.data.events import WEEKDAYS, format_event

VARIANTS = ("full", "no_role", "no_profile", "no_format", "no_segment")
ROLE = ("You generate a user's daily behaviour. You are a behaviour simulator: from a user's profile "
        "and a sample of their own past events, you write the events this user would plausibly "
        "produce in a new period, keeping their habits, places and rhythm.")


@dataclass(frozen=True)
class WeekRequest:
    """What one call asks for: a user, the first Monday, and how many weeks (or, with `n_days`, that
    many days from any `start`: BUA's one-day generation, table 8)."""

    user_id: str
    start: dt.date  # a Monday (unless n_days is set)
    weeks: int = 1
    n_days: int = 0  # 0: 7 x weeks

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.n_days or 7 * self.weeks)]


def sample_events(events: pd.DataFrame, days: int = 7) -> pd.DataFrame:
    """The user's most recent `days` days with events (BehaviorGen found 7 days enough)."""
    dates = events["ts"].dt.date
    keep = sorted(dates.unique())[-days:]
    return events[dates.isin(keep)]


def _events_text(events: pd.DataFrame) -> str:
    return "\n".join(format_event(w, s, z, b) for w, s, z, b in
                     events[["weekday", "slot", "location", "behavior"]].itertuples(index=False))


def build_messages(request: WeekRequest, profile_text: str, sample: pd.DataFrame, zones: list[str],
                   behaviors: list[str], variant: str = "full") -> list[dict]:
    """Chat messages for one generation call."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r}; choose one of {VARIANTS}")
    first, last = request.days[0], request.days[-1]
    parts = []
    if variant != "no_profile":
        parts.append(f"User profile: {profile_text}")
    parts.append(f"A sample of this user's events ({sample['ts'].dt.date.nunique()} days):\n{_events_text(sample)}")
    if request.n_days == 1:
        parts.append(f"Generate this user's events for the day {WEEKDAYS[first.weekday()]} {first.isoformat()}.")
    else:
        span = (f"{request.n_days} days" if request.n_days else
                "week" if request.weeks == 1 else f"{request.weeks} weeks")
        parts.append(f"Generate this user's events for the {span} from {WEEKDAYS[first.weekday()]} "
                     f"{first.isoformat()} to {WEEKDAYS[last.weekday()]} {last.isoformat()}.")
    if variant != "no_format":
        parts.append(
            "Output format: one event per line, exactly `Weekday, HH:MM, zone, behaviour`, in time order, "
            "covering the days requested and nothing else. "
            f"Zones: {', '.join(zones)}. Behaviours: {', '.join(behaviors)}. "
            "Write only the event lines, no other text.")
    messages = [{"role": "user", "content": "\n\n".join(parts)}]
    if variant != "no_role":
        messages.insert(0, {"role": "system", "content": ROLE})
    return messages


def completion_text(events: pd.DataFrame) -> str:
    """The target completion for a real week (used to tune the generator in the same format)."""
    return _events_text(events)
