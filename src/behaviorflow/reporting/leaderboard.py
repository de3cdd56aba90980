"""The prediction leaderboard: every next-behaviour predictor of every dataset on the same test
queries with the same protocol (DESIGN.md, "Next-behaviour prediction"), with a verdict per
dataset on whether the learned models beat counting."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from behaviorflow.predictors.baselines import BASELINES as COUNTING
from behaviorflow.reporting.scenario_tables import METRIC_TEXT
from behaviorflow.reporting.tables import COLUMNS, fmt_value, md_table, summarize, write_results_table

ROW_TEXT = {
    "global_mf": "the training events' most frequent behaviour",
    "user_mf": "each user's most frequent behaviour so far",
    "markov1": "previous behaviour -> most frequent next (the user's own transitions first)",
    "sasrec": "SASRec, pretrained on the training users (causal)",
    "bert4rec": "BERT4Rec, pretrained on the training users (bidirectional, masked)",
}
SHOWN = ("acc1", "acc3", "overall", "head", "medium", "tail")


def check_shared_queries(fingerprints: dict[str, list[dict]]) -> dict[str, dict]:
    """One query set per dataset: every row's fingerprint equal, else a clear error."""
    out = {}
    for dataset, prints in fingerprints.items():
        keys = {(p["queries"], p["queries_sha256"]) for p in prints}
        if len(keys) != 1:
            raise ValueError(f"{dataset}: the leaderboard rows were scored on different queries {sorted(keys)}; "
                             "rebuild the split and every predictor of the dataset")
        out[dataset] = {k: prints[0][k] for k in ("queries", "query_users", "queries_sha256")}
    return out


def _cell(summary: pd.DataFrame, metric: str) -> str:
    row = summary[summary["metric"] == metric]
    if row.empty or np.isnan(row["mean"].iloc[0]):
        return ""
    mean, sd = row["mean"].iloc[0], row["sd"].iloc[0]
    return fmt_value(mean) + ("" if np.isnan(sd) else f" ± {sd:.4f}")


def verdict(summary: pd.DataFrame, dataset: str) -> str:
    """Best learned model against the best counting baseline on Acc@1, in points, beside the spread."""
    acc = summary[(summary["dataset"] == dataset) & (summary["metric"] == "acc1")].set_index("model")
    counting = acc.loc[acc.index.intersection(COUNTING)]
    learned = acc.drop(index=list(COUNTING), errors="ignore")
    if counting.empty or learned.empty:
        return f"{dataset}: not enough rows for a verdict."
    base = counting["mean"].idxmax()
    parts = []
    for model, row in learned.sort_values("mean", ascending=False).iterrows():
        gap = (row["mean"] - counting.loc[base, "mean"]) * 100
        sd = 0.0 if np.isnan(row["sd"]) else row["sd"] * 100
        if gap > 2 * sd and gap > 0.5:
            word = "beats it"
        elif gap > 0:
            word = "is above it, but within twice its seed sd"
        else:
            word = "does not beat it"
        parts.append(f"{model} {gap:+.1f} Acc@1 points (seed sd {sd:.1f}): {word}")
    over_user = (learned["mean"].max() - acc.loc["user_mf", "mean"]) * 100 if "user_mf" in acc.index else np.nan
    return (f"{dataset}: against the best counting baseline ({base}), " + "; ".join(parts)
            + f". The best learned model stands {over_user:+.1f} points against each user's most frequent "
            "behaviour.")


