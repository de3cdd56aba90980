"""User splits: train/val/test users by seed, and a chronological support/query cut for val/test users."""

from __future__ import annotations

import logging
import os

import duckdb
import numpy as np
import pandas as pd

from behaviorflow.atomic import tmp_sibling, write_json
from behaviorflow.config import SplitSettings, as_settings

log = logging.getLogger(__name__)


def assign_users(users: list[str], settings: SplitSettings) -> dict[str, str]:
    """Seeded 8:1:1 (by default) assignment of users to train / val / test."""
    users = sorted(users)
    order = np.random.default_rng(settings.seed).permutation(len(users))
    n_train = int(round(settings.train * len(users)))
    n_val = int(round(settings.val * len(users)))
    roles = {}
    for rank, i in enumerate(order):
        roles[users[i]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return roles


def split_users(events_in, split_out, report_out, settings: SplitSettings | dict) -> dict:
    """Rule split_users: split.parquet, every event with its user's split and its part (train/support/query)."""
    settings = as_settings(SplitSettings, settings)
    if settings.min_user_events <= settings.min_query_events:
        raise ValueError("split.min_user_events must be larger than split.min_query_events")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{events_in}')")
    counts = con.execute("SELECT user_id, count(*) AS n FROM ev GROUP BY 1 ORDER BY 1").df()
    kept = counts[counts["n"] >= settings.min_user_events]
    roles = assign_users(kept["user_id"].tolist(), settings)
    users = counts.assign(split=counts["user_id"].map(roles).fillna("excluded"))
    # Support: the first `support_events` events, leaving at least `min_query_events` for the query.
    users["support_size"] = np.where(
        users["split"].isin(["val", "test"]),
        np.minimum(settings.support_events, users["n"] - settings.min_query_events),
        0,
    )
    con.register("users_split", users)
    tmp = tmp_sibling(split_out)
    con.execute(f"""COPY (
        SELECT e.user_id, e.ts, e.weekday, e.slot, e.location, e.behavior, e.category, u.split,
               CASE WHEN u.split IN ('train', 'excluded') THEN u.split
                    WHEN e.event_idx < u.support_size THEN 'support' ELSE 'query' END AS part,
               e.event_idx
        FROM (SELECT *, seq AS event_idx FROM ev) e
        JOIN users_split u USING (user_id)
        ORDER BY e.user_id, e.event_idx)
        TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)""")
    parts = con.execute(f"SELECT split, part, count(*), count(DISTINCT user_id) FROM '{tmp}' GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    n_in = int(counts["n"].sum())
    n_out = sum(p[2] for p in parts)
    if n_in != n_out:
        raise RuntimeError(f"split lost events: {n_in} in, {n_out} out")
    report = {
        "events": n_in,
        "users": int(len(users)),
        "users_by_split": {s: int((users["split"] == s).sum()) for s in ("train", "val", "test", "excluded")},
        "events_by_part": {f"{s}/{p}": int(c) for s, p, c, _ in parts},
        "excluded_reason": f"fewer than {settings.min_user_events} events",
        "support_events": settings.support_events,
        "min_query_events": settings.min_query_events,
        "support_size_range": [int(users.loc[users["split"].isin(["val", "test"]), "support_size"].min()),
                               int(users.loc[users["split"].isin(["val", "test"]), "support_size"].max())]
        if users["split"].isin(["val", "test"]).any() else None,
        "seed": settings.seed,
    }
    write_json(report_out, report)
    os.replace(tmp, split_out)
    log.info("split %d users: %s", len(users), report["users_by_split"])
    return report


def visible_events(split: pd.DataFrame) -> pd.DataFrame:
    """Events a model may see about each user: all of a train user's, only the support of val/test users."""
    return split[split["part"].isin(["train", "support"])]
