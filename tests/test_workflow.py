"""The workflow on a tiny simulated config in a temp dir: outputs, leak scan, reruns, bad configs."""

import copy
import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY_CONFIG, child_env, make_workdir, run_snakemake

from behaviorflow.reporting.leakscan import scan_paths, secrets_from_csv


def read_json(path):
    return json.loads(path.read_text())


def test_chain_reaches_split_and_profiles_with_counts_kept(tiny_run):
    d = tiny_run / "data"
    ingest = read_json(d / "interim/tiny/ingest_report.json")
    anon = read_json(d / "processed/tiny/anonymization_report.json")
    split_report = read_json(d / "processed/tiny/split_report.json")
    assert ingest["accepted"] + ingest["rejected"] + ingest["deduplicated"] == ingest["data_lines_read"]
    assert ingest["rejected"] > 0 and ingest["deduplicated"] > 0  # the simulator's faults were handled
    assert anon["events_in"] == anon["events_out"] == ingest["accepted"] == split_report["events"]
    split = pd.read_parquet(d / "processed/tiny/split.parquet")
    profiles = pd.read_parquet(d / "processed/tiny/profiles.parquet")
    assert len(split) == ingest["accepted"]
    kept = split.loc[split.split != "excluded", "user_id"].nunique()
    assert len(profiles) == kept and profiles["summary"].str.len().min() > 40
    assert anon["attributes"]["k_reached"] >= TINY_CONFIG["anonymization"]["k"]
    assert (tiny_run / "logs/tiny/ingest.log").read_text().count("accepted") == 1


def test_nothing_past_anonymisation_holds_raw_ids_or_coordinates(tiny_run):
    secrets = secrets_from_csv(tiny_run / "data/raw/tiny/phone_log.csv.gz", ["device_id", "account_id", "cell_id"],
                               ["latitude", "longitude"])
    assert len(secrets.ids) > 40 and len(secrets.coords) > 100
    past = [tiny_run / "data/processed", tiny_run / ".snakemake/metadata", tiny_run / "reports"]
    past += [tiny_run / "logs/tiny" / f"{rule}.log" for rule in ("anonymize", "split_users", "build_profiles")]
    assert scan_paths(past, secrets) == {}
    # the scan can fail: the interim data (before anonymisation) does hold raw ids
    assert scan_paths([tiny_run / "data/interim/tiny/events.parquet"], secrets)


def _planned_jobs(proc):
    return set(_job_counts(proc)) - {"total"}


def _without_behaviorlm():
    """The tiny config without BehaviorLM's and BUA's stages (their rerun granularity:
    test_behaviorlm_*), and with one predictor and seed: the rerun tests below build it twice or
    three times, and what they check does not depend on how many predictors there are."""
    config = copy.deepcopy(TINY_CONFIG)
    config["behaviorlm"] = {"datasets": []}
    config["predictors"] = {**config["predictors"], "models": ["sasrec"], "seeds": [1]}
    return config


def test_changing_anonymisation_config_reruns_only_from_anonymize(tmp_path):
    work = make_workdir(tmp_path, _without_behaviorlm())
    run_snakemake(work)
    assert "Nothing to be done" in run_snakemake(work, "-n").stdout
    changed = _without_behaviorlm()
    changed["anonymization"]["top_zones"] = 5
    (work / "config/config.yaml").write_text(yaml.safe_dump(changed))
    jobs = _planned_jobs(run_snakemake(work, "-n"))
    downstream = {"generate_synthetic", "pretrain_predictor", "finetune_predictor", "scenario_table", "all",
                  "generate_ablation", "validate_synthetic", "validation_report", "ablation_table", "write_manifest",
                  "data_overview_report", "fidelity_privacy_report", "table_report", "predictability",
                  "leaderboard_table"}
    assert jobs == {"anonymize", "split_users", "build_profiles"} | downstream
    changed["split"]["seed"] = 99
    (work / "config/config.yaml").write_text(yaml.safe_dump(changed))
    run_snakemake(work)
    changed["split"]["seed"] = 100
    (work / "config/config.yaml").write_text(yaml.safe_dump(changed))
    assert _planned_jobs(run_snakemake(work, "-n")) == {"split_users", "build_profiles"} | downstream


