"""Which real events each synthetic data set is judged against, and table 4 (the prompt ablation).

The metrics (`behaviorflow.validation.metrics`, `behaviorflow.validation.privacy`) know nothing about the workflow; this
module gives them their real counterparts:

- `population` synthetic users (from training users' profiles and events) against the real
  training events (per user: the synthetic user against its source user's training events);
- `personal` and `ablation` weeks of a val/test user against the same user's held-out query
  events, which no generator saw.

Beside a population, `population_sources` rows judge the source users' own training events the
same way (population level): the floor of a generator that follows its sources exactly.

"""

from __future__ import annotations

import pandas as pd

from behaviorflow.validation.metrics import compare, fidelity

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
    if "population" in synthetic and not synthetic["population"].empty:
        frames.append(source_floor(split, synthetic["population"]))
    return pd.concat(frames, ignore_index=True)


def source_floor(split: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """Population-level fidelity of the population's source users' own training events against all
    training events (`data` = `population_sources`; BLEU left out: it would pair each user with itself)."""
    real = real_reference(split, "population", population)
    sources = real[real["user_id"].isin(set(population["source_user"]))]
    n = int(sources["user_id"].nunique())
    return pd.DataFrame([{"level": "population", "metric": m, "value": v, "sd": float("nan"), "n": n,
                          "data": "population_sources"} for m, v in compare(real, sources, with_bleu=False).items()])
