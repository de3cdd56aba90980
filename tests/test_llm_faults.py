"""The openai backend against a real HTTP server on 127.0.0.1 with scripted faults; resume after SIGKILL;
the API key never leaks."""

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import REPO, TINY_CONFIG, make_workdir, run_snakemake
from fake_openai import FakeOpenAI

from behaviorflow.behaviorgen.generate import (
    LLMGenerationSettings,
    generate_with_llm,
    user_contexts,
    vocabularies,
)
from behaviorflow.lm.backends import CachedLLM, LLMCache, OpenAIBackend, Sampling

KEY_ENV = "BF_TEST_OPENAI_KEY"
SECRET = "sk-test-DO-NOT-LEAK-4f9a1c77e2"


@pytest.fixture(scope="module")
def contexts(tiny_run):
    split = pd.read_parquet(tiny_run / "data/processed/tiny/split.parquet")
    profiles = pd.read_parquet(tiny_run / "data/processed/tiny/profiles.parquet")
    _, personal = user_contexts(split, profiles, 1, 0)
    return personal[:3], vocabularies(split, 10)


def backend(fake, **kw):
    os.environ[KEY_ENV] = SECRET
    return OpenAIBackend("fake-model", fake.base_url, KEY_ENV, **{"max_retries": 2, "timeout_s": 5, **kw})


def run(fake, tmp_path, contexts, max_attempts=3, **kw):
    ctxs, (zones, behaviors) = contexts
    llm = CachedLLM(backend(fake, **kw), LLMCache(tmp_path / "cache"))
    events, log = generate_with_llm(ctxs, llm, LLMGenerationSettings(max_attempts=max_attempts, batch_size=2),
                                    zones, behaviors, 30, "test")
    return llm, events, log


def cached(tmp_path):
    return sorted((tmp_path / "cache").rglob("*.json"))


def test_happy_path_sends_key_and_caches(tmp_path, contexts):
    with FakeOpenAI(delay_s=0.3) as fake:
        llm, events, log = run(fake, tmp_path, contexts)
        assert fake.peak_in_flight == 3  # the 3 calls were open together (the limit is 8)
        assert len(fake.requests) == 3 and log["valid"].all() and len(cached(tmp_path)) == 3
        assert fake.headers[0]["authorization"] == f"Bearer {SECRET}"
        assert fake.requests[0]["seed"] != fake.requests[1]["seed"]
        assert len(events) == 3 * 14
        llm2, _, log2 = run(fake, tmp_path, contexts)
        assert llm2.backend_calls == 0 and llm2.cache_hits == 3 and len(fake.requests) == 3  # warm: no calls
        for f in cached(tmp_path):
            assert SECRET not in f.read_text()


@pytest.mark.parametrize("fault", ["500", "429", "sleep:3"])
def test_client_retries_transient_faults(tmp_path, contexts, fault):
    with FakeOpenAI() as fake:
        fake.faults = [fault]
        t0 = time.perf_counter()
        llm, events, log = run(fake, tmp_path, contexts, timeout_s=1.5)
        assert log["valid"].all() and (log["attempt"] == 1).all()  # the client's own retry fixed it
        assert len(fake.requests) == 4 and len(cached(tmp_path)) == 3
        if fault == "429":
            assert time.perf_counter() - t0 >= 0.9  # honoured Retry-After: 1


@pytest.mark.parametrize("fault,reason", [("truncated", "truncated completion"), ("malformed", "backend:"),
                                          ("garbage", "line 1:")])
def test_bad_completions_are_retried_with_a_new_seed_and_never_cached(tmp_path, contexts, fault, reason):
    with FakeOpenAI() as fake:
        fake.faults = [fault]
        llm, events, log = run(fake, tmp_path, contexts, max_retries=0)
        bad = log[~log["valid"]]
        assert len(bad) == 1 and reason in bad["error"].iloc[0]
        retried = log[(log["call"] == bad["call"].iloc[0]) & (log["attempt"] == 2)]
        assert retried["valid"].all()
        seeds = [r["seed"] for r in fake.requests]
        assert len(set(seeds)) == len(seeds) == 4
        keys = {f.stem for f in cached(tmp_path)}
        assert bad["key"].iloc[0] not in keys if fault != "garbage" else bad["key"].iloc[0] in keys
        assert len(events) == 3 * 14


def test_run_survives_a_dead_backend_and_logs_every_failure(tmp_path, contexts):
    with FakeOpenAI() as fake:
        fake.faults = ["500"] * 100
        llm, events, log = run(fake, tmp_path, contexts, max_retries=1, max_attempts=2)
        assert events.empty and len(log) == 6 and not log["valid"].any()
        assert log["error"].str.contains("InternalServerError").all()
        assert cached(tmp_path) == []
        assert len(fake.requests) == 12  # 3 calls x 2 attempts x (1 + 1 client retry)


