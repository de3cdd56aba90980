"""Tables 1-3, BehaviorGen's downstream scenarios: derived comparison rows (improvement, share of the
real gain), the Markdown page with its protocol and a plain verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd

from behaviorflow.reporting.tables import (
    COLUMNS,
    KEYS,
    fmt_value,
    md_table,
    summarize,
    write_results_table,
)

PROTOCOL = {
    "table1": ("Pretraining augmentation",
               "A population predictor is trained on the real training users' events (`real`, generator `none`) "
               "or on those plus the generator's synthetic population (`real+synthetic`), with early stopping on "
               "the validation users' query events, and evaluated on the test users' query events. "
               "`diff_pts` = (real+synthetic − real) × 100 (points), `improvement_pct` = (real+synthetic − real) / "
               "real × 100, per seed."),
    "table2": ("Fine-tuning replacement",
               "From the real-pretrained predictor, a copy is fine-tuned per test user on nothing (`none`), on the "
               "user's real support events (`real`), or only on the generator's personal synthetic weeks for "
               "the user (`synthetic`, early stopping on the last share of those weeks: no real event of the "
               "user is used). `share_of_real_gain` = (synthetic − none) / (real − none), per seed; it is "
               "undefined (NaN) where real fine-tuning gains nothing on that metric."),
    "table3": ("Fine-tuning augmentation",
               "From the real-pretrained predictor, a copy is fine-tuned per test user on the limited real support "
               "events (`real`) or on those plus the generator's personal synthetic weeks (`real+synthetic`); "
               "early stopping on the last share of the real support events. `diff_pts` = (real+synthetic − "
               "real) × 100 (points), `improvement_pct` = (real+synthetic − real) / real × 100, per seed."),
}
METRIC_TEXT = ("Metrics (full softmax over all behaviour labels, repeats allowed, pooled over the test users' "
               "query events, each predicted from the events before it): `acc1` (= weighted recall), `acc3`, "
               "`weighted_precision`, `overall` (macro accuracy over labels), and macro accuracy over `head` / "
               "`medium` / `tail` labels (training share > 5 %, 1–5 %, < 1 %).")


def _ratio_rows(long: pd.DataFrame, num: str, base: str, den_base: str | None, name: str) -> pd.DataFrame:
    """Per seed: (num − base) / base × 100 (den_base None), (num − base) / (den_base − base), or
    (num − base) × 100 (den_base "points")."""
    idx = ["dataset", "model", "metric", "seed"]
    b = long[long["setting"] == base].set_index(idx)["value"]
    rows = []
    for g, part in long[long["setting"] == num].groupby("generator"):
        v = part.set_index(idx)["value"]
        if den_base is None:
            out = (v - b.reindex(v.index)) / b.reindex(v.index) * 100
        elif den_base == "points":
            out = (v - b.reindex(v.index)) * 100
        else:
            r = long[long["setting"] == den_base].set_index(idx)["value"].reindex(v.index)
            gain = r - b.reindex(v.index)
            out = (v - b.reindex(v.index)) / gain.where(gain.abs() > 1e-12)
        rows.append(out.rename("value").reset_index().assign(generator=g, setting=name))
    return pd.concat(rows, ignore_index=True)[COLUMNS] if rows else pd.DataFrame(columns=COLUMNS)


def build_table(name: str, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The long table with its derived rows, sorted."""
    long = pd.concat(parts, ignore_index=True)[COLUMNS]
    if name == "table2":
        long = long[long["setting"].isin(["none", "real", "synthetic"])]
        derived = _ratio_rows(long, "synthetic", "none", "real", "share_of_real_gain")
    else:
        if name == "table3":
            long = long[long["setting"].isin(["real", "real+synthetic"])]
        derived = pd.concat([_ratio_rows(long, "real+synthetic", "real", "points", "diff_pts"),
                             _ratio_rows(long, "real+synthetic", "real", None, "improvement_pct")], ignore_index=True)
    out = pd.concat([long, derived], ignore_index=True)
    return out.sort_values(KEYS, kind="stable").reset_index(drop=True)


