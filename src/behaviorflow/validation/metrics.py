"""Fidelity of synthetic behaviour sequences against real ones (BehaviorGen Table 4, BUA Table 2).

Every function takes event frames with the canonical columns (`user_id`, `ts`, `weekday`, `slot`,
`location`, `behavior`), whatever produced them: BehaviorGen, the Markov baseline, BUA or
BehaviorLM outputs. Definitions:

- JSD: Jensen-Shannon divergence, base 2, in [0, 1], between the two empirical distributions of
  a field (behaviour, location, time slot) over the union of their categories. It is the square of
  scipy's Jensen-Shannon *distance*; BUA's eq. 14 reports that distance (the square root).
- TVD: total variation distance, half the L1 distance between the two distributions, in [0, 1].
- KS_P: p-value of scipy's two-sample Kolmogorov-Smirnov test on event time of day (minutes after
  midnight) and on events per active day. 1 = the samples cannot be told apart.
- BLEU: NLTK's corpus BLEU (up to 4-grams, uniform weights, Chen-Cherry smoothing method 1) of a
  synthetic user-week's token sequence against the same user's real weeks as references, on three
  token streams: events (behaviours), timestamps (`Weekday HH:MM`) and locations.

`fidelity()` computes them at the population level (everything pooled) and per user (mean and sd
over users present on both sides).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

FIELDS = ("behavior", "location", "slot")
BLEU_STREAMS = ("event", "timestamp", "location")


def distributions(real: pd.Series, synthetic: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The two empirical distributions over the union of their categories (sorted)."""
    cats = sorted(set(real.astype(str)) | set(synthetic.astype(str)))
    p = real.astype(str).value_counts().reindex(cats, fill_value=0).to_numpy(float)
    q = synthetic.astype(str).value_counts().reindex(cats, fill_value=0).to_numpy(float)
    return p / p.sum(), q / q.sum()


def jsd(real: pd.Series, synthetic: pd.Series) -> float:
    """Jensen-Shannon divergence (base 2) of two samples of categories; nan if either is empty."""
    if real.empty or synthetic.empty:
        return float("nan")
    p, q = distributions(real, synthetic)
    return float(jensenshannon(p, q, base=2) ** 2)


def tvd(real: pd.Series, synthetic: pd.Series) -> float:
    """Total variation distance of two samples of categories; nan if either is empty."""
    if real.empty or synthetic.empty:
        return float("nan")
    p, q = distributions(real, synthetic)
    return float(0.5 * np.abs(p - q).sum())


def ks_p(real, synthetic) -> float:
    """Two-sample KS test p-value; nan if either sample is empty."""
    real, synthetic = np.asarray(real, float), np.asarray(synthetic, float)
    if not len(real) or not len(synthetic):
        return float("nan")
    return float(ks_2samp(real, synthetic).pvalue)


def time_of_day(events: pd.DataFrame) -> np.ndarray:
    """Minutes after midnight of each event."""
    ts = events["ts"]
    return (ts.dt.hour * 60 + ts.dt.minute).to_numpy(float)


def events_per_day(events: pd.DataFrame) -> np.ndarray:
    """Events on each active user-day."""
    if events.empty:
        return np.array([], float)
    return events.groupby([events["user_id"], events["ts"].dt.date]).size().to_numpy(float)


def week_start(ts: pd.Series) -> pd.Series:
    """The Monday of each timestamp's week."""
    return (ts.dt.normalize() - pd.to_timedelta(ts.dt.day_of_week, unit="D")).dt.date


def tokens(events: pd.DataFrame, stream: str) -> list[str]:
    """One week's token sequence for a BLEU stream, in time order."""
    if stream == "event":
        return events["behavior"].astype(str).tolist()
    if stream == "location":
        return events["location"].astype(str).tolist()
    if stream == "timestamp":
        day = events["ts"].dt.day_name().str[:3]
        return (day + "_" + events["ts"].dt.strftime("%H:%M")).tolist()
    raise ValueError(f"unknown BLEU stream {stream!r}; choose one of {BLEU_STREAMS}")


def weeks_of(events: pd.DataFrame) -> dict[tuple[str, object], pd.DataFrame]:
    """Each (user, Monday) week's events, time-ordered."""
    if events.empty:
        return {}
    ev = events.sort_values(["user_id", "ts"], kind="stable")
    return {key: w for key, w in ev.groupby([ev["user_id"], week_start(ev["ts"])], sort=True)}


def bleu(real: pd.DataFrame, synthetic: pd.DataFrame, stream: str) -> float:
    """Corpus BLEU of every synthetic week against its user's real weeks (nan if no user matches)."""
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    refs_by_user: dict[str, list[list[str]]] = {}
    for (user, _), week in weeks_of(real).items():
        refs_by_user.setdefault(user, []).append(tokens(week, stream))
    hyps, refs = [], []
    for (user, _), week in weeks_of(synthetic).items():
        if user in refs_by_user:
            hyps.append(tokens(week, stream))
            refs.append(refs_by_user[user])
    if not hyps:
        return float("nan")
    return float(corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method1))


def compare(real: pd.DataFrame, synthetic: pd.DataFrame, with_bleu: bool = True) -> dict[str, float]:
    """Every fidelity metric of one real sample against one synthetic sample."""
    out = {}
    for col in FIELDS:
        out[f"jsd_{col}"] = jsd(real[col], synthetic[col])
        out[f"tvd_{col}"] = tvd(real[col], synthetic[col])
    out["ks_p_time"] = ks_p(time_of_day(real), time_of_day(synthetic))
    out["ks_p_daily_count"] = ks_p(events_per_day(real), events_per_day(synthetic))
    if with_bleu:
        for stream in BLEU_STREAMS:
            out[f"bleu_{stream}"] = bleu(real, synthetic, stream)
    return out


def fidelity(real: pd.DataFrame, synthetic: pd.DataFrame) -> pd.DataFrame:
    """Population-level and per-user fidelity: rows (level, metric, value, sd, n).

    `synthetic.user_id` must name the real user a sequence stands for (rename synthetic ids to
    their source users first). Population level pools all events (BLEU still pairs each synthetic
    week with its own user's real weeks); user level computes each metric per user present on both
    sides and reports the mean and sd over users (nan values, e.g. an empty side, are skipped).
    An empty synthetic side (a generator whose every call failed) gives nan values, n = 0.
    """
    rows = [{"level": "population", "metric": m, "value": v, "sd": float("nan"), "n": int(synthetic["user_id"].nunique())}
            for m, v in compare(real, synthetic).items()]
    users = sorted(set(real["user_id"]) & set(synthetic["user_id"]))
    real_by, syn_by = dict(tuple(real.groupby("user_id"))), dict(tuple(synthetic.groupby("user_id")))
    names = [r["metric"] for r in rows]
    per_user = pd.DataFrame([compare(real_by[u], syn_by[u]) for u in users], columns=names)
    for metric in per_user.columns:
        values = per_user[metric].dropna()
        rows.append({"level": "user", "metric": metric,
                     "value": float(values.mean()) if len(values) else float("nan"),
                     "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"), "n": int(len(values))})
    return pd.DataFrame(rows, columns=["level", "metric", "value", "sd", "n"])
