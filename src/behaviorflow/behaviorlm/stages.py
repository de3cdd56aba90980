"""BehaviorLM's training stages, one function per rule (prediction rows: `behaviorlm.evaluate`).

- `atune`: LoRA on training samples whose label is an anchor, mixed with general conversation
  (`aux_share`), early stopping on the validation users' queries. With `anchors_only=False` and no
  auxiliary data it is the paper's "traditional fine-tuning" on every behaviour (`llm_full_ft`).
- `behaviorlm_score_pool`: the A-tuned model predicts a stratified, seeded pool of training samples (every
  label scored, `lm.scoring`); `behaviorlm_select`: difficulty selection keeps its same-category mistakes,
  balanced to F per label (or, the ablation, as many per label drawn at random).
- `btune`: continues the A-tuned adapter on the selected samples.
All training goes through `lm.tuning.tune` (transformers.Trainer + peft; DDP under torchrun).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from behaviorflow.behaviorlm.data import (
    anchors,
    aux_count,
    chat_corpus,
    draw,
    select_difficult,
    select_random,
    stratified,
    training_queries,
)
from behaviorflow.behaviorlm.launch import run_stage
from behaviorflow.behaviorlm.prompts import PromptSettings, Query, formats_for, messages, queries_of
from behaviorflow.config import as_settings

log = logging.getLogger(__name__)

SELECTED_COLUMNS = ["user_id", "event_idx", "label"]


def _labels(split: pd.DataFrame) -> list[str]:
    return sorted(split["behavior"].unique())


def _shown_labels(prompt: PromptSettings, labels: list[str]) -> list[str] | None:
    return labels if prompt.list_labels else None


def encode_queries(tok, queries: list[Query], prompt: PromptSettings, labels: list[str], max_length: int):
    """Training examples: each query's prompt (its seeded format) with the label as the answer."""
    from behaviorflow.lm.examples import encode_completion

    shown = _shown_labels(prompt, labels)
    fmts = formats_for(queries, prompt.seed)
    out = [encode_completion(tok, messages(q, int(f), shown), q.label, max_length) for q, f in zip(queries, fmts)]
    dropped = sum(e is None for e in out)
    if dropped:
        log.warning("%d example(s) skipped: the prompt alone fills max_length=%d tokens", dropped, max_length)
    return [e for e in out if e is not None]


def _val_queries(split: pd.DataFrame, prompt: PromptSettings, n: int, seed: int, keep=None) -> list[Query]:
    val = split[split["split"] == "val"]
    queries = queries_of(val, val["part"] == "query", prompt.history)
    if keep is not None:
        queries = [q for q in queries if q.label in keep]
    return draw(queries, n, seed)


