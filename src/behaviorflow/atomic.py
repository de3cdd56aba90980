"""Atomic outputs: write to a hidden sibling, then `os.replace` into place when everything succeeded."""

from __future__ import annotations

import json
import os
from pathlib import Path


def tmp_sibling(path) -> Path:
    """Hidden temporary sibling of `path` (its folder is created); keeps the suffix for DuckDB."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".tmp.{path.name}")


def write_json(path, obj) -> None:
    """Write `obj` as indented JSON atomically."""
    tmp = tmp_sibling(path)
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_parquet(frame, path) -> None:
    """Write a pandas frame to Parquet atomically (no index)."""
    tmp = tmp_sibling(path)
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_text(path, text: str) -> None:
    """Write text atomically."""
    tmp = tmp_sibling(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_csv(frame, path) -> None:
    """Write a pandas frame to CSV atomically (no index; floats with full precision, '\\n' endings)."""
    tmp = tmp_sibling(path)
    frame.to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, path)
