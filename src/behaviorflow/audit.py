"""The auditor's reproduction: a manifest of every result's sha256, and a check against it.

`rule manifest` writes `results/MANIFEST.sha256` (`sha256sum` format, sorted by path) over the
result tables, their summaries and pages, each dataset's fidelity and privacy reports, the
rendered report pages (`reports/*.html`) with their figures, and each dataset's anonymisation
report (its key id tells a run with another pseudonym key apart at once).
Provenance sidecars are left out on purpose: they name the git commit, which an auditor's
checkout may differ in without any number changing.

    python -m behaviorflow.audit              # regenerate everything from the inputs, then verify
    python -m behaviorflow.audit --verify-only

Regeneration runs `snakemake --cores all --forceall` in the working directory (extra arguments
after `--` go to Snakemake, e.g. `-- --configfile my.yaml`), then compares every file named in
the manifest taken before the run. Exit status 1 on any mismatch or missing file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from behaviorflow.atomic import write_text
from behaviorflow.provenance import sha256_file

MANIFEST = Path("results/MANIFEST.sha256")


def write_manifest(paths: list[str], out: str | Path) -> str:
    """`sha256  path` lines for `paths`, sorted by path."""
    text = "".join(f"{sha256_file(p)}  {p}\n" for p in sorted(map(str, paths)))
    write_text(out, text)
    return text


def read_manifest(path: str | Path) -> dict[str, str]:
    """path -> sha256 from a manifest; a malformed line is an error naming its number."""
    out = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            raise ValueError(f"{path}, line {n}: expected '<sha256>  <path>', got {line!r}")
        out[name] = digest
    return out


def verify(expected: dict[str, str], root: str | Path = ".") -> list[tuple[str, str]]:
    """(path, status) per manifest entry: `ok`, `missing`, or `mismatch <actual sha256>`."""
    rows = []
    for name, digest in sorted(expected.items()):
        path = Path(root) / name
        if not path.is_file():
            rows.append((name, "missing"))
            continue
        actual = sha256_file(path)
        rows.append((name, "ok" if actual == digest else f"mismatch {actual}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m behaviorflow.audit", description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", default=str(MANIFEST), help="the manifest to verify against")
    ap.add_argument("--cores", default="all", help="passed to snakemake")
    ap.add_argument("--verify-only", action="store_true", help="check the files as they are, regenerate nothing")
    ap.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after --: more snakemake arguments")
    args = ap.parse_args(argv)
    if not Path(args.manifest).is_file():
        print(f"no manifest at {args.manifest}: build one with `snakemake --cores all` (rule manifest) or "
              "pass the one you were given with --manifest", file=sys.stderr)
        return 2
    try:
        expected = read_manifest(args.manifest)  # read before the run rewrites it
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    if not args.verify_only:
        extra = [a for a in args.snakemake_args if a != "--"]
        cmd = [sys.executable, "-m", "snakemake", "--cores", args.cores, "--forceall", *extra]
        print("regenerating:", " ".join(cmd[1:]), flush=True)
        if subprocess.run(cmd).returncode != 0:
            print("snakemake failed; nothing verified", file=sys.stderr)
            return 1
    rows = verify(expected)
    for name, status in rows:
        print(f"{status.split()[0].upper():8} {name}" + (f" (now {status.split()[1]})" if " " in status else ""))
    bad = [r for r in rows if r[1] != "ok"]
    if any(name.endswith("anonymization_report.json") for name, _ in bad):
        print("an anonymisation report differs: most often the pseudonym key (compare key_id in the reports); "
              "set BEHAVIORFLOW_PSEUDONYM_KEY as in the original run", file=sys.stderr)
    print(f"{len(rows) - len(bad)} of {len(rows)} hashes match" + ("" if bad else ": all hashes match"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
