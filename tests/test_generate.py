"""Prompts, response validation, the LLM cache, and the Markov baseline."""

import datetime as dt
import json
import multiprocessing as mp

import numpy as np
import pandas as pd
import pytest

from behaviorflow.behaviorgen.generate import (
    parse_response,
    user_contexts,
    vocabularies,
)
from behaviorflow.behaviorgen.markov import MarkovGenerator
from behaviorflow.behaviorgen.prompts import (
    ROLE,
    VARIANTS,
    WeekRequest,
    build_messages,
    sample_events,
)
from behaviorflow.lm.backends import CachedLLM, Completion, LLMCache, Sampling
from behaviorflow.validation.metrics import jsd

MONDAY = dt.date(2024, 4, 29)
ZONES = {"z1", "z2", "z_other"}
BEHAVIORS = {"messaging", "music"}


@pytest.fixture(scope="module")
def tiny(tiny_run):
    split = pd.read_parquet(tiny_run / "data/processed/tiny/split.parquet")
    profiles = pd.read_parquet(tiny_run / "data/processed/tiny/profiles.parquet")
    return split, profiles


def test_prompt_variants_drop_one_ingredient_each(tiny):
    split, profiles = tiny
    population, personal = user_contexts(split, profiles, population_users=3, seed=1)
    ctx = personal[0]
    sample = sample_events(ctx.events, 7)
    assert sample["ts"].dt.date.nunique() <= 7
    assert sample["ts"].max() == ctx.events["ts"].max()  # the most recent days
    zones, behaviors = vocabularies(split, 10)
    msgs = {v: build_messages(WeekRequest(ctx.user_id, ctx.start, 1 if v != "no_segment" else 3), ctx.profile_text,
                              sample, zones, behaviors, v) for v in VARIANTS}
    full = msgs["full"]
    assert full[0] == {"role": "system", "content": ROLE}
    assert "User profile: " + ctx.profile_text in full[1]["content"] and "Output format" in full[1]["content"]
    assert all(m["role"] != "system" for m in msgs["no_role"])
    assert "User profile" not in msgs["no_profile"][-1]["content"]
    assert "Output format" not in msgs["no_format"][-1]["content"]
    assert "for the 3 weeks from Monday" in msgs["no_segment"][-1]["content"]
    assert f"to Sunday {(ctx.start + dt.timedelta(days=6)).isoformat()}" in full[1]["content"]
    assert ctx.start.weekday() == 0 and ctx.start > ctx.events["ts"].max().date()
    with pytest.raises(ValueError, match="unknown prompt variant"):
        build_messages(WeekRequest("u", MONDAY), "", sample, zones, behaviors, "no_idea")


def test_population_sources_are_train_users_and_personal_are_val_test(tiny):
    split, profiles = tiny
    population, personal = user_contexts(split, profiles, population_users=5, seed=2)
    roles = profiles.set_index("user_id")["split"]
    assert len(population) == 5 and all(roles[c.user_id] == "train" for c in population)
    assert {roles[c.user_id] for c in personal} == {"val", "test"}
    # personal contexts only see support events
    for c in personal:
        assert set(c.events["part"]) == {"support"}
        assert len(c.events) == ((split.user_id == c.user_id) & (split.part == "support")).sum()


def test_representative_sources_hold_the_training_mix_closer_than_random_ones(tiny):
    """The representative choice: train users whose pooled behaviour mix is the training pool's."""
    split, profiles = tiny
    train = split[split["part"] == "train"]

    def gap(mode, seed):
        population, _ = user_contexts(split, profiles, 3, seed, population_sources=mode)
        assert len(population) == 3 and len({c.user_id for c in population}) == 3
        chosen = train[train["user_id"].isin([c.user_id for c in population])]
        return jsd(train["behavior"], chosen["behavior"]), [c.user_id for c in population]

    representative, chosen = gap("representative", 1)
    assert gap("representative", 1)[1] == chosen  # seeded: the same users again
    assert representative < np.mean([gap("random", seed)[0] for seed in range(5)])
    with pytest.raises(ValueError, match="population_sources"):
        user_contexts(split, profiles, 3, 1, population_sources="best")


VALID = "Monday, 08:00, z1, messaging\nMonday, 08:00, z2, music\nWednesday, 21:15, z_other, music\nSunday, 23:59, z1, messaging"


