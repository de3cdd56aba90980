"""BehaviorGen's prompt ablation: each variant generates for the same fixed, seeded users (table 4's data)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd

from behaviorflow.behaviorgen.contexts import user_contexts, vocabularies
from behaviorflow.behaviorgen.generate import generate_with_llm, llm_settings
from behaviorflow.behaviorgen.outputs import write_outputs
from behaviorflow.lm.backends import cached_llm

log = logging.getLogger(__name__)


def ablation_users(profiles: pd.DataFrame, split_name: str, n: int, seed: int) -> list[str]:
    """The fixed, seeded subset of `split_name` users every ablation variant generates for."""
    users = sorted(profiles.loc[profiles["split"] == split_name, "user_id"])
    if not users:
        raise ValueError(f"the ablation needs {split_name} users, and the split has none; "
                         "set validation.ablation.split to a split with users")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(users, size=min(n, len(users)), replace=False))


def unconstrained_pass(contexts, llm, settings, zones, behaviors, slot_minutes, desc) -> dict:
    """Pass@1 without the grammar: the first attempt of every call with the same model, prompts and
    seeds, decoded freely; and how the failures failed (the parser's first error, line number dropped)."""
    _, log_df = generate_with_llm(contexts, llm, replace(settings, constrained=False, max_attempts=1), zones,
                                  behaviors, slot_minutes, desc)
    errors = log_df.loc[~log_df["valid"], "error"].str.replace(r"^line \d+: ", "", regex=True)
    # one kind of error, whatever the quoted text and numbers
    errors = errors.str.replace(r"'[^']*'|\"[^\"]*\"", "'…'", regex=True).str.replace(r"\d+", "N", regex=True)
    return {"pass_at_1_unconstrained": round(float(log_df["valid"].mean()), 4),
            "unconstrained_errors": dict(sorted(Counter(errors).items(), key=lambda kv: (-kv[1], kv[0])))}


def generate_ablation(*, split: str, profiles: str, outputs: dict, settings: dict, ablation: dict, variant: str,
                      seed: int, slot_minutes: int, top_zones: int, model: str | None = None,
                      adapter: str | None = None, threads: int | None = None) -> dict:
    """Rule generate_ablation: one prompt variant on the ablation's fixed users: weeks, call log and summary."""
    llm = cached_llm(settings["behaviorgen"], settings["cache_dir"], model, adapter, threads)
    split_df, profiles_df = pd.read_parquet(split), pd.read_parquet(profiles)
    users = set(ablation_users(profiles_df, ablation["split"], ablation["users"], settings["seed"]))
    _, personal = user_contexts(split_df, profiles_df, 0, settings["seed"], (ablation["split"],))
    contexts = [c for c in personal if c.user_id in users]
    zones, behaviors = vocabularies(split_df, top_zones)
    gen_settings = llm_settings({**settings, "weeks": ablation["weeks"]}, split_df, slot_minutes, variant=variant,
                                seed=seed)
    events, log_df = generate_with_llm(contexts, llm, gen_settings, zones, behaviors, slot_minutes,
                                       f"ablation {variant} seed {seed}")
    free = unconstrained_pass(contexts, llm, gen_settings, zones, behaviors, slot_minutes,
                              f"ablation {variant} seed {seed} unconstrained") \
        if gen_settings.constrained and ablation.get("unconstrained_pass_at_1", True) else {}
    summary = write_outputs(events, log_df, outputs["weeks"], outputs, llm, f"ablation {variant} seed {seed}",
                            variant=variant, seed=seed, users=sorted(users), weeks=ablation["weeks"],
                            constrained=gen_settings.constrained, **free)
    log.info("backend calls this run: %d (cache hits: %d)", llm.backend_calls, llm.cache_hits)
    return summary
