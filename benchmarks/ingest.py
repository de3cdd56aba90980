"""Ingest + anonymise throughput against DuckDB's plain CSV -> Parquet copy of the same file.

    python benchmarks/ingest.py                     # 5M events
    python benchmarks/ingest.py --events 50000000   # 50M events

Generates N raw phone-log events in the simulator's format (with its kinds of faults: resent
duplicates, logged-out rows, garbled timestamps), then in one run, each step in its own process:
1. the floor: DuckDB's plain copy of the file to Parquet, every column parsed to its type and written;
2. behaviorflow's ingest (validation, rejects with line numbers, dedup, sorted output);
3. behaviorflow's anonymise (pseudonyms, zones, floored time) of that output.
Prints events/s, wall time and peak RSS of each, and the ratio of (2+3) to (1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
COLUMNS = ("{'device_id': 'VARCHAR', 'account_id': 'VARCHAR', 'event_time': 'TIMESTAMP', 'latitude': 'DOUBLE', "
           "'longitude': 'DOUBLE', 'cell_id': 'VARCHAR', 'event': 'VARCHAR'}")


def generate(path: Path, n: int, threads: int) -> int:
    """Write n raw events plus 0.2 % resent duplicates (0.1 % of rows faulty); returns data lines."""
    from behaviorflow.data.simulate import BEHAVIORS

    vocab = "[" + ", ".join(f"'{b.name}'" for b in BEHAVIORS) + "]"
    users = max(1000, n // 800)
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute("SET preserve_insertion_order=true")  # rows in index order, no sort needed
    con.execute(f"""COPY (
        SELECT '86' || (1000000000000 + u)::VARCHAR AS device_id,
               CASE WHEN h % 2000 = 1 THEN '' ELSE 'acct-' || (3000000000 + u * 7919)::VARCHAR END AS account_id,
               CASE WHEN h % 2000 = 2 THEN '2024-03-1?' ELSE strftime(TIMESTAMP '2024-03-04'
                    + to_seconds((i // {users}) * 4838400 // ({n} // {users} + 1) + h % 600), '%Y-%m-%d %H:%M:%S')
               END AS event_time,
               round(31.0 + (hash(u, 'lat') % 4000) / 10000.0 + (h % 97) / 1000000.0, 6) AS latitude,
               round(121.3 + (hash(u, 'lon') % 4000) / 10000.0 + (h % 89) / 1000000.0, 6) AS longitude,
               '460-01-' || (10000 + (u * 13 + (h // 7) % 15) % 50000)::VARCHAR || '-' || (1000 + u % 9000)::VARCHAR
                    AS cell_id,
               {vocab}[1 + floor(37 * pow((h % 1000003) / 1000003.0, 2.2))::INT] AS event
        -- every 500th line repeats the previous one (a resent event): i = j - (j + 1) // 500
        FROM (SELECT i, i % {users} AS u, hash(i) AS h
              FROM (SELECT j - (j + 1) // 500 AS i FROM range({n + n // 500}) t(j)))
        )
        TO '{path}' (HEADER, DELIMITER ',')""")
    return con.execute(f"SELECT count(*) FROM read_csv('{path}', columns={COLUMNS}, header=true, "
                       "auto_detect=false, all_varchar=true)").fetchone()[0]


def _child(step: str, raw: str, out: str, threads: int, memory_mb: int) -> None:
    """One measured step in this process; prints a JSON line with seconds and peak RSS."""
    from behaviorflow.config import AnonymizationSettings, dataset_settings
    from behaviorflow.data.anonymize import anonymize
    from behaviorflow.data.ingest import ingest

    t0 = time.perf_counter()  # imports are start-up cost, not per-event work: not timed
    if step == "plain_copy":
        con = duckdb.connect()
        con.execute(f"SET threads={threads}")
        con.execute(f"SET memory_limit='{memory_mb}MB'")
        con.execute(f"COPY (FROM read_csv('{raw}', header=true, columns={COLUMNS}, auto_detect=false, "
                    f"timestampformat='%Y-%m-%d %H:%M:%S', ignore_errors=true)) TO '{out}/plain.parquet' "
                    "(FORMAT parquet, COMPRESSION zstd)")
        info = {}
    elif step == "ingest":
        ds = dataset_settings({"datasets": {"bench": {"format": "simulated"}}}, "bench")
        info = ingest(ds, raw, f"{out}/events.parquet", f"{out}/rejects.csv", f"{out}/ingest.json",
                              f"{out}/attrs.parquet", threads=threads, memory_mb=memory_mb)
        info = {k: info[k] for k in ("data_lines_read", "accepted", "rejected", "deduplicated")}
    elif step == "anonymize":
        rep = anonymize(f"{out}/events.parquet", f"{out}/attrs.parquet", f"{out}/anon.parquet",
                                f"{out}/pin.parquet", f"{out}/anon.json", AnonymizationSettings(allow_fixed_key=True),
                                "simulated", threads=threads, memory_mb=memory_mb)
        info = {"events_out": rep["events_out"], "pseudonymous_users": rep["pseudonymisation"]["pseudonymous_users"]}
    else:
        raise SystemExit(f"unknown step {step}")
    seconds = time.perf_counter() - t0
    # VmHWM is this process's own peak (ru_maxrss would carry the parent's peak across exec)
    status = Path("/proc/self/status").read_text()
    rss_mb = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:"))) / 1024
    print(json.dumps({"step": step, "seconds": seconds, "peak_rss_mb": rss_mb, **info}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-mb", type=int, default=3000, help="DuckDB memory limit for every step")
    ap.add_argument("--workdir", default=str(HERE / "out"), help="where the generated file is kept between runs")
    ap.add_argument("--child", nargs=3, metavar=("STEP", "RAW", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child, threads=args.threads, memory_mb=args.memory_mb)
        return

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    raw = work / f"raw_{args.events}.csv"
    if not raw.exists():
        t0 = time.perf_counter()
        lines = generate(raw, args.events, args.threads)
        print(f"generated {raw} ({lines:,} data lines, {raw.stat().st_size / 1e9:.2f} GB) "
              f"in {time.perf_counter() - t0:.1f}s")
    results = {}
    with tempfile.TemporaryDirectory(dir=work) as out:
        for step in ("plain_copy", "ingest", "anonymize"):
            proc = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--memory-mb",
                                   str(args.memory_mb), "--child", step, str(raw), out],
                                  capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
            if proc.returncode != 0:
                sys.exit(f"{step} failed:\n{proc.stderr[-4000:]}")
            results[step] = json.loads(proc.stdout.strip().splitlines()[-1])
    n = results["ingest"]["data_lines_read"]
    plain, ing, anon = results["plain_copy"], results["ingest"], results["anonymize"]
    both = ing["seconds"] + anon["seconds"]
    print(f"\n{n:,} data lines, {args.threads} threads, DuckDB memory limit {args.memory_mb} MB, "
          f"duckdb {duckdb.__version__}")
    print(f"ingest: {ing['accepted']:,} accepted, {ing['rejected']:,} rejected, {ing['deduplicated']:,} duplicates")
    print(f"{'step':<22}{'seconds':>9}{'events/s':>14}{'peak RSS MB':>13}")
    for name, r in (("plain copy (floor)", plain), ("ingest", ing), ("anonymise", anon)):
        print(f"{name:<22}{r['seconds']:>9.2f}{n / r['seconds']:>14,.0f}{r['peak_rss_mb']:>13,.0f}")
    print(f"{'ingest + anonymise':<22}{both:>9.2f}{n / both:>14,.0f}"
          f"{max(ing['peak_rss_mb'], anon['peak_rss_mb']):>13,.0f}")
    print(f"\nratio (ingest + anonymise rate) / (plain copy rate): {plain['seconds'] / both:.2f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
