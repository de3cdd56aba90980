"""Table 8: one-day generation (BUA's Table 2) — BUA, BehaviorGen and the Markov baseline write the
next day of the same sampled test users, scored against the real day (BLEU, TVD, JSD on event,
timestamp and location; `bua/days.py`); and table 9's generation columns (BUA's App. H)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from behaviorflow.bua.days import METRICS, SETTING, STREAMS
from behaviorflow.reporting.llm_tables import compare
from behaviorflow.reporting.tables import COLUMNS, md_table, summarize, write_results_table

LOWER_IS_BETTER = ("tvd", "jsd")
ROW_TEXT = {
    "markov": "per-user Markov chain with population back-off (the non-LLM baseline)",
    "behaviorgen": "BehaviorGen's generator (main chain's model and adapter), one-day prompt and grammar",
}
# BUA's Table 2 (Behavior dataset; event, timestamp, location: BLEU / TVD / JSD distance) and App. H
PAPER_DAYS = {
    "bua": (0.354, 0.140, 0.020, 0.541, 0.147, 0.020, 0.711, 0.065, 0.005),
    "D2A (LLM agent)": (0.315, 0.183, 0.039, 0.287, 0.223, 0.049, 0.396, 0.529, 0.173),
    "bua_no_stage1": (0.309, 0.167, 0.028, 0.500, 0.162, 0.024, 0.640, 0.093, 0.007),
    "bua_no_stage2": (0.304, 0.189, 0.029, 0.580, 0.095, 0.008, 0.745, 0.064, 0.006),
    "bua_no_stage3": (0.343, 0.146, 0.022, 0.523, 0.156, 0.025, 0.708, 0.079, 0.008),
}
PROTOCOL = ("Days: for a seeded draw of test users (bua.generation.users, bua.pool_seed), the first day after "
            "their support events; every generator sees the events before that day (BUA: the encoder's states "
            "of the last bua.positions events and the last bua.text_events as text; BehaviorGen: its profile and "
            "sample days; Markov: the user's counts with population back-off) and writes that one day. BUA and "
            "BehaviorGen decode under the same one-day event grammar (each day's cap drawn from the user's own "
            "days), so every day parses. Metrics pool every generated day against the real ones: BLEU (each "
            "day against the same user's real day; NLTK corpus BLEU, 4-grams, smoothing 1), TVD and JSD (base 2, "
            "the divergence: BUA's eq. 14 reports its square root) of the behaviour, time-slot and zone "
            "distributions. Mean ± sd over seeds (bua.seeds; each generator samples with each seed).")
NOTE = ("The paper's JSD is the Jensen-Shannon distance (eq. 14), the square root of ours: compare the paper's "
        "figure with the square root of our JSD.")


def _better(metric: str) -> str:
    return "lower" if metric.endswith(LOWER_IS_BETTER) else "higher"


def versus(summary: pd.DataFrame, dataset: str, a: str, b: str) -> str:
    """How many of the nine metrics `a` beats `b` on, and by more than twice the larger seed sd."""
    rows = summary[summary["dataset"] == dataset].set_index(["model", "metric"])
    if not {a, b} <= set(rows.index.get_level_values(0)):
        return f"{a} vs {b}: not run"
    wins, clear, parts = 0, 0, []
    for metric in METRICS:
        ma, mb = rows.loc[(a, metric), "mean"], rows.loc[(b, metric), "mean"]
        if np.isnan(ma) or np.isnan(mb):
            continue
        gain = (mb - ma) if _better(metric) == "lower" else (ma - mb)
        sd = np.nanmax([rows.loc[(a, metric), "sd"], rows.loc[(b, metric), "sd"], 0.0])
        wins += gain > 0
        clear += gain > 2 * sd and not np.isnan(rows.loc[(a, metric), "sd"])
        parts.append(f"{metric} {ma:.3f} vs {mb:.3f}")
    spread = "" if np.isnan(rows.loc[(a, METRICS[0]), "sd"]) else f", {clear} beyond twice the larger seed sd"
    return f"{a} better than {b} on {wins} of {len(parts)} metrics{spread} ({'; '.join(parts)})"


def _mean_sd(rows: pd.DataFrame) -> str:
    """The one summary row's mean ± sd (3 decimals; no sd with one seed, empty when not defined)."""
    if rows.empty or np.isnan(rows["mean"].iloc[0]):
        return ""
    sd = rows["sd"].iloc[0]
    return f"{rows['mean'].iloc[0]:.3f}" + ("" if np.isnan(sd) else f" ± {sd:.3f}")


def day_table(summary: pd.DataFrame, models: list[str]) -> list[str]:
    """Markdown rows: each model's nine metrics (mean ± sd) and how many days it wrote."""
    head = ["row", *(f"{s} {m.upper()}" for s in STREAMS for m in ("bleu", "tvd", "jsd")), "events/day"]

    def cell(model, metric):
        return _mean_sd(summary[(summary["model"] == model) & (summary["metric"] == metric)])

    return md_table(head, [[m, *(cell(m, k) for k in METRICS), cell(m, "events_per_day")] for m in models])


