"""BUA's rules, one function each: the encoder states (once per dataset and embedding kind), the three
curriculum stages, and the reflection pool stage 3 learns from. Every training stage runs on the one
training module (`lm.tuning.tune`: transformers.Trainer + peft) with the projector as an extra and
the paper's freeze map (stage 1: projector; stage 2: projector + LoRA; stage 3: LoRA).

The samples: a seeded pool of training users' events (`pool`, with the two hours after each for the
future-scene task), a seeded draw of validation users' query events for early stopping, the LLM
test queries (the same ones table 5 scores, `behaviorlm.queries` / `query_seed`), and the days of
one-day generation (`bua/days.py`): training users' days for stage 2's generation round
(`gen_train`) and each sampled test user's first day after the support (`gen_test`, table 8).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from behaviorflow.behaviorlm.launch import run_stage
from behaviorflow.bua.tasks import ROUNDS, STAGE1_TASKS, Context, answers, contexts_of, day_answer, dialogue
from behaviorflow.bua.tasks import reflection, stage1_messages, unigram_f1
from behaviorflow.bua.writer import with_written

log = logging.getLogger(__name__)

FREEZE = {1: ("projector",), 2: ("projector", "lora"), 3: ("lora",)}  # §3.3: what each stage trains
PARTS = ("train", "val", "test", "gen_train", "gen_test")
HORIZON = {"train": "scene", "gen_train": "day", "gen_test": "day"}  # parts whose contexts carry a future


def sample_keys(split: pd.DataFrame, window: int, pool: int, pool_seed: int, val: int, queries: int,
                query_seed: int, generation: dict) -> dict[str, list[tuple[str, int]]]:
    """(user_id, event_idx) of the training pool, the validation draw, the LLM test queries, and the
    first events of the generation days (`generation`: train_days, users)."""
    from behaviorflow.behaviorlm.data import draw, test_queries, training_queries
    from behaviorflow.behaviorlm.prompts import queries_of
    from behaviorflow.bua.days import day_keys

    v = split[split["split"] == "val"]
    return {
        "train": [(q.user_id, q.event_idx) for q in draw(training_queries(split, window), pool, pool_seed)],
        "val": [(q.user_id, q.event_idx) for q in draw(queries_of(v, v["part"] == "query", window), val, pool_seed)],
        "test": [(q.user_id, q.event_idx) for q in test_queries(split, window, queries, query_seed)],
        "gen_train": day_keys(split, "train", window, generation["train_days"], pool_seed),
        "gen_test": day_keys(split, "test", window, generation["users"], pool_seed),
    }


def bua_states(split_path, encoder_path, out_path, *, predictors: dict, slot_minutes: int, window: int,
               positions: int, pool: int, pool_seed: int, val: int, queries: int, query_seed: int,
               generation: dict, embedding: str = "sequence", threads: int | None = None) -> dict:
    """Rule bua_states: the frozen SASRec's states (or item embeddings) of every sample BUA trains,
    stops early or predicts on, computed once: npz with `<part>_user`, `<part>_idx`, `<part>_states`."""
    import torch

    from behaviorflow.atomic import tmp_sibling
    from behaviorflow.bua.align import encoder_windows, sequence_states
    from behaviorflow.predictors.models import build_model
    from behaviorflow.predictors.scenarios import PredictorSettings
    from behaviorflow.predictors.sequences import Vocab

    if threads:
        torch.set_num_threads(int(threads))
    split = pd.read_parquet(split_path)
    vocab = Vocab.from_split(split, slot_minutes)
    settings = PredictorSettings.from_config(predictors)
    if positions > settings.model.max_len:
        raise ValueError(f"bua.positions ({positions}) exceeds the encoder's window predictors.max_len "
                         f"({settings.model.max_len})")
    model = build_model("sasrec", vocab.sizes, vocab.n_labels, settings.model)
    model.load_state_dict(torch.load(encoder_path, map_location="cpu"))
    keys = sample_keys(split, window, pool, pool_seed, val, queries, query_seed, generation)
    arrays, counts = {}, {}
    for part in PARTS:
        ctx = encoder_windows(split, vocab, keys[part], settings.model.max_len)
        arrays[f"{part}_user"] = np.array([k[0] for k in keys[part]], dtype=str)
        arrays[f"{part}_idx"] = np.array([k[1] for k in keys[part]], dtype=np.int64)
        arrays[f"{part}_states"] = sequence_states(model, ctx, positions, embedding=embedding)
        counts[part] = len(keys[part])
    tmp = tmp_sibling(out_path)
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    Path(tmp).replace(out_path)
    log.info("bua states (%s): %s samples, %d positions x %d dims", embedding, counts, positions,
             arrays["train_states"].shape[-1])
    return counts


def load_samples(split_path, states_path, window: int, parts=PARTS) -> tuple[pd.DataFrame, dict]:
    """The split and, per part, its contexts (training ones with their future scene) and states."""
    split = pd.read_parquet(split_path)
    data = np.load(states_path)
    out = {}
    for part in parts:
        keys = list(zip(data[f"{part}_user"].tolist(), data[f"{part}_idx"].tolist()))
        mask = pd.Series(list(zip(split["user_id"], split["event_idx"])), index=split.index).isin(set(keys))
        ctx = {c.key: c for c in contexts_of(split, mask, window, with_future=part in HORIZON,
                                             horizon=HORIZON.get(part, "scene"))}
        missing = [k for k in keys if k not in ctx]
        if missing:
            raise ValueError(f"{states_path}: {len(missing)} {part} samples are not in {split_path} (e.g. "
                             f"{missing[0]}); rebuild the states with this split")
        out[part] = ([ctx[k] for k in keys], data[f"{part}_states"])
    return split, out


def labels_and_shares(split: pd.DataFrame) -> tuple[list[str], dict[str, float]]:
    from behaviorflow.behaviorlm.data import label_shares

    labels = sorted(split["behavior"].unique())
    return labels, label_shares(split, labels).to_dict()


def _draw(n_items: int, n: int, seed: int) -> np.ndarray:
    """Indices of BehaviorLM's seeded draw (`behaviorlm.data.draw`) of `n` of `n_items` samples."""
    from behaviorflow.behaviorlm.data import draw

    return np.array(draw(list(range(n_items)), n, seed), dtype=np.int64)


