"""Which real events each synthetic data set is judged against, and table 4 (the prompt ablation).

The metrics (`behaviorflow.validation.metrics`, `behaviorflow.validation.privacy`) know nothing about the workflow; this
module gives them their real counterparts:

- `population` synthetic users (from training users' profiles and events) against the real
  training events (per user: the synthetic user against its source user's training events);
- `personal` and `ablation` weeks of a val/test user against the same user's held-out query
  events, which no generator saw.

"""

from __future__ import annotations

import pandas as pd

from behaviorflow.validation.metrics import fidelity

REAL_REFERENCE = {"population": "train", "personal": "query", "ablation": "query"}
FIDELITY_COLUMNS = ["dataset", "generator", "variant", "seed", "data", "level", "metric", "value", "sd", "n"]


def as_real_users(synthetic: pd.DataFrame) -> pd.DataFrame:
    """Synthetic events keyed by the real user they stand for (their source user)."""
    return synthetic.assign(user_id=synthetic["source_user"])


def real_reference(split: pd.DataFrame, data: str, synthetic: pd.DataFrame) -> pd.DataFrame:
    """The real events a synthetic set (`population`, `personal`, `ablation`) is judged against:
    training events for a population, the same users' query events for personal weeks."""
    if data not in REAL_REFERENCE:
        raise ValueError(f"unknown synthetic data {data!r}; choose one of {sorted(REAL_REFERENCE)}")
    real = split[split["part"] == REAL_REFERENCE[data]]
    if data != "population" and not synthetic.empty:
        real = real[real["user_id"].isin(set(synthetic["source_user"]))]
    if real.empty:
        raise ValueError(f"no real {REAL_REFERENCE[data]} events to compare the {data} synthetic data with")
    return real


def fidelity_rows(split: pd.DataFrame, synthetic: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Fidelity of each named synthetic set (`population`, `personal`, `ablation`) against its real reference."""
    frames = [fidelity(real_reference(split, data, syn), as_real_users(syn)).assign(data=data)
              for data, syn in synthetic.items()]
    return pd.concat(frames, ignore_index=True)
