"""Leak scan: does any file past anonymisation contain a raw identifier or coordinate?

Collect the raw identifiers (user, account and device ids, venue or cell ids) and coordinates from
the raw input, then look for them in every file a later stage wrote: Parquet and CSV cell by cell,
other text token by token. Short numeric ids (Tokyo's user ids are small integers) cannot be told
from ordinary numbers in free text, so they are looked for in id-like columns only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

TOKEN = re.compile(r"[A-Za-z0-9_#@.\-]+")
NUMBER = re.compile(r"^-?\d+\.\d{4,}$")
ID_COLUMNS = re.compile(r"(^|_)(user|account|device|venue|cell|uid)(_|$)|^user_id$|^location$", re.I)


@dataclass
class RawSecrets:
    """What must never appear after anonymisation."""

    ids: set[str] = field(default_factory=set)
    coords: set[str] = field(default_factory=set)  # rounded to 4 decimals

    @property
    def long_ids(self) -> set[str]:
        return {i for i in self.ids if len(i) >= 6 or not i.isdigit()}


def _round4(x: float) -> str:
    return f"{round(float(x), 4):.4f}"


def secrets_from_csv(path: str | Path, id_columns: list[str], coord_columns: list[str] = (),
                     header: bool = True, delimiter: str = ",", names: list[str] | None = None) -> RawSecrets:
    """Raw ids and coordinates of a raw log (CSV/TSV, optionally gzipped)."""
    opts = f"header={str(header).lower()}, delim='{delimiter}', all_varchar=true, ignore_errors=true"
    if names:
        opts += ", names=[" + ", ".join(f"'{n}'" for n in names) + "]"
    con = duckdb.connect()
    src = f"read_csv('{path}', {opts})"
    out = RawSecrets()
    for col in id_columns:
        out.ids |= {v for (v,) in con.execute(f'SELECT DISTINCT "{col}" FROM {src} WHERE "{col}" <> \'\'').fetchall() if v}
    for col in coord_columns:
        vals = con.execute(f'SELECT DISTINCT TRY_CAST("{col}" AS DOUBLE) FROM {src}').fetchall()
        out.coords |= {_round4(v) for (v,) in vals if v is not None}
    return out


def _check_value(value, column: str, secrets: RawSecrets, where: str, findings: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        for v in value:
            _check_value(v, column, secrets, where, findings)
        return
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, float):
        if abs(value) >= 1 and _round4(value) in secrets.coords and round(value, 4) != round(value):
            findings.append(f"{where}: coordinate {value} in column {column}")
        return
    text = str(value)
    if ID_COLUMNS.search(column) and text in secrets.ids:
        findings.append(f"{where}: raw id {text!r} in column {column}")
        return
    _check_text(text, secrets, where, findings)


def _check_text(text: str, secrets: RawSecrets, where: str, findings: list[str]) -> None:
    long_ids = secrets.long_ids
    for tok in TOKEN.findall(text):
        tok = tok.strip(".-")
        if tok in long_ids:
            findings.append(f"{where}: raw id {tok!r}")
        elif NUMBER.match(tok) and _round4(float(tok)) in secrets.coords:
            findings.append(f"{where}: coordinate {tok}")


def scan_file(path: str | Path, secrets: RawSecrets) -> list[str]:
    """Findings (empty when clean) for one file."""
    path = Path(path)
    findings: list[str] = []
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
        for col in df.columns:
            _check_text(str(col), secrets, f"{path} header", findings)
            for value in df[col].dropna().unique() if df[col].dtype != object else df[col].dropna():
                _check_value(value, str(col), secrets, str(path), findings)
                if len(findings) > 20:
                    return findings
        return findings
    text = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix in (".csv", ".tsv"):
        from io import StringIO

        df = pd.read_csv(StringIO(text), sep="\t" if path.suffix == ".tsv" else ",", dtype=str,
                         keep_default_na=False)
        for col in df.columns:
            for value in df[col]:
                _check_value(value, str(col), secrets, str(path), findings)
        return findings
    if path.suffix == ".json":
        def walk(obj, key=""):
            if isinstance(obj, dict):
                for k, v in obj.items():
                    _check_text(str(k), secrets, str(path), findings)
                    walk(v, str(k))
            elif isinstance(obj, list):
                for v in obj:
                    walk(v, key)
            elif isinstance(obj, float):
                _check_value(obj, key, secrets, str(path), findings)
            elif obj is not None:
                _check_value(str(obj), key, secrets, str(path), findings)
        walk(json.loads(text))
        return findings
    _check_text(text, secrets, str(path), findings)
    return findings


def scan_paths(paths, secrets: RawSecrets) -> dict[str, list[str]]:
    """Scan files and folders (recursively); returns findings per file that has any."""
    out = {}
    for p in paths:
        p = Path(p)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            found = scan_file(f, secrets)
            if found:
                out[str(f)] = found
    return out
