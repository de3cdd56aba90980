"""BehaviorGen generation: requests from profiles and events, validated responses, retries, outputs.

`population.parquet`: synthetic users generated from training users' profiles and events (for
pretraining augmentation). `personal.parquet`: for each user of `personal_splits` (val and/or
test), weeks generated from their profile and support events (for fine-tuning replacement and
augmentation).
`generation_log.parquet`: one row per call attempt (key, cache hit, tokens, latency, valid, error).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from tqdm import tqdm

from behaviorflow.atomic import write_json, write_parquet
from behaviorflow.events import WEEKDAYS, parse_event
from behaviorflow.grammar import EventGrammar
from behaviorflow.llm import CachedLLM, Sampling
from behaviorflow.prompts import WeekRequest, build_messages, sample_events

log = logging.getLogger(__name__)

SYNTHETIC_COLUMNS = ["user_id", "source_user", "week_start", "ts", "weekday", "slot", "location", "behavior"]


@dataclass
class ParsedWeek:
    events: list[tuple[dt.date, int, str, str]] = field(default_factory=list)
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


def parse_response(text: str, request: WeekRequest, zones: set[str], behaviors: set[str]) -> ParsedWeek:
    """Parse and validate a response; the first problem found is the error (None when valid).

    Every non-empty line must be `Weekday, HH:MM, zone, behaviour` with a zone and behaviour from
    the vocabulary; weekdays must follow the requested days in order (a new week starts when the
    weekday goes back to an earlier day); times may not decrease within a day.
    """
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ParsedWeek(error="empty response")
    days = request.days
    out, day_idx, prev = [], 0, -1
    for n, line in enumerate(lines, start=1):
        try:
            weekday, minutes, zone, behavior = parse_event(line)
        except ValueError as exc:
            return ParsedWeek(error=f"line {n}: {exc}")
        if zone not in zones:
            return ParsedWeek(error=f"line {n}: zone {zone!r} not in the vocabulary")
        if behavior not in behaviors:
            return ParsedWeek(error=f"line {n}: behaviour {behavior!r} not in the vocabulary")
        j = next((k for k in range(day_idx, len(days)) if days[k].weekday() == weekday), None)
        if j is None:
            return ParsedWeek(error=f"line {n}: {WEEKDAYS[weekday]} is not a requested day at this point "
                                    f"({days[day_idx].isoformat()} .. {days[-1].isoformat()})")
        if j == day_idx and minutes < prev:
            return ParsedWeek(error=f"line {n}: time goes backwards within {days[j].isoformat()}")
        if j != day_idx:
            prev = -1
        day_idx, prev = j, minutes
        out.append((days[j], minutes, zone, behavior))
    return ParsedWeek(events=out)


def next_monday(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=7 - day.weekday())


@dataclass
class UserContext:
    """Everything a generator needs about one source user."""

    user_id: str
    synthetic_id: str
    profile_text: str
    events: pd.DataFrame  # visible events (train: all; val/test: support), ts-sorted
    start: dt.date  # first Monday to generate


def user_contexts(split: pd.DataFrame, profiles: pd.DataFrame, population_users: int, seed: int,
                  personal_splits: tuple[str, ...] = ("val", "test")):
    """Source users for population (a seeded sample of train users) and personal (every user of
    `personal_splits`)."""
    visible = split[split["part"].isin(["train", "support"])].sort_values(["user_id", "event_idx"])
    by_user = dict(tuple(visible.groupby("user_id")))
    summary = profiles.set_index("user_id")["summary"].to_dict()
    train = sorted(profiles.loc[profiles["split"] == "train", "user_id"])
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(train, size=min(population_users, len(train)), replace=False)) if train else []

    def ctx(uid, synthetic_id):
        ev = by_user[uid]
        return UserContext(uid, synthetic_id, summary[uid], ev, next_monday(ev["ts"].max().date()))

    population = [ctx(u, f"syn-{u}") for u in chosen]
    personal = [ctx(u, u) for u in sorted(profiles.loc[profiles["split"].isin(list(personal_splits)), "user_id"])]
    return population, personal


def _to_rows(ctx: UserContext, week_start: dt.date, parsed: ParsedWeek, slot_minutes: int) -> list[tuple]:
    rows = []
    for day, minutes, zone, behavior in parsed.events:
        slot = minutes // slot_minutes * slot_minutes
        ts = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=slot)
        rows.append((ctx.synthetic_id, ctx.user_id, week_start, ts, day.weekday(), slot, zone, behavior))
    return rows


@dataclass
class LLMGenerationSettings:
    variant: str = "full"
    weeks: int = 1
    sample_days: int = 7
    max_attempts: int = 3
    batch_size: int = 8
    seed: int = 13
    sampling: Sampling = field(default_factory=Sampling)
    # grammar-constrained decoding (local models): every response parses; None = unconstrained
    constrained: bool = False
    slot_minutes: int = 30
    max_per_day: int = 48


def generate_with_llm(contexts: list[UserContext], llm: CachedLLM, settings: LLMGenerationSettings,
                      zones: list[str], behaviors: list[str], slot_minutes: int, desc: str):
    """Generate `settings.weeks` weeks per context; returns (events frame, log frame)."""
    segmented = settings.variant != "no_segment"
    jobs = []  # (ctx, WeekRequest, messages, sampling)
    for ctx in contexts:
        sample = sample_events(ctx.events, settings.sample_days)
        if segmented:
            reqs = [WeekRequest(ctx.user_id, ctx.start + dt.timedelta(weeks=w)) for w in range(settings.weeks)]
        else:
            reqs = [WeekRequest(ctx.user_id, ctx.start, settings.weeks)]
        for req in reqs:
            sampling = settings.sampling
            if settings.constrained:
                sampling = replace(sampling, grammar=EventGrammar(
                    tuple(d.weekday() for d in req.days), tuple(zones), tuple(behaviors), settings.slot_minutes,
                    settings.max_per_day))
            jobs.append((ctx, req, build_messages(req, ctx.profile_text, sample, zones, behaviors, settings.variant),
                         sampling))
    zone_set, behavior_set = set(zones), set(behaviors)
    rows, logs = [], []
    # batches of similar prompt length: padding is computed like any token (seeds stay per call)
    pending = sorted(range(len(jobs)), key=lambda j: (sum(len(m["content"]) for m in jobs[j][2]), j))
    bar = tqdm(total=len(jobs), desc=desc, unit="call", mininterval=2.0)
    for attempt in range(settings.max_attempts):
        still = []
        for start in range(0, len(pending), settings.batch_size):
            batch = pending[start:start + settings.batch_size]
            # a new seed per attempt; seeds differ across calls so retries are fresh samples
            calls = [(jobs[j][2], jobs[j][3], settings.seed + 1000 * attempt + j) for j in batch]
            for j, res in zip(batch, llm.complete_batch(calls)):
                ctx, req = jobs[j][:2]
                parsed = (parse_response(res.completion.text, req, zone_set, behavior_set)
                          if res.completion else ParsedWeek(error=f"backend: {res.error}"))
                comp = res.completion
                logs.append({"call": j, "user_id": ctx.synthetic_id, "week_start": req.start, "attempt": attempt + 1,
                             "key": res.key, "cache_hit": res.cache_hit, "valid": parsed.valid,
                             "error": parsed.error, "events": len(parsed.events),
                             "prompt_tokens": comp.prompt_tokens if comp else 0,
                             "completion_tokens": comp.completion_tokens if comp else 0,
                             "latency_s": comp.latency_s if comp else 0.0})
                if parsed.valid:
                    rows += _to_rows(ctx, req.start, parsed, slot_minutes)
                    bar.update(1)
                else:
                    still.append(j)
        pending = still
        if not pending:
            break
    bar.update(len(pending))
    bar.close()
    for j in pending:
        log.warning("call %d (%s, %s) still invalid after %d attempts: %s", j, jobs[j][0].synthetic_id,
                    jobs[j][1].start, settings.max_attempts,
                    next(r["error"] for r in reversed(logs) if r["call"] == j))
    events = pd.DataFrame(rows, columns=SYNTHETIC_COLUMNS).sort_values(["user_id", "week_start", "ts"], kind="stable")
    log_df = pd.DataFrame(logs)
    if not log_df.empty:
        log_df = log_df.sort_values(["call", "attempt"], kind="stable")
    return events.reset_index(drop=True), log_df.reset_index(drop=True)


def summarize_log(log_df: pd.DataFrame, price_in_per_1k: float = 0.0, price_out_per_1k: float = 0.0) -> dict:
    """Calls, cache hits, Pass@1 (first attempt fully valid), tokens and estimated cost."""
    if log_df.empty:
        return {"calls": 0, "attempts": 0, "pass_at_1": None, "valid_calls": 0, "cache_hits": 0,
                "prompt_tokens": 0, "completion_tokens": 0, "estimated_cost": 0.0}
    first = log_df[log_df["attempt"] == 1]
    valid_calls = int(log_df.groupby("call")["valid"].any().sum())
    fresh = log_df[~log_df["cache_hit"]]
    p_in, p_out = int(log_df["prompt_tokens"].sum()), int(log_df["completion_tokens"].sum())
    return {
        "calls": int(log_df["call"].nunique()),
        "attempts": int(len(log_df)),
        "pass_at_1": round(float(first["valid"].mean()), 4),
        "valid_calls": valid_calls,
        "failed_calls": int(log_df["call"].nunique()) - valid_calls,
        "cache_hits": int(log_df["cache_hit"].sum()),
        "uncached_attempts": int(len(fresh)),
        "prompt_tokens": p_in,
        "completion_tokens": p_out,
        "estimated_cost": round((fresh["prompt_tokens"].sum() * price_in_per_1k
                                 + fresh["completion_tokens"].sum() * price_out_per_1k) / 1000, 4),
    }


def markov_generate(contexts: list[UserContext], generator, weeks: int, seed: int, slot_minutes: int, desc: str):
    """The Markov baseline through the same outputs (one log row per user-week, no tokens)."""
    rows, logs = [], []
    for i, ctx in enumerate(tqdm(contexts, desc=desc, unit="user", mininterval=2.0)):
        rng = np.random.default_rng([seed, i])
        events = generator.generate(ctx.events, ctx.start, weeks, rng)
        for w in range(weeks):
            week_start = ctx.start + dt.timedelta(weeks=w)
            week = [e for e in events if week_start <= e[0] < week_start + dt.timedelta(days=7)]
            rows += _to_rows(ctx, week_start, ParsedWeek(events=week), slot_minutes)
            logs.append({"call": len(logs), "user_id": ctx.synthetic_id, "week_start": week_start, "attempt": 1,
                         "key": "", "cache_hit": False, "valid": True, "error": None, "events": len(week),
                         "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0})
    return pd.DataFrame(rows, columns=SYNTHETIC_COLUMNS), pd.DataFrame(logs)


def max_events_per_day(split: pd.DataFrame) -> int:
    """The most events any visible user-day has: the grammar's cap on a generated day."""
    visible = split[split["part"].isin(["train", "support"])]
    return int(visible.groupby(["user_id", visible["ts"].dt.date]).size().max())