def markdown(name: str, summary: pd.DataFrame, seeds: list[int]) -> str:
    title, protocol = PROTOCOL[name]
    lines = [f"# {name}: {title}", "", protocol, "", METRIC_TEXT, "",
             f"Seeds: {', '.join(map(str, seeds))}; values are mean ± sd over seeds. The long format "
             f"(`results/{name}.csv`) has one row per dataset × model × generator × setting × metric × seed; "
             f"`results/{name}_summary.csv` holds these means.", ""]
    # no empty rows: a metric undefined on every seed (e.g. tail accuracy with no tail label) is left out
    main = summary[summary["metric"].isin(["acc1", "acc3", "overall", "tail"]) & (summary["n"] > 0)]
    for dataset, part in main.groupby("dataset"):
        rows = [[r.model, r.generator, r.setting, r.metric, fmt_value(r.mean), fmt_value(r.sd), r.n]
                for r in part.itertuples(index=False)]
        lines += [f"## {dataset}", "", *md_table(["model", "generator", "setting", "metric", "mean", "sd", "n"], rows),
                  ""]
    lines += [verdict(name, summary), ""]
    return "\n".join(lines)


def verdict(name: str, summary: pd.DataFrame) -> str:
    """One plain sentence per dataset, model and generator on whether synthetic data helped Acc@1."""
    acc = summary[summary["metric"] == "acc1"]
    out = []
    if name == "table2":
        # judged on the seed means: per-seed shares explode when real fine-tuning gains ~nothing
        means = acc.set_index(["dataset", "model", "generator", "setting"])[["mean", "sd"]]
        for (dataset, model, generator), part in acc[acc["setting"] == "synthetic"].groupby(
                ["dataset", "model", "generator"]):
            none = means.loc[(dataset, model, "none", "none")]
            real = means.loc[(dataset, model, "none", "real")]
            syn = part.iloc[0]
            gain = real["mean"] - none["mean"]
            noise = max(np.nan_to_num(real["sd"]), np.nan_to_num(none["sd"]))
            if gain <= noise:
                text = (f"cannot be judged as a share: real fine-tuning does not clearly raise Acc@1 "
                        f"({none['mean']:.4f} -> {real['mean']:.4f}); synthetic-only gives {syn['mean']:.4f}")
            else:
                text = (f"recovers {(syn['mean'] - none['mean']) / gain:.0%} of the Acc@1 gain of real fine-tuning "
                        f"(none {none['mean']:.4f}, real {real['mean']:.4f}, synthetic {syn['mean']:.4f})")
            out.append(f"- {dataset}, {model}, {generator}: {text}.")
        return "Verdict (Acc@1, means over seeds):\n" + "\n".join(out)
    pct = acc[acc["setting"] == "improvement_pct"].set_index(["dataset", "model", "generator"])
    for r in acc[acc["setting"] == "diff_pts"].itertuples(index=False):
        sd = 0.0 if np.isnan(r.sd) else r.sd
        helped = "helps" if r.mean - sd > 0 else ("hurts" if r.mean + sd < 0 else "makes no clear difference to")
        p = pct.loc[(r.dataset, r.model, r.generator)]
        out.append(f"- {r.dataset}, {r.model}, {r.generator}: synthetic data {helped} Acc@1 "
                   f"({r.mean:+.2f} points ± {sd:.2f}, {p['mean']:+.2f} % ± {np.nan_to_num(p['sd']):.2f}).")
    return ("Verdict (Acc@1 difference to real only, mean ± sd over seeds; 'no clear difference' when the sd "
            "covers zero):\n" + "\n".join(out))


def scenario_table(name: str, part_paths: list[str], outputs: dict, config: dict, seeds: list[int],
                sources: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rule scenario_table (tables 1-3): assemble the parts; write the long table, summary, page and provenance.

    `sources`: predictor weights and generation summaries the parts came from; their checksums
    and the generators' model identities go into the provenance."""
    long = build_table(name, [pd.read_csv(p) for p in part_paths])
    summary = summarize(long)
    write_results_table(outputs, name, long, summary, markdown(name, summary, seeds), [*part_paths, *sources], config,
                        seeds, models_from=sources)
    return long
