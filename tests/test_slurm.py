"""The HPC path on a real single-node SLURM cluster: the auditor's regeneration of the tiny run
submitted through `--profile profiles/slurm` (snakemake-executor-plugin-slurm), every job
completed, model jobs asked for a GPU, and every file equal to the local run's."""

import re
import subprocess
import sys
import time

import pytest
from conftest import child_env, hashes
from slurm_cluster import Cluster, install, job_records, missing_binaries

MODEL_RULES = {"pretrain_predictor", "finetune_predictor", "generate_ablation", "tune_generator", "behaviorlm_atune",
               "behaviorlm_tail_first", "behaviorlm_score_pool", "behaviorlm_btune", "behaviorlm_predict",
               "bua_stage1", "bua_stage2", "bua_reflect", "bua_stage3", "bua_predict", "bua_generate",
               "day_downstream"}
# a rule whose jobs run a model for one wildcard value only: table 8's BehaviorGen days, not Markov's
MODEL_JOBS = {"generate_days": "behaviorgen"}
SUBMIT_LIMIT_S = 2400  # the whole submission; `timeout -k` ends a hang instead of CI's limit


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    if missing_binaries():
        install()
    assert not missing_binaries(), f"still missing after apt-get: {missing_binaries()}"
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        codes = cluster.stop()
    assert all(code is not None for code in codes.values()), codes  # every daemon stopped


def test_the_auditors_rerun_through_the_slurm_profile_reproduces_every_file(slurm_cluster, tiny_run):
    """The auditor regenerates the tiny run from scratch (`--forceall`) through `--profile
    profiles/slurm`: every job but the local `all` goes through sbatch and completes, the model jobs
    (and only they) ask for a GPU, every manifest hash matches the local run's, and beyond the
    manifest every data file, results CSV, predictor weight and report comes out byte for byte. One
    rerun checks the auditor, the cluster path and determinism: it is the suite's longest step."""
    before = hashes(tiny_run)
    assert any(k.startswith("results/") for k in before) and any(k.endswith(".pt") for k in before)
    assert {"reports/table3.html", "reports/tiny_fidelity_privacy.ipynb", "reports/figures/table3.png"} <= set(before)
    names = [line.split("  ", 1)[1] for line in (tiny_run / "results/MANIFEST.sha256").read_text().splitlines()]
    assert names == sorted(names) and {"results/table3.csv", "results/table4.csv", "results/tiny/privacy.csv",
                                       "reports/table3.html", "reports/figures/tiny_time_of_day.png"} <= set(names)
    started = time.time()
    # status checks every 2 s instead of the plugin's 40 s: the cluster is ours alone
    proc = subprocess.run(["timeout", "-k", "20", str(SUBMIT_LIMIT_S), sys.executable, "-m", "behaviorflow.audit",
                           "--cores", "2", "--", "--profile", "profiles/slurm",
                           "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2"],
                          cwd=tiny_run, capture_output=True, text=True, env=child_env())
    wall = time.time() - started
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"rc {proc.returncode} after {wall:.0f} s:\n{log[-6000:]}\n{slurm_cluster.logs()}"
    assert "--forceall --profile profiles/slurm" in proc.stdout
    assert f"{len(names)} of {len(names)} hashes match: all hashes match" in proc.stdout

    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    total = int(re.search(r"(\d+) of (\d+) steps \(100%\) done", log).group(2))
    assert len(submitted) == total - 1  # every job but the local `all` went through sbatch
    records = job_records(list(submitted.values()))
    states = {job: (r.get("JobState"), r.get("ExitCode")) for job, r in records.items()}
    assert set(states.values()) == {("COMPLETED", "0:0")}, states
    rules = {job: re.match(r"rule_(\w+?)(?:_wildcards|$)", r["Comment"]).group(1) for job, r in records.items()}
    assert set(rules.values()) >= MODEL_RULES - {"tune_generator"}  # the whole DAG (the tiny run tunes no generator)
    gpu_jobs = {job for job, r in records.items() if "gpu:1" in r.get("TresPerJob", "")}
    assert gpu_jobs == {job for job, rule in rules.items()
                        if rule in MODEL_RULES or MODEL_JOBS.get(rule, "\0") in records[job]["Comment"]}
    assert gpu_jobs and len(gpu_jobs) < len(records)  # the profile's --gpus=1 only where a model runs

    assert hashes(tiny_run) == before  # every file, in the manifest or not
    print(f"SLURM audit: {len(submitted)} jobs submitted, {len(states)} COMPLETED (exit 0:0), {len(gpu_jobs)} with "
          f"--gpus=1; {total} of {total} steps done in {wall:.0f} s; every file as the local run's")
