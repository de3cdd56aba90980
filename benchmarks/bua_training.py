"""One BUA stage-2 training step (projector + LoRA, bf16 autocast) before and after the two speed
settings of the table-9 defaults, measured side by side in one run:

- LoRA dropout 0.05 (peft draws a dropout mask over every adapted layer's input) against none;
- the frozen base's linear layers float32, cast to bfloat16 by autocast at every call, against
  stored in bfloat16 (`lm.tuning.frozen_linears_in_bf16`; the same step bit for bit).

    python benchmarks/bua_training.py            # 8 dialogues of stage 2, 4 timed steps per setting

Prints the matmul rates, then per setting the seconds per step, training tokens/s and the
model-FLOPs utilisation against the bf16 matmul rate (MFU = tokens/s x 6N / rate, the yardstick
of `benchmarks/lm_tuning.py`), and the loss of each setting (equal with and without the stored
bf16 layers). Needs a built main run and BUA's states (`snakemake --cores all
results/simulated/bua/states_sequence.npz`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from lm_tuning import MODEL, ROOT, matmul_rate

DATA = ROOT / "data/processed/simulated/split.parquet"
STATES = ROOT / "results/simulated/bua/states_sequence.npz"


def stage2_batch(tok, bua: dict, n: int):
    """`n` stage-2 dialogues of neighbouring length (a length-bucketed batch), collated."""
    from behaviorflow.bua.align import placeholder_token
    from behaviorflow.bua.stages import labels_and_shares, load_samples, stage_examples
    from behaviorflow.lm.examples import collate

    split, samples = load_samples(DATA, STATES, bua["window"], ("train",))
    _, shares = labels_and_shares(split)
    placeholder, _ = placeholder_token(tok, "auto")
    contexts, states = samples["train"]
    examples = stage_examples(2, tok, contexts[:2 * n], states[:2 * n], shares=shares, placeholder=placeholder,
                              positions=bua["positions"], text_events=bua["text_events"],
                              max_length=bua["tuning"]["max_length"], seed=1)
    middle = sorted(examples, key=lambda e: len(e.input_ids))[n // 2:n // 2 + n]
    return collate(tok.pad_token_id if tok.pad_token_id is not None else 0)(middle), states.shape[-1]


def step_time(settings, batch, encoder_dim: int, stored_bf16: bool, steps: int) -> tuple[float, float]:
    """Seconds per forward + backward step and the first step's loss."""
    import torch

    from behaviorflow.bua.align import make_inject, placeholder_token, projector
    from behaviorflow.lm.tuning import _wrapped_class, apply_freeze_map, frozen_linears_in_bf16, load_base

    torch.manual_seed(0)
    lm, tok = load_base(MODEL, dataclasses.replace(settings, bf16=False))
    if stored_bf16:
        frozen_linears_in_bf16(lm)
    model = _wrapped_class()(lm, {"projector": projector(encoder_dim, lm.config.hidden_size, 1)},
                             make_inject(placeholder_token(tok, "auto")[1]))
    apply_freeze_map(model, ("projector", "lora"))
    model.train()
    losses, t0 = [], None
    for step in range(steps + 1):  # the first step warms up and is not timed
        if step == 1:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch)["loss"]
        loss.backward()
        model.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return (time.perf_counter() - t0) / steps, losses[0]


def main() -> None:
    import torch
    import yaml
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from behaviorflow.bua.stages import _stage_settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per setting")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for need in (MODEL, DATA, STATES):
        if not need.exists():
            raise SystemExit(f"{need} missing: run `snakemake --cores all {STATES.relative_to(ROOT)}` first")
    bf16, fp32 = matmul_rate(torch.bfloat16, args.threads), matmul_rate(torch.float32, args.threads)
    print(f"matmul 2048^3 on {args.threads} threads: bf16 {bf16:.0f} GFLOP/s, fp32 {fp32:.0f} GFLOP/s")
    torch.set_num_threads(args.threads)
    bua = yaml.safe_load((ROOT / "config/config.yaml").read_text())["bua"]
    tok = AutoTokenizer.from_pretrained(MODEL)
    settings = _stage_settings(bua, 2, 1)
    batch, encoder_dim = stage2_batch(tok, bua, settings.batch_size)
    tokens = int(batch["attention_mask"].sum())
    with torch.device("meta"):
        n_params = sum(p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(MODEL))
                       .parameters())
    print(f"stage-2 batch: {batch['input_ids'].shape[0]} dialogues, {tokens} tokens; {n_params / 1e6:.1f}M parameters")
    rows = []
    for dropout in (0.05, 0.0):
        for stored in (False, True):
            seconds, loss = step_time(dataclasses.replace(settings, dropout=dropout), batch, encoder_dim, stored,
                                      args.steps)
            mfu = tokens / seconds * 6 * n_params / (bf16 * 1e9)
            rows.append({"lora_dropout": dropout, "linears_stored_bf16": stored, "s_per_step": round(seconds, 2),
                         "tokens_per_s": round(tokens / seconds, 1), "mfu_vs_bf16": round(mfu, 3), "loss": loss})
            print(f"dropout {dropout:<4} base linears {'bf16 (stored)' if stored else 'fp32 (cast) '}: "
                  f"{seconds:6.2f} s/step, {tokens / seconds:6.1f} tokens/s, MFU {mfu:.1%}, loss {loss:.6f}")
    before, after = rows[0]["s_per_step"], rows[-1]["s_per_step"]
    same = rows[0]["loss"] == rows[1]["loss"] and rows[2]["loss"] == rows[3]["loss"]
    print(f"before (dropout 0.05, fp32 linears) / after (no dropout, bf16 linears): {before / after:.2f}x; "
          f"loss equal with stored bf16 linears: {same}")
    out = ROOT / "benchmarks/out/bua_training.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"bf16_gflops": bf16, "fp32_gflops": fp32, "tokens": tokens, "rows": rows}, indent=2)
                   + "\n")


if __name__ == "__main__":
    main()