def draws(bua: dict, seed: int, n_train: int, n_gen: int) -> dict[str, np.ndarray]:
    """Which samples each step of `seed`'s curriculum draws: stages 1 and 2 and the reflection pool
    from the training pool's `n_train`, stage 2's generation dialogues from the `n_gen` training days."""
    return {"stage1": _draw(n_train, bua["stage1"]["examples"], seed * 10 + 1),
            "stage2": _draw(n_train, bua["stage2"]["examples"], seed * 10 + 2),
            "reflect": _draw(n_train, bua["stage3"]["pool"], seed * 10 + 3),
            "gen_train": _draw(n_gen, bua["stage2"].get("generation_examples", 0), seed * 10 + 4)}


def _written(answers_path) -> dict[str, dict | None]:
    """Each part's written curriculum answers (`bua.writer`); None for every part (the rules'
    answers) without a file."""
    from behaviorflow.bua.writer import answer_book

    if not answers_path:
        return defaultdict(lambda: None)
    return defaultdict(dict, answer_book(answers_path))


def stage_examples(stage: int, tok, contexts: list[Context], states: np.ndarray, *, shares: dict,
                   placeholder: str, positions: int, text_events: int, max_length: int, seed: int,
                   rounds: tuple[str, ...] = ROUNDS, balance: bool = True, drafts: dict | None = None,
                   final: str = "predict", written: dict | None = None) -> list:
    """Tokenised examples of one stage, each carrying its encoder states.

    Stage 1: one task per context, the tasks taking turns in a seeded order (every task about
    equally often). Stage 2: the dialogue (`rounds` then the `final` round: predict, or generate
    the context's day), round-balanced loss weights when `balance`. Stage 3: the reflection of each
    context in `drafts` (key -> draft). `written`: LLM-written answers in place of the rules'
    (`bua.writer.with_written`)."""
    from behaviorflow.bua.align import STATES
    from behaviorflow.lm.examples import encode_chat, round_balanced_weights

    order = np.random.default_rng(seed).permutation(len(STAGE1_TASKS))
    out, dropped = [], 0
    for i, (ctx, st) in enumerate(zip(contexts, states)):
        ref = with_written(answers(ctx, shares, positions), ctx, written, "the curriculum answers (rule bua_answers)")
        if final == "generate":
            ref["generate"] = day_answer(ctx)
        if stage == 1:
            task = STAGE1_TASKS[order[i % len(order)]]
            msgs = stage1_messages(ctx, task, ref[task], placeholder, positions)
        elif stage == 2:
            msgs = dialogue(ctx, ref, placeholder, positions, text_events, rounds=rounds, final=final)
        else:
            msgs = reflection(ctx, ref, drafts[ctx.key], placeholder, positions, text_events)
        ex = encode_chat(tok, msgs, max_length)
        if ex is None or sum(t == tok.convert_tokens_to_ids(placeholder) for t in ex.input_ids) != positions:
            dropped += 1
            continue
        if balance and stage > 1:
            ex.weights = round_balanced_weights(ex.rounds)
        ex.extra = {STATES: np.asarray(st, dtype=np.float32)}
        out.append(ex)
    if dropped:
        log.warning("stage %d: %d example(s) skipped (cut by max_length=%d before their answer or placeholders)",
                    stage, dropped, max_length)
    return out


