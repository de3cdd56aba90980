"""Shared fixtures: paths, the real data beside the checkout, and a tiny workflow in a temp dir."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TOKYO = SHARED_DATA / "tokyo_checkins_2019.csv"
TOKYO_INTENTS = ["Other", "shopping", "dining", "sightseeing", "outdoors", "entertaining", "work-related",
                 "study-related", "personal", "sports", "secret"]

TINY_MODEL = "models/tiny-lm"
TINY_CONFIG = {
    "seed": 1,
    "slot_minutes": 30,
    "datasets": {
        "tiny": {
            "format": "simulated",
            "simulation": {"n_users": 40, "weeks": 2, "events_per_day": 10, "fault_rate": 0.01, "seed": 3},
            "anonymization": {"allow_fixed_key": True},
        }
    },
    "anonymization": {"rotation_months": 3, "top_zones": 10, "k": 3, "max_suppression": 0.1},
    "split": {"support_events": 40, "min_query_events": 10, "min_user_events": 60, "seed": 5},
    "predictors": {"models": ["sasrec", "bert4rec"], "seeds": [1, 2], "max_len": 20, "hidden": 16,
                   "pretrain": {"max_epochs": 3}, "finetune": {"max_epochs": 3}},
    # BehaviorGen's prompt ablation on a tiny random model (built by make_workdir), under the grammar
    "generation": {"generators": ["markov"], "behaviorgen": {
        "transformers": {"model": TINY_MODEL, "tune": False, "dtype": "float32"}, "batch_size": 8, "user_mix": True,
        "sampling": {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 1000}}},
    "validation": {"ablation": {"variants": ["full", "no_role", "no_profile", "no_format", "no_segment"],
                                "users": 2, "weeks": 2, "seeds": [1]}},
    # BehaviorLM's every stage and tables 5-6 on the tiny random model: a few steps each
    "behaviorlm": {"model": TINY_MODEL, "seeds": [1], "prompt": {"history": 3, "list_labels": False},
                   "queries": 16, "train_examples": 12, "select": {"pool": 24, "per_label": 2}, "few_shot": [2, 3],
                   "tuning": {"max_steps": 2, "batch_size": 4, "max_length": 1024, "eval_steps": 1, "patience": 0,
                              "bf16": False, "layers": 0, "target_modules": ["q_proj", "v_proj"]},
                   "btune": {"max_steps": 1}},
    # BUA's states, three stages, reflection pool, rows of tables 7 and 9 and days of tables 8-9 on the tiny model
    # (no_balance differs from bua by a flag only: left out to keep the suite short)
    "bua": {"seeds": [1], "ablations": ["no_stage1", "no_stage2", "no_stage3", "item_emb"], "window": 8, "positions": 3, "text_events": 3, "pool": 24, "val": 4,
            "understanding_tokens": 6, "dtype": "float32", "stage1": {"examples": 8},
            "stage2": {"examples": 8, "generation_examples": 3},
            "generation": {"users": 4, "train_days": 6, "max_new_tokens": 160, "batch_size": 4},
            "stage3": {"examples": 3, "pool": 6, "max_new_tokens": 6},
            "tuning": {"max_steps": 2, "batch_size": 4, "max_length": 2048, "eval_steps": 1, "patience": 0,
                       "bf16": False, "layers": 0, "target_modules": ["q_proj", "v_proj"]}},
}


@pytest.fixture(scope="session")
def tokyo_csv() -> Path:
    assert TOKYO.is_file(), f"real data missing: {TOKYO} (tests read ../shared/data beside the checkout)"
    return TOKYO


def make_workdir(tmp: Path, config: dict) -> Path:
    """A workflow copy with its own config in `tmp` (outputs never touch the checkout); a config
    whose generator model is TINY_MODEL gets the tiny random model built there."""
    tmp.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow", "profiles"):
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, tmp / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp / item)
    (tmp / "config").mkdir(exist_ok=True)
    (tmp / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    models = {config.get("generation", {}).get("behaviorgen", {}).get("transformers", {}).get("model"),
              config.get("behaviorlm", {}).get("model")}
    if TINY_MODEL in models:
        from tiny_lm import build_tiny_model

        build_tiny_model(tmp / TINY_MODEL, seed=5)
    return tmp


def child_env(env: dict | None = None) -> dict:
    """This environment plus `env` (values of None unset), with this interpreter's bin first on PATH."""
    full_env = {**os.environ, **(env or {})}
    for key in [k for k, v in full_env.items() if v is None]:
        del full_env[key]  # None means: unset in the child
    full_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full_env.get("PATH", "")
    return full_env


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> int:
    """SIGTERM to a started server or daemon, SIGKILL if it has not exited after `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode


def run_snakemake(workdir: Path, *args: str, env: dict | None = None, check: bool = True,
                  timeout: int = 900) -> subprocess.CompletedProcess:
    """Run snakemake from this interpreter's environment in `workdir` (env values of None unset)."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir,
                          capture_output=True, text=True, env=child_env(env), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def hashes(root: Path) -> dict[str, str]:
    """sha256 of every data file, results CSV, predictor weight and report under a workflow dir."""
    files = [*(root / "data").rglob("*"), *(root / "results").rglob("*.csv"), *(root / "models").rglob("*.pt"),
             *(root / "reports").rglob("*")]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files) if p.is_file()}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny simulated config run to its deepest targets once per session."""
    work = make_workdir(tmp_path_factory.mktemp("tiny"), TINY_CONFIG)
    run_snakemake(work, timeout=2400)  # a hang guard: every stage of all three papers runs here
    return work
