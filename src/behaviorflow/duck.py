"""DuckDB connections configured the same way everywhere (threads, memory limit, spill folder)."""

from __future__ import annotations

import duckdb


def sql_str(value) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def connect(threads: int | None = None, memory_mb: int | None = None, temp_dir=None) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB that spills to `temp_dir` beyond `memory_mb` and uses `threads` threads."""
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads={int(threads)}")
    if memory_mb:
        con.execute(f"SET memory_limit='{int(memory_mb)}MB'")
    if temp_dir:
        con.execute(f"SET temp_directory={sql_str(temp_dir)}")
    return con
