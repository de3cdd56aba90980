"""Rules validate_synthetic and validation_report: fidelity and privacy rows of every synthetic data set."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from behaviorflow.atomic import write_csv, write_json
from behaviorflow.provenance import model_identities, provenance
from behaviorflow.validation.fidelity import (
    FIDELITY_COLUMNS,
    REAL_REFERENCE,
    fidelity_rows,
)
from behaviorflow.validation.privacy import holdout_users, privacy_rows

PRIVACY_COLUMNS = ["dataset", "generator", "variant", "seed", "data", "metric", "value"]


def _source_labels(source: str, summary: dict, generation: dict) -> tuple[str, str, int]:
    """(generator, variant, seed) of a validation source: a generator, or an ablation run."""
    if source.startswith("ablation-"):
        return "behaviorgen", summary["variant"], int(summary["seed"])
    variant = generation["behaviorgen"]["variant"] if source == "behaviorgen" else "none"
    return source, variant, int(generation["seed"])


def validate_synthetic(inputs: dict, outputs: dict, dataset: str, source: str, shown_splits: list[str],
                    privacy: dict, generation: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule validate_synthetic: fidelity rows per synthetic set, privacy rows for all of them together."""
    split = pd.read_parquet(inputs["split"])
    profiles = pd.read_parquet(inputs["profiles"])
    summary = json.loads(Path(inputs["summary"]).read_text()) if "summary" in inputs else {}
    generator, variant, seed = _source_labels(source, summary, generation)
    synthetic = {name: pd.read_parquet(inputs[name]) for name in REAL_REFERENCE if name in inputs}
    labels = {"dataset": dataset, "generator": generator, "variant": variant, "seed": seed}
    fid = fidelity_rows(split, synthetic).assign(**labels)[FIDELITY_COLUMNS]
    everything = pd.concat(list(synthetic.values()), ignore_index=True)
    report = privacy_rows(split, everything, holdout_users(profiles, set(shown_splits)), privacy["ngram"],
                          privacy["overlap_threshold"])
    data = "+".join(synthetic)  # population+personal, or ablation
    priv = pd.DataFrame([{**labels, "data": data, "metric": k, "value": v} for k, v in report.items()])[PRIVACY_COLUMNS]
    write_csv(fid, outputs["fidelity"])
    write_csv(priv, outputs["privacy"])
    return fid, priv


def validation_report(parts: list[str], data: list[str], outputs: dict, config: dict) -> None:
    """Rule validation_report: concatenate the parts; each file gets a provenance sidecar."""
    seeds = [config["generation"]["seed"], *config["validation"]["ablation"]["seeds"]]
    for kind in ("fidelity", "privacy"):
        frame = pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in parts
                           if p.endswith(f"_{kind}.csv")], ignore_index=True)
        write_csv(frame, outputs[kind])
        write_json(outputs[f"{kind}_provenance"],
                   provenance(data, config, seeds, kind=kind, rows=int(len(frame)), models=model_identities(data)))
