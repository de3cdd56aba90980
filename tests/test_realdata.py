"""The real Tokyo check-ins (../shared/data): ingest, anonymise, profile; counts and leak scan."""

import json
import os

import pandas as pd
import pytest
import yaml
from conftest import REPO, TOKYO_INTENTS, make_workdir, run_snakemake

from behaviorflow.config import AnonymizationSettings, DatasetSettings, SplitSettings
from behaviorflow.data.anonymize import anonymize
from behaviorflow.data.ingest import ingest
from behaviorflow.data.profiles import build_profiles
from behaviorflow.data.splits import split_users
from behaviorflow.reporting.leakscan import scan_paths, secrets_from_csv

KEY = "tokyo-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def tokyo_chain(tmp_path_factory, tokyo_csv):
    out = tmp_path_factory.mktemp("tokyo")
    ds = DatasetSettings(name="tokyo", format="checkins_csv", path=str(tokyo_csv), vocabulary=tuple(TOKYO_INTENTS))
    ingested = ingest(ds, tokyo_csv, out / "interim/events.parquet", out / "interim/rejects.csv",
                      out / "interim/report.json", out / "interim/attrs.parquet")
    os.environ["BF_TOKYO_KEY"] = KEY
    try:
        anon = anonymize(out / "interim/events.parquet", out / "interim/attrs.parquet",
                         out / "processed/events.parquet", out / "processed/profiles_input.parquet",
                         out / "processed/anonymization_report.json",
                         AnonymizationSettings(key_env="BF_TOKYO_KEY", rotation_months=3), "checkins_csv")
    finally:
        del os.environ["BF_TOKYO_KEY"]
    split_users(out / "processed/events.parquet", out / "processed/split.parquet", out / "processed/split.json",
                SplitSettings())
    profiles = build_profiles(out / "processed/split.parquet", out / "processed/profiles_input.parquet",
                              out / "processed/profiles.parquet")
    return out, ingested, anon, profiles


