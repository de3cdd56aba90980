"""Provenance sidecars: what a result was computed from (commit, config, inputs, versions, seeds)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
from pathlib import Path

PACKAGES = ("behaviorflow", "snakemake", "torch", "transformers", "peft", "numpy", "pandas", "scikit-learn",
            "scipy", "duckdb")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_path(path: str | Path) -> str:
    """Checksum of a file, or of a directory's files (relative names and file checksums, sorted)."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def git_commit(cwd: str | Path = ".") -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def model_identities(paths) -> dict[str, object]:
    """The generator model's identity (model and adapter sha256) in each generation summary among
    `paths`; the Markov baseline has none."""
    out = {}
    for p in map(str, paths):
        if p.endswith("summary.json"):
            out[p] = json.loads(Path(p).read_text()).get("model", "none (no language model)")
    return out


def provenance(inputs: list[str], config: dict, seeds: list[int], **extra) -> dict:
    """The sidecar of one result file. No timestamps: reruns give identical sidecars."""
    return {"git_commit": git_commit(), "config_sha256": config_hash(config),
            "inputs": {str(p): sha256_path(p) for p in sorted(map(str, inputs))}, "packages": versions(),
            "seeds": sorted(seeds), **extra}
