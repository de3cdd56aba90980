"""The population simulator: deterministic, long-tailed, routines and personal deviations."""

import gzip
import hashlib

import numpy as np
import pandas as pd
import pytest

from behaviorflow.config import SimulationSettings
from behaviorflow.data.simulate import (
    BEHAVIORS,
    LOG_COLUMNS,
    simulate_raw_logs,
    simulate_users,
)


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


def test_37_behaviours_long_tailed(sim):
    _, _, _, log = sim
    vocab = {b.name for b in BEHAVIORS}
    assert len(vocab) == 37
    shares = log.loc[log["event"].isin(vocab), "event"].value_counts(normalize=True)
    assert (shares > 0.05).sum() >= 3
    assert ((shares >= 0.01) & (shares <= 0.05)).sum() >= 8
    assert (shares < 0.01).sum() >= 12
    assert shares.iloc[0] < 0.4  # not degenerate


def test_weekday_and_weekend_routines_differ(sim):
    _, _, _, log = sim
    good = log.dropna().copy()
    ts = pd.to_datetime(good["event_time"], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    good = good[ts.notna()]
    ts = ts[ts.notna()]
    weekend = ts.dt.day_of_week >= 5
    early = ts.dt.hour.between(7, 9)
    # commuting makes weekday mornings busier in navigation/music than weekend mornings
    commute = good["event"].isin(["navigation", "music", "podcast", "news"])
    assert (commute & early & ~weekend).sum() / (early & ~weekend).sum() > \
        (commute & early & weekend).sum() / max((early & weekend).sum(), 1)
    assert good.loc[~weekend & ts.dt.hour.between(10, 16), "event"].eq("email").mean() > \
        good.loc[weekend & ts.dt.hour.between(10, 16), "event"].eq("email").mean()


def test_personal_preferences_deviate_from_group():
    users = simulate_users(SimulationSettings(n_users=150, seed=5))
    groups = {}
    for u in users:
        groups.setdefault((u.occupation, u.consumption, u.gender), []).append(u.prefs)
    spreads = [np.abs(np.array(p) - np.mean(p, axis=0)).sum(axis=1).mean() for p in groups.values() if len(p) >= 3]
    assert spreads and min(spreads) > 0.2  # L1 distance of a user from the group mean