def test_tokyo_counts(tokyo_chain, tokyo_csv):
    out, ingest, anon, profiles = tokyo_chain
    assert ingest["data_lines_read"] == 59_329
    assert ingest["accepted"] == 59_329 and ingest["rejected"] == 0 and ingest["deduplicated"] == 0
    assert ingest["users"] == 93 and ingest["behaviors"] == 11
    assert anon["events_in"] == anon["events_out"] == 59_329
    raw = pd.read_csv(tokyo_csv, parse_dates=["timestamp"])
    quarters = raw.assign(q=(raw.timestamp.dt.month - 1) // 3)[["user_id", "q"]].drop_duplicates()
    assert anon["pseudonymisation"]["raw_users"] == 93
    assert anon["pseudonymisation"]["pseudonymous_users"] == len(quarters)
    shares = pd.read_parquet(out / "processed/events.parquet")["behavior"].value_counts(normalize=True)
    assert shares["Other"] == pytest.approx(0.522, abs=0.001) and shares["shopping"] == pytest.approx(0.197, abs=0.001)
    assert profiles["summary"].str.contains("Most frequent").all()
    assert {"age", "gender"}.isdisjoint(profiles.columns)  # Tokyo has no demographic profile


def test_tokyo_leak_scan(tokyo_chain, tokyo_csv):
    out, *_ = tokyo_chain
    secrets = secrets_from_csv(tokyo_csv, ["user_id", "venue_id"])
    assert len(secrets.ids) == 93 + 14_199
    assert scan_paths([out / "processed"], secrets) == {}
    assert scan_paths([out / "interim/events.parquet"], secrets)  # raw ids are there before anonymisation


def test_tokyo_through_the_workflow(tmp_path, tokyo_csv):
    config = yaml.safe_load((REPO / "tests/configs/tokyo.yaml").read_text())
    config["datasets"]["tokyo"]["path"] = str(tokyo_csv)
    config["predictors"].update(seeds=[1], pretrain={"max_epochs": 3}, finetune={"max_epochs": 3})  # test time
    config["validation"]["ablation"]["variants"] = []  # the LLM ablation on Tokyo: run by hand (README)
    config["behaviorlm"] = {"datasets": []}  # BehaviorLM on Tokyo: run by hand (README); tested on the tiny config
    work = make_workdir(tmp_path, config)
    proc = run_snakemake(work, check=False, env={"BEHAVIORFLOW_PSEUDONYM_KEY": None})
    assert proc.returncode != 0 and "BEHAVIORFLOW_PSEUDONYM_KEY" in proc.stderr + proc.stdout
    assert not (work / "data").exists()
    run_snakemake(work, env={"BEHAVIORFLOW_PSEUDONYM_KEY": KEY})
    report = json.loads((work / "data/interim/tokyo/ingest_report.json").read_text())
    assert (report["accepted"], report["users"]) == (59_329, 93)
    split = pd.read_parquet(work / "data/processed/tokyo/split.parquet")
    assert len(split) == 59_329
    secrets = secrets_from_csv(tokyo_csv, ["user_id", "venue_id"])
    past = [work / "data/processed", work / ".snakemake/metadata", work / "reports"]
    past += [work / "logs/tokyo" / f"{r}.log" for r in ("anonymize", "split_users", "build_profiles")]
    assert scan_paths(past, secrets) == {}
    assert {"tokyo_data_overview.html", "tokyo_fidelity_privacy.html", "table3.html"} <= {
        p.name for p in (work / "reports").iterdir()}
    for path in [*(work / ".snakemake").rglob("*"), *(work / "reports").rglob("*")]:
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    # all three scenarios ran on the real data, with the intent labels
    for name, setting in (("table1", "real+synthetic"), ("table2", "synthetic"), ("table3", "real+synthetic")):
        table = pd.read_csv(work / f"results/{name}.csv")
        assert set(table["dataset"]) == {"tokyo"} and setting in set(table["setting"])
        scores = table[(table.metric == "acc1") & ~table.setting.isin(["improvement_pct", "share_of_real_gain"])]
        assert len(scores) and scores["value"].between(0, 1).all()  # derived rows are ratios, not scores
    # fidelity and privacy of the synthetic data against the real check-ins
    fid = pd.read_csv(work / "results/tokyo/fidelity.csv")
    assert set(fid["data"]) == {"population", "personal", "population_sources"}
    assert set(fid["generator"]) == {"markov"}
    pooled = fid[(fid.level == "population") & (fid.metric == "jsd_behavior")].set_index("data")["value"]
    assert len(pooled) == 3 and pooled.between(0, 1).all()
    # the floor: the population's source users' own events sit closer to the pool than any generator's copy
    assert pooled["population_sources"] <= pooled["population"]
    priv = pd.read_csv(work / "results/tokyo/privacy.csv").set_index("metric")["value"]
    assert 0 <= priv["mia_auc"] <= 1 and priv["holdout"] > 0 and priv["members"] > 0
    assert not (work / "results/table4.csv").exists()


def test_tokyo_taxonomies(tmp_path, tokyo_csv, tokyo_chain):
    """Venue categories get their Foursquare top category; intents their four groups; one each."""
    out, ingested, *_ = tokyo_chain
    assert ingested["taxonomy"]["labels"]["shopping"] == "errands"
    assert set(ingested["taxonomy"]["labels"].values()) == {"errands", "leisure", "obligations", "other"}
    split = pd.read_parquet(out / "processed/split.parquet")
    assert split.groupby("behavior")["category"].nunique().eq(1).all()
    ds = DatasetSettings(name="venues", format="checkins_csv", path=str(tokyo_csv), label_column="venue_category")
    report = ingest(ds, tokyo_csv, tmp_path / "e.parquet", tmp_path / "r.csv", tmp_path / "r.json",
                    tmp_path / "a.parquet")
    labels = report["taxonomy"]["labels"]
    assert len(labels) == 492 and report["taxonomy"]["categories"] == 10
    assert labels["Park"] == "Outdoors & Recreation" and report["taxonomy"]["source"] == "column top_category"
