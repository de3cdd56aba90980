"""LLM next-behaviour prediction on the embedded model: LoRA training tokens/s and label-scoring
queries/s, each beside this machine's measured matmul rates (model-FLOPs utilisation), and the
shared-prefix scorer against one forward pass per candidate.

    python benchmarks/llm_prediction.py [--queries 20] [--train 48]

Needs the converted embedded model (`models/smollm2-135m-instruct`) and the processed simulated
data (`snakemake --cores all data/processed/simulated/split.parquet`). Uses BehaviorLM's own
prompts (behaviorlm.prompt in config/config.yaml) on real test queries. MFU = achieved FLOP/s over
the bf16 (or fp32) matmul rate measured in the same run; scoring counts 2 x N per token it runs,
training 2 x N for the forward pass plus 2 x the parameters of the adapted top blocks and the LM head
for the backward pass (a LoRA step computes no gradient of a frozen weight), beside the 6 x N
yardstick of full fine-tuning.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models/smollm2-135m-instruct"
SPLIT = ROOT / "data/processed/simulated/split.parquet"


def main() -> None:
    import torch
    from lm_tuning import matmul_rate  # benchmarks/ is the script's directory

    from behaviorflow.behaviorlm import data as bdata
    from behaviorflow.behaviorlm.prompts import PromptSettings, formats_for, messages
    from behaviorflow.behaviorlm.stages import encode_queries
    from behaviorflow.lm.scoring import candidate_ids, load_scorer, prompt_ids, score_labels, shared_prefix
    from behaviorflow.lm.tuning import TuningSettings, tune

    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--train", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())["behaviorlm"]
    prompt = PromptSettings(**cfg.get("prompt", {}))
    rates = {"bfloat16": matmul_rate(torch.bfloat16, args.threads), "float32": matmul_rate(torch.float32, args.threads)}
    print(f"matmul 2048^3 on {args.threads} threads: bf16 {rates['bfloat16']:.0f} GFLOP/s, fp32 {rates['float32']:.0f}")

    split = pd.read_parquet(SPLIT)
    labels = sorted(split["behavior"].unique())
    queries = bdata.test_queries(split, prompt.history, args.queries, 5)
    model, tok = load_scorer(MODEL, threads=args.threads)
    n_params = sum(p.numel() for p in model.parameters())
    shown = labels if prompt.list_labels else None
    fmts = formats_for(queries, prompt.seed)
    prompts = [prompt_ids(tok, messages(q, int(f), shown)) for q, f in zip(queries, fmts)]
    cands = candidate_ids(tok, messages(queries[0], 0, shown), labels)
    common = shared_prefix(prompts)
    # what the scorer runs per query: the prompt's own part and every candidate token (the common
    # prefix runs once per call)
    tokens_per_query = np.mean([len(p) - common for p in prompts]) + sum(len(c) for c in cands)
    print(f"{len(labels)} labels; prompt {np.mean([len(p) for p in prompts]):.0f} tokens on average "
          f"({common} shared by all), candidates {sum(len(c) for c in cands)} tokens in all")

    results = {}
    for dtype in ("float32", "bfloat16"):
        model = model.to(getattr(torch, dtype))
        score_labels(model, prompts[:2], cands, tok.pad_token_id)  # warm-up
        t0 = time.perf_counter()
        scores = score_labels(model, prompts, cands, tok.pad_token_id)
        sec = time.perf_counter() - t0
        results[dtype] = scores
        flops = 2 * n_params * tokens_per_query * len(prompts) / sec / 1e9
        print(f"scoring {dtype}: {len(prompts) / sec:.2f} queries/s ({flops:.0f} GFLOP/s, MFU "
              f"{flops / rates[dtype]:.0%} of the {dtype} matmul rate)")
    agree = float(np.mean(results["float32"].argmax(1) == results["bfloat16"].argmax(1)))
    print(f"bf16 vs fp32 scoring: same argmax on {agree:.0%} of queries, max |diff| "
          f"{np.abs(results['float32'] - results['bfloat16']).max():.3f} nats")

    model = model.to(torch.float32)
    k = min(5, len(prompts))
    t0 = time.perf_counter()
    score_labels(model, prompts[:k], cands, tok.pad_token_id)
    shared = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        for p in prompts[:k]:
            for c in cands:
                model(input_ids=torch.tensor([p + c]))
    brute = time.perf_counter() - t0
    print(f"shared-prefix scorer {shared / k:.2f} s/query vs one forward pass per candidate {brute / k:.2f} s/query: "
          f"{brute / shared:.1f}x")

    train_q = bdata.draw(bdata.training_queries(split, prompt.history), args.train, 1)
    tuning = TuningSettings(**{**cfg.get("tuning", {}), "max_steps": 0, "epochs": 1, "eval_share": 0.0,
                               "patience": 0, "save_steps": 10_000})
    examples = encode_queries(tok, train_q, prompt, labels, tuning.max_length)
    with tempfile.TemporaryDirectory() as tmp:
        report = tune(MODEL, examples, Path(tmp) / "a", tuning, threads=args.threads, desc="bench")
    tps = report["tokens"] / report["train_runtime_s"]
    rate = rates["bfloat16" if tuning.bf16 else "float32"]
    # FLOPs a LoRA step computes: the forward pass (2N per token) and the backward pass's input
    # gradients through the adapted top blocks and the LM head only (no frozen weight gets a
    # gradient, and nothing below the lowest adapted block needs one); 6N is the full fine-tuning
    # yardstick transformers reports, which overstates a LoRA-on-top-blocks step
    blocks = model.get_decoder().layers
    adapted = len(blocks) if tuning.layers <= 0 else min(tuning.layers, len(blocks))
    backward = adapted * sum(p.numel() for p in blocks[0].parameters()) + model.get_output_embeddings().weight.numel()
    per_token = 2 * n_params + 2 * backward
    print(f"LoRA training ({'bf16' if tuning.bf16 else 'fp32'}, top {adapted} of {len(blocks)} blocks, batch "
          f"{tuning.batch_size}): {tps:.0f} tokens/s, {report['tokens'] / len(examples):.0f} tokens/example; "
          f"{per_token / 1e9:.2f} GFLOP/token computed, MFU {tps * per_token / 1e9 / rate:.0%} of the measured "
          f"matmul rate (with the 6N yardstick of full fine-tuning: {tps * 6 * n_params / 1e9 / rate:.0%})")


if __name__ == "__main__":
    main()
