"""Tables 5 and 6: LLM next-behaviour prediction and BehaviorLM, and BehaviorLM's ablation with its
few-shot curve. Every row of a dataset is scored on the same seeded LLM test queries (the counting
baselines, SASRec and BERT4Rec too), with the one evaluation protocol; the paper's claims sit beside
ours, and each verdict says what our numbers show."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from behaviorflow.reporting.leaderboard import ROW_TEXT as COUNTING_AND_SEQUENTIAL
from behaviorflow.reporting.leaderboard import SHOWN, _cell
from behaviorflow.reporting.scenario_tables import METRIC_TEXT
from behaviorflow.reporting.tables import COLUMNS, md_table, summarize, write_results_table

ROW_TEXT = {
    **COUNTING_AND_SEQUENTIAL,
    "llm_zero_shot": "the base LLM, no tuning (labels named in the prompt)",
    "llm_full_ft": "LoRA on samples of every behaviour (the paper's traditional fine-tuning)",
    "behaviorlm_anchor_only": "A-tuning only: anchors + general conversation",
    "behaviorlm": "A-tuning, difficulty selection, B-tuning (BehaviorLM)",
    "behaviorlm_no_aux": "BehaviorLM without the general conversation in A-tuning",
    "behaviorlm_random_select": "BehaviorLM with random samples instead of the hard ones (as many per label)",
    "behaviorlm_tail_first": "the non-anchors first, then the anchors (reversed order)",
    "bua": "BUA: SASRec states -> projector -> LLM; stages 1-3, multi-round dialogue",
    "bua_no_stage1": "BUA without stage 1 (the projector first trains in stage 2)",
    "bua_no_stage2": "BUA without stage 2's understanding rounds (prediction round only; no stage 3)",
    "bua_no_stage3": "BUA without stage 3 (the stage-2 model)",
    "bua_no_balance": "BUA without the round-balanced loss (token mean over all rounds)",
    "bua_item_emb": "BUA with SASRec's item embeddings instead of its sequence states",
}
PAPER = {
    "table5": [("BehaviorLM reports up to +27.4 % tail accuracy (and +20.4 % overall) over traditional "
                "fine-tuning (Llama-3-8B, two real app-usage datasets, validation splits)."),
               ("Anchor-only tuning reaches 0.39 zero-shot accuracy on tail behaviours against 0.29 for "
                "traditional fine-tuning.")],
    "table6": [("Without the auxiliary conversation: -4.71 % overall accuracy; without difficulty-based "
                "selection: -6.23 %; without contrastive (same-category) selection: -5.50 %."),
               ("Tail-first order is worse than anchor-first; few-shot accuracy saturates from about "
                "F = 20 examples per behaviour.")],
}
PAPER["table7"] = [("BUA (Qwen2.5-7B, BehaveGPT encoder) reports Acc@1 (weighted recall) 0.644 / overall 0.471 / head "
                    "0.538 / medium 0.489 / tail 0.446 on its Behavior dataset, against SASRec 0.546 / 0.291 / 0.420 / "
                    "0.340 / 0.222 and TALLRec (LLM fine-tuning) 0.617 / 0.398; with SASRec as its encoder (App. M) "
                    "0.589 / 0.331 / 0.466 / 0.389 / 0.247.")]
PAPER["table9"] = [("BUA's ablation (Behavior dataset, Acc@1 / overall / tail): full 0.644 / 0.471 / 0.446; w/o stage 1 "
                    "0.613 / 0.370 / 0.286; w/o stage 2 0.587 / 0.456 / 0.291; w/o stage 3 0.592 / 0.334 / 0.300; w/o "
                    "loss balance 0.560 / 0.285 / 0.197; item embeddings 0.631 / 0.465 / 0.437.")]
TITLES = {"table5": "LLM next-behaviour prediction and BehaviorLM",
          "table6": "BehaviorLM ablation and few-shot curve",
          "table7": "BUA next-behaviour prediction beside SASRec, BERT4Rec, LLM fine-tuning and BehaviorLM",
          "table9": "BUA ablation (prediction and one-day generation)"}
PAPER_NAME = {"table5": "arXiv 2505.17682", "table6": "arXiv 2505.17682", "table7": "BUA, arXiv 2604.23578",
              "table9": "BUA, arXiv 2604.23578"}
PROTOCOL = ("Queries: a fixed, seeded subsample of the test users' query events, stratified so tail labels "
            "appear (behaviorlm.queries, behaviorlm.query_seed); every row of a dataset is scored on exactly "
            "these. An LLM predicts by scoring every label (log-likelihood of the label's tokens and the "
            "end-of-turn token after the prompt) and taking the argmax, never by free generation. Anchors "
            "and head / medium / tail come from the training users' events only. LLM rows: mean ± sd over "
            "their own seeds (behaviorlm.seeds, bua.seeds; zero-shot has none); SASRec / BERT4Rec over the "
            "predictor seeds; counting rows are deterministic.")


def compare(summary: pd.DataFrame, dataset: str, a: str, b: str, metric: str) -> str:
    """`a` against `b` on `metric`: the difference in points, the relative change and whether it
    exceeds twice the larger seed sd."""
    rows = summary[(summary["dataset"] == dataset) & (summary["metric"] == metric)].set_index("model")
    if a not in rows.index or b not in rows.index:
        return f"{a} vs {b}: not run"
    ma, mb = rows.loc[a, "mean"], rows.loc[b, "mean"]
    sds = [rows.loc[a, "sd"], rows.loc[b, "sd"]]
    gap = (ma - mb) * 100
    rel = f"{(ma - mb) / mb * 100:+.1f} %" if mb > 0 else "n/a (zero base)"
    if all(np.isnan(sds)):
        word = "one seed each: no spread to judge it by"
    elif abs(gap) >= 0.5 and np.nanmax([*sds, 0.0]) == 0:
        # every seed of both rows agrees: a fixed difference (often one query), not a spread to beat
        word = "every seed of both rows gives the same value: no spread to judge it by"
    else:
        sd = np.nanmax([*sds, 0.0]) * 100
        word = (f"beyond twice the larger seed sd ({sd:.1f})" if abs(gap) > 2 * sd and abs(gap) >= 0.5
                else f"within twice the larger seed sd ({sd:.1f})")
    return f"{a} {ma:.3f} vs {b} {mb:.3f} on {metric}: {gap:+.1f} points ({rel}), {word}"


def verdict(table: str, summary: pd.DataFrame, dataset: str) -> list[str]:
    if table == "table7":
        return [compare(summary, dataset, "bua", other, metric) for other in ("sasrec", "llm_full_ft", "behaviorlm")
                for metric in ("acc1", "tail")]
    if table == "table9":
        return [compare(summary, dataset, m, "bua", metric)
                for m in sorted(summary.loc[summary["model"].str.startswith("bua_"), "model"].unique())
                for metric in ("acc1", "tail")]
    if table == "table5":
        acc = summary[(summary["dataset"] == dataset) & (summary["metric"] == "acc1")].set_index("model")["mean"]
        llm = acc[[m for m in acc.index if m.startswith(("llm_", "behaviorlm"))]]
        seq = acc[[m for m in acc.index if m in ("sasrec", "bert4rec", "markov1")]]
        lines = [compare(summary, dataset, "behaviorlm", "llm_full_ft", "tail"),
                 compare(summary, dataset, "behaviorlm", "llm_full_ft", "overall"),
                 compare(summary, dataset, "behaviorlm_anchor_only", "llm_full_ft", "tail"),
                 compare(summary, dataset, "behaviorlm", "behaviorlm_anchor_only", "tail")]
        if len(llm) and len(seq):
            lines.append(f"best LLM row {llm.idxmax()} (Acc@1 {llm.max():.3f}) against the best sequential or "
                         f"counting row {seq.idxmax()} ({seq.max():.3f}): {(llm.max() - seq.max()) * 100:+.1f} points")
        return lines
    lines = [compare(summary, dataset, m, "behaviorlm", metric)
             for m in ("behaviorlm_no_aux", "behaviorlm_random_select", "behaviorlm_tail_first")
             for metric in ("overall", "tail")]
    few = few_shot(summary, dataset)
    if len(few):
        lines.append("few-shot (tail accuracy by F): " + ", ".join(f"F={f}: {v:.3f}" for f, v in few["tail"].items()))
    return lines


def few_shot(summary: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Mean per metric of the few-shot rows `behaviorlm_F<n>`, indexed by F."""
    rows = summary[(summary["dataset"] == dataset) & summary["model"].str.match(r"behaviorlm_F\d+$")]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(F=rows["model"].str.removeprefix("behaviorlm_F").astype(int))
    return rows.pivot_table(index="F", columns="metric", values="mean").sort_index()


