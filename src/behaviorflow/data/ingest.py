"""Ingestion: raw logs in four formats -> the canonical event table, with rejects and a report.

DuckDB does the heavy lifting. CSV/TSV inputs are read with typed columns (timestamp with the
declared format, the label as an ENUM of the declared vocabulary) and `store_rejects`, so every
line DuckDB cannot parse or cast is kept with its line number and raw text. Rows whose required
fields are empty are located afterwards with one line-numbered scan of the file. Exact duplicate
events are dropped and counted. The invariant

    accepted + rejected + deduplicated = data lines read

is checked before anything is written; on any error no output is written.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from behaviorflow.atomic import tmp_sibling
from behaviorflow.config import DatasetSettings, as_settings
from behaviorflow.data.layouts import (
    EVENT_TYPES,
    REQUIRED,
    IngestError,
    SourceLayout,
    CONTROL_CHARACTERS,
    category_sql,
    check_gzip,
    check_header,
    first_line,
    check_readable,
    layout_for,
    taxonomy_source,
    transcode_to_utf8,
)
from behaviorflow.duck import connect, sql_str

log = logging.getLogger(__name__)

# The canonical event table; `copies` counts identical raw lines merged into the event.
CANONICAL = ("user_id", "ts", "weekday", "slot", "location", "behavior", "lat", "lon", "category", "copies")
EMPTY_REASON = {
    "user_id": "empty_user_id",
    "ts": "empty_timestamp",
    "location": "empty_location",
    "behavior": "empty_label",
}


@dataclass
class IngestResult:
    report: dict
    rejects: list[dict] = field(default_factory=list)


def _timestamp_shape(fmt: str) -> re.Pattern:
    """Regex of what a timestamp in `fmt` looks like, to tell impossible dates from garbage."""
    parts = {"%Y": r"\d{4}", "%m": r"\d{1,2}", "%d": r"\d{1,2}", "%H": r"\d{1,2}", "%M": r"\d{1,2}",
             "%S": r"\d{1,2}", "%a": r"[A-Za-z]{3}", "%b": r"[A-Za-z]{3}", "%y": r"\d{2}", "%f": r"\d+"}
    out, i = "", 0
    while i < len(fmt):
        tok = fmt[i:i + 2]
        if tok in parts:
            out += parts[tok]
            i += 2
        else:
            out += re.escape(fmt[i])
            i += 1
    return re.compile("^" + out + "$")


class _Reader:
    """One DuckDB connection reading one source file."""

    def __init__(self, layout: SourceLayout, ds: DatasetSettings, workdir: Path, threads: int | None,
                 memory_mb: int | None):
        self.layout = layout
        self.ds = ds
        self.con = connect(threads, memory_mb, workdir / "duckdb_tmp")
        self.con.execute("SET preserve_insertion_order=false")
        self.label_type = "VARCHAR"
        if ds.vocabulary:
            values = ", ".join(sql_str(v) for v in ds.vocabulary)
            self.con.execute(f"CREATE TYPE label_t AS ENUM ({values})")
            self.label_type = "label_t"

    def _types(self) -> dict[str, str]:
        m = self.layout.mapping
        types = {c: "VARCHAR" for c in self.layout.source_columns}
        types[m["ts"]] = "TIMESTAMP"
        types[m["behavior"]] = self.label_type
        for c in ("lat", "lon"):
            if c in m:
                types[m[c]] = "DOUBLE"
        if self.layout.tz_offset_column:
            types[self.layout.tz_offset_column] = "INTEGER"
        return types

    def source_sql(self, path: Path) -> str:
        cols = "{" + ", ".join(f"{sql_str(c)}: {sql_str(t)}" for c, t in self._types().items()) + "}"
        return (f"read_csv({sql_str(path)}, header={str(self.layout.header).lower()}, "
                f"delim={sql_str(self.layout.delimiter)}, columns={cols}, "
                f"timestampformat={sql_str(self.layout.timestamp_format)}, auto_detect=false, "
                "store_rejects=true, ignore_errors=true, quote='\"', escape='\"', strict_mode=true)")



def clean_text(expr: str) -> str:
    """SQL: a text value without control characters (a NUL from a torn write, a stray escape);
    empty after cleaning is NULL, so a required field that held only such bytes is a reject."""
    return f"NULLIF(regexp_replace({expr}::VARCHAR, '{CONTROL_CHARACTERS}', '', 'g'), '')"


def canonical_sql(layout: SourceLayout, ds: DatasetSettings, src: str, cast_coordinates: bool,
                  extra: tuple[str, ...] = ()) -> str:
    """The canonical columns of a source relation (and its `extra` columns); the category from
    the cleaned label."""
    m = layout.mapping
    ts = f'"{m["ts"]}"'
    if layout.tz_offset_column:
        ts = f'({ts} + to_minutes("{layout.tz_offset_column}"))'
    cast = "TRY_CAST({} AS DOUBLE)" if cast_coordinates else "{}::DOUBLE"
    coord = {c: (cast.format(f'"{m[c]}"') if c in m else "NULL::DOUBLE") for c in ("lat", "lon")}
    source = taxonomy_source(ds, layout)
    column = clean_text(f'"{source[1]}"') if source[0] == "column" else "NULL"
    inner = (f'SELECT {clean_text(chr(34) + m["user_id"] + chr(34))} AS user_id, {ts} AS ts, '
             f'{clean_text(chr(34) + m["location"] + chr(34))} AS location, '
             f'{clean_text(chr(34) + m["behavior"] + chr(34))} AS behavior, '
             f'{coord["lat"]} AS lat, {coord["lon"]} AS lon, {column} AS category_column'
             f'{"".join(", " + e for e in extra)} FROM {src}')
    category = category_sql(source, "behavior") if source[0] != "column" else "category_column"
    return (f"SELECT user_id, ts, location, behavior, lat, lon, {category} AS category"
            f'{"".join(", " + e for e in extra)} FROM ({inner})')


# Coordinates on the globe: |lat| <= 90, |lon| <= 180 (NaN and infinities are not).
COORDINATE_BOUNDS = {"lat": 90.0, "lon": 180.0}
ON_GLOBE = " AND ".join(f"({c} IS NULL OR {c} BETWEEN -{b:g} AND {b:g})" for c, b in COORDINATE_BOUNDS.items())
# A valid event: required fields present, coordinates (when given) on the globe.
VALID_WHERE = " AND ".join([*(f"{c} IS NOT NULL" for c in REQUIRED), ON_GLOBE])


def _reader_rejects(con, file_label: str, shape: re.Pattern, mapping: dict, label_col: str,
                    header: str | None = None) -> list[dict]:
    """Lines DuckDB could not parse or cast, one reject row per line, classified."""
    rows = con.execute(
        "SELECT line, any_value(csv_line), list(DISTINCT error_type), list(column_name), list(error_message) "
        "FROM reject_errors GROUP BY line ORDER BY line").fetchall()
    out = []
    ts_col = mapping["ts"]
    for line, raw, types, columns, messages in rows:
        # csv_line may carry blank lines before the record, and an unterminated quote swallows the
        # following lines: each physical line becomes its own reject row so line accounting holds.
        physical = (raw or "").lstrip("\r\n").rstrip("\r\n").split("\n")
        raw = physical[0].rstrip("\r")
        if header is not None and raw == header:
            reason, detail = "repeated_header", "the header line again (files concatenated after export)"
        elif "INVALID ENCODING" in types or "INVALID UNICODE" in types:
            reason, detail = "invalid_encoding", messages[0]
        elif "CAST" in types and types == ["CAST"]:
            # DuckDB's column name in reject rows can point at the wrong column when projections are
            # pushed down, so classify by the target type: each type belongs to one canonical field.
            value_match = re.search(r'Could not convert string "(.*)" to \'(\w+)', messages[0])
            value, target = (value_match.group(1), value_match.group(2)) if value_match else ("", "")
            if target == "TIMESTAMP":
                col = ts_col
                reason = "impossible_date" if shape.match(value) else "unparseable_timestamp"
            elif target == "ENUM":
                col, reason = label_col, "label_not_in_vocabulary"
            elif target == "DOUBLE":
                col, reason = "lat/lon", "invalid_coordinate"
            elif target == "INTEGER":
                col, reason = "timezone offset", "invalid_timezone_offset"
            else:
                col, reason = columns[0], "invalid_value"
            detail = f"column {col}: {value!r}"
        else:
            reason = "malformed_row"
            detail = "; ".join(sorted(set(types))) + ": " + messages[0]
        out.append({"file": file_label, "line": int(line), "raw_line": raw, "reason": reason, "detail": detail})
        for offset, extra in enumerate(physical[1:], start=1):
            out.append({"file": file_label, "line": int(line) + offset, "raw_line": extra.rstrip("\r"),
                        "reason": "malformed_row", "detail": f"inside the unterminated quoted field of line {line}"})
    return out


def _scan_lines(con, layout: SourceLayout, path: Path) -> tuple[int, list[tuple[int, str]]]:
    """One line-numbered pass over the raw text: the count of non-blank data lines, and the lines
    that may need a reject or a cleaning: an empty field (a doubled, leading or trailing
    delimiter, or a quote), a control character, or a coordinate off the globe."""
    d = sql_str(layout.delimiter)
    src = (f"(SELECT row_number() OVER () AS line, raw FROM read_csv({sql_str(path)}, columns={{'raw': 'VARCHAR'}}, "
           "header=false, delim='\\x1f', quote='', escape='', auto_detect=false, strict_mode=false, "
           "ignore_errors=true, max_line_size=16777216))")
    maybe = [f"contains(raw, {d} || {d})", f"starts_with(raw, {d})", f"ends_with(raw, {d})", "contains(raw, '\"')",
             f"regexp_matches(raw, '{CONTROL_CHARACTERS}')"]
    for c, bound in COORDINATE_BOUNDS.items():
        if c in layout.mapping:
            i = layout.source_columns.index(layout.mapping[c]) + 1
            value = f"TRY_CAST(trim(string_split(raw, {d})[{i}]) AS DOUBLE)"
            maybe.append(f"NOT ({value} BETWEEN -{bound:g} AND {bound:g})")
    n, found = con.execute(f"""SELECT count(raw), list((line, raw) ORDER BY line)
        FILTER (raw IS NOT NULL AND line > {int(layout.header)} AND ({' OR '.join(maybe)})) FROM {src}""").fetchone()
    return n - (1 if layout.header else 0), [(int(x["line"] if isinstance(x, dict) else x[0]),
                                              x["raw"] if isinstance(x, dict) else x[1]) for x in (found or [])]


def _coordinate_off_globe(values: dict, layout: SourceLayout) -> str | None:
    for c, bound in COORDINATE_BOUNDS.items():
        text = values.get(layout.mapping.get(c, ""), "").strip()
        try:
            value = float(text) if text else None
        except ValueError:
            continue  # not a number: DuckDB's cast rejected the line already
        if value is not None and not -bound <= value <= bound:
            return f"column {layout.mapping[c]}: {text} is outside [-{bound:g}, {bound:g}]"
    return None


def _locate_field_rejects(layout: SourceLayout, candidates, skip_lines: set[int],
                          file_label: str) -> tuple[list[dict], int]:
    """Reject rows for candidate lines with an empty required field (empty after removing
    control characters) or a coordinate off the globe, and the number of lines whose control
    characters were removed. Lines DuckDB already rejected are skipped: each line is accounted once."""
    located, cleaned = [], 0
    for line, raw in candidates:
        if line in skip_lines:
            continue
        fields = next(csv.reader([raw], delimiter=layout.delimiter), [])
        if len(fields) != len(layout.source_columns):
            continue
        values = {k: re.sub(CONTROL_CHARACTERS, "", v) for k, v in zip(layout.source_columns, fields)}
        cleaned += any(v != values[k] for k, v in zip(layout.source_columns, fields))
        empty = [c for c in REQUIRED if values[layout.mapping[c]] == ""]
        off_globe = _coordinate_off_globe(values, layout)
        if empty:
            located.append({"file": file_label, "line": line, "raw_line": raw, "reason": EMPTY_REASON[empty[0]],
                            "detail": f"column {layout.mapping[empty[0]]} is empty"})
        elif off_globe:
            located.append({"file": file_label, "line": line, "raw_line": raw, "reason": "coordinate_out_of_range",
                            "detail": off_globe})
    return located, cleaned


# Distinct events with their number of identical raw lines, in a deterministic order
# (raw user, time, then a hash of the remaining fields; exact duplicates were merged).
FINAL_SELECT = """SELECT user_id, ts, (isodow(ts) - 1)::TINYINT AS weekday,
        ((hour(ts) * 60 + minute(ts)) // {slot} * {slot})::SMALLINT AS slot,
        location, behavior, lat, lon, category, copies
    FROM (SELECT user_id, ts, location, behavior, lat, lon, category, count(*)::INTEGER AS copies
          FROM ({valid}) GROUP BY user_id, ts, location, behavior, lat, lon, category)
    ORDER BY user_id, ts, hash(location, behavior, lat, lon, category)"""


def _write_events(con, valid_sql: str, slot: int, out: Path) -> None:
    con.execute(f"COPY ({FINAL_SELECT.format(valid=valid_sql, slot=int(slot))}) TO {sql_str(out)} "
                "(FORMAT parquet, COMPRESSION zstd)")


def ingest_file(layout: SourceLayout, ds: DatasetSettings, events_out: Path, workdir: Path,
                threads: int | None = None, memory_mb: int | None = None,
                file_label: str | None = None) -> tuple[dict, list[dict]]:
    """Read one raw file into the canonical events Parquet; returns file metadata and reject rows."""
    file_label = file_label or str(layout.path)
    check_header(layout, ds)
    if layout.is_parquet:
        return _ingest_parquet(layout, ds, events_out, file_label, threads, memory_mb)
    shape = _timestamp_shape(layout.timestamp_format)
    check_gzip(layout.path)
    path, fallback = layout.path, 0
    header = first_line(layout.path).decode("utf-8", errors="replace").rstrip("\r\n") if layout.header else None
    try:
        for attempt in range(2):
            log.info("%s: parsing, validating and de-duplicating (one DuckDB pass)", file_label)
            reader = _Reader(layout, ds, workdir, threads, memory_mb)
            canonical = canonical_sql(layout, ds, reader.source_sql(path), cast_coordinates=False)
            valid = f"SELECT * FROM ({canonical}) WHERE {VALID_WHERE}"
            _write_events(reader.con, valid, ds.slot_minutes, events_out)
            rejects = _reader_rejects(reader.con, file_label, shape, layout.mapping, layout.mapping["behavior"], header)
            if attempt or not any(r["reason"] == "invalid_encoding" for r in rejects):
                break
            # Not UTF-8: decode the offending lines as cp1252/latin-1 (recorded) and read again.
            path = workdir / (layout.path.name.removesuffix(".gz") + ".utf8")
            fallback = transcode_to_utf8(layout.path, path)
            log.warning("%s: %d line(s) are not UTF-8; decoded them as cp1252/latin-1", file_label, fallback)
        log.info("%s: counting data lines and locating empty or out-of-range fields (raw-text pass)", file_label)
        data_lines, candidates = _scan_lines(reader.con, layout, path)
    except duckdb.Error as exc:
        raise IngestError(f"{layout.path}: the file could not be read as {layout.delimiter!r}-delimited text "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0]}); nothing was written") from exc
    located, cleaned = _locate_field_rejects(layout, candidates, {r["line"] for r in rejects}, file_label)
    rejects += located
    meta = {"file": file_label, "data_lines_read": int(data_lines), "encoding": "utf-8",
            "non_utf8_lines_decoded_as_cp1252_or_latin1": int(fallback),
            "lines_with_control_characters_removed": int(cleaned)}
    return meta, rejects


def _ingest_parquet(layout, ds, events_out, file_label, threads, memory_mb):
    """Parquet sources: validate in SQL; 'line' is the 1-based record number."""
    con = connect(threads, memory_mb, events_out.parent / "duckdb_tmp")
    m = layout.mapping
    src = f"read_parquet({sql_str(layout.path)}, file_row_number=true)"
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {src})").fetchall())
    ts_raw = f'"{m["ts"]}"'
    if types[m["ts"]].startswith("TIMESTAMP"):
        ts = f"{ts_raw}::TIMESTAMP"
    else:
        ts = f"try_strptime({ts_raw}::VARCHAR, {sql_str(layout.timestamp_format)})"
    vocab = ""
    if ds.vocabulary:
        labels = ", ".join(sql_str(x) for x in ds.vocabulary)
        vocab = f"WHEN behavior NOT IN ({labels}) THEN 'label_not_in_vocabulary'"
    numbered = (f'(SELECT * REPLACE ({ts} AS "{m["ts"]}"), file_row_number + 1 AS line, '
                f"to_json(t)::VARCHAR AS raw_line, {ts_raw} IS NULL OR {ts_raw}::VARCHAR = '' AS ts_empty "
                f"FROM {src} t)")
    canonical = canonical_sql(layout, ds, numbered, cast_coordinates=True, extra=("line", "raw_line", "ts_empty"))
    con.execute(f"""CREATE TEMP TABLE checked AS SELECT *,
        CASE WHEN user_id IS NULL THEN 'empty_user_id'
             WHEN ts_empty THEN 'empty_timestamp'
             WHEN ts IS NULL THEN 'unparseable_timestamp'
             WHEN location IS NULL THEN 'empty_location'
             WHEN behavior IS NULL THEN 'empty_label' {vocab}
             WHEN NOT ({ON_GLOBE}) THEN 'coordinate_out_of_range' END AS reason
        FROM ({canonical})""")
    valid = "SELECT user_id, ts, location, behavior, lat, lon, category FROM checked WHERE reason IS NULL"
    _write_events(con, valid, ds.slot_minutes, events_out)
    rejects = [{"file": file_label, "line": int(line), "raw_line": raw, "reason": reason, "detail": "record number"}
               for line, raw, reason in con.execute(
                   "SELECT line, raw_line, reason FROM checked WHERE reason IS NOT NULL ORDER BY line").fetchall()]
    data_lines = con.execute("SELECT count(*) FROM checked").fetchone()[0]
    meta = {"file": file_label, "data_lines_read": int(data_lines), "encoding": "parquet",
            "non_utf8_lines_decoded_as_cp1252_or_latin1": 0}
    return meta, rejects


def ingest(ds: DatasetSettings | dict, log_path, events_out, rejects_out, report_out, attributes_out,
           attributes_path: str | Path | None = None, threads: int | None = None,
           memory_mb: int | None = None) -> dict:
    """Rule ingest: the raw file `log_path` of dataset `ds` into the canonical `events.parquet`; returns the report."""
    ds = as_settings(DatasetSettings, ds)
    if ds.format == "simulated" and ds.vocabulary is None:
        ds = replace(ds, vocabulary=EVENT_TYPES)  # the phone log's event types (an unknown one is a reject)
    outputs = {"events": Path(events_out), "rejects": Path(rejects_out), "report": Path(report_out),
               "attributes": Path(attributes_out)}
    tmp = {k: tmp_sibling(p) for k, p in outputs.items()}
    workdir = Path(tempfile.mkdtemp(prefix="ingest_", dir=outputs["events"].parent))
    try:
        layout = layout_for(ds, log_path)
        meta, rejects = ingest_file(layout, ds, tmp["events"], workdir, threads, memory_mb)
        con = connect(threads, memory_mb, workdir / "duckdb_tmp")
        stats = con.execute(f"""SELECT count(*), coalesce(sum(copies), 0), count(DISTINCT user_id), min(ts)::VARCHAR,
            max(ts)::VARCHAR, count(DISTINCT behavior), count(DISTINCT location)
            FROM read_parquet({sql_str(tmp['events'])})""").fetchone()
        accepted, yielded = int(stats[0]), int(stats[1])
        if accepted == 0:
            raise IngestError(f"{layout.path}: no valid data lines ({meta['data_lines_read']} read, "
                              f"{len(rejects)} rejected); see the reject reasons and fix the input or the config")
        taxonomy = _check_taxonomy(con, tmp["events"], ds, layout)
        by_reason: dict[str, int] = {}
        for r in rejects:
            by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
        report = {
            "dataset": ds.name,
            "format": ds.format,
            "files": [meta],
            "data_lines_read": meta["data_lines_read"],
            "accepted": accepted,
            "rejected": len(rejects),
            "deduplicated": yielded - accepted,
            "rejects_by_reason": dict(sorted(by_reason.items())),
            "users": int(stats[2]),
            "first_event": stats[3],
            "last_event": stats[4],
            "behaviors": int(stats[5]),
            "locations": int(stats[6]),
            "vocabulary_size": len(ds.vocabulary) if ds.vocabulary else None,
            "slot_minutes": int(ds.slot_minutes),
            "taxonomy": taxonomy,
            "invariant": "accepted + rejected + deduplicated = data_lines_read",
        }
        # The line count comes from a separate raw-text pass, so this check can fail.
        total = report["accepted"] + report["rejected"] + report["deduplicated"]
        if total != report["data_lines_read"]:
            raise IngestError(
                f"{layout.path}: line accounting does not balance: accepted {report['accepted']} + rejected "
                f"{report['rejected']} + deduplicated {report['deduplicated']} = {total} != "
                f"{report['data_lines_read']} data lines read (quoted fields spanning several lines are not supported)")
        _write_rejects(tmp["rejects"], rejects)
        report["attribute_users"] = _ingest_attributes(ds, attributes_path, tmp["attributes"])
        tmp["report"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        for key, p in outputs.items():
            os.replace(tmp[key], p)
        log.info("%s: %d lines read, %d accepted, %d rejected, %d duplicates dropped", ds.name,
                 report["data_lines_read"], report["accepted"], report["rejected"], report["deduplicated"])
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for p in tmp.values():
            p.unlink(missing_ok=True)


def _check_taxonomy(con, events: Path, ds: DatasetSettings, layout: SourceLayout) -> dict:
    """Every label has exactly one category; returns the taxonomy for the report."""
    kind, value = taxonomy_source(ds, layout)
    rows = con.execute(f"""SELECT behavior, list(DISTINCT category ORDER BY category) FILTER (category IS NOT NULL),
        count(*) FILTER (category IS NULL) FROM read_parquet({sql_str(events)}) GROUP BY 1 ORDER BY 1""").fetchall()
    fix = (f"add them to datasets.{ds.name}.taxonomy (label: category)" if kind == "mapping"
           else f"fill the category column '{value}' or map labels with datasets.{ds.name}.taxonomy")
    unmapped = [label for label, cats, nulls in rows if nulls]
    if unmapped:
        raise IngestError(f"{layout.path}: {len(unmapped)} label(s) without a category: {unmapped[:10]}; {fix}")
    several = {label: cats for label, cats, _ in rows if len(cats) > 1}
    if several:
        first = dict(list(several.items())[:5])
        raise IngestError(f"{layout.path}: {len(several)} label(s) with more than one category, e.g. {first}; "
                          f"each label needs one category: map them with datasets.{ds.name}.taxonomy")
    labels = {label: cats[0] for label, cats, _ in rows}
    source = {"mapping": "datasets.<name>.taxonomy" if ds.taxonomy else f"built in ({ds.format})",
              "column": f"column {value}", "identity": "none given: each label is its own category"}[kind]
    return {"source": source, "categories": len(set(labels.values())), "labels": labels}


def _write_rejects(path: Path, rejects: list[dict]) -> None:
    rejects = sorted(rejects, key=lambda r: (r["file"], r["line"]))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "line", "raw_line", "reason", "detail"], lineterminator="\n")
        w.writeheader()
        w.writerows(rejects)


def _ingest_attributes(ds: DatasetSettings, path, out: Path) -> int:
    """Per-user attribute table (the simulator's accounts, or a generic attributes file)."""
    con = duckdb.connect()
    if path is None:
        con.execute(f"COPY (SELECT NULL::VARCHAR AS user_id WHERE false) TO {sql_str(out)} (FORMAT parquet)")
        return 0
    path = Path(path)
    check_readable(path)
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_csv({sql_str(path)}, header=true)").fetchall()]
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot read the attribute table ({exc})") from exc
    key = "account_id" if ds.format == "simulated" else ds.columns.get("user_id", "user_id")
    if key not in cols:
        raise IngestError(f"{path}: the attribute table needs a '{key}' column to join on; found {cols}")
    keep = [c for c in cols if c not in (key, "device_id")]
    select = ", ".join([f'"{key}"::VARCHAR AS user_id'] + [f'"{c}"' for c in keep])
    con.execute(f"COPY (SELECT {select} FROM read_csv({sql_str(path)}, header=true) ORDER BY user_id) "
                f"TO {sql_str(out)} (FORMAT parquet)")
    return con.execute(f"SELECT count(*) FROM {sql_str(out)}").fetchone()[0]


def raw_inputs(ds: DatasetSettings, name: str) -> dict[str, str]:
    """Paths the ingest rule reads for a dataset (the simulator's outputs for 'simulated')."""
    if ds.format == "simulated":
        return {"log": f"data/raw/{name}/phone_log.csv.gz", "attributes": f"data/raw/{name}/accounts.csv"}
    out = {"log": ds.path}
    if ds.attributes_path:
        out["attributes"] = ds.attributes_path
    return out


