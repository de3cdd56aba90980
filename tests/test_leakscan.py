"""The leak scanner itself: it must find planted raw ids and coordinates, and pass clean files."""

import json

import pandas as pd

from behaviorflow.reporting.leakscan import RawSecrets, scan_file, secrets_from_csv


def secrets():
    return RawSecrets(ids={"acct-1234567890", "860000000000001", "Park#745", "13"}, coords={"35.6812", "139.7671"})


def test_finds_planted_leaks(tmp_path):
    s = secrets()
    pd.DataFrame({"user_id": ["u1", "13"], "note": ["ok", "seen at Park#745"]}).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"x": [1.5, 35.68121]}).to_parquet(tmp_path / "b.parquet")
    (tmp_path / "c.json").write_text(json.dumps({"device": "860000000000001", "n": 13}))
    (tmp_path / "d.log").write_text("INFO processing acct-1234567890 at 139.76712\n")
    (tmp_path / "e.csv").write_text("user_id,count\n13,5\n")
    found = {p: scan_file(tmp_path / p, s) for p in ("a.parquet", "b.parquet", "c.json", "d.log", "e.csv")}
    assert any("'13' in column user_id" in f for f in found["a.parquet"])
    assert any("Park#745" in f for f in found["a.parquet"])
    assert any("coordinate" in f for f in found["b.parquet"])
    assert any("860000000000001" in f for f in found["c.json"]) and len(found["c.json"]) == 1  # "n": 13 is a count
    assert len(found["d.log"]) == 2
    assert any("'13' in column user_id" in f for f in found["e.csv"])


def test_clean_files_pass(tmp_path):
    s = secrets()
    pd.DataFrame({"user_id": ["u3f2a"], "location": ["z1"], "n": [13], "share": [0.35]}).to_parquet(tmp_path / "a.parquet")
    (tmp_path / "b.json").write_text(json.dumps({"events": 13, "k": 5, "entropy": 3.5812}))
    assert scan_file(tmp_path / "a.parquet", s) == [] and scan_file(tmp_path / "b.json", s) == []


def test_secrets_from_raw_csv(tmp_path):
    (tmp_path / "raw.csv").write_text("uid,venue,lat\n13,Park#745,35.681234\n,Cafe#1,x\n")
    s = secrets_from_csv(tmp_path / "raw.csv", ["uid", "venue"], ["lat"])
    assert s.ids == {"13", "Park#745", "Cafe#1"} and s.coords == {"35.6812"}
    assert s.long_ids == {"Park#745", "Cafe#1"}
