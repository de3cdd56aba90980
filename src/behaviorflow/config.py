"""Typed settings built from the validated config, and the checks a JSON schema cannot express.

Defaults have one source, the config schema (`workflow/schemas/config.schema.yaml`): every
settings class takes its field defaults from the schema at import (`from_schema`), and fails at
import if its fields and the schema's properties drift apart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("simulated", "checkins_csv", "foursquare_tsmc2014", "generic")
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""


@functools.cache
def load_schema() -> dict:
    """The config schema (the workflow validates against the same file)."""
    import yaml

    if not SCHEMA_PATH.is_file():
        raise FileNotFoundError(f"config schema missing at {SCHEMA_PATH}: install behaviorflow from its checkout "
                                "(pip install -e .)")
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_node(pointer: str) -> dict:
    """The schema object at `pointer` ('properties/split', '$defs/tuning'), `$ref`s followed."""
    node = load_schema()
    for part in pointer.strip("/").split("/"):
        node = node[part]
        while "$ref" in node:
            node = schema_node(node["$ref"].removeprefix("#/"))
    return node


def schema_defaults(pointer: str) -> dict:
    """The defaults of the object at `pointer`, nested objects filled recursively."""
    out = {}
    for key, sub in schema_node(pointer).get("properties", {}).items():
        if "default" in sub:
            out[key] = sub["default"]
        sub = schema_node(f"{pointer}/properties/{key}")
        if sub.get("type") == "object" and "properties" in sub:
            out[key] = {**schema_defaults(f"{pointer}/properties/{key}"), **(out.get(key) or {})}
    return out


def with_defaults(section: dict | None, pointer: str) -> dict:
    """`section` over the schema's defaults for `pointer` (nested objects merged key by key)."""
    merged = schema_defaults(pointer)
    for key, value in (section or {}).items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def _field_default(value):
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return field(default_factory=lambda: dict(value))
    return value


def from_schema(pointer: str, local: tuple[str, ...] = (), **other: str):
    """Class decorator (put it under `@dataclass`): field defaults from the schema object at
    `pointer`; `other` names fields whose default sits elsewhere (field=pointer of that property),
    `local` fields the config does not hold. Fails when any other field is not in the schema, so
    code and schema cannot drift."""

    def wrap(cls):
        defaults = schema_defaults(pointer)
        props = schema_node(pointer).get("properties", {})
        for name in cls.__annotations__:
            if isinstance(cls.__dict__.get(name), dataclasses.Field):
                continue  # an explicit field(default_factory=...) (nested settings)
            if name in local:
                continue
            if name in other:
                value = schema_node(other[name]).get("default", dataclasses.MISSING)
            elif name in props:
                value = defaults.get(name, dataclasses.MISSING)
            else:
                raise TypeError(f"{cls.__name__}.{name} is not a property of the config schema at {pointer}")
            if value is not dataclasses.MISSING:
                setattr(cls, name, _field_default(value))
        cls.SCHEMA_POINTER, cls.SCHEMA_LOCAL = pointer, tuple(local)
        return cls

    return wrap


def as_settings(cls, value):
    """`value` as settings of class `cls`: kept when it is one already, built from a dict (as a rule's
    params hold it: lists where the settings hold tuples) otherwise."""
    if isinstance(value, cls):
        return value
    tuples = {f.name for f in dataclasses.fields(cls) if "tuple" in str(f.type)}
    return cls(**{k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in dict(value).items()})


@dataclass(frozen=True)
@from_schema("$defs/simulation")
class SimulationSettings:
    n_users: int
    weeks: int
    start_date: str
    events_per_day: float
    fault_rate: float
    seed: int
    routine_keep: float
    routine_jitter_minutes: float
    chains: tuple[dict, ...]


@dataclass(frozen=True)
@from_schema("$defs/anonymization", slot_minutes="properties/slot_minutes")
class AnonymizationSettings:
    key_env: str
    allow_fixed_key: bool
    rotation_months: int
    top_zones: int
    k: int
    max_suppression: float
    quasi_identifiers: tuple[str, ...]
    slot_minutes: int


@dataclass(frozen=True)
@from_schema("properties/split")
class SplitSettings:
    train: float
    val: float
    test: float
    support_events: int
    min_query_events: int
    min_user_events: int
    seed: int


@dataclass(frozen=True)
@from_schema("$defs/dataset", local=("name",), slot_minutes="properties/slot_minutes")
class DatasetSettings:
    """One entry of `datasets:` with everything ingestion needs."""

    name: str
    format: str
    path: str | None = None
    attributes_path: str | None = None
    label_column: str = None  # from the schema
    vocabulary: tuple[str, ...] | None = None
    taxonomy: dict[str, str] | None = None
    columns: dict[str, str] = field(default_factory=dict)
    delimiter: str | None = None
    timestamp_format: str = None  # from the schema
    slot_minutes: int = None  # from the schema


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
    return DatasetSettings(
        name=name,
        format=fmt,
        path=raw.get("path"),
        attributes_path=raw.get("attributes_path"),
        label_column=raw.get("label_column", DatasetSettings.label_column),
        vocabulary=vocabulary,
        taxonomy=dict(raw["taxonomy"]) if raw.get("taxonomy") else None,
        columns=dict(raw.get("columns") or {}),
        delimiter=raw.get("delimiter"),
        timestamp_format=raw.get("timestamp_format", DatasetSettings.timestamp_format),
        slot_minutes=config.get("slot_minutes", DatasetSettings.slot_minutes),
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
    return AnonymizationSettings(**merged, slot_minutes=config.get("slot_minutes", AnonymizationSettings.slot_minutes))


def simulation_settings(config: dict, name: str) -> SimulationSettings:
    """The simulator's settings of dataset `name` (schema defaults for keys left out)."""
    return SimulationSettings(**(config["datasets"][name].get("simulation") or {}))


def split_settings(config: dict) -> SplitSettings:
    """The user split's settings (schema defaults for keys left out)."""
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
        vocabulary = _read_vocabulary(ds.get("vocabulary"), f"{key}.vocabulary")
        missing = sorted(set(vocabulary or ()) - set(ds.get("taxonomy") or {}))
        if ds.get("taxonomy") and missing:
            raise ConfigError(f"{key}.taxonomy: {len(missing)} vocabulary label(s) without a category: "
                              f"{missing[:10]}; every label needs one category")
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
