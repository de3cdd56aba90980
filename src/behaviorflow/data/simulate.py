"""Population simulator: a SIMULATED phone-usage log standing in for the papers' private data.

Nothing here is real. It is built to carry the structure real phone logs have and the papers
model (DESIGN.md, "The simulated default must carry the structure"):
- users with the five BehaviorGen profile attributes, which shape everything else: occupation sets
  the work rhythm (work days, start time, commute), age and the other attributes the app mix;
- personal weekly routines that recur with noise: each user has a few (weekday set, time,
  behaviour) habits -- an alarm on work days, music on the commute, games on Friday nights -- that
  fire with probability `routine_keep` at a jittered time;
- behaviour chains with semantic transitions (alarm -> weather -> news, navigation -> ride-hailing ->
  payment, short-video <-> social-media bursts), declared in the config (`chains`): after an event
  of a chain step, the next event is the chain's next step with the chain's `rate`, minutes later;
  each user also has two personal follow-up habits of their own;
- places (home, work, leisure, commute) that condition which behaviours occur, and hour-of-day
  curves per behaviour;
- 37 behaviour types whose population shares are long-tailed like BUA's Honor data (a few head
  types above 5 %, a medium band of 1-5 %, many tail types below 1 %), each in one of ten
  categories (`layouts.EVENT_CATEGORIES`).
Its output looks like a raw phone log (device id, account id, timestamps with seconds, GPS
coordinates, cell id, behaviour) with a small rate of the faults real logs carry (resent
duplicates, logged-out events, truncated writes, unknown event types), so that ingestion and
anonymisation have real work to do. Everything is drawn from seeded generators: reruns give
byte-identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from behaviorflow.config import SimulationSettings, as_settings
from behaviorflow.data.layouts import ACCOUNT_COLUMNS, EVENT_TYPES, LOG_COLUMNS

log = logging.getLogger(__name__)

PLACES = ("home", "work", "leisure", "commute")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Hour-of-day curves (24 values, relative).
_H = np.arange(24)


def _bump(centre: float, width: float) -> np.ndarray:
    d = np.minimum(np.abs(_H - centre), 24 - np.abs(_H - centre))
    return np.exp(-0.5 * (d / width) ** 2)


CURVES = {
    "flat": np.ones(24),
    "morning": _bump(7, 1.0) + 0.05,
    "commute": _bump(8, 0.8) + _bump(18, 1.0) + 0.1,
    "work": _bump(11, 2.0) + _bump(15, 2.0) + 0.1,
    "meal": _bump(12, 0.8) + _bump(19, 1.0) + 0.05,
    "evening": _bump(21, 1.6) + 0.15,
    "night": _bump(23, 1.5) + 0.1,
    "day": _bump(14, 5.0) + 0.2,
}


@dataclass(frozen=True)
class Behavior:
    """One behaviour type: population weight, hour curve, place affinities, weekend factor."""

    name: str
    weight: float
    curve: str = "day"
    home: float = 1.0
    work: float = 1.0
    leisure: float = 1.0
    commute: float = 1.0
    weekend: float = 1.0


BEHAVIORS: tuple[Behavior, ...] = (
    # head (> 5 %)
    Behavior("messaging", 18.0, "day", work=1.2),
    Behavior("short_video", 11.0, "evening", work=0.4, commute=1.5, weekend=1.3),
    Behavior("social_media", 9.0, "evening", commute=1.3, weekend=1.2),
    Behavior("web_browsing", 7.0, "day", work=1.3),
    Behavior("music", 6.0, "commute", commute=3.0, work=0.6, leisure=1.3),
    # medium (1-5 %)
    Behavior("video_streaming", 4.5, "night", home=1.8, work=0.2, weekend=1.5),
    Behavior("news", 3.0, "morning", commute=2.0),
    Behavior("mobile_payment", 3.5, "meal", leisure=2.5, commute=1.5, home=0.4),
    Behavior("navigation", 3.0, "commute", commute=4.0, leisure=1.8, home=0.2, work=0.3),
    Behavior("phone_call", 3.0, "day", work=1.3),
    Behavior("email", 2.8, "work", work=3.0, leisure=0.3, weekend=0.3),
    Behavior("gaming", 2.6, "night", home=1.6, work=0.3, weekend=1.5),
    Behavior("online_shopping", 2.4, "evening", home=1.5, weekend=1.4),
    Behavior("weather", 2.0, "morning", home=1.5),
    Behavior("alarm_clock", 1.0, "morning", home=3.0, work=0.05, leisure=0.1, weekend=0.4),
    Behavior("camera", 1.8, "day", leisure=3.0, weekend=1.8),
    Behavior("food_delivery", 1.6, "meal", home=1.5, work=1.4, leisure=0.3),
    Behavior("reading", 1.1, "night", home=1.4, commute=1.6),
    Behavior("calendar", 0.9, "work", work=2.5, weekend=0.4),
    Behavior("ride_hailing", 1.2, "commute", commute=2.0, leisure=2.0),
    Behavior("photo_gallery", 1.2, "evening", leisure=1.5, weekend=1.4),
    # tail (< 1 %)
    Behavior("fitness_tracking", 0.9, "morning", leisure=3.0, weekend=1.5),
    Behavior("banking", 0.8, "work", weekend=0.7),
    Behavior("podcast", 0.8, "commute", commute=3.0),
    Behavior("live_streaming", 0.7, "night", home=1.5, weekend=1.4),
    Behavior("stock_trading", 0.6, "work", work=1.8, weekend=0.1),
    Behavior("ticket_booking", 0.6, "evening", weekend=1.5),
    Behavior("sports_scores", 0.5, "evening", weekend=2.0),
    Behavior("travel_booking", 0.5, "evening", home=1.3, weekend=1.3),
    Behavior("language_learning", 0.5, "morning", commute=1.8),
    Behavior("online_course", 0.5, "evening", home=1.5),
    Behavior("job_search", 0.4, "evening", home=1.4),
    Behavior("smart_home", 0.4, "evening", home=4.0, work=0.05, leisure=0.1, commute=0.3),
    Behavior("health_consult", 0.35, "day"),
    Behavior("dating", 0.3, "night", home=1.5, weekend=1.3),
    Behavior("meditation", 0.3, "night", home=2.0),
    Behavior("lottery", 0.25, "evening", weekend=1.6),
)
assert tuple(b.name for b in BEHAVIORS) == EVENT_TYPES, "the behaviour table and the log's event types differ"
_BIDX = {b.name: i for i, b in enumerate(BEHAVIORS)}
CURVES_BY_HOUR = np.stack([CURVES[b.curve] for b in BEHAVIORS], axis=1)  # (24, 37)
PLACE_AFFINITY = {p: np.array([getattr(b, p) for b in BEHAVIORS]) for p in PLACES}
LEISURE_AFFINITY = PLACE_AFFINITY["leisure"]
WEEKEND_FACTOR = np.array([b.weekend for b in BEHAVIORS])

AGE_RANGE = (18, 72)
EDUCATION = ("high_school", "vocational", "bachelor", "master", "doctorate")
GENDER = ("female", "male")
CONSUMPTION = ("low", "medium", "high")
OCCUPATION = (
    "office_worker",
    "student",
    "service_worker",
    "manual_worker",
    "teacher",
    "healthcare_worker",
    "freelancer",
    "retired",
)
WORKING = {"office_worker", "service_worker", "manual_worker", "teacher", "healthcare_worker"}

# Demographic group effects: multiplicative on the population weights.
GROUP_EFFECTS = {
    ("age", "young"): {"short_video": 1.5, "gaming": 1.6, "dating": 2.5, "news": 0.6, "live_streaming": 1.5},
    ("age", "old"): {"news": 1.8, "short_video": 0.7, "gaming": 0.4, "health_consult": 2.5, "lottery": 1.8,
                     "weather": 1.5, "dating": 0.2},
    ("occupation", "student"): {"online_course": 4.0, "language_learning": 2.5, "gaming": 1.3, "email": 0.3,
                                "stock_trading": 0.1, "job_search": 0.5},
    ("occupation", "office_worker"): {"email": 1.6, "calendar": 1.6, "stock_trading": 1.4},
    ("occupation", "retired"): {"news": 1.5, "health_consult": 1.8, "email": 0.2, "calendar": 0.5,
                                "alarm_clock": 0.3},
    ("occupation", "freelancer"): {"email": 1.5, "banking": 1.5, "job_search": 1.8},
    ("consumption", "high"): {"online_shopping": 1.6, "travel_booking": 2.2, "ride_hailing": 1.6,
                              "food_delivery": 1.3, "ticket_booking": 1.5},
    ("consumption", "low"): {"online_shopping": 0.6, "travel_booking": 0.4, "ride_hailing": 0.5,
                             "lottery": 1.6},
    ("gender", "female"): {"photo_gallery": 1.3, "camera": 1.2, "sports_scores": 0.6},
    ("gender", "male"): {"sports_scores": 1.7, "gaming": 1.2},
    ("education", "high"): {"reading": 1.4, "news": 1.2, "online_course": 1.3},
}

CITY_CENTRE = (31.2304, 121.4737)  # a fictional city around these coordinates


@dataclass
class SimUser:
    account_id: str
    device_id: str
    age: int
    gender: str
    education: str
    occupation: str
    consumption: str
    prefs: np.ndarray  # (37,) behaviour weights after group and personal effects
    places: dict  # kind -> list of (cell_id, lat, lon)
    wake: float
    sleep: float
    work_start: float
    work_days: tuple[int, ...]
    rate: float
    routines: tuple["Routine", ...] = ()
    follow: np.ndarray | None = None  # (37, 37) P(next event is j | this event is i), rows sum <= 1


@dataclass(frozen=True)
class Routine:
    """A weekly habit: on `days`, around `hour`, the user does `behavior` (an index)."""

    days: tuple[int, ...]
    hour: float
    behavior: int


def chain_matrix(chains) -> np.ndarray:
    """The declared chains as follow-up probabilities: step i -> step i+1 with the chain's rate."""
    follow = np.zeros((len(BEHAVIORS), len(BEHAVIORS)))
    for k, chain in enumerate(chains):
        steps, rate = list(chain["steps"]), float(chain["rate"])
        unknown = [b for b in steps if b not in _BIDX]
        if unknown or len(steps) < 2 or not 0 < rate <= 1:
            raise ValueError(f"simulation.chains[{k}]: needs at least two known behaviours and 0 < rate <= 1 "
                             f"(unknown: {unknown}); behaviours are {', '.join(EVENT_TYPES)}")
        for a, b in zip(steps, steps[1:]):
            follow[_BIDX[a], _BIDX[b]] = max(follow[_BIDX[a], _BIDX[b]], rate)
    over = [BEHAVIORS[i].name for i in np.flatnonzero(follow.sum(axis=1) > 1 + 1e-9)]
    if over:
        raise ValueError(f"simulation.chains: the follow-up rates after {over} sum to more than 1; lower them")
    return follow


