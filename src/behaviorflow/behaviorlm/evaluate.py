"""LLM prediction rows: score every label for the fixed LLM test queries and evaluate with the one
protocol (a module of its own, so BehaviorLM's training stages do not depend on evaluation code)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from behaviorflow.behaviorlm.data import test_queries
from behaviorflow.behaviorlm.prompts import PromptSettings
from behaviorflow.behaviorlm.stages import score_queries
from behaviorflow.config import as_settings


def train_groups(split: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """Head / medium / tail of each label from the training users' events only."""
    from behaviorflow.predictors.evaluation import label_groups

    train = split.loc[split["part"] == "train", "behavior"]
    return label_groups(pd.Categorical(train, categories=labels).codes, len(labels))


def behaviorlm_predict(split_path, model_dir, adapter_dir, outputs: dict, *, dataset: str, method: str, seed: int, prompt: dict,
            queries: int, query_seed: int, device: str = "auto", dtype: str = "float32",
            threads: int | None = None) -> pd.DataFrame:
    """Rule behaviorlm_predict: the method's leaderboard rows on the LLM test queries, and its
    per-query scores (for table 5's paired comparisons)."""
    from behaviorflow.atomic import write_csv
    from behaviorflow.predictors.evaluation import evaluate, long_rows

    split = pd.read_parquet(split_path)
    labels = sorted(split["behavior"].unique())
    prompt = as_settings(PromptSettings, prompt)
    chosen = test_queries(split, prompt.history, queries, query_seed)
    scores = score_queries(model_dir, adapter_dir, chosen, prompt, labels, device, dtype, threads, desc=method)
    index = {lab: i for i, lab in enumerate(labels)}
    truth = np.array([index[q.label] for q in chosen])
    groups = train_groups(split, labels)
    rows = long_rows(evaluate(scores, truth, groups), dataset=dataset, model=method, generator="none",
                     setting="real", seed=seed)
    rows["queries"] = len(chosen)
    write_csv(rows, outputs["metrics"])
    frame = pd.DataFrame(scores, columns=labels)
    frame.insert(0, "user_id", [q.user_id for q in chosen])
    frame.insert(1, "event_idx", [q.event_idx for q in chosen])
    frame.to_parquet(outputs["scores"])
    return rows
