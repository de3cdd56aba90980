"""Typed settings built from the validated config, and the checks a JSON schema cannot express."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("simulated", "checkins_csv", "foursquare_tsmc2014", "generic")


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""


@dataclass(frozen=True)
class SimulationSettings:
    n_users: int = 120
    weeks: int = 8
    start_date: str = "2024-03-04"
    events_per_day: float = 6.0
    fault_rate: float = 0.004
    seed: int = 7


@dataclass(frozen=True)
class AnonymizationSettings:
    key_env: str = "BEHAVIORFLOW_PSEUDONYM_KEY"
    allow_fixed_key: bool = False
    rotation_months: int = 3
    top_zones: int = 10
    k: int = 5
    max_suppression: float = 0.05
    quasi_identifiers: tuple[str, ...] = ("age", "education", "gender", "consumption", "occupation")
    slot_minutes: int = 30


@dataclass(frozen=True)
class SplitSettings:
    train: float = 0.8
    val: float = 0.1
    test: float = 0.1
    support_events: int = 100
    min_query_events: int = 20
    min_user_events: int = 30
    seed: int = 11


@dataclass(frozen=True)
class DatasetSettings:
    """One entry of `datasets:` with everything ingestion needs."""

    name: str
    format: str
    path: str | None = None
    attributes_path: str | None = None
    label_column: str = "intent"
    vocabulary: tuple[str, ...] | None = None
    columns: dict[str, str] = field(default_factory=dict)
    delimiter: str | None = None
    timestamp_format: str = "%Y-%m-%d %H:%M:%S"
    slot_minutes: int = 30


def _read_vocabulary(value, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        path = Path(value)
        if not path.is_file():
            raise ConfigError(
                f"{key}: vocabulary file '{value}' does not exist; give a list of labels "
                "or the path of a text file with one label per line"
            )
        labels = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        return tuple(lb for lb in labels if lb and not lb.startswith("#"))
    return tuple(value)


def dataset_settings(config: dict, name: str) -> DatasetSettings:
    """Build the settings of dataset `name` from a validated config."""
    raw = config["datasets"][name]
    fmt = raw["format"]
    vocabulary = _read_vocabulary(raw.get("vocabulary"), f"datasets.{name}.vocabulary")
    if fmt == "simulated" and vocabulary is None:
        from behaviorflow.simulate import BEHAVIORS

        vocabulary = tuple(b.name for b in BEHAVIORS)
    return DatasetSettings(
        name=name,
        format=fmt,
        path=raw.get("path"),
        attributes_path=raw.get("attributes_path"),
        label_column=raw.get("label_column", "intent"),
        vocabulary=vocabulary,
        columns=dict(raw.get("columns") or {}),
        delimiter=raw.get("delimiter"),
        timestamp_format=raw.get("timestamp_format", "%Y-%m-%d %H:%M:%S"),
        slot_minutes=config.get("slot_minutes", 30),
    )


def anonymization_settings(config: dict, name: str) -> AnonymizationSettings:
    """Top-level anonymization block with the dataset's overrides applied."""
    merged = dict(config.get("anonymization") or {})
    merged.update(config["datasets"][name].get("anonymization") or {})
    unknown = set(merged) - set(AnonymizationSettings.__dataclass_fields__)
    if unknown:
        raise ConfigError(
            f"datasets.{name}.anonymization: unknown key(s) {sorted(unknown)}; allowed: "
            f"{sorted(set(AnonymizationSettings.__dataclass_fields__) - {'slot_minutes'})}"
        )
    if "quasi_identifiers" in merged:
        merged["quasi_identifiers"] = tuple(merged["quasi_identifiers"])
    for key, value in merged.items():
        want = type(getattr(AnonymizationSettings, key))
        ok = isinstance(value, want) or (want is float and isinstance(value, int))
        if not ok or (want is int and isinstance(value, bool)):
            raise ConfigError(f"datasets.{name}.anonymization.{key}: {value!r} is not of type '{want.__name__}'")
    return AnonymizationSettings(**merged, slot_minutes=config.get("slot_minutes", 30))


def simulation_settings(config: dict, name: str) -> SimulationSettings:
    return SimulationSettings(**(config["datasets"][name].get("simulation") or {}))


def split_settings(config: dict) -> SplitSettings:
    return SplitSettings(**(config.get("split") or {}))


def check_config(config: dict, base_dir: str | Path = ".") -> None:
    """Checks beyond the schema: inputs exist, keys fit the format. Raises ConfigError."""
    base = Path(base_dir)
    for name, ds in config["datasets"].items():
        fmt = ds["format"]
        key = f"datasets.{name}"
        if fmt == "simulated":
            if "path" in ds:
                raise ConfigError(
                    f"{key}.path: format 'simulated' writes its own raw log "
                    f"(data/raw/{name}/); remove 'path' or choose one of {list(FORMATS[1:])}"
                )
        else:
            path = ds.get("path")
            if not path:
                raise ConfigError(f"{key}.path is required for format '{fmt}': the raw input file")
            if not (base / path).exists():
                raise ConfigError(
                    f"{key}.path: input file '{path}' does not exist (resolved from {base.resolve()}); "
                    "fix the path or remove the dataset"
                )
            if ds.get("simulation"):
                raise ConfigError(f"{key}.simulation is only allowed with format 'simulated'")
        if fmt == "generic" and not ds.get("columns"):
            raise ConfigError(
                f"{key}.columns is required for format 'generic': map user_id, timestamp, "
                "location and behavior to the source's column names"
            )
        if fmt != "generic" and ds.get("columns"):
            raise ConfigError(f"{key}.columns is only allowed with format 'generic'")
        if ds.get("attributes_path") and not (base / ds["attributes_path"]).exists():
            raise ConfigError(f"{key}.attributes_path: file '{ds['attributes_path']}' does not exist")
        anon = anonymization_settings(config, name)
        if anon.allow_fixed_key and fmt != "simulated":
            raise ConfigError(
                f"{key}.anonymization.allow_fixed_key: the fixed key is only allowed for simulated "
                f"data; set it to false and export {anon.key_env} with a secret key"
            )
        if fmt == "simulated":
            sim = simulation_settings(config, name)
            try:
                dt.date.fromisoformat(sim.start_date)
            except ValueError as exc:
                raise ConfigError(
                    f"{key}.simulation.start_date: '{sim.start_date}' is not a date (YYYY-MM-DD)"
                ) from exc
        _read_vocabulary(ds.get("vocabulary"), f"{key}.vocabulary")
    split = split_settings(config)
    total = split.train + split.val + split.test
    if abs(total - 1.0) > 1e-9:
        raise ConfigError(f"split.train + split.val + split.test must be 1 (is {total:g})")


def schema_problems(config: dict, schema_path: str | Path) -> list[str]:
    """Schema violations as `key.path: message (allowed: ...)` lines, most specific first."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
        best = jsonschema.exceptions.best_match([err])
        key = ".".join(str(p) for p in best.absolute_path) or "(top level)"
        msg = best.message
        allowed = best.schema.get("enum") if isinstance(best.schema, dict) else None
        if allowed and "is not one of" not in msg:
            msg += f" (allowed: {allowed})"
        out.append(f"{key}: {msg}")
    return out