def _pick(rng, values, p=None):
    return values[int(rng.choice(len(values), p=p))]


def _weighted(rng, weights: np.ndarray) -> int:
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def _only(names) -> np.ndarray:
    mask = np.zeros(len(BEHAVIORS))
    mask[[_BIDX[n] for n in names]] = 1.0
    return mask


COMMUTE_APPS = _only(["music", "podcast", "news", "reading", "short_video", "social_media", "messaging",
                      "navigation", "language_learning"])
LUNCH_APPS = _only(["food_delivery", "short_video", "social_media", "news", "messaging", "mobile_payment",
                    "web_browsing", "online_shopping"])
WORK_APPS = _only(["email", "calendar", "messaging", "web_browsing", "stock_trading", "banking"])


def _routines(rng, prefs: np.ndarray, occupation: str, wake: float, sleep: float, work_start: float,
              work_days: tuple[int, ...]) -> tuple[Routine, ...]:
    """The user's weekly habits: occupation sets the work-day ones, preferences pick the behaviours."""
    out = []
    commuter = occupation in WORKING or occupation == "student"
    every_day = tuple(range(7))
    if commuter:
        out.append(Routine(work_days, wake + 0.1, _BIDX["alarm_clock"]))
        out.append(Routine(work_days, work_start - 0.45, _weighted(rng, prefs * COMMUTE_APPS)))
        out.append(Routine(work_days, work_start + 8.8, _weighted(rng, prefs * COMMUTE_APPS)))
        out.append(Routine(work_days, 12.2 + rng.normal(0, 0.2), _weighted(rng, prefs * LUNCH_APPS)))
    elif rng.random() < 0.4:
        out.append(Routine(every_day, wake + 0.2, _BIDX["alarm_clock"]))
    if occupation in ("office_worker", "teacher", "freelancer") and work_days:
        out.append(Routine(work_days, work_start + 0.3, _weighted(rng, prefs * WORK_APPS)))
    for _ in range(int(rng.integers(2, 5))):  # evening habits: one weekday, weekends, work days or daily
        pattern = int(rng.integers(4))
        days = ((int(rng.integers(7)),), (5, 6), (0, 1, 2, 3, 4), every_day)[pattern]
        hour = float(rng.uniform(18.5, min(sleep, 24.0) - 0.3))
        out.append(Routine(days, hour, _weighted(rng, prefs * CURVES_BY_HOUR[int(hour) % 24])))
    day = (int(rng.integers(5, 7)),)
    hour = float(rng.uniform(9.0, 11.5))
    out.append(Routine(day, hour, _weighted(rng, prefs * CURVES_BY_HOUR[int(hour)] * LEISURE_AFFINITY)))
    return tuple(out)


