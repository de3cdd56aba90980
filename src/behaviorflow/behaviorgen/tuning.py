"""BehaviorGen's generator tuning: training users' real weeks as prompt -> completion examples, LoRA-tuned
on the one training module (`behaviorflow.lm.tuning`)."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from behaviorflow.behaviorgen.contexts import next_monday, vocabularies
from behaviorflow.behaviorgen.prompts import (
    WeekRequest,
    build_messages,
    completion_text,
    sample_events,
)

log = logging.getLogger(__name__)


def training_examples(split: pd.DataFrame, profiles: pd.DataFrame, zones: list[str], behaviors: list[str],
                      sample_days: int, max_examples: int, seed: int) -> list[tuple[list[dict], str]]:
    """(prompt messages, completion) pairs from training users' real weeks, in the generation format.

    Each example asks for one Monday-aligned week of a training user, showing the `sample_days`
    days before it; the completion is that week's real events. Only training users are used.
    """
    summary = profiles.set_index("user_id")["summary"].to_dict()
    train = split[split["part"] == "train"].sort_values(["user_id", "event_idx"])
    examples = []
    for uid, ev in train.groupby("user_id", sort=True):
        first = ev["ts"].min().date()
        week = next_monday(first + dt.timedelta(days=sample_days - 1))
        last = ev["ts"].max().date()
        while week + dt.timedelta(days=6) <= last:
            before = ev[ev["ts"].dt.date < week]
            target = ev[(ev["ts"].dt.date >= week) & (ev["ts"].dt.date < week + dt.timedelta(days=7))]
            if len(before) and len(target):
                msgs = build_messages(WeekRequest(uid, week), summary[uid], sample_events(before, sample_days),
                                      zones, behaviors, "full")
                examples.append((msgs, completion_text(target)))
            week += dt.timedelta(days=7)
    order = np.random.default_rng(seed).permutation(len(examples))
    return [examples[i] for i in order[:max_examples]]


def tune_generator(*, model: str, split: str, profiles: str, adapter: str, lora: dict, device: str,
                   sample_days: int, top_zones: int, threads: int | None = None) -> dict:
    """Rule tune_generator: LoRA-tune the generator on the training users' weeks (prompt -> completion)."""
    import time

    from transformers import AutoTokenizer

    from behaviorflow.config import as_settings
    from behaviorflow.lm.tuning import (
        TuningSettings,
        encode_completion,
        split_eval,
        tune,
    )

    settings = as_settings(TuningSettings, lora)
    split_df, profiles_df = pd.read_parquet(split), pd.read_parquet(profiles)
    zones, behaviors = vocabularies(split_df, top_zones)
    pairs = training_examples(split_df, profiles_df, zones, behaviors, sample_days, settings.max_examples,
                              settings.seed)
    tok = AutoTokenizer.from_pretrained(model)
    encoded = [encode_completion(tok, messages, completion, settings.max_length) for messages, completion in pairs]
    examples = [e for e in encoded if e is not None]
    if len(examples) < len(encoded):
        log.warning("%d example(s) skipped: the prompt alone fills max_length=%d tokens",
                    len(encoded) - len(examples), settings.max_length)
    train, held = split_eval(examples, settings.eval_share, settings.seed)
    t0 = time.perf_counter()
    report = tune(model, train, adapter, settings, eval_examples=held, device=device, threads=threads,
                  desc="tune_generator")
    log.info("tune_generator took %.1f s (%d examples, %d held out, %d steps)", time.perf_counter() - t0,
             len(train), len(held), report["steps"])
    return report
