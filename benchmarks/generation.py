"""Generation throughput: the transformers backend at batch 1, 8 and 16 against llama.cpp on the
same GGUF on the same machine, plus the warm-rerun time of the cached generator.

    python benchmarks/generation.py                 # 16 real prompts, 128 new tokens each
    python benchmarks/generation.py --prompts 8 --new-tokens 64

Needs the workflow's processed simulated data (`snakemake --cores all data/processed/simulated/profiles.parquet`),
the converted embedded model (`models/smollm2-135m-instruct`, rule prepare_generator_model) and
`llama-cpp-python` (a test extra). Prompts are real BehaviorGen prompts (week requests of
training users, ~1,000 tokens each). Every engine generates exactly `--new-tokens` tokens per
prompt (the end token is suppressed), so tokens/s counts the same work: prefill plus decoding.
llama.cpp runs the GGUF as shipped (Q4_1 weights, 4.5 bits); transformers runs it de-quantised.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def prompts(n: int) -> list[list[dict]]:
    from behaviorflow.behaviorgen.contexts import vocabularies
    from behaviorflow.behaviorgen.tuning import training_examples

    processed = ROOT / "data/processed/simulated"
    if not (processed / "profiles.parquet").is_file():
        sys.exit("run `snakemake --cores all data/processed/simulated/profiles.parquet` first")
    split = pd.read_parquet(processed / "split.parquet")
    profiles = pd.read_parquet(processed / "profiles.parquet")
    zones, behaviors = vocabularies(split, 10)
    return [m for m, _ in training_examples(split, profiles, zones, behaviors, 7, n, seed=0)]


def bench_transformers(model_dir: Path, msgs, batch: int, new_tokens: int, dtype: str, threads: int) -> dict:
    import torch

    from behaviorflow.lm.local import TransformersBackend

    be = TransformersBackend(model_dir, None, device="cpu", threads=threads, dtype=dtype)
    tok = be.tokenizer
    ids = [be.prompt_ids(m) for m in msgs]
    # similar lengths together, as the generator batches them
    ids.sort(key=len)
    t0 = time.perf_counter()
    generated = 0
    with torch.no_grad():
        for b in range(0, len(ids), batch):
            chunk = tok.pad({"input_ids": ids[b:b + batch]}, return_tensors="pt")
            out = be.model.generate(**chunk, do_sample=True, temperature=0.8, top_p=0.95, max_new_tokens=new_tokens,
                                    min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id)
            generated += (out.shape[1] - chunk["input_ids"].shape[1]) * out.shape[0]
    seconds = time.perf_counter() - t0
    return {"engine": f"transformers {dtype}", "batch": batch, "tokens": generated, "seconds": round(seconds, 1),
            "tokens_per_s": round(generated / seconds, 1), "prompt_tokens": round(statistics.mean(map(len, ids)))}


def bench_llamacpp(model_dir: Path, msgs, new_tokens: int, threads: int) -> dict:
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    from behaviorflow.lm.convert import embedded_gguf

    tok = AutoTokenizer.from_pretrained(model_dir)
    texts = sorted((tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in msgs), key=len)
    llm = Llama(model_path=str(embedded_gguf()), n_ctx=4096, n_threads=threads, n_batch=512, seed=0, verbose=False)
    eos = llm.token_eos()
    t0 = time.perf_counter()
    generated = 0
    for text in texts:
        out = llm.create_completion(text, max_tokens=new_tokens, temperature=0.8, top_p=0.95,
                                    logit_bias={eos: float("-inf")})
        generated += out["usage"]["completion_tokens"]
    seconds = time.perf_counter() - t0
    return {"engine": "llama.cpp Q4_1", "batch": 1, "tokens": generated, "seconds": round(seconds, 1),
            "tokens_per_s": round(generated / seconds, 1)}


def bench_warm_rerun(model_dir: Path, n_users: int, threads: int) -> dict:
    """Cold and warm generation of the same weeks through the cache (grammar-constrained)."""
    from behaviorflow.behaviorgen.generate import (
        LLMGenerationSettings,
        generate_with_llm,
        user_contexts,
        vocabularies,
    )
    from behaviorflow.lm.backends import CachedLLM, LLMCache, Sampling
    from behaviorflow.lm.local import TransformersBackend

    processed = ROOT / "data/processed/simulated"
    split = pd.read_parquet(processed / "split.parquet")
    profiles = pd.read_parquet(processed / "profiles.parquet")
    population, _ = user_contexts(split, profiles, n_users, seed=0)
    zones, behaviors = vocabularies(split, 10)
    backend = TransformersBackend(model_dir, None, device="cpu", threads=threads, dtype="bfloat16")
    settings = LLMGenerationSettings(sampling=Sampling(0.8, 0.95, 1536), constrained=True, max_per_day=12,
                                     max_attempts=1)
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for run in ("cold", "warm"):
            llm = CachedLLM(backend, LLMCache(cache))
            t0 = time.perf_counter()
            generate_with_llm(population, llm, settings, zones, behaviors, 30, f"{run} run")
            out[f"{run}_seconds"] = round(time.perf_counter() - t0, 2)
            out[f"{run}_backend_calls"] = llm.backend_calls
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtypes", default="bfloat16,float32")
    ap.add_argument("--warm-users", type=int, default=4)
    args = ap.parse_args()
    model_dir = ROOT / "models/smollm2-135m-instruct"
    if not model_dir.is_dir():
        sys.exit("run `snakemake --cores all models/smollm2-135m-instruct` first")
    msgs = prompts(args.prompts)
    rows = [bench_llamacpp(model_dir, msgs, args.new_tokens, args.threads)]
    print(rows[-1], flush=True)
    for dtype in args.dtypes.split(","):
        for batch in (1, 8, 16):
            rows.append(bench_transformers(model_dir, msgs, batch, args.new_tokens, dtype, args.threads))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    ref = rows[0]["tokens_per_s"]
    table["ratio_to_llama_cpp"] = (table["tokens_per_s"] / ref).round(2)
    print(f"\n{len(msgs)} real prompts (mean {rows[1]['prompt_tokens']} tokens), {args.new_tokens} new tokens each, "
          f"{args.threads} threads")
    print(table.to_string(index=False))
    best = table[table["engine"].str.startswith("transformers")].sort_values("tokens_per_s").iloc[-1]
    print(f"\nbest transformers: {best['engine']} at batch {best['batch']}: {best['tokens_per_s']} tokens/s = "
          f"{best['ratio_to_llama_cpp']}x llama.cpp (target >= 0.8x)")
    warm = bench_warm_rerun(model_dir, args.warm_users, args.threads)
    print(f"warm rerun of {args.warm_users} user-weeks: cold {warm['cold_seconds']} s "
          f"({warm['cold_backend_calls']} backend calls), warm {warm['warm_seconds']} s "
          f"({warm['warm_backend_calls']} backend calls)")


if __name__ == "__main__":
    main()