def _habits(rng, prefs: np.ndarray, follow: np.ndarray) -> np.ndarray:
    """The declared chains plus two personal follow-up habits among the user's favourite behaviours."""
    follow = follow.copy()
    top = np.argsort(-prefs, kind="stable")[:10]
    for _ in range(2):
        a, b = rng.choice(top, size=2, replace=False)
        rate = float(rng.uniform(0.2, 0.4))
        if follow[a].sum() + rate <= 0.9:
            follow[a, b] += rate
    return follow


def _make_user(rng: np.random.Generator, idx: int, leisure_pool: list, cells: "_CellRegistry",
               follow: np.ndarray) -> SimUser:
    age = int(rng.integers(*AGE_RANGE))
    if age < 23:
        occupation = _pick(rng, OCCUPATION, p=[0.1, 0.7, 0.1, 0.05, 0.0, 0.0, 0.05, 0.0])
    elif age >= 62:
        occupation = _pick(rng, OCCUPATION, p=[0.05, 0.0, 0.05, 0.05, 0.05, 0.05, 0.05, 0.7])
    else:
        occupation = _pick(rng, OCCUPATION, p=[0.35, 0.03, 0.17, 0.12, 0.08, 0.1, 0.15, 0.0])
    education = _pick(rng, EDUCATION, p=[0.25, 0.2, 0.35, 0.15, 0.05])
    gender = _pick(rng, GENDER)
    consumption = _pick(rng, CONSUMPTION, p=[0.3, 0.5, 0.2])

    prefs = np.array([b.weight for b in BEHAVIORS], dtype=float)
    groups = [("gender", gender), ("occupation", occupation), ("consumption", consumption)]
    groups.append(("age", "young" if age < 30 else "old" if age >= 50 else "middle"))
    groups.append(("education", "high" if education in ("master", "doctorate") else "other"))
    for group in groups:
        for name, factor in GROUP_EFFECTS.get(group, {}).items():
            prefs[_BIDX[name]] *= factor
    # Individual deviation from the group: log-normal noise plus two personal favourites
    # and one behaviour the user never shows.
    prefs *= rng.lognormal(0.0, 0.6, size=len(prefs))
    favourites = rng.choice(len(prefs), size=2, replace=False)
    prefs[favourites] *= rng.uniform(2.0, 4.0, size=2)
    prefs[rng.integers(len(prefs))] = 0.0

    home = cells.place(CITY_CENTRE[0] + rng.normal(0, 0.08), CITY_CENTRE[1] + rng.normal(0, 0.08))
    if occupation in WORKING or occupation == "student":
        work = cells.place(CITY_CENTRE[0] + rng.normal(0, 0.04), CITY_CENTRE[1] + rng.normal(0, 0.04))
    elif occupation == "freelancer":
        work = leisure_pool[int(rng.integers(len(leisure_pool)))]  # a favourite cafe
    else:
        work = home
    # Leisure places: popular shared venues, nearer ones more likely.
    dists = np.array([np.hypot(p[1] - home[1], p[2] - home[2]) for p in leisure_pool])
    weights = np.exp(-dists / 0.05)
    chosen = rng.choice(len(leisure_pool), size=int(rng.integers(3, 7)), replace=False, p=weights / weights.sum())
    leisure = [leisure_pool[i] for i in chosen]
    commute = [
        cells.place(home[1] + (work[1] - home[1]) * f + rng.normal(0, 0.004),
                    home[2] + (work[2] - home[2]) * f + rng.normal(0, 0.004))
        for f in np.linspace(0.15, 0.85, int(rng.integers(3, 7)))
    ]
    if occupation == "service_worker":
        work_days = tuple(sorted(rng.choice(7, size=5, replace=False).tolist()))
    elif occupation == "healthcare_worker":
        work_days = tuple(sorted(rng.choice(7, size=4, replace=False).tolist()))
    elif occupation in WORKING or occupation == "student":
        work_days = (0, 1, 2, 3, 4)
    elif occupation == "freelancer":
        work_days = tuple(sorted(rng.choice(5, size=3, replace=False).tolist()))
    else:
        work_days = ()
    youth = 1.25 if age < 30 else 0.8 if age >= 55 else 1.0
    prefs = prefs / prefs.sum()
    wake = float(np.clip(rng.normal(6.9, 0.7), 5.0, 9.5))
    sleep = float(np.clip(rng.normal(23.6, 0.8), 21.5, 25.5))
    work_start = float(np.clip(rng.normal(8.8, 0.6), 7.0, 11.0))
    return SimUser(
        account_id=f"acct-{rng.integers(10**9, 10**10)}",
        device_id=f"86{rng.integers(10**12, 10**13)}",
        age=age,
        gender=gender,
        education=education,
        occupation=occupation,
        consumption=consumption,
        prefs=prefs,
        places={"home": [home], "work": [work], "leisure": leisure, "commute": commute},
        wake=wake,
        sleep=sleep,
        work_start=work_start,
        work_days=work_days,
        rate=float(rng.lognormal(0.0, 0.3)) * youth,
        routines=_routines(rng, prefs, occupation, wake, sleep, work_start, work_days),
        follow=_habits(rng, prefs, follow),
    )


