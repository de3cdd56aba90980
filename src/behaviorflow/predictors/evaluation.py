"""The evaluation protocol of every predictor table (BUA App. C), written once.

Full softmax over all behaviour labels, repeats allowed, on each test user's query events:
- `acc1`: share of events whose top-scored label is right (= weighted recall = HR@1);
- `acc3`: share whose label is among the three top-scored;
- `weighted_precision`: per-label precision weighted by the label's share of the query events;
- `overall`: macro accuracy, the mean over labels present in the query events of the per-label
  accuracy (recall);
- `head`, `medium`, `tail`: the same mean over labels whose share of the *training* events is
  > 5 %, 1–5 % and < 1 % (NaN when no query event carries a label of that group).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("acc1", "acc3", "weighted_precision", "overall", "head", "medium", "tail")


def share_groups(share: np.ndarray) -> np.ndarray:
    """'head' (> 5 %), 'medium' (1-5 %) or 'tail' (< 1 %) per label share of the training events."""
    return np.where(share > 0.05, "head", np.where(share >= 0.01, "medium", "tail"))


def label_groups(train_labels: np.ndarray, n_labels: int) -> np.ndarray:
    """'head' / 'medium' / 'tail' per label from its share of the training events."""
    return share_groups(np.bincount(train_labels, minlength=n_labels) / max(len(train_labels), 1))


def evaluate(logits: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """The seven metrics for scores [n, n_labels] against true labels [n]."""
    from sklearn.metrics import precision_score, recall_score, top_k_accuracy_score

    n_labels = logits.shape[1]
    pred = logits.argmax(axis=1)
    present = np.unique(labels)
    recall = recall_score(labels, pred, labels=present, average=None, zero_division=0)
    out = {
        "acc1": float((pred == labels).mean()),
        "acc3": float(top_k_accuracy_score(labels, logits, k=min(3, n_labels), labels=np.arange(n_labels))),
        "weighted_precision": float(precision_score(labels, pred, labels=present, average="weighted",
                                                    zero_division=0)),
        "overall": float(recall.mean()),
    }
    for group in ("head", "medium", "tail"):
        sel = groups[present] == group
        out[group] = float(recall[sel].mean()) if sel.any() else float("nan")
    return out


def long_rows(metrics: dict[str, float], **keys) -> pd.DataFrame:
    """One row per metric with the identifying columns (dataset, model, generator, setting, seed)."""
    return pd.DataFrame([{**keys, "metric": m, "value": metrics[m]} for m in METRICS])
