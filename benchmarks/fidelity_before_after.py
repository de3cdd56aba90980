"""BehaviorGen's personal weeks before and after a change, beside the Markov baseline: the
fidelity figures side by side and the per-user behaviour and time-of-day figures of both.

    python benchmarks/fidelity_before_after.py --before /path/to/old/checkout --after .

Each root is a checkout whose main command has built the personal weeks
(`snakemake --cores all results/table3.csv`): `data/synthetic/<dataset>/{behaviorgen,markov}/personal.parquet`
and `data/processed/<dataset>/split.parquet`. Both runs must share the data (same split; checked),
so every set is judged against the same held-out query events. Prints one row per set (behaviour
JSD pooled and per user, time-of-day KS p per user, share of events at 23:00-24:00, events per
day) and writes `user_distributions.png` and `time_of_day.png` under `--out`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from behaviorflow.reporting import figures as F
from behaviorflow.validation.fidelity import as_real_users, real_reference
from behaviorflow.validation.metrics import fidelity


def load(root: Path, dataset: str) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    split = root / f"data/processed/{dataset}/split.parquet"
    weeks = {g: root / f"data/synthetic/{dataset}/{g}/personal.parquet" for g in ("behaviorgen", "markov")}
    missing = [str(p) for p in (split, *weeks.values()) if not p.is_file()]
    if missing:
        sys.exit(f"missing {missing}: run `snakemake --cores all results/table3.csv` in {root} first")
    return pd.read_parquet(split), {g: pd.read_parquet(p) for g, p in weeks.items()}


def summary_row(name: str, real: pd.DataFrame, synthetic: pd.DataFrame) -> dict:
    rows = fidelity(real, as_real_users(synthetic)).set_index(["level", "metric"])["value"]
    hours = synthetic["slot"] / 60
    days = synthetic.groupby(["source_user", synthetic["ts"].dt.date]).ngroups
    return {"set": name, "jsd_behavior pooled": rows[("population", "jsd_behavior")],
            "jsd_behavior per user": rows[("user", "jsd_behavior")], "ks_p_time per user": rows[("user", "ks_p_time")],
            "share 23-24 h": float((hours >= 23).mean()), "events/day": len(synthetic) / max(days, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="checkout built before the change")
    ap.add_argument("--after", type=Path, default=Path("."), help="checkout built after it (default: here)")
    ap.add_argument("--dataset", default="simulated")
    ap.add_argument("--out", type=Path, default=Path("reports/before_after"))
    ap.add_argument("--label-before", default="before")
    ap.add_argument("--label-after", default="after")
    args = ap.parse_args()
    split, after = load(args.after, args.dataset)
    old_split, before = load(args.before, args.dataset)
    if not old_split.sort_values(["user_id", "event_idx"]).reset_index(drop=True).equals(
            split.sort_values(["user_id", "event_idx"]).reset_index(drop=True)):
        sys.exit("the two runs have different data (split.parquet differs): their weeks cannot be judged together")
    sets = {"Markov": after["markov"], f"BehaviorGen {args.label_before}": before["behaviorgen"],
            f"BehaviorGen {args.label_after}": after["behaviorgen"]}
    real = real_reference(split, "personal", pd.concat(list(sets.values())))
    real_hours = real["slot"] / 60
    table = pd.DataFrame([{"set": "real (held-out query events)", "share 23-24 h": float((real_hours >= 23).mean()),
                           "events/day": len(real) / real.groupby(["user_id", real["ts"].dt.date]).ngroups}]
                         + [summary_row(name, real, frame) for name, frame in sets.items()])
    print(table.round(4).to_string(index=False))
    args.out.mkdir(parents=True, exist_ok=True)
    users = (real.groupby("user_id").size().reset_index(name="n")
             .sort_values(["n", "user_id"], ascending=[False, True])["user_id"].head(4).tolist())
    F.plot_user_distributions(real, sets, users).savefig(args.out / "user_distributions.png", dpi=90)
    F.plot_time_of_day({"personal": real}, {name: {"personal": frame} for name, frame in sets.items()}).savefig(
        args.out / "time_of_day.png", dpi=90)
    print(f"figures: {args.out / 'user_distributions.png'}, {args.out / 'time_of_day.png'}")


if __name__ == "__main__":
    main()