class _CellRegistry:
    """Places get stable raw cell ids, like the base-station ids in real phone logs."""

    def __init__(self, rng):
        self.rng = rng
        self.used: set[str] = set()

    def place(self, lat: float, lon: float):
        while True:
            cell = f"460-{self.rng.integers(1, 99):02d}-{self.rng.integers(10000, 65535)}-{self.rng.integers(1000, 9999)}"
            if cell not in self.used:
                self.used.add(cell)
                return (cell, float(lat), float(lon))


def _place_at(user: SimUser, hour: float, weekday: int, rng) -> str:
    """Where the user is at a given hour of a given weekday."""
    works = weekday in user.work_days
    end = user.work_start + 8.5
    if works:
        if user.work_start - 0.8 <= hour < user.work_start or end <= hour < end + 0.8:
            return "commute"
        if user.work_start <= hour < end:
            return "leisure" if 12 <= hour < 13 and rng.random() < 0.35 else "work"
        if end + 0.8 <= hour < 21.5 and rng.random() < 0.25:
            return "leisure"
        return "home"
    if 10 <= hour < 20 and rng.random() < (0.55 if weekday >= 5 else 0.4):
        return "leisure"
    return "home"


def _activity(user: SimUser, weekend: bool) -> np.ndarray:
    """Density over 5-minute bins of the day (288) of when the phone is used."""
    bins = np.arange(288) / 12.0
    wake = user.wake + (1.0 if weekend else 0.0)
    sleep = user.sleep + (0.5 if weekend else 0.0)
    awake = ((bins >= wake) & (bins < sleep)) | (bins < sleep - 24)
    dens = np.where(awake, 1.0, 0.02)
    dens += 0.8 * np.exp(-0.5 * ((bins - (user.work_start - 0.4)) / 0.4) ** 2) * (not weekend)
    dens += 0.9 * np.exp(-0.5 * ((bins - 21.5) / 1.2) ** 2)
    return dens / dens.sum()