def page(table: str, summary: pd.DataFrame, seeds: list[int], queries: dict[str, int],
         selections: pd.DataFrame | None = None) -> str:
    method = "BUA" if table in ("table7", "table9") else "BehaviorLM"
    lines = [f"# {table}: {TITLES[table]}", "", PROTOCOL, "", METRIC_TEXT, "", f"{method} seeds: {seeds}.", "",
             f"**The paper ({PAPER_NAME[table]}), for reference, not reproduced here:** " + " ".join(PAPER[table]),
             ""]
    for dataset in sorted(summary["dataset"].unique()):
        part = summary[summary["dataset"] == dataset]
        order = part[part["metric"] == "acc1"].sort_values("mean", ascending=False)["model"].tolist()
        lines += [f"## {dataset}", "", f"{queries.get(dataset, '?')} LLM test queries.", ""]
        rows = [[m, ROW_TEXT.get(m, f"B-tuning with F = {m.removeprefix('behaviorlm_F')} per label"),
                 *(_cell(part[part["model"] == m], k) for k in SHOWN)] for m in order]
        lines += md_table(["row", "what it is", *SHOWN], rows)
        lines += ["", "**Verdict.**", "", *(f"- {v}" for v in verdict(table, summary, dataset)), ""]
        if selections is not None and len(selections):
            lines += selection_lines(selections[selections["dataset"] == dataset])
    return "\n".join(lines) + "\n"


