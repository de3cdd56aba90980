"""BUA's decoding from input embeddings on the embedded model: a batch of the LLM test queries' first
understanding round (left-padded, the encoder states at the placeholders), prefill alone and 24 new
tokens, with and without the contiguous LM-head input (`lm.local.contiguous_lm_head`), beside this
machine's measured bf16 matmul rate (model-FLOPs utilisation of the prefill, 2 x N per token).

    python benchmarks/bua_inference.py [--rows 16] [--repeats 2]

Needs the converted embedded model (`models/smollm2-135m-instruct`) and the default's BUA states
(`snakemake --cores all results/simulated/bua/states_sequence.npz`). A seeded untrained projector
stands in for a stage's: the timings do not depend on the weights (every row decodes all 24 tokens).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models/smollm2-135m-instruct"
SPLIT = ROOT / "data/processed/simulated/split.parquet"
STATES = ROOT / "results/simulated/bua/states_sequence.npz"


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN primitives, the static cache's first allocation
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def embedded_bua(rows: int, threads: int):
    """The embedded model frozen in bf16 with the prefix attention, a seeded projector, and the first
    `rows` LLM test queries' states and first-round prompts."""
    import torch

    from behaviorflow.bua.align import placeholder_token, projector
    from behaviorflow.bua.infer import BuaModel
    from behaviorflow.bua.stages import load_samples
    from behaviorflow.bua.tasks import dialogue
    from behaviorflow.lm.local import register_prefix_attention
    from behaviorflow.lm.scoring import load_scorer, prompt_ids

    bua = yaml.safe_load((ROOT / "config/config.yaml").read_text())["bua"]
    _, samples = load_samples(SPLIT, STATES, bua["window"], ("test",))
    contexts, states = (x[:rows] for x in samples["test"])
    model, tok = load_scorer(MODEL, dtype="bfloat16", threads=threads)
    model.requires_grad_(False)  # as a merged adapter's weights are: the head's slow path needs a frozen weight
    model.set_attn_implementation(register_prefix_attention())
    token, token_id = placeholder_token(tok, "auto")
    mlp = projector(states.shape[-1], model.config.hidden_size, seed=0).to(torch.bfloat16).eval()
    rounds = ("key_behaviours", "patterns", "summary")
    prompts = [prompt_ids(tok, dialogue(c, {}, token, bua["positions"], bua["text_events"], rounds=rounds,
                                        final="predict", replies={})) for c in contexts]
    return BuaModel(model, tok, mlp, token, token_id), prompts, states, bua["understanding_tokens"]


def main(rows: int, repeats: int, threads: int) -> None:
    import torch
    from lm_tuning import matmul_rate  # benchmarks/ is the script's directory

    torch.set_num_threads(threads)
    rate = matmul_rate(torch.bfloat16, threads)
    bua_model, prompts, states, new = embedded_bua(rows, threads)
    model = bua_model.model
    print(f"matmul 2048^3 on {threads} threads: bf16 {rate:.0f} GFLOP/s")
    tokens = sum(map(len, prompts))
    n_params = sum(p.numel() for p in model.parameters())
    eos = model.generation_config.eos_token_id
    head = model.get_output_embeddings()
    hooks = dict(head._forward_pre_hooks)
    print(f"{rows} rows, {tokens} prompt tokens (mean {tokens / rows:.0f}), {new} new tokens")
    print(f"| LM head input | prefill s | MFU prefill | {new} tokens s | per decode step s |")
    print("| --- | --- | --- | --- | --- |")
    results = {}
    for name in ("strided (torch default)", "contiguous (ours)"):
        head._forward_pre_hooks.clear()
        if name.startswith("contiguous"):
            head._forward_pre_hooks.update(hooks)
        model.generation_config.eos_token_id = None  # every row decodes all its tokens
        prefill = timed(lambda: bua_model.generate(prompts, states, 1, batch_size=rows), repeats)
        full = timed(lambda: bua_model.generate(prompts, states, new, batch_size=rows), repeats)
        model.generation_config.eos_token_id = eos
        mfu = 2 * n_params * tokens / prefill / 1e9 / rate
        results[name] = (prefill, full)
        print(f"| {name} | {prefill:.2f} | {mfu:.0%} | {full:.2f} | {(full - prefill) / (new - 1):.3f} |")
    (p0, f0), (p1, f1) = results.values()
    print(f"contiguous / strided: prefill {p0 / p1:.2f}x faster, {new} tokens {f0 / f1:.2f}x faster")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    main(args.rows, args.repeats, args.threads)
