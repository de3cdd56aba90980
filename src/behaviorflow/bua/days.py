"""One-day generation (BUA §4.3 and Table 2; our table 8): which days, every generator's days on them,
and their fidelity against the real days.

The days: for a seeded draw of test users (`bua.generation.users`), the first day that starts after
their support events; every event of that day is a query event, and the history a generator sees is
every event before it. Stage 2's generation round trains on a seeded draw of training users' days
(`bua.generation.train_days`), each with at least `bua.window` events before it. BUA, BehaviorGen
(the same generator model as the main chain, one-day prompts under the one-day event grammar) and
the Markov baseline write the same days for the same users, each with its own seed.

Fidelity (`day_metrics`): BLEU, TVD and JSD on the event (behaviour), timestamp (time slot) and
location streams, pooled over the days, as BUA's Table 2; BLEU pairs each generated day with the
same user's real day (`validation.metrics`). Our JSD is the divergence (base 2); BUA's eq. 14 is its
square root, the distance.

Downstream use (`day_downstream`, App. G / T on our protocol): the pretrained SASRec fine-tuned
for each sampled test user on its support events alone, on support + each generator's day, and on
the day alone (`predictors.scenarios.finetune_users`, as table 3), scored on that user's query
events. The generated day follows the support, so no query event is trained on.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from behaviorflow.behaviorgen.contexts import UserContext
from behaviorflow.behaviorgen.responses import SYNTHETIC_COLUMNS, ParsedWeek, to_rows
from behaviorflow.data.events import in_order

log = logging.getLogger(__name__)

STREAMS = {"event": "behavior", "timestamp": "slot", "location": "location"}  # BUA's names -> our fields
METRICS = tuple(f"{s}_{m}" for s in STREAMS for m in ("bleu", "tvd", "jsd"))
SETTING = "one_day"


def day_keys(split: pd.DataFrame, which: str, window: int, n: int, seed: int) -> list[tuple[str, int]]:
    """(user_id, event_idx) of the first event of each sampled day: `train` users' days with at least
    `window` events before them, or each `test` user's first day after the support; a seeded draw of
    `n` (all when there are fewer), in (user, event) order."""
    from behaviorflow.behaviorlm.data import draw

    if which not in ("train", "test"):
        raise ValueError(f"day samples come from train or test users, not {which!r}")
    ev = in_order(split[split["split"] == which]).reset_index(drop=True)
    date = ev["ts"].dt.date
    new_day = (ev["user_id"] != ev["user_id"].shift()) | (date != date.shift())
    if which == "train":
        keep = new_day & (ev.groupby("user_id").cumcount() >= window)
    else:
        last_support = ev["ts"].where(ev["part"] == "support").groupby(ev["user_id"]).transform("max").dt.date
        keep = new_day & (ev["part"] == "query") & (date > last_support)
        keep &= keep.astype(int).groupby(ev["user_id"]).cumsum() == 1  # the first such day only
    keys = list(zip(ev.loc[keep, "user_id"].astype(str), ev.loc[keep, "event_idx"].astype(int)))
    return draw(keys, n, seed)


def _by_user(split: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {str(u): g for u, g in in_order(split).groupby("user_id", sort=True)}


def real_days(split: pd.DataFrame, keys: list[tuple[str, int]]) -> pd.DataFrame:
    """The real events of each sampled day (the key's event and the rest of its date)."""
    users, out = _by_user(split), []
    for user, idx in keys:
        g = users[user]
        first = g[g["event_idx"] == idx]
        day = first["ts"].dt.date.iloc[0]
        out.append(g[(g["event_idx"] >= idx) & (g["ts"].dt.date == day)])
    cols = ["user_id", "event_idx", "ts", "weekday", "slot", "location", "behavior"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def history_contexts(split: pd.DataFrame, profiles: pd.DataFrame | None, keys: list[tuple[str, int]]) -> list[UserContext]:
    """What a generator sees of each sampled day: the user's events before it and (for BehaviorGen's
    prompt) the profile; without `profiles` the profile text is empty."""
    users = _by_user(split)
    summary = {} if profiles is None else profiles.set_index("user_id")["summary"].to_dict()
    out = []
    for user, idx in keys:
        g = users[user]
        day = g.loc[g["event_idx"] == idx, "ts"].dt.date.iloc[0]
        out.append(UserContext(user, user, summary.get(user, ""), g[g["event_idx"] < idx], day))
    return out


def day_metrics(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, float]:
    """BLEU, TVD and JSD per stream of the generated days against the real ones (nan when empty)."""
    from behaviorflow.validation.metrics import compare

    if synthetic.empty:
        return dict.fromkeys(METRICS, float("nan"))
    got = compare(real, synthetic)
    return {f"{s}_{m}": got[f"{m}_{s}" if m == "bleu" else f"{m}_{field}"]
            for s, field in STREAMS.items() for m in ("bleu", "tvd", "jsd")}


def metric_rows(real: pd.DataFrame, synthetic: pd.DataFrame, *, dataset: str, model: str, seed: int,
                days: int) -> pd.DataFrame:
    """Long rows (the tables' columns) of one generator's days, with how many days were asked and
    how many came back with events."""
    values = {**day_metrics(real, synthetic),
              "days_generated": float(synthetic.groupby(["user_id", synthetic["ts"].dt.date]).ngroups
                                      if len(synthetic) else 0),
              "events_per_day": float(len(synthetic) / days) if days else float("nan")}
    return pd.DataFrame([{"dataset": dataset, "model": model, "generator": "none", "setting": SETTING,
                          "metric": k, "seed": seed, "value": v, "days": days} for k, v in values.items()])


def markov_days(split: pd.DataFrame, contexts: list[UserContext], *, alpha: float, seed: int,
                slot_minutes: int) -> pd.DataFrame:
    """The Markov baseline (fitted on the training users) writes each context's day."""
    from behaviorflow.behaviorgen.contexts import max_events_per_day
    from behaviorflow.behaviorgen.markov import MarkovGenerator

    model = MarkovGenerator(split[split["part"] == "train"], alpha=alpha, max_per_day=max_events_per_day(split))
    rows = []
    for i, ctx in enumerate(contexts):
        events = model.generate(ctx.events, ctx.start, 0, np.random.default_rng([seed, i]), days=1)
        rows += to_rows(ctx, ctx.start, ParsedWeek(events=events), slot_minutes)
    return synthetic_frame(rows)


def synthetic_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=SYNTHETIC_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"])
    return frame


def generate_days(*, split: str, profiles: str, outputs: dict, dataset: str, generator: str, seed: int,
                  keys: dict, settings: dict, slot_minutes: int, top_zones: int, model: str | None = None,
                  adapter: str | None = None, threads: int | None = None) -> pd.DataFrame:
    """Rule generate_days: Markov's or BehaviorGen's day for each sampled test user (BehaviorGen with
    its one-day prompt and grammar), and their fidelity rows."""
    from dataclasses import replace

    from behaviorflow.atomic import write_csv, write_parquet
    from behaviorflow.behaviorgen.contexts import vocabularies
    from behaviorflow.behaviorgen.generate import generate_with_llm, llm_settings
    from behaviorflow.lm.backends import cached_llm

    split_df, profiles_df = pd.read_parquet(split), pd.read_parquet(profiles)
    sample = day_keys(split_df, "test", keys["window"], keys["users"], keys["seed"])
    contexts = history_contexts(split_df, profiles_df, sample)
    if generator == "markov":
        days = markov_days(split_df, contexts, alpha=settings["markov"]["alpha"], seed=seed,
                           slot_minutes=slot_minutes)
    elif generator == "behaviorgen":
        llm = cached_llm(settings["behaviorgen"], settings["cache_dir"], model, adapter, threads)
        zones, behaviors = vocabularies(split_df, top_zones)
        gen = replace(llm_settings(settings, split_df, slot_minutes, seed=seed), days=1)
        days, calls = generate_with_llm(contexts, llm, gen, zones, behaviors, slot_minutes, f"behaviorgen days seed {seed}")
        log.info("behaviorgen days: %d calls, %d valid, backend calls %d, cache hits %d", len(calls),
                 int(calls["valid"].sum()) if len(calls) else 0, llm.backend_calls, llm.cache_hits)
    else:
        raise ValueError(f"unknown day generator {generator!r}; choose markov or behaviorgen")
    write_parquet(days, outputs["days"])
    rows = metric_rows(real_days(split_df, sample), days, dataset=dataset, model=generator, seed=seed, days=len(sample))
    write_csv(rows, outputs["metrics"])
    return rows


def day_downstream(*, split: str, model_path: str, day_paths: dict, outputs: dict, dataset: str, seed: int,
                   days: dict, predictors: dict, slot_minutes: int, threads: int | None = None) -> pd.DataFrame:
    """Rule day_downstream: the sampled test users' SASRec fine-tuned with and without each
    generator's day (rows: generator, setting real / synthetic / real+synthetic)."""
    from behaviorflow.predictors.scenarios import finetune_predictor

    sample = day_keys(pd.read_parquet(split), "test", days["window"], days["users"], days["seed"])
    return finetune_predictor(model_path, split, day_paths, outputs, dataset, "sasrec", seed, predictors, slot_minutes,
                              threads, users={u for u, _ in sample}, columns={"days": len(sample)})
