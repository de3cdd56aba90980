"""Figures of the report notebooks. Each function takes plain frames and returns a matplotlib Figure,
so pytest can check them and the notebooks stay a few lines long.

Everything is drawn in a fixed order (sorted labels, fixed colours), so a rerun draws the same image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from behaviorflow.predictors.baselines import BASELINES
from behaviorflow.predictors.evaluation import share_groups

GROUP_COLOURS = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#2ca02c"}
REAL_COLOUR = "#444444"
SOURCE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]


def behaviour_shares(events: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """Per behaviour: events, share of all events, and head/medium/tail by its share of the training
    events (the grouping of the predictor tables), most frequent first."""
    counts = events["behavior"].value_counts()
    train_share = train["behavior"].value_counts(normalize=True).reindex(counts.index, fill_value=0.0)
    out = pd.DataFrame({"behavior": counts.index, "events": counts.to_numpy(),
                        "share": (counts / counts.sum()).to_numpy(),
                        "train_share": train_share.to_numpy()})
    out["group"] = share_groups(out["train_share"].to_numpy())
    return out.sort_values(["events", "behavior"], ascending=[False, True], ignore_index=True)


def plot_behaviour_shares(shares: pd.DataFrame, title: str = "") -> Figure:
    """Bar chart of behaviour shares (log scale), coloured head / medium / tail."""
    fig = Figure(figsize=(max(6.0, 0.22 * len(shares) + 2), 4.0), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(shares))
    ax.bar(x, shares["share"], color=[GROUP_COLOURS[g] for g in shares["group"]])
    ax.set_xticks(x, shares["behavior"], rotation=90, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("share of events")
    handles = [Patch(color=colour, label=f"{group} ({int((shares['group'] == group).sum())} behaviours)")
               for group, colour in GROUP_COLOURS.items()]
    ax.legend(handles=handles, title="training share > 5 % / 1-5 % / < 1 %", fontsize=8)
    ax.set_title(title or "Behaviour shares")
    return fig


def plot_activity(events: pd.DataFrame, title: str = "") -> Figure:
    """Events per user (histogram) and time of day on weekdays vs weekends."""
    fig = Figure(figsize=(10.0, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    per_user = events.groupby("user_id").size()
    left.hist(per_user.to_numpy(), bins=min(30, max(5, len(per_user) // 3)), color=REAL_COLOUR)
    left.set_xlabel("events per user")
    left.set_ylabel("users")
    bins = np.arange(0, 24.5, 0.5)
    for name, mask, colour in (("weekday", events["weekday"] < 5, SOURCE_COLOURS[0]),
                               ("weekend", events["weekday"] >= 5, SOURCE_COLOURS[1])):
        right.hist(events.loc[mask, "slot"] / 60, bins=bins, density=True, histtype="step", lw=1.5,
                   color=colour, label=f"{name} ({int(mask.sum())} events)")
    right.set_xlabel("time of day (h)")
    right.set_ylabel("density")
    right.set_xlim(0, 24)
    right.legend(fontsize=8)
    fig.suptitle(title or "Activity")
    return fig


def plot_user_distributions(real: pd.DataFrame, synthetic: dict[str, pd.DataFrame], users: list[str],
                            top: int = 8) -> Figure:
    """BehaviorGen's Figure 2 idea: per user, the share of their top real behaviours in their real
    held-out events and in each source's synthetic weeks for them (keyed by `source_user`)."""
    n = len(users)
    cols = min(2, max(n, 1))
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(6.0 * cols, 3.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    sources = sorted(synthetic)
    width = 0.8 / (1 + len(sources))
    for i, (ax, user) in enumerate(zip(axes, users)):
        mine = real[real["user_id"] == user]["behavior"]
        labels = mine.value_counts().sort_index().sort_values(ascending=False, kind="stable").index[:top]
        x = np.arange(len(labels))
        ax.bar(x, mine.value_counts(normalize=True).reindex(labels, fill_value=0), width, color=REAL_COLOUR,
               label=f"real ({len(mine)} events)")
        for j, source in enumerate(sources):
            syn = synthetic[source]
            theirs = syn[syn["source_user"] == user]["behavior"]
            share = theirs.value_counts(normalize=True).reindex(labels, fill_value=0)
            ax.bar(x + (j + 1) * width, share, width, color=SOURCE_COLOURS[j % len(SOURCE_COLOURS)],
                   label=f"{source} ({len(theirs)} events)")
        ax.set_xticks(x + width * len(sources) / 2, labels, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("share")
        ax.set_title(f"user {i + 1}", fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle("Behaviour distribution per user: real held-out events vs synthetic weeks")
    return fig


def plot_time_of_day(real: dict[str, pd.DataFrame], synthetic: dict[str, dict[str, pd.DataFrame]]) -> Figure:
    """One panel per synthetic data set (population, personal): time-of-day densities of the real
    reference and of each source."""
    parts = [part for part in ("population", "personal", "ablation") if part in real]
    fig = Figure(figsize=(5.5 * len(parts), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(parts)))
    bins = np.arange(0, 24.5, 0.5)
    for ax, part in zip(axes, parts):
        ax.hist(real[part]["slot"] / 60, bins=bins, density=True, color=REAL_COLOUR, alpha=0.35,
                label=f"real ({len(real[part])} events)")
        for j, source in enumerate(sorted(synthetic)):
            frame = synthetic[source].get(part)
            if frame is None or frame.empty:
                continue
            ax.hist(frame["slot"] / 60, bins=bins, density=True, histtype="step", lw=1.5,
                    color=SOURCE_COLOURS[j % len(SOURCE_COLOURS)], label=f"{source} ({len(frame)} events)")
        ax.set_xlim(0, 24)
        ax.set_xlabel("time of day (h)")
        ax.set_ylabel("density")
        ax.set_title(f"{part} data")
        ax.legend(fontsize=7)
    return fig


# The metrics of the tables 1 and 3 figures.
IMPROVEMENT_METRICS = ["acc1", "acc3", "overall", "head", "medium", "tail"]


def plot_predictor_table(summary: pd.DataFrame, table: str) -> Figure:
    """Tables 1 and 3: each metric's absolute value (mean ± sd over seeds) with real data only and with
    each generator's synthetic data added, the difference in points written over each bar (a relative
    change on a near-zero base says little); table 2: Acc@1 of no fine-tuning, real, and each
    generator's synthetic-only data. Metrics undefined on every row (a label group with no label) are
    left out."""
    panels = summary[["dataset", "model"]].drop_duplicates().sort_values(["dataset", "model"])
    fig = Figure(figsize=(5.5 * len(panels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (dataset, model) in zip(axes, panels.itertuples(index=False)):
        rows = summary[(summary["dataset"] == dataset) & (summary["model"] == model)]
        if table == "table2":
            rows = rows[(rows["metric"] == "acc1") & rows["setting"].isin(["none", "real", "synthetic"])]
            rows = rows.assign(rank=rows["setting"].map({"none": 0, "real": 1, "synthetic": 2}),
                               label=rows["generator"].where(rows["setting"] == "synthetic", rows["setting"]))
            rows = rows.sort_values("rank", kind="stable")
            x = np.arange(len(rows))
            ax.bar(x, rows["mean"], yerr=rows["sd"].fillna(0), capsize=3,
                   color=[SOURCE_COLOURS[0] if s == "synthetic" else REAL_COLOUR for s in rows["setting"]])
            ax.set_xticks(x, rows["label"], rotation=30, ha="right")
            ax.set_ylabel("Acc@1 (mean ± sd over seeds)")
        else:
            real = rows[rows["setting"] == "real"].set_index("metric")
            metrics = [m for m in IMPROVEMENT_METRICS if m in real.index and real.loc[m, "n"] > 0]
            generators = sorted(rows.loc[rows["setting"] == "real+synthetic", "generator"].unique())
            diffs = rows[rows["setting"] == "diff_pts"]
            x = np.arange(len(metrics))
            width = 0.8 / (len(generators) + 1)
            ax.bar(x, real.loc[metrics, "mean"], width, yerr=real.loc[metrics, "sd"].fillna(0), capsize=3,
                   color=REAL_COLOUR, label="real only")
            for j, gen in enumerate(generators, start=1):
                mine = rows[(rows["generator"] == gen) & (rows["setting"] == "real+synthetic")].set_index(
                    "metric").reindex(metrics)
                bars = ax.bar(x + j * width, mine["mean"], width, yerr=mine["sd"].fillna(0), capsize=3,
                              color=SOURCE_COLOURS[(j - 1) % len(SOURCE_COLOURS)], label=f"real + {gen}")
                diff = diffs[diffs["generator"] == gen].set_index("metric").reindex(metrics)["mean"]
                ax.bar_label(bars, [f"{d:+.1f}" if np.isfinite(d) else "" for d in diff], fontsize=7, padding=2)
            ax.set_xticks(x + width * len(generators) / 2, metrics)
            ax.set_ylabel("value (mean ± sd over seeds)\nover each bar: difference to real only, points")
            ax.legend(fontsize=8)
        ax.set_title(f"{dataset} · {model}", fontsize=10)
    return fig


def plot_ablation(summary: pd.DataFrame) -> Figure:
    """Table 4: JSD of behaviours (lower is better) and KS_P of time of day (higher is better) per
    prompt variant, one bar group per dataset."""
    fig = Figure(figsize=(11.0, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    datasets = sorted(summary["dataset"].unique())
    variants = list(dict.fromkeys(summary["variant"]))
    width = 0.8 / max(len(datasets), 1)
    x = np.arange(len(variants))
    for ax, metric, label in ((axes[0], "jsd", "JSD behaviour (lower = closer)"),
                              (axes[1], "ks_p", "KS_P time of day, user mean (higher = closer)")):
        for j, dataset in enumerate(datasets):
            rows = summary[summary["dataset"] == dataset].set_index("variant").reindex(variants)
            ax.bar(x + j * width, rows[metric].fillna(0), width, yerr=rows[f"{metric}_sd"].fillna(0), capsize=3,
                   color=SOURCE_COLOURS[j % len(SOURCE_COLOURS)], label=dataset)
        ax.set_xticks(x + width * (len(datasets) - 1) / 2, variants, rotation=20)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    if "ks_p" in summary and (summary["ks_p"] > 0).all():
        axes[1].set_yscale("log")
    return fig


def save_and_show(fig: Figure, path):
    """Save a figure as PNG at a declared output path and return it for display in a notebook
    (the saved bytes themselves, so the notebook and the report embed the same image)."""
    from IPython.display import Image

    fig.savefig(path, dpi=100)
    return Image(filename=str(path))


def plot_leaderboard(summary: pd.DataFrame, metrics=("acc1", "overall", "tail"), few_shot: bool = False,
                     order_by: str = "acc1") -> Figure:
    """The leaderboard (and tables 5-9): `metrics` of every row (mean ± sd over seeds), one panel
    per dataset, rows in the order of `order_by`, counting baselines in grey; with `few_shot`, a
    second row of panels with the few-shot curve (rows `behaviorlm_F<n>`: Overall and Tail against F)."""
    datasets = sorted(summary["dataset"].unique())
    curve = summary["model"].str.match(r"behaviorlm_F\d+$")
    fig = Figure(figsize=(6.0 * len(datasets), 7.2 if few_shot else 3.8), layout="constrained")
    grid = np.atleast_2d(fig.subplots(2 if few_shot else 1, len(datasets), squeeze=False))
    axes = grid[0]
    if few_shot:
        for ax, dataset in zip(grid[1], datasets):
            rows = summary[curve & (summary["dataset"] == dataset)]
            rows = rows.assign(F=rows["model"].str.removeprefix("behaviorlm_F").astype(int)).sort_values("F")
            for metric in ("overall", "tail"):
                r = rows[rows["metric"] == metric]
                ax.errorbar(r["F"], r["mean"], yerr=r["sd"].fillna(0), marker="o", capsize=2, label=metric)
            ax.set_xlabel("F (B-tuning samples per label)")
            ax.set_ylabel("accuracy (mean ± sd over seeds)")
            ax.set_title(f"{dataset}: few-shot curve", fontsize=10)
            ax.legend(fontsize=7)
        summary = summary[~curve]
    for ax, dataset in zip(axes, datasets):
        rows = summary[summary["dataset"] == dataset]
        order = rows[rows["metric"] == order_by].sort_values("mean")["model"].tolist()
        x = np.arange(len(metrics))
        width = 0.8 / max(len(order), 1)
        counting = [m for m in order if m in BASELINES]
        learned = [m for m in order if m not in counting]
        for j, model in enumerate(order):
            mine = rows[rows["model"] == model].set_index("metric").reindex(list(metrics))
            if model in counting:  # greys, darker for the stronger baseline
                colour = str(0.8 - 0.25 * counting.index(model))
            else:
                colour = SOURCE_COLOURS[learned.index(model) % len(SOURCE_COLOURS)]
            ax.bar(x + j * width, mine["mean"].fillna(0), width, yerr=mine["sd"].fillna(0), capsize=2,
                   color=colour, label=model)
        ax.set_xticks(x + width * (len(order) - 1) / 2, metrics)
        ax.set_ylabel("score (mean ± sd over seeds)")
        ax.set_title(dataset, fontsize=10)
        ax.legend(fontsize=7)
    return fig
