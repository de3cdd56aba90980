"""Shared fixtures: paths, the real data beside the checkout, and a tiny workflow in a temp dir."""

from __future__ import annotations

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
}


@pytest.fixture(scope="session")
def tokyo_csv() -> Path:
    assert TOKYO.is_file(), f"real data missing: {TOKYO} (tests read ../shared/data beside the checkout)"
    return TOKYO


def make_workdir(tmp: Path, config: dict) -> Path:
    """A workflow copy with its own config in `tmp` (outputs never touch the checkout)."""
    tmp.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow", "profiles"):
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, tmp / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp / item)
    (tmp / "config").mkdir(exist_ok=True)
    (tmp / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp


def run_snakemake(workdir: Path, *args: str, env: dict | None = None, check: bool = True,
                  timeout: int = 900) -> subprocess.CompletedProcess:
    """Run snakemake from this interpreter's environment in `workdir` (env values of None unset)."""
    full_env = {**os.environ, **(env or {})}
    for key in [k for k, v in full_env.items() if v is None]:
        del full_env[key]  # None means: unset in the child
    full_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full_env.get("PATH", "")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir,
                          capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny simulated config run to its deepest targets once per session."""
    work = make_workdir(tmp_path_factory.mktemp("tiny"), TINY_CONFIG)
    run_snakemake(work)
    return work
