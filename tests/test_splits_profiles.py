"""Splits (8:1:1 by seed, chronological support/query) and profiles built only from visible events."""

import numpy as np
import pandas as pd
import pytest

from behaviorflow.config import SplitSettings
from behaviorflow.data.events import format_event, parse_event
from behaviorflow.data.profiles import build_profiles, entropy_bits
from behaviorflow.data.splits import assign_users, split_users


def processed(path, n_users=50, per_user=80, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = per_user if u % 10 else 15  # every tenth user is too short
        start = pd.Timestamp("2024-03-04")
        for i in range(n):
            ts = start + pd.Timedelta(minutes=int(60 * i + rng.integers(0, 30)))
            rows.append((f"u{u:03d}", ts, ts.weekday(), ts.hour * 60 // 30 * 30, f"z{1 + i % 3}", f"b{i % 4}"))
    df = pd.DataFrame(rows, columns=["user_id", "ts", "weekday", "slot", "location", "behavior"])
    df["category"] = df["behavior"]
    df["seq"] = df.groupby("user_id").cumcount().astype("int32")
    df.to_parquet(path)
    return df


def test_assignment_ratios_and_seed():
    users = [f"u{i}" for i in range(200)]
    roles = assign_users(users, SplitSettings(seed=3))
    assert pd.Series(roles).value_counts().to_dict() == {"train": 160, "val": 20, "test": 20}
    assert roles == assign_users(list(reversed(users)), SplitSettings(seed=3))
    assert roles != assign_users(users, SplitSettings(seed=4))


def test_split_parts_are_chronological_and_complete(tmp_path):
    src = processed(tmp_path / "ev.parquet")
    settings = SplitSettings(support_events=30, min_query_events=10, min_user_events=20, seed=1)
    report = split_users(tmp_path / "ev.parquet", tmp_path / "split.parquet", tmp_path / "r.json", settings)
    split = pd.read_parquet(tmp_path / "split.parquet")
    assert len(split) == len(src) == report["events"]
    assert report["users_by_split"]["excluded"] == 5
    assert set(split.loc[split.split == "excluded", "part"]) == {"excluded"}
    for uid, g in split[split.split.isin(["val", "test"])].groupby("user_id"):
        sup, qry = g[g.part == "support"], g[g.part == "query"]
        assert len(sup) == 30 and len(qry) == len(g) - 30
        assert sup["ts"].max() <= qry["ts"].min()
    assert set(split.loc[split.split == "train", "part"]) == {"train"}


def test_support_shrinks_to_leave_query_events(tmp_path):
    processed(tmp_path / "ev.parquet", n_users=20, per_user=35)
    settings = SplitSettings(support_events=100, min_query_events=10, min_user_events=20, seed=1)
    split_users(tmp_path / "ev.parquet", tmp_path / "split.parquet", tmp_path / "r.json", settings)
    split = pd.read_parquet(tmp_path / "split.parquet")
    parts = split[split.split.isin(["val", "test"])].groupby(["user_id", "part"]).size().unstack()
    assert (parts["support"] == 25).all() and (parts["query"] == 10).all()


def test_entropy_bits_hand_computed():
    assert entropy_bits([5, 5]) == pytest.approx(1.0)
    assert entropy_bits([1, 1, 1, 1]) == pytest.approx(2.0)
    assert entropy_bits([7]) == 0.0


def test_profiles_traits_and_no_query_leak(tmp_path):
    rows = []
    day = pd.Timestamp("2024-03-04")  # Monday
    for d in range(7):
        date = day + pd.Timedelta(days=d)
        rows.append(("t1", date + pd.Timedelta(hours=23), "z2", "sleep_app"))  # night at z2 -> home
        for h in (10, 11, 14):
            rows.append(("t1", date + pd.Timedelta(hours=h), "z1" if d < 5 else "z2", "email" if d < 5 else "music"))
    df = pd.DataFrame(rows, columns=["user_id", "ts", "location", "behavior"])
    df["weekday"] = df.ts.dt.day_of_week
    df["slot"] = df.ts.dt.hour * 60
    df["split"], df["part"] = "test", "support"
    query = df.copy()
    query["ts"] += pd.Timedelta(days=7)
    query["part"] = "query"
    query["behavior"] = "gaming"  # if query events leaked, gaming would top the profile
    split = pd.concat([df, query]).sort_values("ts")
    split["event_idx"] = range(len(split))
    split.to_parquet(tmp_path / "split.parquet")
    pd.DataFrame({"user_id": ["t1"], "epoch": [0], "age": ["<40"], "gender": ["*"]}).to_parquet(tmp_path / "pin.parquet")
    prof = build_profiles(tmp_path / "split.parquet", tmp_path / "pin.parquet", tmp_path / "p.parquet").iloc[0]
    assert prof["n_events"] == 28 and prof["days_observed"] == 7
    assert prof["home_zone"] == "z2" and prof["work_zone"] == "z1"
    assert list(prof["top_behaviors"]) == ["email", "sleep_app", "music"]
    assert list(prof["top_shares"]) == pytest.approx([15 / 28, 7 / 28, 6 / 28], abs=1e-4)
    assert prof["weekday_events_per_day"] == 4.0 and prof["weekend_events_per_day"] == 4.0
    assert prof["behavior_entropy"] == pytest.approx(entropy_bits([15, 7, 6]), abs=1e-4)
    assert "gaming" not in prof["summary"] and "age <40" in prof["summary"] and "gender" not in prof["summary"]
    assert "Home zone z2; work zone z1." in prof["summary"]


def test_tied_home_and_work_zones_are_broken_by_zone_name_on_every_run(tmp_path):
    """Users whose nights and work hours split evenly between two zones: the lower zone name wins,
    whatever order the rows come in and however many threads aggregate them."""
    rows = []
    day = pd.Timestamp("2024-03-04")  # Monday
    for u in range(300):
        for zone in ("z7", "z3"):  # the later name first in the file
            rows.append((f"u{u:03d}", day + pd.Timedelta(hours=23), zone, "music"))
            rows.append((f"u{u:03d}", day + pd.Timedelta(days=1, hours=23), zone, "music"))
        for zone in ("z9", "z5"):
            rows.append((f"u{u:03d}", day + pd.Timedelta(hours=10), zone, "email"))
    df = pd.DataFrame(rows, columns=["user_id", "ts", "location", "behavior"])
    df["weekday"], df["slot"] = df.ts.dt.day_of_week, df.ts.dt.hour * 60
    df["split"], df["part"], df["event_idx"] = "train", "train", range(len(df))
    df.to_parquet(tmp_path / "split.parquet")
    pd.DataFrame({"user_id": sorted(set(df.user_id)), "epoch": 0}).to_parquet(tmp_path / "pin.parquet")
    runs = [build_profiles(tmp_path / "split.parquet", tmp_path / "pin.parquet", tmp_path / f"p{i}.parquet")
            for i in range(3)]
    for prof in runs:
        assert set(prof["home_zone"]) == {"z3"} and set(prof["work_zone"]) == {"z5"}
    assert (tmp_path / "p0.parquet").read_bytes() == (tmp_path / "p2.parquet").read_bytes()


def test_event_text_form_round_trip():
    line = format_event(0, 8 * 60 + 30, "z1", "messaging")
    assert line == "Monday, 08:30, z1, messaging"
    assert parse_event(line) == (0, 510, "z1", "messaging")
    for bad in ("Funday, 08:30, z1, x", "Monday, 25:00, z1, x", "Monday, 08:30, z1", "Monday, 8h, z1, x"):
        with pytest.raises(ValueError):
            parse_event(bad)
