"""The population simulator: deterministic, long-tailed, routines and personal deviations."""

import gzip
import hashlib

import numpy as np
import pandas as pd
import pytest

from behaviorflow.config import SimulationSettings
from behaviorflow.data.layouts import EVENT_CATEGORIES
from behaviorflow.data.simulate import (
    BEHAVIORS,
    LOG_COLUMNS,
    simulate_raw_logs,
    simulate_users,
)
from behaviorflow.data.structure import structure_stats


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    settings = SimulationSettings(n_users=80, weeks=3, seed=21)
    counts = simulate_raw_logs(settings, out / "log.csv.gz", out / "accounts.csv")
    log = pd.read_csv(out / "log.csv.gz", dtype=str, on_bad_lines="skip")
    return out, settings, counts, log


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes_other_seed_differs(sim, tmp_path):
    out, settings, _, _ = sim
    simulate_raw_logs(settings, tmp_path / "a.csv.gz", tmp_path / "a.csv")
    assert _sha(tmp_path / "a.csv.gz") == _sha(out / "log.csv.gz")
    assert _sha(tmp_path / "a.csv") == _sha(out / "accounts.csv")
    other = SimulationSettings(n_users=80, weeks=3, seed=22)
    simulate_raw_logs(other, tmp_path / "b.csv.gz", tmp_path / "b.csv")
    assert _sha(tmp_path / "b.csv.gz") != _sha(out / "log.csv.gz")


def test_raw_log_looks_like_a_phone_log(sim):
    out, settings, counts, log = sim
    assert tuple(log.columns) == LOG_COLUMNS
    with gzip.open(out / "log.csv.gz", "rt") as fh:
        assert fh.readline().strip() == ",".join(LOG_COLUMNS)
    good = log.dropna()
    assert good["event_time"].str.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$").mean() > 0.99
    assert good["device_id"].str.match(r"^86\d{13}$").all()
    lat = pd.to_numeric(good["latitude"], errors="coerce")
    assert lat.between(30.5, 32.0).mean() > 0.99
    assert counts["users"] == 80
    assert sum(counts["faults"].values()) > 0  # real logs carry faults; ingestion must handle them
    accounts = pd.read_csv(out / "accounts.csv")
    assert set(accounts.columns) >= {"age", "education", "gender", "consumption", "occupation"}
    assert accounts["account_id"].nunique() == 80


def test_37_behaviours_long_tailed_in_ten_categories(sim):
    _, _, _, log = sim
    vocab = {b.name for b in BEHAVIORS}
    assert len(vocab) == 37 and set(EVENT_CATEGORIES) == vocab
    assert 8 <= len(set(EVENT_CATEGORIES.values())) <= 10
    shares = log.loc[log["event"].isin(vocab), "event"].value_counts(normalize=True)
    # BUA's Honor data: about 4-5 head (> 5 %), 13 medium, 19 tail (< 1 %)
    assert 3 <= (shares > 0.05).sum() <= 6
    assert 10 <= ((shares >= 0.01) & (shares <= 0.05)).sum() <= 16
    assert 15 <= (shares < 0.01).sum() <= 22
    assert shares.iloc[0] < 0.3  # not degenerate