def test_editing_library_code_reruns_exactly_the_rules_that_run_it(tmp_path):
    """A rule's params carry the version of the library code it runs: an edited predictor module
    reruns the predictor jobs and what depends on them, and nothing else; an edited validation
    module reruns no predictor job."""
    work = make_workdir(tmp_path, _without_behaviorlm())
    shutil.copytree(REPO / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = {"PYTHONPATH": str(work / "src")}  # the workflow imports this copy of the library
    run_snakemake(work, env=env)
    assert "Nothing to be done" in run_snakemake(work, "-n", env=env).stdout
    models = work / "src/behaviorflow/predictors/models.py"
    models.write_text(models.read_text() + "\n# an edit\n")
    assert _planned_jobs(run_snakemake(work, "-n", env=env)) == {  # the leaderboard is in the data overview
        "pretrain_predictor", "finetune_predictor", "scenario_table", "leaderboard_table", "table_report",
        "data_overview_report", "write_manifest", "all"}
    models.write_text(models.read_text().removesuffix("\n# an edit\n"))  # back: nothing to do again
    assert "Nothing to be done" in run_snakemake(work, "-n", env=env).stdout
    privacy = work / "src/behaviorflow/validation/privacy.py"
    privacy.write_text(privacy.read_text() + "\n# an edit\n")
    assert _planned_jobs(run_snakemake(work, "-n", env=env)) == {  # table 4 is built from the validation parts
        "validate_synthetic", "validation_report", "fidelity_privacy_report", "ablation_table", "table_report",
        "write_manifest", "all"}
    figures = work / "src/behaviorflow/reporting/figures.py"  # imported by the report notebooks only
    figures.write_text(figures.read_text() + "\n# an edit\n")
    planned = _planned_jobs(run_snakemake(work, "-n", env=env))
    assert {"data_overview_report", "fidelity_privacy_report", "table_report"} <= planned
    assert not planned & {"pretrain_predictor", "finetune_predictor", "scenario_table", "ingest"}


def test_invalid_configs_fail_before_any_job(tmp_path):
    cases = {
        "wrong type": ({"slot_minutes": "half"}, "slot_minutes: 'half' is not of type 'integer'"),
        "unknown format": ({"datasets": {"x": {"format": "excel", "path": "a.xlsx"}}},
                           "datasets.x.format: 'excel' is not one of ['simulated', 'checkins_csv', "
                           "'foursquare_tsmc2014', 'generic']"),
        "missing input": ({"datasets": {"t": {"format": "checkins_csv", "path": "missing/checkins.csv"}}},
                          "datasets.t.path: input file 'missing/checkins.csv' does not exist"),
    }
    for name, (override, message) in cases.items():
        config = copy.deepcopy(TINY_CONFIG)
        config.update(override)
        work = make_workdir(tmp_path / name.replace(" ", "_"), config)
        proc = run_snakemake(work, check=False)
        assert proc.returncode != 0, name
        assert message in proc.stderr + proc.stdout, (name, proc.stderr[-2000:])
        assert not (work / "data").exists(), f"{name}: a job ran"


def test_tables_in_long_format_with_summaries_pages_and_provenance(tiny_run):
    results = tiny_run / "results"
    for name, settings in (("table1", {"real", "real+synthetic", "diff_pts", "improvement_pct"}),
                           ("table2", {"none", "real", "synthetic", "share_of_real_gain"}),
                           ("table3", {"real", "real+synthetic", "diff_pts", "improvement_pct"})):
        table = pd.read_csv(results / f"{name}.csv")
        assert list(table.columns) == ["dataset", "model", "generator", "setting", "metric", "seed", "value"]
        assert set(table["setting"]) == settings and set(table["seed"]) == {1, 2}
        assert set(table["model"]) == {"sasrec", "bert4rec"}
        base = table[~table["setting"].isin(["diff_pts", "improvement_pct", "share_of_real_gain"])]
        assert base["value"].dropna().between(0, 1).all()
        assert not base.duplicated(["dataset", "model", "generator", "setting", "metric", "seed"]).any()
        summary = pd.read_csv(results / f"{name}_summary.csv")
        acc = summary[(summary.metric == "acc1") & (summary.setting == sorted(settings)[0])]
        assert len(acc) and (acc["n"] == 2).all()
        page = (results / f"{name}.md").read_text()
        assert "Seeds: 1, 2" in page and "Verdict" in page
        assert not re.search(r"\|  \|  \| 0 \|", page)  # no empty rows (a metric defined on no seed)
        prov = read_json(results / f"{name}.provenance.json")
        assert prov["seeds"] == [1, 2] and len(prov["inputs"]) >= 2 and "torch" in prov["packages"]
    t3 = pd.read_csv(results / "table3.csv").set_index(["model", "generator", "setting", "metric", "seed"])["value"]
    real = t3.xs(("sasrec", "none", "real", "acc1", 1))
    aug = t3.xs(("sasrec", "markov", "real+synthetic", "acc1", 1))
    assert t3.xs(("sasrec", "markov", "improvement_pct", "acc1", 1)) == pytest.approx((aug - real) / real * 100)
    assert t3.xs(("sasrec", "markov", "diff_pts", "acc1", 1)) == pytest.approx((aug - real) * 100)


def test_leaderboard_scores_every_predictor_on_the_same_queries(tiny_run):
    results = tiny_run / "results"
    both = pd.read_csv(results / "leaderboard.csv")
    board = both[both["query_set"] == "all"]
    assert set(board["model"]) == {"global_mf", "user_mf", "markov1", "sasrec", "bert4rec"}
    assert set(board.loc[board["model"].isin(["sasrec", "bert4rec"]), "seed"]) == {1, 2}
    assert set(board.loc[board["model"].isin(["global_mf", "user_mf", "markov1"]), "seed"]) == {0}
    # the learned rows are table 1's real-data pretraining runs, not new ones
    t1 = pd.read_csv(results / "table1.csv")
    t1 = t1[(t1["setting"] == "real") & (t1["generator"] == "none")]
    learned = board[board["model"].isin(["sasrec", "bert4rec"])]
    key = ["model", "metric", "seed"]
    assert learned.set_index(key)["value"].sort_index().equals(t1.set_index(key)["value"].sort_index())
    structure = read_json(results / "tiny/structure.json")
    histories = [read_json(p) for p in (results / "tiny/parts/table1").glob("*_real_seed*.json")]
    assert len(histories) == 4 and {h["queries_sha256"] for h in histories} == {structure["queries_sha256"]}
    page = (results / "leaderboard.md").read_text()
    assert structure["queries_sha256"][:16] in page and "**Verdict.**" in page
    assert structure["head_labels"] + structure["medium_labels"] + structure["tail_labels"] == structure["labels"]
    overview = (tiny_run / "reports/tiny_data_overview.html").read_text()
    assert "Predictability" in overview and "weekly_repeat_rate" in overview
    # the LLM row set: table 5's rows, every one on the same LLM test queries
    llm = both[both["query_set"] == "llm"]
    assert set(llm["model"]) == {"global_mf", "user_mf", "markov1", "sasrec", "bert4rec", "llm_zero_shot",
                                 "llm_full_ft", "behaviorlm_anchor_only", "behaviorlm", "bua"}
    table5 = pd.read_csv(results / "table5.csv")
    key = ["model", "metric", "seed"]
    rows5 = llm[llm["model"] != "bua"]
    assert rows5.set_index(key)["value"].sort_index().equals(table5.set_index(key)["value"].sort_index())
    bua = pd.read_csv(results / "tiny/parts/llm/bua_seed1.csv")
    assert llm[llm["model"] == "bua"].set_index(key)["value"].sort_index().equals(
        bua.set_index(key)["value"].sort_index())
    assert "# LLM rows (the LLM test queries)" in page


def test_bua_curriculum_and_tables(tiny_run):
    """Tables 7 and 9 from BUA's stages: each stage continues the one before (w/o stage 1 starts its
    projector fresh), the item-embedding arm reads its own encoder states, and table 7 sets BUA
    beside table 5's rows on the same LLM queries."""
    results, models = tiny_run / "results", tiny_run / "models/bua/tiny"
    table7, table9 = pd.read_csv(results / "table7.csv"), pd.read_csv(results / "table9.csv")
    assert {"bua", "llm_full_ft", "behaviorlm", "sasrec", "bert4rec", "markov1"} <= set(table7["model"])
    assert set(table9["model"]) == {"bua", "bua_no_stage1", "bua_no_stage2", "bua_no_stage3", "bua_item_emb"}
    parts = [pd.read_csv(p) for p in (results / "tiny/parts/llm").glob("bua*_seed1.csv")]
    assert len(parts) == 5 and {int(q) for p in parts for q in p["queries"]} == {16}  # table 5's LLM queries
    for table in ("table7", "table9"):
        page = (results / f"{table}.md").read_text()
        assert "**The paper (BUA, arXiv 2604.23578)" in page and "**Verdict.**" in page and "BUA seeds: [1]" in page
        assert (tiny_run / f"reports/{table}.html").is_file()
    report = {name: read_json(models / name / "seed1/training_report.json")
              for name in ("stage1_sequence", "stage2_full", "stage2_no_stage1", "stage3_full", "stage2_item_emb")}
    assert report["stage1_sequence"]["freeze"] == ["projector"] and report["stage3_full"]["freeze"] == ["lora"]
    assert report["stage2_full"]["init_from"] == "models/bua/tiny/stage1_sequence/seed1"
    assert report["stage2_no_stage1"]["init_from"] is None
    assert report["stage3_full"]["init_from"] == "models/bua/tiny/stage2_full/seed1"
    assert report["stage2_item_emb"]["init_from"] == "models/bua/tiny/stage1_item/seed1"
    assert not (models / "stage3_no_stage2").exists()  # nothing to refine without stage 2's summaries
    full = pd.read_parquet(results / "tiny/bua/answers_bua_seed1.parquet")
    assert {"key_behaviours", "patterns", "summary", "predicted", "label"} <= set(full.columns) and len(full) == 16
    assert "summary" not in pd.read_parquet(results / "tiny/bua/answers_bua_no_stage2_seed1.parquet").columns
    assert report["stage2_full"]["examples"] == 8 + 3  # prediction dialogues + generation dialogues


def _planned_threads_and_priority(proc) -> dict[str, set[tuple[int, int]]]:
    """Each planned rule's (threads, priority) pairs from a dry run's job blocks (Snakemake leaves
    out 1 thread and priority 0)."""
    plan: dict[str, set[tuple[int, int]]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout):
        name = re.match(r"(?:local)?rule (\w+):", block)
        if name:
            threads = re.search(r"^\s+threads: (\d+)", block, flags=re.M)
            priority = re.search(r"^\s+priority: (-?\d+)", block, flags=re.M)
            plan.setdefault(name.group(1), set()).add((int(threads.group(1)) if threads else 1,
                                                       int(priority.group(1)) if priority else 0))
    return plan


@pytest.mark.parametrize("training_threads, expected", [(None, 2), (1, 1)])
def test_bua_jobs_take_their_threads_and_scheduling_order(tmp_path, training_threads, expected):
    """BUA's encoder states and stages take bua.training_threads (null: resources.threads), its
    decoding jobs bua.inference_threads; ready states, stages and reflection pools go first, then
    prediction, then the shorter one-day generation."""
    config = copy.deepcopy(TINY_CONFIG)
    config["resources"] = {"gpu": 0, "threads": 2, "mem_mb": 4000}
    config["bua"] = {**config["bua"], "training_threads": training_threads, "inference_threads": 1}
    plan = _planned_threads_and_priority(run_snakemake(make_workdir(tmp_path, config), "-n", "results/table9.csv"))
    stages = [plan[r] for r in ("bua_stage1", "bua_stage2", "bua_stage3")]
    assert all(pairs == {(expected, 2)} for pairs in stages), stages
    assert plan["bua_states"] == {(expected, 2)} and plan["bua_reflect"] == {(1, 2)}
    assert plan["bua_predict"] == {(1, 1)} and plan["bua_generate"] == {(1, 0)}


@pytest.mark.parametrize("source", ["rules", "openai"])
def test_bua_stages_read_the_llm_written_answers_only_when_asked(tmp_path, source):
    """bua.answers.source openai puts one bua_answers job per seed before every stage and reflection
    pool, each of which reads that seed's file, and needs the endpoint's key variable set; with
    rules no job writes or reads one, and no key is asked for."""
    config = copy.deepcopy(TINY_CONFIG)
    config["bua"] = {**config["bua"], "seeds": [1, 2], "answers": {"source": source}}
    config["generation"]["behaviorgen"]["openai"] = {"key_env": "BF_TEST_API_KEY"}
    work = make_workdir(tmp_path, config)
    unset = run_snakemake(work, "-n", "results/table9.csv", env={"BF_TEST_API_KEY": None}, check=source == "rules")
    if source == "openai":
        assert unset.returncode != 0 and "BF_TEST_API_KEY" in unset.stdout + unset.stderr
    proc = run_snakemake(work, "-n", "results/table9.csv", env={"BF_TEST_API_KEY": "sk-test"})
    blocks = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout):
        name = re.match(r"(?:local)?rule (\w+):", block)
        if name:
            inputs = re.search(r"^\s+input: (.+)$", block, flags=re.M)
            seed = re.search(r"seed=(\d+)", block)
            blocks.setdefault(name.group(1), []).append((seed and seed.group(1), inputs.group(1) if inputs else ""))
    readers = [j for r in ("bua_stage1", "bua_stage2", "bua_stage3", "bua_reflect") for j in blocks[r]]
    assert len(readers) == 2 * (2 + 4 + 3 + 3)  # per seed: 2 stage-1 embeddings, 4 stage-2 arms, 3 stage-3, 3 pools
    if source == "rules":
        assert "bua_answers" not in blocks and not any("curriculum_answers" in i for _, i in readers)
    else:
        assert sorted(seed for seed, _ in blocks["bua_answers"]) == ["1", "2"]
        assert all(f"results/tiny/bua/curriculum_answers_seed{seed}.parquet" in i for seed, i in readers)