def _stage_settings(bua: dict, stage: int, seed: int):
    from behaviorflow.config import as_settings
    from behaviorflow.lm.tuning import TuningSettings

    base = as_settings(TuningSettings, bua["tuning"])
    return dataclasses.replace(base, seed=seed, train=FREEZE[stage], **bua[f"stage{stage}"].get("tuning", {}))


def train_stage(stage: int, split_path, states_path, model_dir, out_dir, *, bua: dict, seed: int,
                variant: dict, init_from=None, reflect_path=None, answers_path=None, device: str = "auto",
                threads: int | None = None) -> dict:
    """Rules bua_stage1, bua_stage2, bua_stage3: one curriculum stage on `lm.tuning.tune`.

    `variant`: `rounds` (stage 2's understanding rounds; [] for the w/o-stage-2 ablation) and
    `balance` (the round-balanced loss). `init_from`: the previous stage's output (its projector,
    and from stage 3 on its adapter); without it (w/o stage 1) the projector starts fresh.
    `answers_path`: the seed's LLM-written curriculum answers (rule bua_answers); None: the rules'."""
    from transformers import AutoConfig, AutoTokenizer

    from behaviorflow.bua.align import make_inject, placeholder_token, projector
    from behaviorflow.lm.tuning import tune

    if stage not in FREEZE:
        raise ValueError(f"BUA has stages 1-3, not {stage}")
    if stage == 3 and (init_from is None or reflect_path is None):
        raise ValueError("stage 3 refines the stage-2 model: it needs its adapter and the reflection pool")
    settings = _stage_settings(bua, stage, seed)
    split, samples = load_samples(split_path, states_path, bua["window"], ("train", "val", "gen_train"))
    _, shares = labels_and_shares(split)
    tok = AutoTokenizer.from_pretrained(model_dir)
    placeholder, placeholder_id = placeholder_token(tok, bua["placeholder"])
    contexts, states = samples["train"]
    picks = draws(bua, seed, len(contexts), len(samples["gen_train"][0]))
    written = _written(answers_path)
    drafts = None
    if stage == 3:
        pool = pd.read_parquet(reflect_path)
        weakest = pool.sort_values(["f1", "user_id", "event_idx"], kind="stable").head(bua["stage3"]["examples"])
        drafts = {(u, int(i)): d for u, i, d in zip(weakest["user_id"], weakest["event_idx"], weakest["draft"])}
        keep = [i for i, c in enumerate(contexts) if c.key in drafts]
    else:
        keep = picks[f"stage{stage}"].tolist()
    common = dict(shares=shares, placeholder=placeholder, positions=bua["positions"],
                  text_events=bua["text_events"], max_length=settings.max_length, seed=seed,
                  rounds=tuple(variant["rounds"]), balance=variant["balance"])
    train = stage_examples(stage, tok, [contexts[i] for i in keep], states[keep], drafts=drafts,
                           written=written["train"], **common)
    n_gen = bua["stage2"].get("generation_examples", 0) if stage == 2 else 0
    if n_gen:  # the same dialogue ending in the generation round, on training users' days
        gen_ctx, gen_states = samples["gen_train"]
        pick = picks["gen_train"].tolist()
        generated = stage_examples(2, tok, [gen_ctx[i] for i in pick], gen_states[pick], final="generate",
                                   written=written["gen_train"], **common)
        log.info("stage 2: %d prediction and %d generation dialogues", len(train), len(generated))
        train = train + generated
    val_ctx, val_states = samples["val"]
    val = None
    if stage < 3:  # early stopping on the same stage's task for validation users
        val = stage_examples(stage, tok, val_ctx, val_states, written=written["val"], **common) or None
    d_llm = AutoConfig.from_pretrained(model_dir).hidden_size
    extras = {"projector": projector(states.shape[-1], d_llm, seed)}
    report = tune(model_dir, train, out_dir, settings, eval_examples=val, extras=extras,
                  inject=make_inject(placeholder_id), device=device, threads=threads, desc=f"bua stage {stage}",
                  init_from=init_from)
    report.update(stage=stage, freeze=list(FREEZE[stage]), variant=variant, placeholder=placeholder,
                  encoder_dims=int(states.shape[-1]), positions=bua["positions"])
    if int(os.environ.get("RANK", "0")) == 0:  # under DDP, one writer
        (Path(out_dir) / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def bua_reflect(split_path, states_path, model_dir, adapter_dir, out_path, *, bua: dict, seed: int, variant: dict,
                answers_path=None, device: str = "auto", dtype: str = "float32",
                threads: int | None = None) -> pd.DataFrame:
    """Rule bua_reflect: the stage-2 model writes the user-feature summary (after the reference key
    behaviours and patterns) for a seeded draw of training samples; each draft is scored against the
    reference (word-overlap F1; the written one with `answers_path`). Stage 3 learns to correct the
    weakest."""
    from behaviorflow.bua.infer import BuaModel
    from behaviorflow.lm.scoring import prompt_ids

    split, samples = load_samples(split_path, states_path, bua["window"], ("train",))
    _, shares = labels_and_shares(split)
    contexts, states = samples["train"]
    keep = draws(bua, seed, len(contexts), 0)["reflect"]
    written = _written(answers_path)["train"]
    model = BuaModel.load(model_dir, adapter_dir, bua["placeholder"], device, dtype, threads)
    refs, prompts = [], []
    for i in keep:
        ref = with_written(answers(contexts[i], shares, bua["positions"]), contexts[i], written, str(answers_path))
        known = {k: ref[k] for k in variant["rounds"] if k != "summary"}
        msgs = dialogue(contexts[i], known, model.placeholder, bua["positions"], bua["text_events"],
                        rounds=(*[r for r in variant["rounds"] if r != "summary"], "summary"))
        prompts.append(prompt_ids(model.tok, msgs))
        refs.append(ref["summary"])
    drafts = model.generate(prompts, states[keep], bua["stage3"]["max_new_tokens"], batch_size=bua["batch_size"],
                            desc="reflect")
    frame = pd.DataFrame({"user_id": [contexts[i].query.user_id for i in keep],
                          "event_idx": [contexts[i].query.event_idx for i in keep], "draft": drafts,
                          "reference": refs, "f1": [unigram_f1(d, r) for d, r in zip(drafts, refs)]})
    frame.to_parquet(out_path)
    log.info("reflection pool: %d drafts, word F1 mean %.3f (weakest %d kept for stage 3)", len(frame),
             frame["f1"].mean(), min(len(frame), bua["stage3"]["examples"]))
    return frame


def bua_stage(processes: int = 1, **kwargs) -> None:
    """Rules bua_stage1, bua_stage2, bua_stage3: `train_stage`, data-parallel under torchrun when
    processes > 1 (`behaviorlm.launch.run_stage`)."""
    run_stage(train_stage, processes, **kwargs)