def vocabularies(split: pd.DataFrame, top_zones: int) -> tuple[list[str], list[str]]:
    """Zones z1..zN, z_other and the behaviours seen in the visible events."""
    zones = [f"z{i}" for i in range(1, top_zones + 1)] + ["z_other"]
    visible = split[split["part"].isin(["train", "support"])]
    return zones, sorted(visible["behavior"].unique())


def run_generator(split_path, profiles_path, outputs: dict, generator: str, settings: dict, slot_minutes: int,
                  top_zones: int, llm: CachedLLM | None = None) -> dict:
    """Generate population and personal synthetic data with `generator`; write the four outputs."""
    split = pd.read_parquet(split_path)
    profiles = pd.read_parquet(profiles_path)
    population, personal = user_contexts(split, profiles, settings["population_users"], settings["seed"],
                                         tuple(settings.get("personal_splits", ("val", "test"))))
    zones, behaviors = vocabularies(split, top_zones)
    frames = {}
    if generator == "markov":
        from behaviorflow.markov import MarkovGenerator

        train = split[split["part"] == "train"]
        model = MarkovGenerator(train, alpha=settings["markov"]["alpha"])
        for name, ctxs, offset in (("population", population, 0), ("personal", personal, 1)):
            frames[name] = markov_generate(ctxs, model, settings["weeks"], settings["seed"] + offset,
                                           slot_minutes, f"markov {name}")
    elif generator == "behaviorgen":
        bg = settings["behaviorgen"]
        gen_settings = LLMGenerationSettings(
            variant=bg["variant"], weeks=settings["weeks"], sample_days=bg["sample_days"],
            max_attempts=bg["max_attempts"], batch_size=bg["batch_size"], seed=settings["seed"],
            sampling=Sampling(**bg["sampling"]), slot_minutes=slot_minutes,
            constrained=bg.get("constrained", False) and bg["backend"] == "transformers",
            max_per_day=max_events_per_day(split))
        for name, ctxs in (("population", population), ("personal", personal)):
            frames[name] = generate_with_llm(ctxs, llm, gen_settings, zones, behaviors, slot_minutes,
                                             f"behaviorgen {name}")
    else:
        raise ValueError(f"unknown generator {generator!r}")
    logs = []
    for name in ("population", "personal"):
        events, log_df = frames[name]
        write_parquet(events, outputs[name])
        logs.append(log_df.assign(output=name, call=lambda d, n=name: n + ":" + d["call"].astype(str)))
    log_all = pd.concat(logs, ignore_index=True)
    bg = settings.get("behaviorgen", {})
    prices = bg.get("openai", {}) if generator == "behaviorgen" and bg.get("backend") == "openai" else {}
    summary = summarize_log(log_all, prices.get("price_in_per_1k", 0.0), prices.get("price_out_per_1k", 0.0))
    if llm is not None:
        summary["backend_calls"] = llm.backend_calls
        summary["cache_hits_this_run"] = llm.cache_hits
    write_parquet(log_all, outputs["log"])
    summary.update({"generator": generator, "population_users": len(population), "personal_users": len(personal),
                    "population_events": int(len(frames["population"][0])),
                    "personal_events": int(len(frames["personal"][0]))})
    write_json(outputs["summary"], summary)
    log.info("%s: %s", generator, ", ".join(f"{k}={v}" for k, v in summary.items()))
    return summary


