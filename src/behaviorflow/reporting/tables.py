"""The one writer of every results table: the long CSV, its summary, its Markdown page and its
provenance sidecar; and the helpers the tables share (seed summaries, Markdown tables).

Tables 1-3 (`scenario_tables`) use the long format (dataset, model, generator, setting, metric,
seed, value); table 4 (`ablation_table`) its own columns; all go through `write_results_table`."""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["dataset", "model", "generator", "setting", "metric", "seed"]
COLUMNS = [*KEYS, "value"]

def summarize(long: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample sd and count over seeds (NaN values skipped: n counts the defined ones)."""
    g = long.groupby(KEYS[:-1], sort=True)["value"]
    return pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count()}).reset_index()


def md_table(columns: list[str], rows: list[list]) -> list[str]:
    """Lines of a Markdown table."""
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns),
            *("| " + " | ".join(map(str, row)) + " |" for row in rows)]


def fmt_value(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"


def write_results_table(outputs: dict, name: str, long: pd.DataFrame, summary: pd.DataFrame, page: str,
                        inputs: list[str], config: dict, seeds: list[int], models_from=()) -> None:
    """Write `outputs` table, summary, page and provenance (config hash, input checksums, seeds and the
    model identities found in `models_from`) of one results table."""
    from behaviorflow.atomic import write_csv, write_json, write_text
    from behaviorflow.provenance import model_identities, provenance

    write_csv(long, outputs["table"])
    write_csv(summary, outputs["summary"])
    write_text(outputs["page"], page)
    write_json(outputs["provenance"], provenance(inputs, config, seeds, table=name, rows=int(len(long)),
                                                 models=model_identities(models_from)))