def test_one_day_generation_table_and_table9_generation_columns(tiny_run):
    """Table 8: BUA, BehaviorGen and Markov write the same test users' next day, scored by BLEU /
    TVD / JSD per stream; table 9 carries each ablation row's generation columns too."""
    from behaviorflow.bua.days import METRICS

    results = tiny_run / "results"
    table8 = pd.read_csv(results / "table8.csv")
    fidelity = table8[table8["setting"] == "one_day"]
    assert set(fidelity["model"]) == {"bua", "behaviorgen", "markov"} and set(table8["model"]) == {
        "bua", "behaviorgen", "markov", "sasrec"}
    assert set(METRICS) | {"days_generated", "events_per_day"} == set(fidelity["metric"])
    generated = fidelity[fidelity["metric"] == "days_generated"].set_index("model")["value"]
    assert (generated == 4).all()  # every generator wrote every sampled user's day (bua.generation.users)
    days = {m: pd.read_parquet(results / f"tiny/bua/days/{m}_seed1.parquet") for m in ("bua", "behaviorgen", "markov")}
    users = {m: set(zip(d["source_user"], d["ts"].dt.date)) for m, d in days.items()}
    assert users["bua"] == users["behaviorgen"] == users["markov"] and len(users["bua"]) == 4  # same users, days
    page = (results / "table8.md").read_text()
    assert "**Verdict.**" in page and "bua better than markov on" in page and "D2A" in page
    assert (tiny_run / "reports/table8.html").is_file()
    down = table8[table8["model"] == "sasrec"]  # App. G / T: fine-tuned with and without each generator's day
    assert set(zip(down["generator"], down["setting"])) == {("none", "none"), ("none", "real")} | {
        (g, s) for g in ("bua", "behaviorgen", "markov") for s in ("synthetic", "real+synthetic")}
    runs = pd.read_csv(results / "tiny/bua/days/downstream_runs_seed1.csv")
    assert set(runs["user_id"]) == {u for u, _ in users["bua"]}  # the sampled users only
    assert "### Downstream" in page and "markov:real+synthetic" in page
    table9 = pd.read_csv(results / "table9.csv")
    gen9 = table9[table9["setting"] == "one_day"]
    assert set(gen9["model"]) == set(table9["model"]) and set(METRICS) <= set(gen9["metric"])
    assert "one-day generation (table 8's protocol)" in (results / "table9.md").read_text()