def paper_lines(models: list[str]) -> list[str]:
    shown = [m for m in PAPER_DAYS if m in models or m == "D2A (LLM agent)"]
    head = ["paper row", *(f"{s} {m}" for s in STREAMS for m in ("BLEU", "TVD", "JSD (distance)"))]
    return md_table(head, [[m, *(f"{v:.3f}" for v in PAPER_DAYS[m])] for m in shown])


def read_day_parts(parts: list[str], table: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The parts' long rows and each dataset's day count (one per dataset, else an error)."""
    long = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    days = long.groupby("dataset")["days"].agg(lambda d: sorted(set(d))).to_dict()
    mixed = {d: n for d, n in days.items() if len(n) != 1}
    if mixed:
        raise ValueError(f"{table}: generators of one dataset wrote different numbers of days {mixed}; rebuild "
                         "them with the same bua.generation.users")
    return long[COLUMNS], {d: n[0] for d, n in days.items()}


def generation_section(summary: pd.DataFrame, dataset: str, days: int, models: list[str],
                       against: list[str]) -> list[str]:
    """One dataset's generation table, the paper's rows beside it, and the verdict lines."""
    order = sorted(models, key=lambda m: (summary[(summary["model"] == m) & (summary["metric"] == "event_jsd")]
                                          ["mean"].mean(), m))
    lines = [f"{days} generated days per row and seed (one per sampled test user).", "", *day_table(summary, order),
             "", "**The paper (BUA, arXiv 2604.23578, Behavior dataset), for reference, not reproduced here:**", "",
             *paper_lines(models), "", NOTE, "", "**Verdict.**", ""]
    lines += [f"- {versus(summary, dataset, a, b)}" for a, b in against]
    return lines + [""]


DOWNSTREAM = ("Downstream use (BUA App. G / T on our protocol): the pretrained SASRec (seed = the generators' "
              "seed) fine-tuned for each sampled test user on its support events alone (`real`), on support + "
              "a generator's day (`real+synthetic`) and on the day alone (`synthetic`), as table 3 does; scored "
              "on those users' query events. The day follows the support, so no query event is trained on; one "
              "day against a user's support is a small addition, and the paper's hybrid setting adds whole "
              "synthetic sequences to the pretraining data.")


def downstream_section(summary: pd.DataFrame, dataset: str, models: list[str]) -> list[str]:
    rows = summary[summary["model"] == "sasrec"]
    if rows.empty:
        return []
    shown = ("acc1", "overall", "tail")
    keys = [("none", "none"), ("none", "real"), *((g, s) for g in models for s in ("real+synthetic", "synthetic"))]

    def cell(g, s, metric):
        return _mean_sd(rows[(rows["generator"] == g) & (rows["setting"] == s) & (rows["metric"] == metric)])

    table = md_table(["fine-tuned on", "generator", *shown],
                     [[{"none": "nothing (pretrained)", "real": "support"}.get(s, s), g, *(cell(g, s, m) for m in shown)]
                      for g, s in keys if g == "none" or not rows[rows["generator"] == g].empty])
    flat = rows.assign(model=rows["generator"] + ":" + rows["setting"])
    verdict = [compare(flat, dataset, f"{g}:real+synthetic", "none:real", m) for g in models for m in ("acc1", "tail")
               if not rows[rows["generator"] == g].empty]
    return ["### Downstream: SASRec fine-tuned with each generator's day", "", DOWNSTREAM, "", *table, "",
            *(f"- {v}" for v in verdict), ""]


def generation_table(*, parts: list[str], outputs: dict, config: dict, seeds: list[int]) -> pd.DataFrame:
    """Rule generation_table: results/table8.csv, its summary, page and provenance."""
    long, days = read_day_parts(parts, "table8")
    long = long.sort_values(["dataset", "model", "metric", "seed"], ignore_index=True)
    summary = summarize(long)
    models = sorted(long.loc[long["setting"] == SETTING, "model"].unique())
    lines = ["# table8: one-day generation (BUA beside BehaviorGen and the Markov baseline)", "", PROTOCOL, "",
             f"Seeds: {seeds}.", "", *(f"- {m}: {t}" for m, t in ROW_TEXT.items()),
             "- bua: the full curriculum's model (stage 3), understanding rounds then the day", ""]
    for dataset in sorted(days):
        part = summary[summary["dataset"] == dataset]
        lines += [f"## {dataset}", "", *generation_section(part, dataset, days[dataset], models,
                                                           [("bua", "markov"), ("bua", "behaviorgen"),
                                                            ("behaviorgen", "markov")]),
                  *downstream_section(part, dataset, models)]
    write_results_table(outputs, "table8", long, summary, "\n".join(lines) + "\n", parts, config, seeds)
    return summary
