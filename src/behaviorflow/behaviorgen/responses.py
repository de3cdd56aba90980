"""BehaviorGen's response format: parse and validate a generated week, and turn it into event rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from behaviorflow.behaviorgen.prompts import WeekRequest
from behaviorflow.data.events import WEEKDAYS, parse_event

SYNTHETIC_COLUMNS = ["user_id", "source_user", "week_start", "ts", "weekday", "slot", "location", "behavior"]


@dataclass
class ParsedWeek:
    events: list[tuple[dt.date, int, str, str]] = field(default_factory=list)
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


def parse_response(text: str, request: WeekRequest, zones: set[str], behaviors: set[str]) -> ParsedWeek:
    """Parse and validate a response; the first problem found is the error (None when valid).

    Every non-empty line must be `Weekday, HH:MM, zone, behaviour` with a zone and behaviour from
    the vocabulary; weekdays must follow the requested days in order (a new week starts when the
    weekday goes back to an earlier day); times may not decrease within a day.
    """
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ParsedWeek(error="empty response")
    days = request.days
    out, day_idx, prev = [], 0, -1
    for n, line in enumerate(lines, start=1):
        try:
            weekday, minutes, zone, behavior = parse_event(line)
        except ValueError as exc:
            return ParsedWeek(error=f"line {n}: {exc}")
        if zone not in zones:
            return ParsedWeek(error=f"line {n}: zone {zone!r} not in the vocabulary")
        if behavior not in behaviors:
            return ParsedWeek(error=f"line {n}: behaviour {behavior!r} not in the vocabulary")
        j = next((k for k in range(day_idx, len(days)) if days[k].weekday() == weekday), None)
        if j is None:
            return ParsedWeek(error=f"line {n}: {WEEKDAYS[weekday]} is not a requested day at this point "
                                    f"({days[day_idx].isoformat()} .. {days[-1].isoformat()})")
        if j == day_idx and minutes < prev:
            return ParsedWeek(error=f"line {n}: time goes backwards within {days[j].isoformat()}")
        if j != day_idx:
            prev = -1
        day_idx, prev = j, minutes
        out.append((days[j], minutes, zone, behavior))
    return ParsedWeek(events=out)


def to_rows(ctx, week_start: dt.date, parsed: ParsedWeek, slot_minutes: int) -> list[tuple]:
    """Rows of SYNTHETIC_COLUMNS for one parsed week of a source user's context."""
    rows = []
    for day, minutes, zone, behavior in parsed.events:
        slot = minutes // slot_minutes * slot_minutes
        ts = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=slot)
        rows.append((ctx.synthetic_id, ctx.user_id, week_start, ts, day.weekday(), slot, zone, behavior))
    return rows