def leaderboard_page(summary: pd.DataFrame, structures: dict[str, dict], queries: dict[str, dict],
                     seeds: list[int]) -> str:
    lines = ["# Prediction leaderboard", "",
             "Every next-behaviour predictor on the same test queries of each dataset (DESIGN.md, \"Next-behaviour "
             "prediction\"): the test users' query events, each predicted from the events before it, knowing the "
             "target's time but never its behaviour or zone. Counting baselines are deterministic (seed 0); "
             f"learned models: mean ± sample sd over seeds {seeds}.", "", METRIC_TEXT, ""]
    for dataset in sorted(summary["dataset"].unique()):
        st, q = structures.get(dataset, {}), queries.get(dataset, {})
        lines += [f"## {dataset}", "",
                  f"{q.get('queries')} queries of {q.get('query_users')} test users (sha256 "
                  f"`{str(q.get('queries_sha256'))[:16]}`, the same for every row); {st.get('labels')} labels: "
                  f"{st.get('head_labels')} head, {st.get('medium_labels')} medium, {st.get('tail_labels')} tail "
                  f"(training shares), in {st.get('categories')} categories.", ""]
        part = summary[summary["dataset"] == dataset]
        order = part[part["metric"] == "acc1"].sort_values("mean", ascending=False)["model"].tolist()
        rows = [[m, ROW_TEXT.get(m, m), *(_cell(part[part["model"] == m], k) for k in SHOWN)] for m in order]
        lines += md_table(["model", "what it is", *SHOWN], rows)
        lines += ["", "**Verdict.** " + verdict(summary, dataset), ""]
    return "\n".join(lines) + "\n"


def llm_section(summary: pd.DataFrame, queries: dict[str, int]) -> str:
    """The LLM row set: every row of table 5 on the LLM test queries of each dataset."""
    from behaviorflow.reporting.llm_tables import ROW_TEXT as LLM_TEXT
    from behaviorflow.reporting.llm_tables import compare

    lines = ["# LLM rows (the LLM test queries)", "",
             "The LLM methods are scored on a seeded, label-stratified subsample of each dataset's test queries "
             "(behaviorlm.queries); every row below, counting and sequential ones included, is scored on exactly "
             "that subsample (results/table5.md has the protocol), so compare rows within this section only.", ""]
    for dataset in sorted(summary["dataset"].unique()):
        part = summary[summary["dataset"] == dataset]
        order = part[part["metric"] == "acc1"].sort_values("mean", ascending=False)["model"].tolist()
        rows = [[m, LLM_TEXT.get(m, m), *(_cell(part[part["model"] == m], k) for k in SHOWN)]
                for m in order]
        lines += [f"## {dataset} ({queries.get(dataset, '?')} LLM queries)", "",
                  *md_table(["model", "what it is", *SHOWN], rows), "",
                  "**Verdict.** " + "; ".join(compare(summary, dataset, "behaviorlm", other, "acc1")
                                             for other in ("markov1", "sasrec")), ""]
    return "\n".join(lines) + "\n"


def leaderboard_table(*, parts: list[str], fingerprints: dict[str, list[str]], structures: dict[str, str],
                      outputs: dict, config: dict, seeds: list[int], models_from=(),
                      llm_parts: list[str] = ()) -> pd.DataFrame:
    """Rule leaderboard_table: results/leaderboard.csv, its summary, page and provenance. Two row
    sets (column `query_set`): `all` test queries (counting, SASRec, BERT4Rec) and, with BehaviorLM
    datasets, `llm`, table 5's rows on the LLM test queries."""
    long = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    long = long[long["setting"] == "real"][COLUMNS].assign(query_set="all")
    prints = {d: [json.load(open(p)) for p in paths] for d, paths in fingerprints.items()}
    queries = check_shared_queries(prints)
    stats = {d: json.load(open(p)) for d, p in structures.items()}
    summary = summarize(long).assign(query_set="all")
    page = leaderboard_page(summary, stats, queries, seeds)
    if llm_parts:
        llm = pd.concat([pd.read_csv(p) for p in llm_parts], ignore_index=True)
        counts = llm.groupby("dataset")["queries"].first().to_dict()
        llm = llm[COLUMNS].assign(query_set="llm")
        llm_summary = summarize(llm).assign(query_set="llm")
        page += "\n" + llm_section(llm_summary, counts)
        long, summary = pd.concat([long, llm], ignore_index=True), pd.concat([summary, llm_summary], ignore_index=True)
    long = long.sort_values(["query_set", "dataset", "model", "metric", "seed"], ignore_index=True)
    inputs = [*parts, *llm_parts, *(p for paths in fingerprints.values() for p in paths)]
    write_results_table(outputs, "leaderboard", long, summary, page, inputs, config, seeds, models_from=models_from)
    return summary
