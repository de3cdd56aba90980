"""What every generation job writes: events, the call log and a summary (Pass@1, tokens, cost)."""

from __future__ import annotations

import logging

import pandas as pd

from behaviorflow.atomic import write_json, write_parquet
from behaviorflow.lm.backends import CachedLLM

log = logging.getLogger(__name__)


def summarize_log(log_df: pd.DataFrame, price_in_per_1k: float = 0.0, price_out_per_1k: float = 0.0) -> dict:
    """Calls, Pass@1 (first attempt fully valid), tokens and the estimated cost of the data.

    Only what the data are: the same for a cold run and a warm rerun from the cache (this run's
    backend calls and cache hits go to the rule's log). The cost prices every attempt."""
    if log_df.empty:
        return {"calls": 0, "attempts": 0, "pass_at_1": None, "valid_calls": 0, "failed_calls": 0,
                "prompt_tokens": 0, "completion_tokens": 0, "estimated_cost": 0.0}
    first = log_df[log_df["attempt"] == 1]
    valid_calls = int(log_df.groupby("call")["valid"].any().sum())
    p_in, p_out = int(log_df["prompt_tokens"].sum()), int(log_df["completion_tokens"].sum())
    return {
        "calls": int(log_df["call"].nunique()),
        "attempts": int(len(log_df)),
        "pass_at_1": round(float(first["valid"].mean()), 4),
        "valid_calls": valid_calls,
        "failed_calls": int(log_df["call"].nunique()) - valid_calls,
        "prompt_tokens": p_in,
        "completion_tokens": p_out,
        "estimated_cost": round((p_in * price_in_per_1k + p_out * price_out_per_1k) / 1000, 4),
    }


def write_outputs(events: pd.DataFrame, log_df: pd.DataFrame, events_path, outputs: dict, llm: CachedLLM | None,
                   name: str, prices: dict | None = None, **extra) -> dict:
    """Write events, the call log and the summary of one generation job; return the summary.

    The log leaves out this run's cache hits (logged instead) and the summary holds only what the
    data are, so a warm rerun from the cache writes the same files."""
    prices = prices or {}
    hits = int(log_df["cache_hit"].sum()) if "cache_hit" in log_df else 0
    log.info("attempts: %d, answered from the cache this run: %d", len(log_df), hits)
    write_parquet(events, events_path)
    write_parquet(log_df.drop(columns=["cache_hit"], errors="ignore"), outputs["log"])
    summary = {**summarize_log(log_df, prices.get("price_in_per_1k", 0.0), prices.get("price_out_per_1k", 0.0)),
               **extra, "events": int(len(events)), **({"model": llm.backend.identity()} if llm is not None else {})}
    write_json(outputs["summary"], summary)
    log.info("%s: %s", name, ", ".join(f"{k}={v}" for k, v in summary.items()))
    return summary