@pytest.mark.parametrize("text,error", [
    (VALID, None),
    ("", "empty response"),
    ("Here is the week:\n" + VALID, "line 1: expected 4 comma-separated fields"),
    ("Monday, 08:00, z9, music", "line 1: zone 'z9' not in the vocabulary"),
    ("Monday, 08:00, z1, dancing", "line 1: behaviour 'dancing' not in the vocabulary"),
    ("Monday, 25:00, z1, music", "line 1: time '25:00' is outside the day"),
    ("Monday, 09:00, z1, music\nMonday, 08:00, z1, music", "line 2: time goes backwards within 2024-04-29"),
    ("Tuesday, 09:00, z1, music\nMonday, 08:00, z1, music", "line 2: Monday is not a requested day at this point"),
])
def test_parse_response(text, error):
    parsed = parse_response(text, WeekRequest("u", MONDAY), ZONES, BEHAVIORS)
    assert parsed.error == error or (error and parsed.error.startswith(error)), parsed.error
    if error is None:
        assert [e[0] for e in parsed.events] == [MONDAY, MONDAY, MONDAY + dt.timedelta(2), MONDAY + dt.timedelta(6)]
        assert parsed.events[2][1] == 21 * 60 + 15


def test_multi_week_responses_advance_weeks():
    text = "Friday, 10:00, z1, music\nMonday, 09:00, z1, music\nMonday, 10:00, z2, music"
    parsed = parse_response(text, WeekRequest("u", MONDAY, weeks=2), ZONES, BEHAVIORS)
    assert [e[0] for e in parsed.events] == [MONDAY + dt.timedelta(4), MONDAY + dt.timedelta(7),
                                             MONDAY + dt.timedelta(7)]
    more = text + "\nTuesday, 08:00, z1, music\nMonday, 07:00, z1, music"  # a third Monday: not requested
    assert parse_response(more, WeekRequest("u", MONDAY, 2), ZONES,
                          BEHAVIORS).error.startswith("line 5: Monday is not a requested day")


def test_cache_key_covers_every_ingredient():
    base = dict(identity={"backend": "openai", "model": "m"}, messages=[{"role": "user", "content": "x"}],
                sampling=Sampling(), seed=1)
    key = LLMCache.key(**base)
    assert key == LLMCache.key(**base)
    variants = [dict(base, identity={"backend": "openai", "model": "m2"}),
                dict(base, messages=[{"role": "user", "content": "y"}]),
                dict(base, sampling=Sampling(temperature=0.1)), dict(base, seed=2)]
    assert len({key, *(LLMCache.key(**v) for v in variants)}) == 5


class CountingBackend:
    def __init__(self, fail_on=()):
        self.calls = 0
        self.fail_on = set(fail_on)

    def identity(self):
        return {"backend": "count", "model": "m"}

    def complete_batch(self, requests):
        out = []
        for messages, sampling, seed in requests:
            self.calls += 1
            out.append(RuntimeError("boom") if seed in self.fail_on else
                       Completion(f"answer {seed}", 3, 2, 0.01, "m"))
        return out


def test_cached_llm_counts_calls_and_never_caches_failures(tmp_path):
    backend = CountingBackend(fail_on={2})
    llm = CachedLLM(backend, LLMCache(tmp_path))
    reqs = [([{"role": "user", "content": "q"}], Sampling(), s) for s in (1, 2, 3)]
    first = llm.complete_batch(reqs)
    assert [r.cache_hit for r in first] == [False] * 3 and first[1].completion is None and "boom" in first[1].error
    assert len(list(tmp_path.rglob("*.json"))) == 2
    again = CachedLLM(backend, LLMCache(tmp_path)).complete_batch(reqs)
    assert [r.cache_hit for r in again] == [True, False, True]
    assert backend.calls == 4  # only the failed call went to the backend again
    assert again[0].completion.text == "answer 1"
    assert not list(tmp_path.rglob("*.tmp"))


def _hammer(root, key, n):
    cache = LLMCache(root)
    for i in range(n):
        cache.put(key, {"completion": {"text": "x" * 20000, "i": i}})
        got = cache.get(key)
        assert got is not None and len(got["completion"]["text"]) == 20000