def test_behaviorlm_stages_and_tables(tiny_run):
    """Tables 5-6 from every BehaviorLM stage: B-tuning continues the A-tuned adapter on the selected
    samples, each table carries the paper beside ours and a verdict, and every row of table 5 was
    scored on the same LLM queries."""
    results = tiny_run / "results"
    for table in ("table5", "table6"):
        page = (results / f"{table}.md").read_text()
        assert "**The paper (arXiv 2505.17682)" in page and "**Verdict.**" in page
        assert (tiny_run / f"reports/{table}.html").is_file() and (tiny_run / f"reports/figures/{table}.png").is_file()
    parts = [pd.read_csv(p) for p in (results / "tiny/parts/llm").glob("*.csv")]
    assert {int(q) for p in parts for q in p["queries"]} == {16}
    # each page says what the B-tuning sets of its rows hold
    assert "| difficulty | anchor | 2 | 1 |" in (results / "table5.md").read_text()
    page6 = (results / "table6.md").read_text()
    assert all(f"| {how} | {arm} | {f} | 1 |" in page6
               for how, arm, f in [("difficulty", "no_aux", 2), ("random", "anchor", 2), ("difficulty", "anchor", 3)])
    assert page6.count("| difficulty | anchor | 2 | 1 |") == 1  # BehaviorLM's set and F = 2's are one
    table6 = pd.read_csv(results / "table6.csv")
    assert set(table6["model"]) == {"behaviorlm", "behaviorlm_no_aux", "behaviorlm_random_select",
                                    "behaviorlm_tail_first", "behaviorlm_F2", "behaviorlm_F3"}
    models = tiny_run / "models/behaviorlm/tiny"
    btune = read_json(models / "btune_difficulty_anchor_F2/seed1/training_report.json")
    assert btune["init_from"] == "models/behaviorlm/tiny/atune_anchor/seed1"
    atune = read_json(models / "atune_anchor/seed1/training_report.json")
    assert set(atune["labels_trained"]) <= set(atune["anchors"]) and atune["aux_examples"] >= 1
    assert read_json(models / "atune_no_aux/seed1/training_report.json")["aux_examples"] == 0
    full = read_json(models / "atune_full/seed1/training_report.json")
    assert set(full["labels_trained"]) - set(full["anchors"])  # full fine-tuning sees non-anchors too
    selected = pd.read_parquet(results / "tiny/behaviorlm/select_difficulty_anchor_F2_seed1.parquet")
    pool = pd.read_parquet(results / "tiny/behaviorlm/pool_anchor_seed1.parquet")
    merged = selected.merge(pool, on=["user_id", "event_idx", "label"])
    assert len(merged) == len(selected) and (merged["predicted"] != merged["label"]).all()
    # a B-tuning setting reruns B-tuning and what scores it, never A-tuning or the pool
    config_path = tiny_run / "config/config.yaml"
    original = config_path.read_text()
    try:
        changed = copy.deepcopy(TINY_CONFIG)
        changed["behaviorlm"]["btune"] = {"max_steps": 2}
        config_path.write_text(yaml.safe_dump(changed, sort_keys=False))
        planned = _planned_jobs(run_snakemake(tiny_run, "-n"))
    finally:
        config_path.write_text(original)
    assert {"behaviorlm_btune", "behaviorlm_predict", "llm_table"} <= planned
    assert not planned & {"behaviorlm_atune", "behaviorlm_tail_first", "behaviorlm_score_pool", "behaviorlm_select",
                          "pretrain_predictor"}


