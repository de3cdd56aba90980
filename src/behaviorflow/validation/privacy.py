"""Privacy of synthetic behaviour data: copying, closeness and membership inference.

A record is one user-week: the time-ordered tokens `weekday|slot|location|behaviour` of its
events (`records()`). Which real weeks count as training, member or holdout is the caller's
choice, so the same code judges any generator:

- overlap: for each synthetic week, the largest share of its distinct event n-grams found in any
  single training week (weeks shorter than n contribute the whole week as one gram). BehaviorGen
  reports 80% of synthetic weeks below 30%; a generator that copies scores 1.0.
- DCR (distance to closest record): Jaccard distance between the sets of event tokens of two
  weeks, minimised over the training weeks. A synthetic week's DCR is compared with the same
  distance for real holdout weeks (people the generator never saw): a generator that copies has
  DCRs far below the holdout's; one that generalises has about the same.
- membership inference: the attacker sees the synthetic weeks and scores each candidate real week
  by its similarity to the closest synthetic week; AUC of telling members (weeks the generator was
  conditioned on) from holdout weeks. 0.5 = no leak, 1.0 = every member is given away.

Roles in the workflow: the training records are every real week a generator could have learned
from (training users' events and the support events of the users it generated for); members are
the weeks of users it was actually conditioned on; holdout users are those of a split no
generator saw.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.metrics import roc_auc_score

from behaviorflow.validation.metrics import weeks_of

CHUNK_ROWS = 512


def records(events: pd.DataFrame) -> list[list[str]]:
    """Each user-week of `events` as its time-ordered event tokens (sorted by user and week)."""
    return [(w["weekday"].astype(str) + "|" + w["slot"].astype(str) + "|" + w["location"].astype(str) + "|"
             + w["behavior"].astype(str)).tolist() for w in weeks_of(events).values()]


def ngrams(seq: list[str], n: int) -> set[tuple[str, ...]]:
    """Distinct n-grams of a sequence; a sequence shorter than n is its own single gram."""
    if len(seq) < n:
        return {tuple(seq)} if seq else set()
    return {tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)}


def overlap(synthetic: list[list[str]], training: list[list[str]], n: int = 3) -> np.ndarray:
    """For each synthetic week, the largest share of its n-grams found in one training week."""
    index: dict[tuple[str, ...], list[int]] = {}
    for r, week in enumerate(training):
        for gram in ngrams(week, n):
            index.setdefault(gram, []).append(r)
    out = np.zeros(len(synthetic))
    for s, week in enumerate(synthetic):
        grams = ngrams(week, n)
        hits = Counter(r for gram in grams for r in index.get(gram, ()))
        out[s] = max(hits.values()) / len(grams) if hits else 0.0
    return out


def _binary(weeks: list[list[str]], vocab: dict[str, int]) -> sparse.csr_matrix:
    """Rows of 0/1 token indicators."""
    rows = [i for i, week in enumerate(weeks) for _ in set(week)]
    cols = [vocab[tok] for week in weeks for tok in set(week)]
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(weeks), len(vocab)))


def closest_distance(queries: list[list[str]], records_: list[list[str]]) -> np.ndarray:
    """For each query week, the Jaccard distance of its token set to the closest record's."""
    if not records_:
        raise ValueError("closest_distance needs at least one record to compare with")
    vocab = {tok: i for i, tok in enumerate(sorted({t for week in records_ + queries for t in week}))}
    r, q = _binary(records_, vocab), _binary(queries, vocab)
    r_size = np.asarray(r.sum(axis=1)).ravel()
    q_size = np.asarray(q.sum(axis=1)).ravel()
    out = np.ones(len(queries))
    for start in range(0, len(queries), CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, len(queries))
        inter = (q[start:stop] @ r.T).toarray()
        union = q_size[start:stop, None] + r_size[None, :] - inter
        sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        out[start:stop] = 1.0 - sim.max(axis=1)
    return out


def membership_auc(synthetic: list[list[str]], members: list[list[str]], holdout: list[list[str]]) -> float:
    """AUC of scoring real weeks by closeness to the synthetic data: members vs holdout."""
    if not members or not holdout or not synthetic:
        return float("nan")
    score = 1.0 - closest_distance(members + holdout, synthetic)
    labels = np.r_[np.ones(len(members)), np.zeros(len(holdout))]
    return float(roc_auc_score(labels, score))


def privacy_report(synthetic: list[list[str]], training: list[list[str]], members: list[list[str]],
                   holdout: list[list[str]], n: int = 3, threshold: float = 0.3) -> dict[str, float]:
    """Every privacy figure for one synthetic data set."""
    ov = overlap(synthetic, training, n)
    dcr_syn = closest_distance(synthetic, training)
    dcr_hold = closest_distance(holdout, training) if holdout else np.array([])
    hold_p5 = float(np.percentile(dcr_hold, 5)) if len(dcr_hold) else float("nan")
    syn_med = float(np.median(dcr_syn)) if len(dcr_syn) else float("nan")
    hold_med = float(np.median(dcr_hold)) if len(dcr_hold) else float("nan")
    return {
        "synthetic_weeks": float(len(synthetic)),
        "overlap_mean": float(ov.mean()) if len(ov) else float("nan"),
        "overlap_share_above": float((ov > threshold).mean()) if len(ov) else float("nan"),
        "dcr_synthetic_median": syn_med,
        "dcr_holdout_median": hold_med,
        "dcr_ratio": syn_med / hold_med if hold_med > 0 else float("nan"),
        "dcr_share_below_holdout_p5": float((dcr_syn < hold_p5).mean()) if len(dcr_syn) and len(dcr_hold)
        else float("nan"),
        "mia_auc": membership_auc(synthetic, members, holdout),
        "members": float(len(members)),
        "holdout": float(len(holdout)),
    }


def holdout_users(profiles: pd.DataFrame, shown_splits: set[str]) -> set[str]:
    """Users of the splits no generator saw (not train, not generated for)."""
    users = set(profiles.loc[~profiles["split"].isin(shown_splits | {"train"}), "user_id"])
    if not users:
        raise ValueError(f"privacy needs holdout users, but every split is shown to a generator ({sorted(shown_splits)}"
                         " + train); leave one of val/test out of generation.personal_splits and "
                         "validation.ablation.split")
    return users


def privacy_rows(split: pd.DataFrame, synthetic: pd.DataFrame, holdout: set[str], n: int,
                 threshold: float) -> dict[str, float]:
    """Overlap, DCR against the holdout baseline, and membership-inference AUC for one synthetic set."""
    known = split[~split["user_id"].isin(holdout)]
    training = known[known["part"].isin(["train", "support"])]
    sources = set(synthetic["source_user"])
    members = training[training["user_id"].isin(sources)]
    return privacy_report(records(synthetic), records(training), records(members),
                          records(split[split["user_id"].isin(holdout)]), n, threshold)