def test_cache_is_safe_with_concurrent_writers(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(tmp_path, "ab" * 32, 200)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    assert json.loads(LLMCache(tmp_path).path("ab" * 32).read_text())["completion"]["text"] == "x" * 20000
    assert not list(tmp_path.rglob("*.tmp"))


def test_markov_baseline_is_personal_ordered_and_seeded(tiny):
    split, profiles = tiny
    train = split[split.part == "train"]
    gen = MarkovGenerator(train, alpha=1.0)
    # a user who only ever plays music in z2 at 07:00 and 20:00
    days = pd.date_range("2024-03-04", periods=14, freq="D")
    mine = pd.DataFrame({"user_id": "me", "ts": [d + pd.Timedelta(hours=h) for d in days for h in (7, 20)],
                         "location": "z2", "behavior": "music"})
    mine["slot"] = mine.ts.dt.hour * 60
    out = gen.generate(mine, MONDAY, 2, np.random.default_rng(0))
    days_out = {d: [e[1:] for e in out if e[0] == d] for d in dict.fromkeys(e[0] for e in out)}
    assert len(days_out) == 14
    # most days are the user's own day, ending where the user's days end; the rest start from the
    # population's first events (alpha) and run a population day
    mine_day = [(420, "z2", "music"), (1200, "z2", "music")]
    assert sum(d == mine_day for d in days_out.values()) >= 10
    for day in {e[0] for e in out}:
        slots = [e[1] for e in out if e[0] == day]
        assert slots == sorted(slots)
    assert out == gen.generate(mine, MONDAY, 2, np.random.default_rng(0))
    assert out != gen.generate(mine, MONDAY, 2, np.random.default_rng(1))


def test_markov_outputs_through_the_workflow(tiny_run):
    d = tiny_run / "data/synthetic/tiny/markov"
    pop, per = pd.read_parquet(d / "population.parquet"), pd.read_parquet(d / "personal.parquet")
    profiles = pd.read_parquet(tiny_run / "data/processed/tiny/profiles.parquet")
    assert set(per.user_id) == set(profiles.loc[profiles.split == "test", "user_id"])  # personal_splits: [test]
    assert pop.user_id.str.startswith("syn-").all()
    assert set(pop.source_user) <= set(profiles.loc[profiles.split == "train", "user_id"])
    zones, behaviors = vocabularies(pd.read_parquet(tiny_run / "data/processed/tiny/split.parquet"), 10)
    assert set(per.location) <= set(zones) and set(per.behavior) <= set(behaviors)
    summary = json.loads((d / "personal_summary.json").read_text())
    assert summary["events"] == len(per) and summary["failed_calls"] == 0 and summary["part"] == "personal"


def _last_hour_share(events: pd.DataFrame) -> float:
    return float((events["ts"].dt.hour == 23).mean())


def test_markov_time_of_day_does_not_pile_into_the_last_hour(tiny):
    """The day's length comes from the chain (an end-of-day state), not from a count drawn apart from
    it: a chain pushed past the end of the user's day could only pick ever later events."""
    split, profiles = tiny
    _, personal = user_contexts(split, profiles, 1, 0)
    gen = MarkovGenerator(split[split.part == "train"], alpha=5.0)
    from behaviorflow.behaviorgen.markov import markov_generate

    events, _ = markov_generate(personal, gen, 4, 3, 30, "test")
    real = split[split.user_id.isin([c.user_id for c in personal]) & split.part.isin(["support", "query"])]
    assert len(events) > 200
    assert _last_hour_share(events) <= max(2 * _last_hour_share(real), _last_hour_share(real) + 0.02)
    real_daily = real.groupby([real.user_id, real.ts.dt.date]).size().mean()
    assert events.groupby([events.user_id, events.ts.dt.date]).size().mean() == pytest.approx(real_daily, rel=0.35)


class EchoBackend:
    """A 'model' that answers each week with the user's own sample events, weekday by weekday."""

    def identity(self):
        return {"backend": "echo"}

    def complete_batch(self, requests):
        from behaviorflow.data.events import WEEKDAYS

        out = []
        for messages, _, _ in requests:
            lines = [ln for ln in messages[-1]["content"].splitlines() if ln.split(",")[0] in WEEKDAYS]
            # two sample days may share a weekday: their lines merge into that day, in time order
            lines.sort(key=lambda ln: (WEEKDAYS.index(ln.split(",")[0]), ln.split(",")[1]))
            out.append(Completion("\n".join(lines), 10, 10, 0.0, "echo"))
        return out


def test_lines_to_events_keep_the_time_of_day(tiny, tmp_path):
    """What both generators share on the way from lines to events (parse, slot, timestamp) moves no
    event in the day: echoed real sample days come back with the same times of day."""
    from behaviorflow.behaviorgen.generate import LLMGenerationSettings, generate_with_llm
    from behaviorflow.behaviorgen.prompts import sample_events

    split, profiles = tiny
    _, personal = user_contexts(split, profiles, 1, 0)
    zones, behaviors = vocabularies(split, 10)
    zones = sorted(set(zones) | set(split.location))
    llm = CachedLLM(EchoBackend(), LLMCache(tmp_path))
    events, log = generate_with_llm(personal, llm, LLMGenerationSettings(sample_days=7, max_attempts=1), zones,
                                    behaviors, 30, "echo")
    assert log["valid"].all()
    sample = pd.concat([sample_events(c.events, 7) for c in personal])
    minutes = (events.ts.dt.hour * 60 + events.ts.dt.minute).sort_values().to_numpy()
    assert np.array_equal(minutes, np.sort(sample["slot"].to_numpy()))


def test_user_mix_and_filled_days_under_the_grammar(tiny, tmp_path):
    """With `user_mix` and `fill_days` a random model's week keeps to the user's own behaviours, zones
    and hours of the day, within their quotas, and no day is longer than drawn from the user's own days."""
    from dataclasses import replace

    from tiny_lm import build_tiny_model

    from behaviorflow.behaviorgen.contexts import day_caps, max_events_per_day, own_mix, user_grammar
    from behaviorflow.behaviorgen.generate import LLMGenerationSettings, generate_with_llm
    from behaviorflow.lm.grammar import quotas
    from behaviorflow.lm.local import TransformersBackend

    split, profiles = tiny
    _, personal = user_contexts(split, profiles, 1, 0)
    personal = personal[:3]
    zones, behaviors = vocabularies(split, 10)
    backend = TransformersBackend(build_tiny_model(tmp_path / "m", seed=3), device="cpu", threads=2)
    settings = LLMGenerationSettings(sample_days=2, max_attempts=1, batch_size=3, constrained=True,
                                     max_per_day=max_events_per_day(split), user_mix=True, fill_days=True,
                                     sampling=Sampling(1.5, 1.0, 4000))
    events, log = generate_with_llm(personal, CachedLLM(backend, LLMCache(tmp_path / "c")), settings, zones,
                                    behaviors, 30, "mix")
    assert log["valid"].all() and len(log) == len(personal)
    for j, ctx in enumerate(personal):
        week = events[events["source_user"] == ctx.user_id]
        days = [ctx.start + dt.timedelta(days=i) for i in range(7)]
        grammar = user_grammar(ctx.events, days, zones, behaviors, 30, np.random.default_rng([settings.seed, j]),
                               settings.max_per_day, user_mix=True, fill_days=True)
        caps = grammar.max_per_day
        assert caps == day_caps(ctx.events, days, np.random.default_rng([settings.seed, j]), settings.max_per_day)
        lengths = week.groupby(week.ts.dt.date).size().reindex(days, fill_value=0).tolist()
        assert all(1 <= n <= c for n, c in zip(lengths, caps))
        drawn = np.random.default_rng(grammar.quota_seed)  # the grammar's own draws: zones first, then behaviours
        quotas(grammar.zone_mix, grammar.zones, sum(caps), drawn)
        quota = quotas(own_mix(ctx.events, "behavior"), tuple(behaviors), sum(caps), drawn)
        assert all(n <= quota.get(b, 0) for b, n in week["behavior"].value_counts().items())
        assert set(week["location"]) <= set(ctx.events["location"])
        assert set(week.ts.dt.hour) <= set(ctx.events.ts.dt.hour)
    plain = generate_with_llm(personal, CachedLLM(backend, LLMCache(tmp_path / "c")),
                              replace(settings, user_mix=False, fill_days=False), zones, behaviors, 30, "plain")[0]
    assert set(plain["behavior"]) - set().union(*(set(c.events["behavior"]) for c in personal))  # without: any