def test_deleting_only_table3_rebuilds_only_table3(tiny_run):
    (tiny_run / "results/table3.csv").unlink()
    proc = run_snakemake(tiny_run, "-n")
    assert _planned_jobs(proc) == {"scenario_table", "table_report", "write_manifest", "all"}
    assert _job_counts(proc)["table_report"] == "1"  # only table 3's report
    run_snakemake(tiny_run)
    assert (tiny_run / "results/table3.csv").is_file()


def _job_counts(proc):
    stats = proc.stdout[proc.stdout.index("Job stats:"):]
    return dict(re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M))


def test_dag_does_not_grow_with_users(tmp_path):
    """The papers' phone-log scale (24,133 users) plans the same jobs as the tiny config: work is
    batched per dataset, model and seed, never one job per user."""
    counts = []
    for n_users in (40, 24_133):
        config = copy.deepcopy(TINY_CONFIG)
        config["datasets"]["tiny"]["simulation"]["n_users"] = n_users
        counts.append(_job_counts(run_snakemake(make_workdir(tmp_path / str(n_users), config), "-n")))
    assert counts[0] == counts[1]
    assert counts[0]["pretrain_predictor"] == "8" and counts[0]["finetune_predictor"] == "4"  # 2 models x 2 seeds


def _audit(workdir, *args):
    return subprocess.run([sys.executable, "-m", "behaviorflow.audit", *args], cwd=workdir, capture_output=True,
                          text=True, env=child_env(), timeout=2400)