GEN_SCRIPT = """
import os, sys, pandas as pd
sys.path.insert(0, {tests!r})
from behaviorflow.behaviorgen.generate import LLMGenerationSettings, generate_with_llm, user_contexts, vocabularies
from behaviorflow.lm.backends import CachedLLM, LLMCache, OpenAIBackend
split = pd.read_parquet({split!r}); profiles = pd.read_parquet({profiles!r})
_, personal = user_contexts(split, profiles, 1, 0)
zones, behaviors = vocabularies(split, 10)
llm = CachedLLM(OpenAIBackend("fake-model", {url!r}, None, 0, 10, max_in_flight=2), LLMCache({cache!r}))
generate_with_llm(personal, llm, LLMGenerationSettings(batch_size=1), zones, behaviors, 30, "kill-test")
print("BACKEND_CALLS", llm.backend_calls, flush=True)
"""


def test_sigkill_mid_run_then_rerun_repeats_no_completed_call(tmp_path, tiny_run):
    log_path = tmp_path / "requests.json"
    server = subprocess.Popen([sys.executable, str(REPO / "tests/fake_openai.py"), "0.25", str(log_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        script = GEN_SCRIPT.format(tests=str(REPO / "tests"), split=str(tiny_run / "data/processed/tiny/split.parquet"),
                                   profiles=str(tiny_run / "data/processed/tiny/profiles.parquet"), url=url,
                                   cache=str(tmp_path / "cache"))
        victim = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while len(list((tmp_path / "cache").rglob("*.json"))) < 3 and time.time() < deadline:
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        done_before = {f.stem for f in (tmp_path / "cache").rglob("*.json")}
        assert 3 <= len(done_before)
        time.sleep(0.5)
        served_before = len(json.loads(log_path.read_text()))
        rerun = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        calls = int(rerun.stdout.split("BACKEND_CALLS")[1])
        total = len({f.stem for f in (tmp_path / "cache").rglob("*.json")})
        assert calls == total - len(done_before) > 0  # exactly the calls that had not completed
        time.sleep(0.5)
        served = json.loads(log_path.read_text())
        rerun_keys = [LLMCache.key({"backend": "openai", "model": "fake-model", "base_url": url}, r["messages"],
                                      Sampling(r["temperature"], r["top_p"], r["max_tokens"]), r["seed"])
                      for r in served[served_before:]]
        assert len(rerun_keys) == calls and not set(rerun_keys) & done_before
    finally:
        server.kill()


def test_key_never_reaches_logs_metadata_cache_or_outputs(tmp_path):
    with FakeOpenAI() as fake:
        config = copy.deepcopy(TINY_CONFIG)
        config["generation"] = {"generators": ["behaviorgen"], "population_users": 2, "cache_dir": "llm-cache",
                                "behaviorgen": {"backend": "openai",
                                                "openai": {"model": "fake-model", "base_url": fake.base_url,
                                                           "key_env": KEY_ENV}}}
        config["validation"] = {"ablation": {"variants": []}}  # every call served below is a generation call
        config["behaviorlm"] = {"datasets": []}
        # one predictor and seed: the key never reaches them, and the scan below covers their files all the same
        config["predictors"] = {**config["predictors"], "models": ["sasrec"], "seeds": [1]}
        work = make_workdir(tmp_path, config)
        proc = run_snakemake(work, check=False, env={KEY_ENV: None})
        assert proc.returncode != 0 and KEY_ENV in proc.stdout + proc.stderr  # envvars: fails before any job
        run_snakemake(work, env={KEY_ENV: SECRET})
        calls = 0
        for part in ("population", "personal"):
            summary = json.loads((work / f"data/synthetic/tiny/behaviorgen/{part}_summary.json").read_text())
            assert summary["calls"] > 0 and summary["pass_at_1"] == 1.0
            log_text = (work / f"logs/tiny/generate_behaviorgen_{part}.log").read_text()
            assert f"backend calls this run: {summary['calls']}" in log_text
            calls += summary["calls"]
        assert all(h["authorization"] == f"Bearer {SECRET}" for h in fake.headers)
        summaries = [f"data/synthetic/tiny/behaviorgen/{part}_summary.json" for part in ("population", "personal")]
        run_snakemake(work, "--forcerun", "generate_synthetic", *summaries, env={KEY_ENV: SECRET})  # these jobs only
        for part in ("population", "personal"):
            log_text = (work / f"logs/tiny/generate_behaviorgen_{part}.log").read_text()
            assert "backend calls this run: 0 (cache hits:" in log_text
        n_served = len(fake.requests)
        leaks = [p for p in work.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
        assert leaks == []
        assert n_served == calls