def simulate_users(settings: SimulationSettings) -> list[SimUser]:
    """The deterministic user population for these settings."""
    rng = np.random.default_rng(settings.seed)
    cells = _CellRegistry(rng)
    leisure_pool = [
        cells.place(CITY_CENTRE[0] + rng.normal(0, 0.07), CITY_CENTRE[1] + rng.normal(0, 0.07))
        for _ in range(max(20, settings.n_users // 4))
    ]
    follow = chain_matrix(settings.chains)
    return [_make_user(rng, i, leisure_pool, cells, follow) for i in range(settings.n_users)]


def _fault(row: list[str], kind: str, rng) -> list[list[str]]:
    """Corrupt one log row the way real logs are corrupted."""
    if kind == "duplicate":
        return [row, list(row)]
    if kind == "logged_out":
        return [[row[0], ""] + row[2:]]
    if kind == "truncated_write":
        return [row[: int(rng.integers(2, len(row)))]]
    if kind == "garbled_time":
        return [row[:2] + [row[2][: int(rng.integers(5, 14))] + "?"] + row[3:]]
    if kind == "impossible_date":
        # a firmware clock bug: a calendar day that does not exist
        return [row[:2] + [row[2][:5] + "02-30" + row[2][10:]] + row[3:]]
    if kind == "unknown_event":
        return [row[:-1] + ["system_update"]]
    raise ValueError(kind)


FAULT_KINDS = ("duplicate", "duplicate", "duplicate", "logged_out", "truncated_write", "garbled_time",
               "impossible_date", "unknown_event")


def _user_day(user: SimUser, date: dt.date, act: np.ndarray, settings: SimulationSettings, rng) -> list[tuple]:
    """One day of one user: (second of day, behaviour index, place kind, spot) in time order.

    The day is a sequence of sessions: the routines due today (each with probability
    `routine_keep`, at a jittered time) and free sessions at times drawn from the user's activity
    curve, whose first behaviour depends on the hour, the place, the weekday and the user's
    preferences. Each event may be followed, a few minutes later, by a follow-up (the declared
    chains and the user's own habits), so the next event depends on the previous one."""
    weekday = date.weekday()
    weekend = weekday >= 5
    due = [r for r in user.routines if weekday in r.days and rng.random() < settings.routine_keep]
    chain_share = float(user.prefs @ user.follow.sum(axis=1))
    sessions = settings.events_per_day * user.rate * (0.9 if weekend else 1.0) * (1.0 - chain_share)
    n_free = rng.poisson(max(sessions - len(due), 0.3))
    starts = [(r.hour * 3600 + rng.normal(0, settings.routine_jitter_minutes * 60), r.behavior) for r in due]
    seconds = rng.choice(288, size=n_free, p=act) * 300 + rng.integers(0, 300, size=n_free)
    starts += [(float(sec), -1) for sec in seconds]
    starts.sort(key=lambda x: (x[0], x[1]))
    events, free_after = [], 0.0
    for sec, behavior in starts:
        sec = max(sec, free_after)
        if not 0 <= sec < 86400:
            continue
        hour = sec / 3600.0
        place = _place_at(user, hour, weekday, rng)
        spot = user.places[place][int(rng.integers(len(user.places[place])))]
        if behavior < 0:
            w = user.prefs * CURVES_BY_HOUR[int(hour)] * PLACE_AFFINITY[place]
            behavior = _weighted(rng, w * WEEKEND_FACTOR if weekend else w)
        events.append((int(sec), behavior, place, spot))
        while True:  # follow-ups: the declared chains and the user's habits
            nxt = int(np.searchsorted(np.cumsum(user.follow[behavior]), rng.random(), side="right"))
            sec += int(rng.integers(30, 300))
            if nxt >= len(BEHAVIORS) or sec >= 86400:
                break
            behavior = nxt
            events.append((int(sec), behavior, place, spot))
        free_after = sec + 60.0
    return events


def simulate_raw_logs(settings: SimulationSettings | dict, log_path: str | Path, accounts_path: str | Path) -> dict:
    """Rule simulate_raw_logs: write the raw phone log (gzipped CSV) and the account table; return counts."""
    settings = as_settings(SimulationSettings, settings)
    users = simulate_users(settings)
    rng = np.random.default_rng(settings.seed + 1)
    start = dt.date.fromisoformat(settings.start_date)
    n_days = settings.weeks * 7
    counts = {"events": 0, "rows_written": 0, "faults": {k: 0 for k in sorted(set(FAULT_KINDS))}}
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 and no embedded file name: reruns give byte-identical files
    with open(log_path, "wb") as raw_fh, gzip.GzipFile(filename="", mode="wb", fileobj=raw_fh, mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(LOG_COLUMNS)
        for user in tqdm(users, desc="simulate users", unit="user", mininterval=2.0):
            act = {False: _activity(user, False), True: _activity(user, True)}
            for day in range(n_days):
                date = start + dt.timedelta(days=day)
                for sec, behavior, _, spot in _user_day(user, date, act[date.weekday() >= 5], settings, rng):
                    ts = dt.datetime.combine(date, dt.time()) + dt.timedelta(seconds=sec)
                    row = [
                        user.device_id,
                        user.account_id,
                        ts.strftime("%Y-%m-%d %H:%M:%S"),
                        f"{spot[1] + rng.normal(0, 0.0003):.6f}",
                        f"{spot[2] + rng.normal(0, 0.0003):.6f}",
                        spot[0],
                        BEHAVIORS[behavior].name,
                    ]
                    counts["events"] += 1
                    rows = [row]
                    if rng.random() < settings.fault_rate:
                        kind = FAULT_KINDS[int(rng.integers(len(FAULT_KINDS)))]
                        counts["faults"][kind] += 1
                        rows = _fault(row, kind, rng)
                    writer.writerows(rows)
                    counts["rows_written"] += len(rows)
    with open(accounts_path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(ACCOUNT_COLUMNS)
        for u in users:
            writer.writerow([u.account_id, u.device_id, u.age, u.gender, u.education, u.occupation, u.consumption])
    counts["users"] = len(users)
    log.info("simulated %d users, %d events, %d log rows", len(users), counts["events"], counts["rows_written"])
    return counts