def test_auditor_reports_a_changed_result(tiny_run, tmp_path):
    lines = (tiny_run / "results/MANIFEST.sha256").read_text().splitlines()
    forged = [("0" * 64 + "  " + line.split("  ", 1)[1]) if line.endswith("results/table3.csv") else line
              for line in lines]
    (tmp_path / "forged.sha256").write_text("\n".join(forged) + "\n")
    proc = _audit(tiny_run, "--verify-only", "--manifest", str(tmp_path / "forged.sha256"))
    assert proc.returncode == 1
    assert "MISMATCH results/table3.csv" in proc.stdout and f"{len(lines) - 1} of {len(lines)} hashes match" in proc.stdout
    (tmp_path / "broken.sha256").write_text("not a manifest line\n")
    proc = _audit(tiny_run, "--verify-only", "--manifest", str(tmp_path / "broken.sha256"))
    assert proc.returncode != 0 and "line 1: expected '<sha256>  <path>'" in proc.stderr


def test_table_provenance_names_weights_and_generator_models(tiny_run):
    prov = read_json(tiny_run / "results/table3.provenance.json")
    weights = [p for p in prov["inputs"] if p.endswith(".pt")]
    assert weights and all(len(prov["inputs"][p]) == 64 for p in weights)
    assert set(prov["models"]) == {"data/synthetic/tiny/markov/personal_summary.json"}
    assert prov["models"]["data/synthetic/tiny/markov/personal_summary.json"] == "none (no language model)"
    assert len(prov["config_sha256"]) == 64 and prov["seeds"] == [1, 2]
