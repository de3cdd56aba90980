"""BehaviorGen's event text form: `Monday, 08:30, z1, messaging` (weekday, HH:MM, location, behaviour),
and the one order of a user's events."""

from __future__ import annotations

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def hhmm(minutes: int) -> str:
    """Minutes since midnight as HH:MM."""
    return f"{int(minutes) // 60:02d}:{int(minutes) % 60:02d}"


def format_event(weekday: int, slot: int, location: str, behavior: str) -> str:
    """One event as a line of text."""
    return f"{WEEKDAYS[int(weekday)]}, {hhmm(slot)}, {location}, {behavior}"


def parse_event(line: str) -> tuple[int, int, str, str]:
    """Inverse of format_event; raises ValueError naming what is wrong."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 4:
        raise ValueError(f"expected 4 comma-separated fields, got {len(parts)}: {line!r}")
    day, time, location, behavior = parts
    if day not in WEEKDAYS:
        raise ValueError(f"unknown weekday {day!r}")
    try:
        hh, mm = time.split(":")
        h, m = int(hh), int(mm)
    except ValueError as exc:
        raise ValueError(f"time {time!r} is not HH:MM") from exc
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"time {time!r} is outside the day")
    if not location or not behavior:
        raise ValueError(f"empty location or behaviour in {line!r}")
    return WEEKDAYS.index(day), h * 60 + m, location, behavior


def in_order(events):
    """Events sorted by user and time order. Anonymised timestamps are floored to the slot, so
    events within a slot keep their exact order through `event_idx` (the split's) or `seq`
    (anonymisation's); synthetic events, which have neither, keep their file order."""
    order = [c for c in ("user_id", "ts", "event_idx", "seq") if c in events.columns]
    return events.sort_values(order, kind="stable")
