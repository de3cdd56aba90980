"""The sequential and counting predictors on the LLM test queries, so table 5 compares every method on
the same queries (a module of its own: BehaviorLM's training stages do not depend on predictor code)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from behaviorflow.behaviorlm.data import test_queries
from behaviorflow.behaviorlm.prompts import PromptSettings
from behaviorflow.config import as_settings


def sequential_on_llm_queries(split_path, model_paths: list[str], out_path, *, dataset: str, prompt: dict, queries: int,
                    query_seed: int, predictors: dict, slot_minutes: int) -> pd.DataFrame:
    """Rule sequential_on_llm_queries: the counting baselines and every pretrained SASRec / BERT4Rec
    (`models/predictors/<dataset>/<model>/real/seed<k>.pt`) scored on the LLM test queries."""
    import re

    import torch

    from behaviorflow.atomic import write_csv
    from behaviorflow.predictors.baselines import baseline_logits
    from behaviorflow.predictors.evaluation import evaluate, label_groups, long_rows
    from behaviorflow.predictors.models import build_model, predict_logits
    from behaviorflow.predictors.scenarios import PredictorSettings
    from behaviorflow.predictors.sequences import OFFSET, Vocab, query_examples

    split = pd.read_parquet(split_path)
    vocab = Vocab.from_split(split, slot_minutes)
    prompt = as_settings(PromptSettings, prompt)
    chosen = test_queries(split, prompt.history, queries, query_seed)
    test = split[(split["split"] == "test")].sort_values(["user_id", "event_idx"], kind="stable")
    order = list(zip(test.loc[test["part"] == "query", "user_id"], test.loc[test["part"] == "query", "event_idx"]))
    position = {key: i for i, key in enumerate(order)}
    rows_idx = np.array([position[(q.user_id, q.event_idx)] for q in chosen])
    settings = PredictorSettings.from_config(predictors)
    ctx, labels, _ = query_examples(split, vocab, "test", settings.model.max_len)
    groups = label_groups(vocab.encode(split[split["part"] == "train"])[:, 0] - OFFSET, vocab.n_labels)
    tables = [long_rows(evaluate(logits[rows_idx], labels[rows_idx], groups), dataset=dataset, model=name,
                        generator="none", setting="real", seed=0)
              for name, logits in baseline_logits(split, vocab).items()]
    for path in model_paths:
        match = re.search(r"/(\w+)/real/seed(\d+)\.pt$", str(path))
        if not match:
            raise ValueError(f"{path}: expected models/predictors/<dataset>/<model>/real/seed<k>.pt")
        kind, seed = match.group(1), int(match.group(2))
        model = build_model(kind, vocab.sizes, vocab.n_labels, settings.model)
        model.load_state_dict(torch.load(path, map_location="cpu"))
        logits = predict_logits(model, ctx[rows_idx])
        tables.append(long_rows(evaluate(logits, labels[rows_idx], groups), dataset=dataset, model=kind,
                                generator="none", setting="real", seed=seed))
    table = pd.concat(tables, ignore_index=True)
    table["queries"] = len(chosen)
    write_csv(table, out_path)
    return table
