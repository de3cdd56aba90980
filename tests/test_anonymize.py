"""Anonymisation: keyed rotating pseudonyms, zones, floored time, k-anonymous attributes, key handling."""

import json

import numpy as np
import pandas as pd
import pytest

from behaviorflow.config import AnonymizationSettings
from behaviorflow.data.anonymize import (
    FIXED_SIMULATED_KEY,
    SUPPRESSED,
    AnonymizationError,
    anonymize,
    k_anonymize,
    pseudonymize,
    resolve_key,
)

KEY_ENV = "BF_TEST_KEY"
SECRET = "s3cret-key-for-tests-0123456789"


def interim_events(path, rows):
    df = pd.DataFrame(rows, columns=["user_id", "ts", "location", "behavior"])
    df["ts"] = pd.to_datetime(df["ts"])
    df["weekday"] = df["ts"].dt.day_of_week.astype("int8")
    df["slot"] = (df["ts"].dt.hour * 60 + df["ts"].dt.minute).astype("int16")
    df["lat"], df["lon"], df["category"] = 35.1234567, 139.7654321, "outdoors"
    df.to_parquet(path)


def run(tmp_path, rows, settings, fmt="checkins_csv", attrs=None):
    interim_events(tmp_path / "ev.parquet", rows)
    (attrs if attrs is not None else pd.DataFrame({"user_id": pd.Series([], dtype=str)})).to_parquet(tmp_path / "a.parquet")
    report = anonymize(tmp_path / "ev.parquet", tmp_path / "a.parquet", tmp_path / "out.parquet",
                               tmp_path / "pin.parquet", tmp_path / "rep.json", settings, fmt)
    return report, pd.read_parquet(tmp_path / "out.parquet"), pd.read_parquet(tmp_path / "pin.parquet")


def test_pseudonyms_are_keyed_and_rotate():
    a = pseudonymize(b"key-one-0123456789", "user42", 0)
    assert a == pseudonymize(b"key-one-0123456789", "user42", 0)
    assert a != pseudonymize(b"key-two-0123456789", "user42", 0)
    assert a != pseudonymize(b"key-one-0123456789", "user42", 1)
    assert a.startswith("u") and len(a) == 17 and "user42" not in a


def test_key_comes_from_environment_and_fixed_key_only_for_simulated(monkeypatch):
    settings = AnonymizationSettings(key_env=KEY_ENV, allow_fixed_key=True)
    monkeypatch.delenv(KEY_ENV, raising=False)
    key, source = resolve_key(settings, "simulated")
    assert key == FIXED_SIMULATED_KEY and "SIMULATED" in source
    with pytest.raises(AnonymizationError, match=f"export {KEY_ENV}"):
        resolve_key(settings, "checkins_csv")
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(AnonymizationError, match="at least 16"):
        resolve_key(settings, "checkins_csv")
    monkeypatch.setenv(KEY_ENV, SECRET)
    key, source = resolve_key(settings, "checkins_csv")
    assert key == SECRET.encode() and source == f"environment variable {KEY_ENV}" and SECRET not in source
    # a key exported for real data does not change simulated results that use the fixed key
    assert resolve_key(settings, "simulated")[0] == FIXED_SIMULATED_KEY
    own = AnonymizationSettings(key_env=KEY_ENV, allow_fixed_key=False)
    assert resolve_key(own, "simulated")[0] == SECRET.encode()