def _events(log):
    good = log.dropna().copy()
    good["ts"] = pd.to_datetime(good["event_time"], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    good = good[good["ts"].notna() & good["event"].isin(EVENT_CATEGORIES)]
    return good.sort_values(["account_id", "ts"], kind="stable")


def _next_share(events, first, then):
    same = events["account_id"].to_numpy()[1:] == events["account_id"].to_numpy()[:-1]
    prev, nxt = events["event"].to_numpy()[:-1][same], events["event"].to_numpy()[1:][same]
    return (nxt[prev == first] == then).mean(), (prev == first).sum()


@pytest.mark.parametrize("rate", [0.2, 0.7])
def test_a_declared_chain_shows_up_at_its_rate(tmp_path, rate):
    chains = [{"steps": ["alarm_clock", "weather", "news"], "rate": rate}]
    settings = SimulationSettings(n_users=60, weeks=3, seed=4, chains=chains, fault_rate=0.0)
    simulate_raw_logs(settings, tmp_path / "log.csv.gz", tmp_path / "acc.csv")
    events = _events(pd.read_csv(tmp_path / "log.csv.gz", dtype=str))
    for first, then in (("alarm_clock", "weather"), ("weather", "news")):
        share, n = _next_share(events, first, then)
        assert n > 150
        # the chain's rate, plus what a user's own habits and chance add (a few points at most)
        assert rate - 0.05 < share < rate + 0.12, (first, then, share)
    # a transition no chain declares stays at chance
    share, _ = _next_share(events, "alarm_clock", "news")
    assert share < 0.08


def test_undeclared_behaviour_in_a_chain_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown: \\['coffee'\\]"):
        simulate_users(SimulationSettings(n_users=10, chains=[{"steps": ["alarm_clock", "coffee"], "rate": 0.5}]))
    with pytest.raises(ValueError, match="sum to more than 1"):
        simulate_users(SimulationSettings(n_users=10, chains=[{"steps": ["news", "weather"], "rate": 0.7},
                                                              {"steps": ["news", "music"], "rate": 0.6}]))


def test_routines_recur_week_to_week(sim):
    out, settings, _, log = sim
    events = _events(log).rename(columns={"account_id": "user_id", "event": "behavior"})
    events["weekday"] = events["ts"].dt.day_of_week
    events["slot"] = events["ts"].dt.hour * 60 + events["ts"].dt.minute // 30 * 30
    stats = structure_stats(events)
    # a user's (weekday, slot, behaviour) habits come back the next week far more often than
    # another user's do: routines are personal, not only a shared daily rhythm
    assert stats["weekly_repeat_rate"] > 3 * stats["weekly_repeat_rate_other_user"]
    assert stats["weekly_repeat_rate"] > 0.12
    # and each user's own routines: on its days, the behaviour happens within 40 minutes of its
    # time in most weeks
    users = {u.account_id: u for u in simulate_users(settings)}
    hits = []
    for uid, g in events.groupby("user_id"):
        hour = g["ts"].dt.hour + g["ts"].dt.minute / 60
        for r in users[uid].routines:
            for day in range(7 * settings.weeks):
                date = pd.Timestamp(settings.start_date) + pd.Timedelta(days=day)
                if date.weekday() in r.days:
                    on_day = (g["ts"].dt.normalize() == date) & (abs(hour - r.hour) < 0.67)
                    hits.append(bool((g.loc[on_day, "behavior"] == BEHAVIORS[r.behavior].name).any()))
    assert len(hits) > 1000 and np.mean(hits) > settings.routine_keep - 0.1


def test_occupation_sets_the_work_rhythm(sim):
    _, _, _, log = sim
    events = _events(log)
    accounts = pd.read_csv(sim[0] / "accounts.csv").set_index("account_id")
    events["occupation"] = events["account_id"].map(accounts["occupation"])
    morning = events["ts"].dt.hour.between(5, 9)
    weekday = events["ts"].dt.day_of_week < 5
    alarm = events["event"] == "alarm_clock"
    workers = events["occupation"].isin(["office_worker", "teacher", "student"])
    # Monday-to-Friday workers set alarms on work-day mornings, much less at weekends
    assert alarm[morning & weekday & workers].mean() > 2 * alarm[morning & ~weekday & workers].mean()
    ten_to_four = events["ts"].dt.hour.between(10, 16)
    email = events["event"] == "email"
    assert email[weekday & ten_to_four].mean() > email[~weekday & ten_to_four].mean()


def test_personal_preferences_deviate_from_group():
    users = simulate_users(SimulationSettings(n_users=150, seed=5))
    groups = {}
    for u in users:
        groups.setdefault((u.occupation, u.consumption, u.gender), []).append(u.prefs)
    spreads = [np.abs(np.array(p) - np.mean(p, axis=0)).sum(axis=1).mean() for p in groups.values() if len(p) >= 3]
    assert spreads and min(spreads) > 0.2  # L1 distance of a user from the group mean