def atune(split_path, model_dir, out_dir, *, tuning: dict, prompt: dict, seed: int, train_examples: int,
          anchor_share: float, aux_share: float, aux_corpus: str, anchors_only: bool = True,
          order: str = "anchor", init_from=None, device: str = "auto", threads: int | None = None) -> dict:
    """Rule behaviorlm_atune (and llm_full_ft with anchors_only=False, aux_share=0): LoRA-tune the
    model on training users' samples (+ auxiliary conversation); early stop on validation users.

    `order="tail"` is the tail-first ablation's first stage: the non-anchor samples instead;
    `init_from` continues that stage's adapter (the ablation's second stage, on the anchors)."""
    from transformers import AutoTokenizer

    from behaviorflow.lm.examples import encode_chat
    from behaviorflow.lm.tuning import TuningSettings, tune

    split = pd.read_parquet(split_path)
    labels = _labels(split)
    prompt = as_settings(PromptSettings, prompt)
    settings = dataclasses.replace(as_settings(TuningSettings, tuning), seed=seed)
    anchor = set(anchors(split, labels, anchor_share))
    pool = training_queries(split, prompt.history)
    keep = None
    if anchors_only:
        keep = anchor if order == "anchor" else set(labels) - anchor
        pool = [q for q in pool if q.label in keep]
    chosen = draw(pool, train_examples, seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    train = encode_queries(tok, chosen, prompt, labels, settings.max_length)
    n_aux = aux_count(len(train), aux_share)
    aux = [encode_chat(tok, conv, settings.max_length) for conv in chat_corpus(aux_corpus, n_aux, seed)]
    aux = [e for e in aux if e is not None]
    order_rng = np.random.default_rng(seed)
    mixed = [*train, *aux]
    mixed = [mixed[i] for i in order_rng.permutation(len(mixed))]
    val = encode_queries(tok, _val_queries(split, prompt, max(8, train_examples // 8), seed, keep),
                         prompt, labels, settings.max_length)
    report = tune(model_dir, mixed, out_dir, settings, eval_examples=val or None, device=device, threads=threads,
                  desc="atune" if anchors_only else "full_ft", init_from=init_from)
    report.update(task_examples=len(train), aux_examples=len(aux), anchors=sorted(anchor),
                  labels_trained=sorted({q.label for q in chosen}), order=order)
    if int(os.environ.get("RANK", "0")) == 0:  # under DDP, one writer
        (Path(out_dir) / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def behaviorlm_score_pool(split_path, model_dir, adapter_dir, out_path, *, prompt: dict, seed: int, pool: int,
               device: str = "auto", dtype: str = "float32", threads: int | None = None) -> pd.DataFrame:
    """Rule behaviorlm_score_pool: a stratified, seeded pool of training samples with the A-tuned
    model's prediction for each (scored once, whatever F the selections then take)."""
    split = pd.read_parquet(split_path)
    labels = _labels(split)
    prompt = as_settings(PromptSettings, prompt)
    candidates = stratified(training_queries(split, prompt.history), pool, seed)
    scores = score_queries(model_dir, adapter_dir, candidates, prompt, labels, device, dtype, threads, desc="pool")
    frame = pd.DataFrame({"user_id": [q.user_id for q in candidates], "event_idx": [q.event_idx for q in candidates],
                          "label": [q.label for q in candidates],
                          "predicted": [labels[i] for i in scores.argmax(1)]})
    frame.to_parquet(out_path)
    return frame


def behaviorlm_select(split_path, pool_path, out_path, report_path, *, prompt: dict, seed: int, per_label: int,
           how: str = "difficulty", category_column: str = "category") -> dict:
    """Rule behaviorlm_select: the B-tuning set (user_id, event_idx, label) and a report."""
    from behaviorflow.atomic import write_json

    split = pd.read_parquet(split_path)
    prompt = as_settings(PromptSettings, prompt)
    scored = pd.read_parquet(pool_path)
    by_key = {(q.user_id, q.event_idx): q for q in training_queries(split, prompt.history)}
    candidates = [by_key[(u, int(i))] for u, i in zip(scored["user_id"], scored["event_idx"])]
    if how not in ("difficulty", "random"):
        raise ValueError(f"selection must be difficulty or random, not {how!r}")
    predicted = scored["predicted"].tolist()
    chosen, report = select_difficult(candidates, predicted, _categories(split, category_column), per_label, seed)
    if how == "random":  # as many per label as difficulty selection keeps, drawn without looking at difficulty
        chosen, report = select_random(candidates, dict(Counter(q.label for q in chosen)), seed)
    report["pool_accuracy"] = float(np.mean(scored["predicted"] == scored["label"]))
    pd.DataFrame([(q.user_id, q.event_idx, q.label) for q in chosen], columns=SELECTED_COLUMNS).to_parquet(out_path)
    write_json(report_path, report)
    return report


def _categories(split: pd.DataFrame, column: str) -> dict[str, str]:
    if column not in split:
        raise ValueError(f"difficulty selection needs the behaviour taxonomy: the split has no {column!r} column")
    pairs = split[["behavior", column]].drop_duplicates()
    return dict(zip(pairs["behavior"], pairs[column]))


def btune(split_path, model_dir, init_dir, selected_path, out_dir, *, tuning: dict, btune_settings: dict,
          prompt: dict, seed: int, device: str = "auto", threads: int | None = None) -> dict:
    """Rule behaviorlm_btune: continue the A-tuned adapter on the selected samples."""
    from transformers import AutoTokenizer

    from behaviorflow.lm.tuning import TuningSettings, tune

    split = pd.read_parquet(split_path)
    labels = _labels(split)
    prompt = as_settings(PromptSettings, prompt)
    settings = dataclasses.replace(as_settings(TuningSettings, tuning), seed=seed, **btune_settings)
    chosen = pd.read_parquet(selected_path)
    wanted = set(zip(chosen["user_id"], chosen["event_idx"]))
    queries = [q for q in training_queries(split, prompt.history) if (q.user_id, q.event_idx) in wanted]
    if len(queries) != len(wanted):
        raise ValueError(f"{selected_path}: {len(wanted) - len(queries)} selected samples are not training samples")
    tok = AutoTokenizer.from_pretrained(model_dir)
    train = encode_queries(tok, queries, prompt, labels, settings.max_length)
    val = encode_queries(tok, _val_queries(split, prompt, max(8, len(train) // 4), seed), prompt, labels,
                         settings.max_length)
    report = tune(model_dir, train, out_dir, settings, eval_examples=val or None, device=device, threads=threads,
                  desc="btune", init_from=init_dir)
    return report


def score_queries(model_dir, adapter_dir, queries: list[Query], prompt: PromptSettings, labels: list[str],
                  device: str = "auto", dtype: str = "float32", threads: int | None = None,
                  desc: str = "score") -> np.ndarray:
    """[n_queries, n_labels] log-likelihood of every label after every query's prompt."""
    from behaviorflow.lm.scoring import candidate_ids, load_scorer, prompt_ids, score_labels

    model, tok = load_scorer(model_dir, adapter_dir, device, dtype, threads)
    shown = _shown_labels(prompt, labels)
    fmts = formats_for(queries, prompt.seed)
    prompts = [prompt_ids(tok, messages(q, int(f), shown)) for q, f in zip(queries, fmts)]
    # a label's tokens after the assistant tag do not depend on the prompt before it
    cands = candidate_ids(tok, messages(queries[0], 0, shown), labels)
    return score_labels(model, prompts, cands, tok.pad_token_id, progress=desc)


def behaviorlm_atune(processes: int = 1, **kwargs) -> None:
    """Rules behaviorlm_atune and behaviorlm_tail_first: `atune`, data-parallel under torchrun when
    processes > 1 (`launch.run_stage`)."""
    run_stage(atune, processes, **kwargs)


def behaviorlm_btune(processes: int = 1, **kwargs) -> None:
    """Rule behaviorlm_btune: `btune`, data-parallel under torchrun when processes > 1."""
    run_stage(btune, processes, **kwargs)
