"""Fidelity and privacy reports and table 4 through the workflow (tiny config, tiny random model)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from behaviorflow.validation.fidelity import fidelity_rows
from behaviorflow.validation.privacy import holdout_users, privacy_rows

VARIANTS = {"full", "no_role", "no_profile", "no_format", "no_segment"}


def test_fidelity_and_privacy_reports_cover_every_generator(tiny_run):
    fid = pd.read_csv(tiny_run / "results/tiny/fidelity.csv")
    assert set(fid["generator"]) == {"markov", "behaviorgen"}
    assert set(fid.loc[fid["generator"] == "markov", "data"]) == {"population", "personal", "population_sources"}
    assert set(fid.loc[fid["generator"] == "behaviorgen", "variant"]) == VARIANTS
    assert set(fid["level"]) == {"population", "user"}
    bounded = fid[fid["metric"].str.match(r"(jsd|tvd|ks_p|bleu)_")]["value"].dropna()
    assert len(bounded) and bounded.between(0, 1).all()
    priv = pd.read_csv(tiny_run / "results/tiny/privacy.csv")
    assert len(priv.groupby(["generator", "variant", "data"])) == 1 + len(VARIANTS)
    assert set(priv["data"]) == {"population+personal", "ablation"}
    assert not priv.duplicated(["generator", "variant", "seed", "data", "metric"]).any()
    auc = priv.loc[priv["metric"] == "mia_auc", "value"]
    assert auc.between(0, 1).all()
    for kind in ("fidelity", "privacy"):
        prov = json.loads((tiny_run / f"results/tiny/{kind}.provenance.json").read_text())
        assert len(prov["config_sha256"]) == 64
        assert len(prov["inputs"]["data/processed/tiny/split.parquet"]) == 64
        models = [m for p, m in prov["models"].items() if "/ablation/" in p]
        assert models and all(len(m["model_sha256"]) == 64 for m in models)


def test_table4_long_and_wide_with_its_protocol(tiny_run):
    long = pd.read_csv(tiny_run / "results/table4.csv")
    assert list(long.columns) == ["dataset", "generator", "variant", "seed", "level", "metric", "value"]
    assert set(long["variant"]) == VARIANTS and set(long["seed"]) == {1}
    passes = long[long["metric"] == "pass_at_1"]
    assert len(passes) == len(VARIANTS) and (passes["value"] == 1.0).all()  # the grammar makes every call parse
    # Pass@1 as the paper measures it: the same calls decoded without the grammar; a random model writes noise
    free = long[long["metric"] == "pass_at_1_unconstrained"]
    assert len(free) == len(VARIANTS) and (free["value"] == 0.0).all()
    wide = pd.read_csv(tiny_run / "results/table4_summary.csv")
    assert list(wide["variant"]) == ["full", "no_role", "no_profile", "no_format", "no_segment"]
    assert {"pass_at_1_free", "pass_at_1", "ks_p", "jsd"} <= set(wide.columns)
    page = (tiny_run / "results/table4.md").read_text()
    assert "grammar-constrained" in page and all(f"| {v} |" in page for v in VARIANTS)
    assert "| no_segment | 0 | 1 | 22.5 % |" in page  # free, as decoded, the paper's
    summary = json.loads((tiny_run / "data/synthetic/tiny/ablation/full/seed1/generation_summary.json").read_text())
    assert sum(summary["unconstrained_errors"].values()) == summary["calls"]  # every free failure, by kind


def test_ablation_variants_share_users_and_seeds(tiny_run):
    root = tiny_run / "data/synthetic/tiny/ablation"
    summaries = {v: json.loads((root / v / "seed1/generation_summary.json").read_text()) for v in VARIANTS}
    users = {tuple(s["users"]) for s in summaries.values()}
    assert len(users) == 1 and len(next(iter(users))) == 2
    assert summaries["full"]["calls"] == 4  # 2 users x 2 weekly calls
    assert summaries["no_segment"]["calls"] == 2  # one call per user for both weeks


@pytest.fixture(scope="module")
def tiny_split(tiny_run):
    return (pd.read_parquet(tiny_run / "data/processed/tiny/split.parquet"),
            pd.read_parquet(tiny_run / "data/processed/tiny/profiles.parquet"))


def test_held_out_weeks_given_as_synthetic_score_perfect_fidelity(tiny_split):
    split, _ = tiny_split
    query = split[split["part"] == "query"]
    out = fidelity_rows(split, {"personal": query.assign(source_user=query["user_id"])}).set_index(["level", "metric"])
    for level in ("population", "user"):
        assert out.loc[(level, "jsd_behavior"), "value"] == pytest.approx(0.0, abs=1e-12)
        assert out.loc[(level, "ks_p_time"), "value"] == pytest.approx(1.0)
        assert out.loc[(level, "bleu_event"), "value"] == pytest.approx(1.0)


def test_population_rows_carry_their_source_users_floor(tiny_split):
    """Beside a population, the source users' own training events judged against all training events."""
    split, _ = tiny_split
    train = split[split["part"] == "train"]
    sources = sorted(train["user_id"].unique())[:3]
    population = train[train["user_id"].isin(sources)].assign(source_user=lambda d: d["user_id"])
    out = fidelity_rows(split, {"population": population})
    floor = out[out["data"] == "population_sources"].set_index("metric")
    assert set(floor["level"]) == {"population"} and set(floor["n"]) == {3}
    assert not floor.index.str.startswith("bleu").any()
    # a population that copies its sources sits exactly on their floor
    mine = out[(out["data"] == "population") & (out["level"] == "population")].set_index("metric")
    assert floor.loc["jsd_behavior", "value"] == pytest.approx(mine.loc["jsd_behavior", "value"])
    assert floor.loc["jsd_behavior", "value"] > 0


def test_copied_training_weeks_are_flagged_on_the_real_split(tiny_split):
    split, profiles = tiny_split
    holdout = holdout_users(profiles, {"test"})
    assert holdout == set(profiles.loc[profiles["split"] == "val", "user_id"])
    train = split[split["part"] == "train"]
    copied_users = sorted(train["user_id"].unique())[:5]
    copy = train[train["user_id"].isin(copied_users)].assign(source_user=lambda d: d["user_id"])
    report = privacy_rows(split, copy, holdout, n=3, threshold=0.3)
    assert report["overlap_share_above"] == 1.0
    assert report["dcr_synthetic_median"] == 0.0
    assert report["mia_auc"] > 0.9


def test_privacy_refuses_a_run_without_holdout_users(tiny_split):
    _, profiles = tiny_split
    with pytest.raises(ValueError, match="privacy needs holdout users"):
        holdout_users(profiles, {"val", "test"})