def training_examples(split: pd.DataFrame, profiles: pd.DataFrame, zones: list[str], behaviors: list[str],
                      sample_days: int, max_examples: int, seed: int) -> list[tuple[list[dict], str]]:
    """(prompt messages, completion) pairs from training users' real weeks, in the generation format.

    Each example asks for one Monday-aligned week of a training user, showing the `sample_days`
    days before it; the completion is that week's real events. Only training users are used.
    """
    from behaviorflow.prompts import completion_text

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


def make_llm(generator: str, settings: dict, model=None, adapter=None, threads: int | None = None):
    """The cached LLM a generator needs (None for the Markov baseline)."""
    if generator != "behaviorgen":
        return None
    from behaviorflow.llm import LLMCache, OpenAIBackend

    bg = settings["behaviorgen"]
    if bg["backend"] == "openai":
        api = bg["openai"]
        backend = OpenAIBackend(api["model"], api["base_url"], api["key_env"], api["max_retries"], api["timeout_s"])
    else:
        from behaviorflow.local_lm import TransformersBackend

        tf = bg["transformers"]
        backend = TransformersBackend(model, adapter, tf["device"], threads=threads, dtype=tf.get("dtype", "float32"))
    return CachedLLM(backend, LLMCache(settings["cache_dir"]))
