"""Run a training stage (BehaviorLM's A- and B-tuning, BUA's curriculum stages) in this process, or
data-parallel over N processes with torch DDP (`torchrun`): `behaviorlm.processes` / `bua.processes`
in config. The stage's keyword arguments travel as JSON; every process runs the same stage,
`lm.tuning.tune` (transformers.Trainer) shards the batches and only rank 0 writes the outputs.

    python -m torch.distributed.run --standalone --nproc_per_node=N -m behaviorflow.behaviorlm.launch STAGE JSON
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

STAGES = {"atune": "behaviorflow.behaviorlm.stages:atune", "btune": "behaviorflow.behaviorlm.stages:btune",
          "bua_stage": "behaviorflow.bua.stages:train_stage"}


def run_stage(entry: str, processes: int = 1, **kwargs) -> None:
    """The stage function `STAGES[entry]` called with `kwargs` here, or under torchrun with
    `processes` processes."""
    if entry not in STAGES:
        raise ValueError(f"unknown stage {entry!r}; choose one of {sorted(STAGES)}")
    if processes <= 1 or "WORLD_SIZE" in os.environ:
        module, name = STAGES[entry].split(":")
        getattr(importlib.import_module(module), name)(**kwargs)
        return
    env = dict(os.environ)
    if kwargs.get("threads"):  # the job's threads shared among its processes
        kwargs = {**kwargs, "threads": max(1, int(kwargs["threads"]) // processes)}
        env["OMP_NUM_THREADS"] = str(kwargs["threads"])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           "-m", "behaviorflow.behaviorlm.launch", entry, json.dumps(kwargs, default=str)]
    subprocess.run(cmd, env=env, check=True)


def behaviorlm_atune(processes: int = 1, **kwargs) -> None:
    """Rules behaviorlm_atune and behaviorlm_tail_first: `stages.atune`, data-parallel when processes > 1."""
    run_stage("atune", processes, **kwargs)


def behaviorlm_btune(processes: int = 1, **kwargs) -> None:
    """Rule behaviorlm_btune: `stages.btune`, data-parallel when processes > 1."""
    run_stage("btune", processes, **kwargs)


def bua_stage(processes: int = 1, **kwargs) -> None:
    """Rules bua_stage1, bua_stage2, bua_stage3: `bua.stages.train_stage`, data-parallel when processes > 1."""
    run_stage("bua_stage", processes, **kwargs)


def main(argv: list[str] | None = None) -> None:
    entry, payload = (argv or sys.argv[1:])[:2]
    run_stage(entry, **json.loads(payload))


if __name__ == "__main__":
    main()
