"""The openai backend end to end against a real OpenAI-compatible server on 127.0.0.1:
llama.cpp (`llama-cpp-python[server]`) serving the embedded SmolLM2 GGUF. Started and stopped here."""

import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
from conftest import stop_process

from behaviorflow.behaviorgen.generate import (
    LLMGenerationSettings,
    generate_with_llm,
    user_contexts,
    vocabularies,
)
from behaviorflow.lm.backends import (
    CachedLLM,
    Completion,
    LLMCache,
    OpenAIBackend,
    Sampling,
)
from behaviorflow.lm.convert import embedded_gguf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf()),
                                 "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                                 "--n_ctx", "4096", "--n_threads", "2"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"llama.cpp server did not answer in 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop_process(proc)
    assert proc.returncode is not None  # stopped


def test_openai_backend_against_llama_cpp(llama_server, tmp_path):
    backend = OpenAIBackend("smollm2", llama_server, key_env=None, max_retries=1, timeout_s=120)
    llm = CachedLLM(backend, LLMCache(tmp_path / "cache"))
    msgs = [{"role": "user", "content": "Reply with the single word: hello"}]
    res = llm.complete_batch([(msgs, Sampling(temperature=0.0, top_p=1.0, max_new_tokens=32), 1)])[0]
    assert isinstance(res.completion, Completion) and res.completion.text.strip()
    assert res.completion.prompt_tokens > 0 and res.completion.completion_tokens > 0
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1
    again = CachedLLM(backend, LLMCache(tmp_path / "cache"))
    assert again.complete_batch([(msgs, Sampling(temperature=0.0, top_p=1.0, max_new_tokens=32), 1)])[0].cache_hit
    assert again.backend_calls == 0


def test_generation_through_llama_cpp_survives_and_logs(llama_server, tmp_path, tiny_run):
    split = pd.read_parquet(tiny_run / "data/processed/tiny/split.parquet")
    profiles = pd.read_parquet(tiny_run / "data/processed/tiny/profiles.parquet")
    _, personal = user_contexts(split, profiles, 1, 0)
    zones, behaviors = vocabularies(split, 10)
    llm = CachedLLM(OpenAIBackend("smollm2", llama_server, key_env=None, max_retries=1, timeout_s=300),
                    LLMCache(tmp_path / "cache"))
    settings = LLMGenerationSettings(max_attempts=2, batch_size=1, sampling=Sampling(max_new_tokens=96))
    events, log = generate_with_llm(personal[:1], llm, settings, zones, behaviors, 30, "llama.cpp")
    assert len(log) in (1, 2) and llm.backend_calls == len(log)
    # every attempt is accounted for: either valid, or invalid with its reason
    assert (log["valid"] | log["error"].str.len().gt(0)).all()
    cached = {p.stem for p in (tmp_path / "cache").rglob("*.json")}
    assert not cached & set(log.loc[log["error"].fillna("").str.startswith("backend"), "key"])


def test_bua_curriculum_answers_written_through_llama_cpp_are_cached_and_taught(llama_server, tmp_path, tiny_run):
    """bua.answers.source: openai on the tiny run's samples: the server writes every sample's listed
    tasks (stage 2's rounds only for the generation days), each answer is cached, a rerun asks the
    server nothing and writes the same bytes, and stage 2's dialogues teach the written answers."""
    from conftest import TINY_CONFIG, TINY_MODEL
    from transformers import AutoTokenizer

    from behaviorflow.bua import stages
    from behaviorflow.bua.writer import answer_book, bua_answers, needed_samples, write_answers

    bua = {**TINY_CONFIG["bua"], "answers": {"source": "openai", "tasks": ["summary", "hobby"], "words": 20,
                                             "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 256,
                                             "max_attempts": 3, "retry_temperature": 0.7, "seed": 1}}
    backend = {"model": "smollm2", "base_url": llama_server, "key_env": None, "max_retries": 1, "timeout_s": 300,
               "max_in_flight": 1, "price_in_per_1k": 0.00015, "price_out_per_1k": 0.0006}
    split, states = tiny_run / "data/processed/tiny/split.parquet", tiny_run / "results/tiny/bua/states_sequence.npz"
    out = {"answers": tmp_path / "answers.parquet", "summary": tmp_path / "summary.json"}
    summary = bua_answers(split, states, out, bua=bua, seed=1, backend=backend, cache_dir=str(tmp_path / "cache"))
    frame = pd.read_parquet(out["answers"])
    n = summary["samples"]
    assert summary["answers"] == len(frame) == 2 * (n["train"] + n["val"]) + n["gen_train"]
    assert set(frame.loc[frame["part"] == "gen_train", "task"]) == {"summary"}  # hobby is no stage-2 round
    assert summary["failed_calls"] == 0 and summary["prompt_tokens"] > 0 and summary["model"]["base_url"] == llama_server
    assert frame["answer"].str.strip().str.len().gt(0).all() and frame["fact_recall"].between(0, 1).all()
    assert (frame["answer"] != frame["rule_answer"]).mean() > 0.5  # the model's words, not the rules' line
    assert len(list((tmp_path / "cache").rglob("*.json"))) == frame["key"].nunique()

    first = out["answers"].read_bytes(), out["summary"].read_bytes()
    bua_answers(split, states, out, bua=bua, seed=1, backend=backend, cache_dir=str(tmp_path / "cache"))
    assert (out["answers"].read_bytes(), out["summary"].read_bytes()) == first
    llm = CachedLLM(OpenAIBackend("smollm2", llama_server, key_env=None, max_retries=1, timeout_s=300),
                    LLMCache(tmp_path / "cache"))
    data, samples = stages.load_samples(split, states, bua["window"], ("train", "val", "gen_train"))
    train, gen = samples["train"][0], samples["gen_train"][0]
    picks = stages.draws(bua, 1, len(train), len(gen))
    _, shares = stages.labels_and_shares(data)
    again, _ = write_answers(llm, needed_samples(train, gen, samples["val"][0], picks), shares, positions=bua["positions"],
                             settings=bua["answers"])
    assert llm.backend_calls == 0 and llm.cache_hits == len(frame) and again["answer"].tolist() == frame["answer"].tolist()

    tok = AutoTokenizer.from_pretrained(tiny_run / TINY_MODEL)
    book = answer_book(out["answers"])
    keep = picks["stage2"]
    examples = stages.stage_examples(2, tok, [train[i] for i in keep], samples["train"][1][keep], shares=shares,
                                     placeholder="<unk>", positions=bua["positions"], text_events=bua["text_events"],
                                     max_length=4096, seed=1, written=book["train"])
    assert len(examples) == len(keep)
    for ex, i in zip(examples, keep):
        taught = tok.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != -100])
        assert book["train"][train[i].key]["summary"].split()[-1] in taught
