"""User profiles: released attributes plus behaviour-derived traits and a short text for prompts.

Traits are computed only from the events a model may see (all events of train users, the support
events of val/test users), so a profile never leaks a test user's query period into a prompt.
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pandas as pd

from behaviorflow.atomic import write_parquet
from behaviorflow.data.anonymize import SUPPRESSED
from behaviorflow.data.events import hhmm

log = logging.getLogger(__name__)

NIGHT = "(slot < 360 OR slot >= 1320)"  # 22:00-06:00
WORK_HOURS = "(weekday < 5 AND slot >= 540 AND slot < 1020)"  # weekdays 09:00-17:00


def entropy_bits(counts) -> float:
    """Shannon entropy (bits) of a count vector."""
    p = np.asarray(counts, dtype=float)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum()) if len(p) else 0.0


def _summary(row: pd.Series, attrs: list[str]) -> str:
    bits = [f"{a} {row[a]}" for a in attrs if isinstance(row.get(a), str) and row[a] != SUPPRESSED]
    parts = []
    if bits:
        parts.append("Profile: " + ", ".join(bits) + ".")
    work = f"work zone {row['work_zone']}" if row["work_zone"] != "none" else "no regular work zone"
    home = f"home zone {row['home_zone']}" if row["home_zone"] != "none" else "no regular home zone"
    parts.append(f"{home[0].upper()}{home[1:]}; {work}.")
    parts.append(f"Active {row['active_start']}-{row['active_end']}.")
    parts.append("Most frequent: " + ", ".join(
        f"{b} {s:.0%}" for b, s in zip(row["top_behaviors"], row["top_shares"])) + ".")
    parts.append(f"{row['weekday_events_per_day']:.1f} events per weekday, "
                 f"{row['weekend_events_per_day']:.1f} per weekend day.")
    parts.append(f"Behaviour entropy {row['behavior_entropy']:.2f} bits.")
    return " ".join(parts)


def build_profiles(split_in, profiles_input_in, profiles_out, top_k: int = 3) -> pd.DataFrame:
    """Rule build_profiles: profiles.parquet, one row per non-excluded user."""
    con = duckdb.connect()
    con.execute(f"""CREATE VIEW vis AS SELECT * FROM read_parquet('{split_in}')
                    WHERE part IN ('train', 'support')""")
    base = con.execute("""SELECT user_id, any_value(split) AS split, count(*) AS n_events,
            count(DISTINCT ts::DATE) AS days_observed,
            quantile_disc(slot, 0.05) AS q05, quantile_disc(slot, 0.95) AS q95
        FROM vis GROUP BY 1""").df()
    beh = con.execute("SELECT user_id, behavior, count(*) AS n FROM vis GROUP BY 1, 2 ORDER BY 1, n DESC, 2").df()
    loc = con.execute("SELECT user_id, location, count(*) AS n FROM vis GROUP BY 1, 2").df()
    # Home: the named zone most used at night (then overall); z_other is never a home or work zone.
    # Ties go to the lower zone name: arg_max alone picks among equal counts by thread timing.
    home_sql = f"""SELECT user_id, first(location ORDER BY n DESC, location) AS home FROM (
            SELECT user_id, location, count(*) + count(*) FILTER ({NIGHT}) * 1000000 AS n
            FROM vis WHERE location <> 'z_other' GROUP BY 1, 2) GROUP BY 1"""
    home = con.execute(home_sql).df().rename(columns={"home": "home_zone"})
    work = con.execute(f"""SELECT v.user_id, first(v.location ORDER BY v.n DESC, v.location) AS work_zone, max(v.n) / any_value(t.total) AS share
        FROM (SELECT user_id, location, count(*) AS n FROM vis WHERE {WORK_HOURS} GROUP BY 1, 2) v
        JOIN (SELECT user_id, count(*) AS total FROM vis WHERE {WORK_HOURS} GROUP BY 1) t USING (user_id)
        LEFT JOIN ({home_sql}) h USING (user_id)
        WHERE v.location IS DISTINCT FROM h.home AND v.location <> 'z_other' GROUP BY 1""").df()
    rhythm = con.execute("""SELECT user_id,
            avg(n) FILTER (NOT weekend) AS weekday_events_per_day,
            avg(n) FILTER (weekend) AS weekend_events_per_day
        FROM (SELECT user_id, ts::DATE AS d, weekday >= 5 AS weekend, count(*) AS n FROM vis GROUP BY 1, 2, 3)
        GROUP BY 1""").df()

    top = beh.groupby("user_id").head(top_k).copy()
    totals = beh.groupby("user_id")["n"].sum()
    top["share"] = top["n"] / top["user_id"].map(totals)
    top_lists = top.groupby("user_id").agg(top_behaviors=("behavior", list), top_shares=("share", list))
    ent_b = beh.groupby("user_id")["n"].apply(entropy_bits).rename("behavior_entropy")
    ent_l = loc.groupby("user_id")["n"].apply(entropy_bits).rename("location_entropy")

    prof = base.set_index("user_id")
    prof = prof.join(home.set_index("user_id")).join(work.set_index("user_id"))
    prof = prof.join(rhythm.set_index("user_id")).join(top_lists).join(ent_b).join(ent_l)
    prof["home_zone"] = prof["home_zone"].fillna("none")
    prof["work_zone"] = np.where(prof["share"].fillna(0) >= 0.1, prof["work_zone"].fillna("none"), "none")
    prof = prof.drop(columns=["share"])
    prof["active_start"] = prof["q05"].map(hhmm)
    prof["active_end"] = prof["q95"].map(hhmm)
    prof = prof.drop(columns=["q05", "q95"])
    prof[["weekday_events_per_day", "weekend_events_per_day"]] = prof[
        ["weekday_events_per_day", "weekend_events_per_day"]].fillna(0.0).round(2)
    prof[["behavior_entropy", "location_entropy"]] = prof[["behavior_entropy", "location_entropy"]].round(4)
    prof["top_shares"] = prof["top_shares"].map(lambda xs: [round(float(x), 4) for x in xs])

    attrs = pd.read_parquet(profiles_input_in).set_index("user_id")
    attr_cols = [c for c in attrs.columns if c != "epoch"]
    prof = prof.join(attrs[attr_cols])
    prof["summary"] = prof.apply(_summary, axis=1, attrs=attr_cols)
    prof = prof.reset_index().sort_values("user_id").reset_index(drop=True)
    cols = ["user_id", "split", *attr_cols, "n_events", "days_observed", "home_zone", "work_zone",
            "active_start", "active_end", "top_behaviors", "top_shares", "weekday_events_per_day",
            "weekend_events_per_day", "behavior_entropy", "location_entropy", "summary"]
    prof = prof[cols]
    write_parquet(prof, profiles_out)
    log.info("profiles for %d users", len(prof))
    return prof