def test_zones_time_flooring_and_rotation(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    rows = []
    # user A: 12 distinct venues with decreasing visit counts in January, one venue in April
    for i in range(12):
        rows += [("A", f"2019-01-{1 + j:02d} 10:{17 + i:02d}:41", f"venue{i}", "x") for j in range(12 - i)]
    rows.append(("A", "2019-04-02 23:59:59", "venue0", "y"))
    rows.append(("B", "2019-01-05 07:44:00", "venue5", "x"))
    settings = AnonymizationSettings(key_env=KEY_ENV, rotation_months=3, top_zones=10, slot_minutes=30)
    report, out, pin = run(tmp_path, rows, settings)
    assert len(out) == len(rows) and report["events_in"] == report["events_out"] == len(rows)
    assert set(out.columns) == {"user_id", "ts", "weekday", "slot", "location", "behavior", "category", "seq"}
    # within a user, `seq` is the order of the exact times, which the floored `ts` loses
    for _, g in out.groupby("user_id"):
        assert g["seq"].tolist() == list(range(len(g)))
    key = SECRET.encode()
    a0, a1, b0 = pseudonymize(key, "A", 0), pseudonymize(key, "A", 1), pseudonymize(key, "B", 0)
    assert set(out["user_id"]) == {a0, a1, b0}  # April starts the second 3-month epoch
    jan = out[out.user_id == a0]
    counts = jan["location"].value_counts()
    assert counts["z1"] == 12 and counts["z10"] == 3 and counts["z_other"] == 2 + 1  # venue10 (2) + venue11 (1)
    assert (out["ts"].dt.minute % 30 == 0).all() and (out["ts"].dt.second == 0).all()
    assert out.loc[out.user_id == a1, "ts"].astype(str).tolist() == ["2019-04-02 23:30:00"]
    assert out.loc[out.user_id == b0, "location"].tolist() == ["z1"]
    assert report["pseudonymisation"]["epochs"] == 2 and report["pseudonymisation"]["raw_users"] == 2
    text = (tmp_path / "rep.json").read_text()
    assert SECRET not in text and "venue" not in text


def test_rotation_off_keeps_one_pseudonym(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    rows = [("A", "2019-01-01 10:00:00", "v", "x"), ("A", "2019-12-01 10:00:00", "v", "x")]
    _, out, _ = run(tmp_path, rows, AnonymizationSettings(key_env=KEY_ENV, rotation_months=0))
    assert out["user_id"].nunique() == 1


@pytest.mark.parametrize("k", [2, 5, 10])
def test_k_anonymity_holds_for_every_released_combination(k):
    rng = np.random.default_rng(k)
    n = 300
    attrs = pd.DataFrame({
        "person": [f"p{i}" for i in range(n)],
        "age": rng.integers(18, 80, n),
        "education": rng.choice(["high_school", "vocational", "bachelor", "master", "doctorate"], n),
        "gender": rng.choice(["female", "male"], n),
        "consumption": rng.choice(["low", "medium", "high"], n),
        "occupation": rng.choice(["student", "office_worker", "retired", "teacher"], n),
    })
    quasi = ["age", "education", "gender", "consumption", "occupation"]
    released, summary = k_anonymize(attrs, quasi, k, max_suppression=0.05)
    assert len(released) == n
    kept = released[(released[quasi] != SUPPRESSED).any(axis=1)]
    sizes = kept.groupby(quasi)["person"].nunique()
    assert sizes.min() >= k
    assert summary["k_reached"] == sizes.min()
    assert summary["suppressed_persons"] <= 0.05 * n
    assert not released["age"].astype(str).str.fullmatch(r"\d+").any()  # exact ages never released


def test_k_anonymity_summary_in_report(tmp_path, monkeypatch):
    monkeypatch.delenv("BEHAVIORFLOW_PSEUDONYM_KEY", raising=False)
    users = [f"acct{i}" for i in range(12)]
    rows = [(u, "2024-03-04 08:00:00", "cell", "x") for u in users]
    attrs = pd.DataFrame({"user_id": users, "age": [20 + i for i in range(12)], "gender": ["f", "m"] * 6,
                          "education": ["bachelor"] * 12, "consumption": ["low"] * 12, "occupation": ["student"] * 12,
                          "phone_model": ["x"] * 12})
    report, out, pin = run(tmp_path, rows, AnonymizationSettings(allow_fixed_key=True, k=3), fmt="simulated", attrs=attrs)
    a = report["attributes"]
    assert a["k"] == 3 and a["k_reached"] >= 3 and a["persons"] == 12
    assert "phone_model" not in pin.columns and a["dropped_non_quasi_identifier_columns"] == ["phone_model"]
    assert set(pin["user_id"]) == set(out["user_id"])
    combos = pin[(pin[["age", "gender"]] != SUPPRESSED).any(axis=1)].groupby(["age", "gender", "education"]).size()
    assert combos.min() >= 3
    assert json.loads((tmp_path / "rep.json").read_text())["pseudonymisation"]["key_source"].startswith("FIXED")