SELECTION = re.compile(r"results/(?P<dataset>[^/]+)/behaviorlm/select_(?P<how>[a-z]+)_(?P<arm>[a-z_]+)_F(?P<F>\d+)"
                       r"_seed(?P<seed>\d+)\.json$")


def selections_frame(paths: list[str]) -> pd.DataFrame:
    """One row per B-tuning set: what difficulty (or random) selection kept from the scored pool."""
    rows = []
    for path in paths:
        match = SELECTION.search(str(path))
        if not match:
            raise ValueError(f"{path}: expected results/<dataset>/behaviorlm/select_<how>_<arm>_F<n>_seed<k>.json")
        report = json.loads(Path(path).read_text())
        rows.append({**match.groupdict(), "pool": report["pool"], "pool_accuracy": report.get("pool_accuracy"),
                     "candidates": report["candidates"], "selected": report["selected"],
                     "labels": report["labels"], "labels_short_of_F": len(report["labels_with_fewer"])})
    frame = pd.DataFrame(rows, columns=["dataset", "how", "arm", "F", "seed", "pool", "pool_accuracy", "candidates",
                                        "selected", "labels", "labels_short_of_F"])
    return frame.astype({"F": int, "seed": int}).sort_values(["dataset", "how", "arm", "F", "seed"], ignore_index=True)


def selection_lines(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return []
    head = ["selection", "A-tuning arm", "F", "seed", "pool", "pool Acc@1", "kept by the rule", "selected",
            "labels", "labels with < F"]
    rows = [[r.how, r.arm, r.F, r.seed, r.pool, "n/a" if pd.isna(r.pool_accuracy) else f"{r.pool_accuracy:.3f}",
             r.candidates, r.selected, r.labels, r.labels_short_of_F] for r in frame.itertuples()]
    intro = ("B-tuning sets (what each selection kept from the A-tuned model's scored pool; `kept by the rule`: "
             "same-category mistakes for difficulty selection, every pool sample for random):")
    return [intro, "",
            *md_table(head, rows), ""]


def llm_table(table: str, *, parts: list[str], outputs: dict, config: dict, seeds: list[int],
              selections: list[str] = (), days: list[str] = ()) -> pd.DataFrame:
    """Rule llm_table: results/<table>.csv, its summary, page and provenance (table 9: with its
    generation columns from the one-day `days` parts)."""
    from behaviorflow.reporting.generation_table import generation_section, read_day_parts

    frames = [pd.read_csv(p) for p in parts]
    long = pd.concat(frames, ignore_index=True)
    queries = long.groupby("dataset")["queries"].agg(lambda q: sorted(set(q))).to_dict()
    mixed = {d: q for d, q in queries.items() if len(q) != 1}
    if mixed:
        raise ValueError(f"{table}: rows of one dataset were scored on different query counts {mixed}; "
                         "rebuild them with the same behaviorlm.queries")
    long = long[COLUMNS]
    generated, n_days = read_day_parts(list(days), table) if days else (None, {})
    if generated is not None:
        long = pd.concat([long, generated], ignore_index=True)
    long = long.sort_values(["dataset", "model", "metric", "seed"], ignore_index=True)
    summary = summarize(long)
    # the prediction section reads the prediction metrics only; the generation section follows
    text = page(table, summary, seeds, {d: q[0] for d, q in queries.items()}, selections_frame(list(selections)))
    for dataset, count in sorted(n_days.items()):
        part = summary[summary["dataset"] == dataset]
        models = sorted(generated.loc[generated["dataset"] == dataset, "model"].unique())
        text += "\n".join([f"## {dataset}: one-day generation (table 8's protocol)", "",
                           *generation_section(part, dataset, count, models, [(m, "bua") for m in models if m != "bua"])])
    write_results_table(outputs, table, long, summary, text, [*parts, *days], config, seeds)
    return summary
