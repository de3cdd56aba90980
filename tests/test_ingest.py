"""Ingestion: formats, the line-accounting invariant, and a corpus of malformed logs."""

import gzip
import json

import pandas as pd
import pytest

from behaviorflow.config import DatasetSettings
from behaviorflow.data.ingest import IngestError, ingest

HEADER = "user_id,timestamp,venue_id,venue_category,top_category,intent,split\n"
GOOD = [
    "1,2019-01-04 12:10:00,Park#1,Park,Outdoors,outdoors,train",
    "1,2019-01-04 12:30:00,Cafe#2,Cafe,Food,dining,train",
    "2,2019-01-05 09:00:00,Office#3,Office,Work,work-related,test",
]
INTENTS = ("Other", "shopping", "dining", "outdoors", "work-related")


def checkins(**kw) -> DatasetSettings:
    return DatasetSettings(name="t", format="checkins_csv", vocabulary=INTENTS, **kw)


def run(ds, path, tmp_path, attributes=None):
    out = tmp_path / "out"
    report = ingest(ds, path, out / "events.parquet", out / "rejects.csv", out / "report.json",
                            out / "attrs.parquet", attributes_path=attributes)
    rejects = pd.read_csv(out / "rejects.csv", dtype={"raw_line": str})
    events = pd.read_parquet(out / "events.parquet")
    return report, rejects, events


def assert_balanced(report):
    assert report["accepted"] + report["rejected"] + report["deduplicated"] == report["data_lines_read"]


