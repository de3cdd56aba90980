"""LoRA training speed of the one training module (`behaviorflow.lm.tuning`, transformers.Trainer)
beside the hand-written loop it replaced, and beside this machine's measured matmul rates.

    python benchmarks/lm_tuning.py                       # BehaviorLM-sized examples (256 and 512 tokens)
    python benchmarks/lm_tuning.py --steps 6 --generator # also tune_generator's own examples

Prints, in one run: the bf16 and fp32 matmul rates (GFLOP/s, 2 threads), then for each example
size and loop the training tokens/s and the model-FLOPs utilisation, MFU = tokens/s x 6 x N /
bf16 matmul rate (N: all parameters of the model, as the issue counts it; a LoRA step computes
fewer FLOPs than 6N per token because frozen weights get no gradient, so MFU here is a
throughput figure on a fixed yardstick). Needs the converted embedded model (`models/
smollm2-135m-instruct`, rule prepare_generator_model); `--generator` also needs the processed
simulated data (`snakemake --cores all data/processed/simulated/profiles.parquet`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models/smollm2-135m-instruct"
WEEK = ["Monday, 08:30, z1, messaging", "Monday, 09:00, z2, email", "Monday, 12:30, z3, food_delivery",
        "Tuesday, 07:00, z1, alarm_clock", "Tuesday, 07:30, z1, weather", "Tuesday, 08:00, z_other, navigation"]


def matmul_rate(dtype, threads: int, n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of an n x n x n matmul in `dtype` on `threads` threads (best of three runs)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9)
    return best


def sized_examples(tok, tokens: int, n: int):
    """Chat examples of about `tokens` tokens: a prompt of event history and a short answer."""
    from behaviorflow.lm.examples import encode_completion

    out = []
    for i in range(n):
        lines = []
        while True:  # grow the history until the whole example (template included) reaches `tokens`
            lines.append(WEEK[(i + len(lines)) % len(WEEK)])
            msgs = [{"role": "user", "content": "Recent events:\n" + "\n".join(lines) + "\nWhat comes next?"}]
            example = encode_completion(tok, msgs, WEEK[i % len(WEEK)].split(", ")[-1], 4 * tokens)
            if len(example.input_ids) >= tokens:
                break
        out.append(example)
    return out


def old_loop(model_dir, rows, steps: int, batch: int, layers: int, threads: int) -> dict:
    """The hand-written loop lm.tuning replaced (commit 7ab32e9's `tune_lora`): AdamW, constant
    rate, bf16 autocast, the same LoRA; kept here only as the reference to beat."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    n_layers = model.config.num_hidden_layers
    top = list(range(n_layers - layers, n_layers)) if 0 < layers < n_layers else None
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, layers_to_transform=top,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                             task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    tokens, t0 = 0, None
    for step in range(steps + 1):  # the first step warms up and is not timed
        if step == 1:
            t0 = time.perf_counter()
        chunk = [rows[(step * batch + j) % len(rows)] for j in range(batch)]
        width = max(len(e.input_ids) for e in chunk)
        ids = torch.tensor([e.input_ids + [0] * (width - len(e.input_ids)) for e in chunk])
        labels = torch.tensor([e.labels + [-100] * (width - len(e.labels)) for e in chunk])
        mask = torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in chunk])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step >= 1:
            tokens += int(mask.sum())
    return {"tokens_per_s": tokens / (time.perf_counter() - t0)}


def new_loop(model_dir, rows, steps: int, batch: int, layers: int, threads: int) -> dict:
    """lm.tuning.tune with the same LoRA, bf16 autocast, warm-up + cosine; the first step is not timed."""
    from transformers import TrainerCallback

    from behaviorflow.lm.tuning import TuningSettings, tune

    class Clock(TrainerCallback):
        def __init__(self):
            self.t0, self.tokens0 = None, 0

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                self.t0, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen

        def on_train_end(self, args, state, control, **kwargs):
            self.rate = (state.num_input_tokens_seen - self.tokens0) / (time.perf_counter() - self.t0)

    clock = Clock()
    settings = TuningSettings(max_steps=steps + 1, batch_size=batch, layers=layers, bf16=True, save_steps=10_000,
                              learning_rate=2e-4)
    with tempfile.TemporaryDirectory() as tmp:
        report = tune(model_dir, rows[: (steps + 1) * batch], Path(tmp) / "adapter", settings, device="cpu",
                      threads=threads, callbacks=[clock])
    return {"tokens_per_s": clock.rate, "steps": report["steps"]}


def generator_examples(tok, n: int):
    import pandas as pd

    from behaviorflow.behaviorgen.contexts import vocabularies
    from behaviorflow.behaviorgen.tuning import training_examples
    from behaviorflow.lm.examples import encode_completion

    processed = ROOT / "data/processed/simulated"
    split, profiles = pd.read_parquet(processed / "split.parquet"), pd.read_parquet(processed / "profiles.parquet")
    zones, behaviors = vocabularies(split, 10)
    pairs = training_examples(split, profiles, zones, behaviors, 7, n, seed=19)
    return [e for m, c in pairs if (e := encode_completion(tok, m, c, 2560)) is not None]


def main() -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="timed optimiser steps per measurement")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--generator", action="store_true", help="also tune_generator's examples (batch 2, top 8)")
    args = parser.parse_args()
    if not MODEL.is_dir():
        raise SystemExit(f"{MODEL} missing: run `snakemake --cores all {MODEL.relative_to(ROOT)}` first")
    bf16, fp32 = matmul_rate(torch.bfloat16, args.threads), matmul_rate(torch.float32, args.threads)
    print(f"matmul 2048^3 on {args.threads} threads: bf16 {bf16:.0f} GFLOP/s, fp32 {fp32:.0f} GFLOP/s "
          f"(bf16/fp32 {bf16 / fp32:.2f}x)")
    tok = AutoTokenizer.from_pretrained(MODEL)
    with torch.device("meta"):
        n_params = sum(p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(MODEL))
                       .parameters())
    rows = []
    print(f"model: {MODEL.name}, {n_params / 1e6:.1f}M parameters; 6N = {6 * n_params / 1e9:.2f} GFLOP per token")
    cases = [(f"{t} tokens, all layers", sized_examples(tok, t, (args.steps + 1) * args.batch), args.batch, 0)
             for t in (256, 512)]
    if args.generator:
        ex = generator_examples(tok, (args.steps + 1) * 2)
        cases.append((f"tune_generator's examples (~{sum(len(e.input_ids) for e in ex) // len(ex)} tokens), top 8",
                      ex, 2, 8))
    for name, ex, batch, layers in cases:
        for loop, fn in (("hand-written loop (before)", old_loop), ("lm.tuning (Trainer)", new_loop)):
            r = fn(MODEL, ex, args.steps, batch, layers, args.threads)
            mfu = r["tokens_per_s"] * 6 * n_params / (bf16 * 1e9)
            rows.append({"examples": name, "loop": loop, "batch": batch, "tokens_per_s": round(r["tokens_per_s"], 1),
                         "mfu_vs_bf16": round(mfu, 3)})
            print(f"{name:<48} {loop:<28} batch {batch}: {r['tokens_per_s']:7.1f} tokens/s, MFU {mfu:.1%}")
        before, after = rows[-2]["tokens_per_s"], rows[-1]["tokens_per_s"]
        print(f"{'':<48} ratio lm.tuning / before: {after / before:.2f}x")
    out = ROOT / "benchmarks/out/lm_tuning.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"bf16_gflops": bf16, "fp32_gflops": fp32, "parameters": n_params, "rows": rows},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
