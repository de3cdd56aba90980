"""Run a training stage (BehaviorLM's A- and B-tuning, BUA's curriculum stages) in this process, or
data-parallel over N processes with torch DDP (`torchrun`): `behaviorlm.processes` / `bua.processes`
in config. The stage's keyword arguments travel as JSON; every process runs the same stage,
`lm.tuning.tune` (transformers.Trainer) shards the batches and only rank 0 writes the outputs.

    python -m torch.distributed.run --standalone --nproc_per_node=N -m behaviorflow.behaviorlm.launch \
        behaviorflow.MODULE:FUNCTION JSON

It imports nothing of the library: the rules' functions (`behaviorlm.stages.behaviorlm_atune`,
`behaviorlm_btune`, `bua.stages.bua_stage`) hand it the stage function itself.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable


def stage_name(function: Callable) -> str:
    """`module:function` of a stage function (how torchrun's processes find it)."""
    return f"{function.__module__}:{function.__qualname__}"


def resolve_stage(name: str) -> Callable:
    """The stage function named `behaviorflow.<module>:<function>`."""
    module, _, function = name.partition(":")
    if not module.startswith("behaviorflow.") or not function:
        raise ValueError(f"unknown stage {name!r}: expected behaviorflow.<module>:<function>")
    return getattr(importlib.import_module(module), function)


def run_stage(function: Callable, processes: int = 1, /, **kwargs) -> None:
    """`function(**kwargs)` here, or in `processes` processes under torchrun (both positional only:
    a stage's own arguments may carry any name, BUA's `stage` among them).

    The rule's library function imports the stage function it runs and hands it here, so the
    rule's code version (`codedeps`, which follows import statements) covers the stage's modules,
    `lm.tuning` included, and a change to them reruns the rule. (A stage looked up here by a name
    string was invisible to it: BehaviorLM's and BUA's training rules did not rerun when
    `lm.tuning` or their stage modules changed.)"""
    if processes <= 1 or "WORLD_SIZE" in os.environ:
        function(**kwargs)
        return
    env = dict(os.environ)
    if kwargs.get("threads"):  # the job's threads shared among its processes
        kwargs = {**kwargs, "threads": max(1, int(kwargs["threads"]) // processes)}
        env["OMP_NUM_THREADS"] = str(kwargs["threads"])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           "-m", "behaviorflow.behaviorlm.launch", stage_name(function), json.dumps(kwargs, default=str)]
    subprocess.run(cmd, env=env, check=True)


def main(argv: list[str] | None = None) -> None:
    name, payload = (argv or sys.argv[1:])[:2]
    run_stage(resolve_stage(name), **json.loads(payload))


if __name__ == "__main__":
    main()