def test_checkins_good_file(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text(HEADER + "\n".join(GOOD) + "\n")
    report, rejects, events = run(checkins(), p, tmp_path)
    assert report["accepted"] == 3 and report["rejected"] == 0 and report["users"] == 2
    assert list(events.columns) == ["user_id", "ts", "weekday", "slot", "location", "behavior", "lat", "lon", "category",
                                  "copies"]
    first = events.iloc[0]
    assert first["user_id"] == "1" and first["behavior"] == "outdoors" and first["location"] == "Park#1"
    assert first["weekday"] == 4 and first["slot"] == 12 * 60  # Friday, 12:10 floored to 12:00 (30-min slots)
    assert first["category"] == "leisure"  # the intent's group (layouts.INTENT_CATEGORIES)
    assert report["taxonomy"]["labels"] == {"dining": "errands", "outdoors": "leisure",
                                            "work-related": "obligations"}
    assert_balanced(report)


# (name, file body after the header, expected reason, expected line)
REJECT_CASES = [
    ("unparseable timestamp", "1,yesterday noon,Park#1,Park,Outdoors,outdoors,train", "unparseable_timestamp", 3),
    ("impossible date", "1,2019-02-30 10:00:00,Park#1,Park,Outdoors,outdoors,train", "impossible_date", 3),
    ("impossible hour", "1,2019-02-03 25:00:00,Park#1,Park,Outdoors,outdoors,train", "impossible_date", 3),
    ("empty user id", ",2019-01-04 12:10:00,Park#1,Park,Outdoors,outdoors,train", "empty_user_id", 3),
    ("label outside vocabulary", "1,2019-01-04 12:10:00,Park#1,Park,Outdoors,picnic,train", "label_not_in_vocabulary", 3),
    ("empty label", "1,2019-01-04 12:10:00,Park#1,Park,Outdoors,,train", "empty_label", 3),
    ("empty location", "1,2019-01-04 12:10:00,,Park,Outdoors,outdoors,train", "empty_location", 3),
    ("too many columns", "1,2019-01-04 12:10:00,Park#1,Park,Outdoors,outdoors,train,extra", "malformed_row", 3),
    ("truncated line", "1,2019-01-04 12:10:00,Park#1", "malformed_row", 3),
]


def test_unterminated_quote_rejects_every_line_it_swallows(tmp_path):
    p = tmp_path / "c.csv"
    bad = '1,"2019-01-04 12:10:00,Park#1,Park,Outdoors,outdoors,train'
    p.write_text(HEADER + GOOD[0] + "\n" + bad + "\n" + GOOD[2] + "\n")
    report, rejects, events = run(checkins(), p, tmp_path)
    assert rejects["line"].tolist() == [3, 4]
    assert rejects["reason"].tolist() == ["malformed_row", "malformed_row"]
    assert rejects["raw_line"].tolist() == [bad, GOOD[2]]
    assert report["accepted"] == 1
    assert_balanced(report)


@pytest.mark.parametrize("name,bad,reason,line", REJECT_CASES, ids=[c[0] for c in REJECT_CASES])
def test_malformed_lines_become_reject_rows(tmp_path, name, bad, reason, line):
    p = tmp_path / "c.csv"
    p.write_text(HEADER + GOOD[0] + "\n" + bad + "\n" + GOOD[2] + "\n")
    report, rejects, events = run(checkins(), p, tmp_path)
    assert len(rejects) == 1, rejects
    row = rejects.iloc[0]
    assert row["reason"] == reason
    assert row["line"] == line
    assert row["file"] == str(p)
    assert row["raw_line"] == bad
    assert report["rejects_by_reason"] == {reason: 1}
    assert report["accepted"] == 2
    assert_balanced(report)


def test_duplicates_are_counted_not_rejected(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text(HEADER + "\n".join([GOOD[0], GOOD[0], GOOD[1], GOOD[0]]) + "\n")
    report, rejects, events = run(checkins(), p, tmp_path)
    assert (report["accepted"], report["deduplicated"], report["rejected"]) == (2, 2, 0)
    assert dict(zip(events["location"], events["copies"])) == {"Park#1": 3, "Cafe#2": 1}
    assert_balanced(report)


def test_blank_lines_are_not_data_lines(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text(HEADER + GOOD[0] + "\n\n\n" + GOOD[1] + "\n" + ",bad,x,y,z,outdoors,train\n")
    report, rejects, _ = run(checkins(), p, tmp_path)
    assert report["data_lines_read"] == 3
    # line numbers stay physical: the bad line is line 6 of the file
    assert rejects["line"].tolist() == [6]
    assert_balanced(report)


def test_non_utf8_lines_decoded_with_recorded_fallback(tmp_path):
    p = tmp_path / "c.csv"
    body = (HEADER + GOOD[0] + "\n").encode() + "1,2019-01-04 13:00:00,Café#9,Café,Food,dining,train\n".encode("latin-1")
    p.write_bytes(body + (GOOD[2] + "\n").encode())
    report, rejects, events = run(checkins(), p, tmp_path)
    assert report["accepted"] == 3 and report["rejected"] == 0
    assert report["files"][0]["non_utf8_lines_decoded_as_cp1252_or_latin1"] == 1
    assert "Café#9" in set(events["location"])
    assert_balanced(report)


ERROR_CASES = [
    ("empty file", b"", "file is empty"),
    ("header only", HEADER.encode(), "no valid data lines"),
    ("missing required column", b"user_id,timestamp,venue_id,venue_category\n1,2019-01-04 12:10:00,P#1,Park\n",
     "required column(s) ['intent'] missing"),
    ("every line bad", (HEADER + "1,never,P#1,Park,O,outdoors,train\n").encode(), "no valid data lines"),
]


@pytest.mark.parametrize("name,body,message", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_unusable_files_fail_clearly_and_write_nothing(tmp_path, name, body, message):
    p = tmp_path / "c.csv"
    p.write_bytes(body)
    with pytest.raises(IngestError) as err:
        run(checkins(), p, tmp_path)
    assert message in str(err.value)
    assert str(p) in str(err.value)
    assert not any((tmp_path / "out").glob("*")), "no output may be written on error"


def test_unreadable_inputs_fail_clearly(tmp_path):
    gz = tmp_path / "broken.csv.gz"
    gz.write_bytes(b"this is not gzip at all")
    with pytest.raises(IngestError, match="cannot read the file"):
        run(DatasetSettings(name="g", format="generic", columns={"user_id": "u", "timestamp": "t", "location": "l",
                                                                "behavior": "b"}), gz, tmp_path)
    with pytest.raises(IngestError, match="is a directory"):
        run(checkins(), tmp_path, tmp_path)
    with pytest.raises(IngestError, match="file not found"):
        run(checkins(), tmp_path / "nope.csv", tmp_path)


def test_tsmc2014_applies_timezone_offset(tmp_path):
    p = tmp_path / "tsmc.txt"
    p.write_bytes(
        b"470\t49bbd6c0f964a520f4531fe3\t4bf58dd8d48988d127951735\tArts & Crafts Store\t40.7198\t-74.0025\t-240\t"
        b"Tue Apr 03 18:00:09 +0000 2012\n"
        b"979\t4a43c0aef964a520c6a61fe3\t4bf58dd8d48988d1df941735\tBridge\t40.6067\t-74.0441\t540\t"
        b"Tue Apr 03 18:00:25 +0000 2012\n"
        b"979\t4a43c0aef964a520c6a61fe3\t4bf58dd8d48988d1df941735\tBridge\t40.6067\t-74.0441\tsoon\t"
        b"Tue Apr 03 18:00:25 +0000 2012\n"
        b"979\t4a43c0aef964a520c6a61fe4\t4bf58dd8d48988d1df941735\tCaf\xe9\t40.6067\t-74.0441\t540\t"
        b"Wed Apr 04 08:00:00 +0000 2012\n")
    report, rejects, events = run(DatasetSettings(name="n", format="foursquare_tsmc2014"), p, tmp_path)
    by_user = events.set_index("user_id")
    assert str(by_user.loc["470", "ts"]) == "2012-04-03 14:00:09"  # UTC 18:00 - 4 h
    assert sorted(events.loc[events.user_id == "979", "ts"].astype(str)) == ["2012-04-04 03:00:25",
                                                                           "2012-04-04 17:00:00"]
    assert "Café" in set(events["behavior"])  # latin-1 venue category decoded, not crashed on
    assert rejects["reason"].tolist() == ["invalid_timezone_offset"] and rejects["line"].tolist() == [3]
    assert_balanced(report)


def test_generic_formats_with_column_mapping(tmp_path):
    frame = pd.DataFrame({"uid": ["a", "a", "b", ""], "when": ["2024-01-01T08:00", "2024-01-01T09:00",
                                                              "2024-01-02T10:00", "2024-01-02T10:00"],
                          "where": ["home", "work", "gym", "gym"], "what": ["x", "y", "x", "x"]})
    ds = DatasetSettings(name="g", format="generic", timestamp_format="%Y-%m-%dT%H:%M",
                         columns={"user_id": "uid", "timestamp": "when", "location": "where", "behavior": "what"})
    tsv_gz = tmp_path / "log.tsv.gz"
    with gzip.open(tsv_gz, "wt") as fh:
        frame.to_csv(fh, sep="\t", index=False)
    parquet = tmp_path / "log.parquet"
    frame.assign(uid=frame["uid"].replace("", None)).to_parquet(parquet)
    for path in (tsv_gz, parquet):
        report, rejects, events = run(ds, path, tmp_path / path.suffix)
        assert report["accepted"] == 3 and report["rejected"] == 1, path
        assert rejects["reason"].tolist() == ["empty_user_id"]
        assert rejects["line"].tolist() == ([5] if path == tsv_gz else [4])
        assert events["ts"].astype(str).tolist()[0] == "2024-01-01 08:00:00"
        assert_balanced(report)
    bad = DatasetSettings(name="g", format="generic", columns={"user_id": "user", "timestamp": "when",
                                                              "location": "where", "behavior": "what"})
    with pytest.raises(IngestError, match=r"required column\(s\) \['user'\] missing"):
        run(bad, tsv_gz, tmp_path / "bad")


def test_simulated_log_with_faults_balances(tmp_path):
    from behaviorflow.config import SimulationSettings, dataset_settings
    from behaviorflow.data.simulate import simulate_raw_logs

    counts = simulate_raw_logs(SimulationSettings(n_users=30, weeks=2, fault_rate=0.05, seed=4),
                               tmp_path / "log.csv.gz", tmp_path / "acc.csv")
    ds = dataset_settings({"datasets": {"s": {"format": "simulated"}}}, "s")
    report, rejects, events = run(ds, tmp_path / "log.csv.gz", tmp_path, attributes=tmp_path / "acc.csv")
    assert report["data_lines_read"] == counts["rows_written"]
    assert report["deduplicated"] == counts["faults"]["duplicate"]
    f = counts["faults"]
    assert report["rejects_by_reason"] == {k: v for k, v in {
        "empty_user_id": f["logged_out"], "malformed_row": f["truncated_write"],
        "unparseable_timestamp": f["garbled_time"], "impossible_date": f["impossible_date"],
        "label_not_in_vocabulary": f["unknown_event"]}.items() if v}
    assert report["accepted"] == counts["events"] - report["rejected"]
    assert report["attribute_users"] == 30
    assert "device_id" not in pd.read_parquet(tmp_path / "out" / "attrs.parquet").columns
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    assert_balanced(report)


def _tsmc_line(lat="40.7198", lon="-74.0025", user="470", category="Bridge"):
    return (f"{user}\t49bbd6c0f964a520f4531fe3\t4bf58dd8d48988d127951735\t{category}\t{lat}\t{lon}\t-240\t"
            "Tue Apr 03 18:00:09 +0000 2012\n")


@pytest.mark.parametrize("lat,lon", [("91.5", "10"), ("-90.01", "10"), ("45", "180.5"), ("45", "-181"),
                                     ("nan", "10"), ("45", "inf")])
def test_coordinates_off_the_globe_are_rejects(tmp_path, lat, lon):
    p = tmp_path / "tsmc.txt"
    p.write_text(_tsmc_line() + _tsmc_line(lat, lon, user="9") + _tsmc_line("-90", "180", user="8"))
    report, rejects, events = run(DatasetSettings(name="n", format="foursquare_tsmc2014"), p, tmp_path)
    assert rejects["reason"].tolist() == ["coordinate_out_of_range"] and rejects["line"].tolist() == [2]
    assert "outside" in rejects["detail"][0]
    assert set(events["user_id"]) == {"470", "8"}  # the poles and the antimeridian are on the globe
    assert_balanced(report)


def test_coordinates_off_the_globe_in_parquet_are_rejects(tmp_path):
    frame = pd.DataFrame({"u": ["a", "b", "c"], "t": ["2024-01-01 08:00:00"] * 3, "l": ["x", "y", "z"],
                          "b": ["k", "k", "k"], "lat": [45.0, 123.0, 10.0], "lon": [10.0, 10.0, -200.0]})
    frame.to_parquet(tmp_path / "log.parquet")
    ds = DatasetSettings(name="g", format="generic", columns={"user_id": "u", "timestamp": "t", "location": "l",
                                                             "behavior": "b", "lat": "lat", "lon": "lon"})
    report, rejects, events = run(ds, tmp_path / "log.parquet", tmp_path)
    assert rejects["reason"].tolist() == ["coordinate_out_of_range"] * 2 and rejects["line"].tolist() == [2, 3]
    assert events["user_id"].tolist() == ["a"]
    assert_balanced(report)


def test_damaged_gzip_stream_is_a_clear_error_and_writes_nothing(tmp_path):
    body = (HEADER + "\n".join(GOOD * 4000) + "\n").encode()
    whole = gzip.compress(body, mtime=0)
    for name, damaged in (("truncated", whole[: len(whole) // 2]),
                          ("corrupted", whole[:200] + bytes(b ^ 0xFF for b in whole[200:260]) + whole[260:])):
        p = tmp_path / f"{name}.csv.gz"
        p.write_bytes(damaged)
        with pytest.raises(IngestError) as err:
            run(checkins(), p, tmp_path / name)
        assert str(p) in str(err.value) and "gzip stream is damaged" in str(err.value), name
        assert not any((tmp_path / name / "out").glob("*")), "no output may be written on error"


def test_utf8_byte_order_mark_is_not_part_of_the_header(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes(b"\xef\xbb\xbf" + (HEADER + "\n".join(GOOD) + "\n").encode())
    report, rejects, events = run(checkins(), p, tmp_path)
    assert report["accepted"] == 3 and report["rejected"] == 0
    assert events["user_id"].tolist()[0] == "1"
    ds = DatasetSettings(name="g", format="generic", columns={"user_id": "user_id", "timestamp": "timestamp",
                                                             "location": "venue_id", "behavior": "intent"})
    report, _, events = run(ds, p, tmp_path / "generic")  # the BOM sits before the mapped first column
    assert report["accepted"] == 3 and sorted(set(events["user_id"])) == ["1", "2"]


def test_control_characters_are_removed_and_counted(tmp_path):
    p = tmp_path / "c.csv"
    lines = [GOOD[0], "1,2019-01-04 12:40:00,Ca\x00fe#2,Cafe,Food,dining,train",
             "\x002,2019-01-05 09:00:00,Office#3,Office\x1b,Work,work-related,test",
             "\x00\x00,2019-01-05 10:00:00,Office#3,Office,Work,work-related,test"]
    p.write_text(HEADER + "\n".join(lines) + "\n")
    report, rejects, events = run(checkins(), p, tmp_path)
    # cleaned, not rejected: a NUL from a torn write says nothing about the event
    assert set(events["location"]) == {"Park#1", "Cafe#2", "Office#3"} and set(events["user_id"]) == {"1", "2"}
    for column in ("user_id", "location", "behavior", "category"):
        assert not events[column].str.contains(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]").any()
    # a required field that held only control characters is empty: a reject
    assert rejects["reason"].tolist() == ["empty_user_id"] and rejects["line"].tolist() == [5]
    assert report["files"][0]["lines_with_control_characters_removed"] == 3
    assert_balanced(report)


def test_repeated_header_and_crlf_line_ends(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes((HEADER + GOOD[0] + "\n" + HEADER + GOOD[1] + "\n" + GOOD[2] + "\n").replace("\n", "\r\n").encode())
    report, rejects, events = run(checkins(), p, tmp_path)
    assert rejects["reason"].tolist() == ["repeated_header"] and rejects["line"].tolist() == [3]
    assert report["accepted"] == 3 and not events["location"].str.contains("\r").any()
    assert_balanced(report)


def test_every_label_needs_one_category(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text(HEADER + "\n".join(GOOD) + "\n")
    partial = checkins(taxonomy={"outdoors": "leisure", "dining": "errands"})
    with pytest.raises(IngestError, match=r"label\(s\) without a category: \['work-related'\].*datasets.t.taxonomy"):
        run(partial, p, tmp_path / "a")
    conflicting = HEADER + "1,2019-01-04 12:10:00,Park#1,Park,Outdoors,outdoors,train\n" + \
        "1,2019-01-04 13:10:00,Park#2,Park,Food,outdoors,train\n"
    p.write_text(conflicting)
    by_column = DatasetSettings(name="t", format="checkins_csv", label_column="venue_category")
    with pytest.raises(IngestError, match="more than one category"):
        run(by_column, p, tmp_path / "b")
    p.write_text(HEADER + "\n".join(GOOD) + "\n")
    report, _, events = run(by_column, p, tmp_path / "c")
    assert dict(zip(events["behavior"], events["category"])) == {"Park": "Outdoors", "Cafe": "Food", "Office": "Work"}
    assert report["taxonomy"]["source"] == "column top_category"
