"""The raw formats ingestion reads: each format's columns and their map onto the canonical schema,
the simulated phone log's layout (which the simulator writes), and the checks that a file is
readable and has the columns it needs, before anything is read.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from behaviorflow.config import DatasetSettings
from behaviorflow.duck import sql_str

REQUIRED = ("user_id", "ts", "location", "behavior")
# The simulated phone log, written by `data.simulate` (which checks its behaviour table against
# EVENT_TYPES at import) and read here.
LOG_COLUMNS = ("device_id", "account_id", "event_time", "latitude", "longitude", "cell_id", "event")
ACCOUNT_COLUMNS = ("account_id", "device_id", "age", "gender", "education", "occupation", "consumption")
# The log's event types and their semantic groups: the simulated dataset's behaviour vocabulary
# and taxonomy (the simulator checks its behaviour table against this at import; ingestion gives
# each event its label's category).
EVENT_CATEGORIES = {
    "messaging": "communication", "short_video": "entertainment", "social_media": "communication",
    "web_browsing": "information", "music": "entertainment", "video_streaming": "entertainment",
    "news": "information", "mobile_payment": "finance", "navigation": "travel", "phone_call": "communication",
    "email": "work", "gaming": "entertainment", "online_shopping": "commerce", "weather": "information",
    "alarm_clock": "lifestyle", "camera": "lifestyle", "food_delivery": "commerce", "reading": "information",
    "calendar": "work", "ride_hailing": "travel", "photo_gallery": "lifestyle", "fitness_tracking": "health",
    "banking": "finance", "podcast": "entertainment", "live_streaming": "entertainment",
    "stock_trading": "finance", "ticket_booking": "commerce", "sports_scores": "information",
    "travel_booking": "travel", "language_learning": "learning", "online_course": "learning",
    "job_search": "work", "smart_home": "lifestyle", "health_consult": "health", "dating": "communication",
    "meditation": "health", "lottery": "finance",
}
EVENT_TYPES = tuple(EVENT_CATEGORIES)
# Tokyo check-ins' intents in four groups (their own group set: an intent is already coarse).
INTENT_CATEGORIES = {
    "Other": "other", "secret": "other", "shopping": "errands", "dining": "errands", "personal": "errands",
    "sightseeing": "leisure", "outdoors": "leisure", "entertaining": "leisure", "sports": "leisure",
    "work-related": "obligations", "study-related": "obligations",
}
TSMC_COLUMNS = ("user_id", "venue_id", "venue_category_id", "venue_category", "latitude", "longitude",
                "timezone_offset", "utc_time")
TSMC_TIME_FORMAT = "%a %b %d %H:%M:%S +0000 %Y"
CHECKINS_COLUMNS = ("user_id", "timestamp", "venue_id", "venue_category", "top_category", "intent", "split")


class IngestError(RuntimeError):
    """A raw input that cannot be ingested at all; the message names the file and the fix."""


@dataclass
class SourceLayout:
    """How one raw file maps onto the canonical schema."""

    path: Path
    header: bool
    delimiter: str
    source_columns: tuple[str, ...]  # in file order
    # canonical name -> source column (ts, location, ... ) ; lat/lon/category optional
    mapping: dict[str, str]
    timestamp_format: str
    tz_offset_column: str | None = None
    is_parquet: bool = False


def open_raw(path: Path):
    """Binary handle that transparently decompresses .gz."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


BOM = b"\xef\xbb\xbf"
# C0 control characters but tab, line feed and carriage return, and DEL: never part of a value.
CONTROL_CHARACTERS = "[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F]"  # an RE2 / Python character class


def first_line(path: Path) -> bytes:
    """The file's first line without a UTF-8 byte-order mark (which spreadsheet exports write)."""
    try:
        with open_raw(path) as fh:
            return fh.readline().removeprefix(BOM)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{path}: cannot read the file ({exc}); check that it exists, is readable and, "
                          "if it ends in .gz, is a valid gzip file") from exc


def check_gzip(path: Path) -> None:
    """Read a .gz file through to its end: a damaged or truncated stream is a clear error before
    anything is parsed (DuckDB would stop part-way with its own exception)."""
    if path.suffix != ".gz":
        return
    done = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                done += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"{path}: the gzip stream is damaged after {done:,} decompressed bytes ({exc}); "
                          "the file was cut short or corrupted in transfer: copy or export it again. "
                          "Nothing was written.") from exc


def check_readable(path: Path) -> None:
    if not path.exists():
        raise IngestError(f"{path}: file not found; fix the dataset's 'path' in the config")
    if path.is_dir():
        raise IngestError(f"{path}: is a directory, not a file; point the dataset's 'path' at the raw log file")
    if not os.access(path, os.R_OK):
        raise IngestError(f"{path}: file is not readable (permission denied); fix its permissions")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: file is empty (0 bytes); supply the raw log or remove the dataset")


def _detect_delimiter(path: Path, configured: str | None) -> str:
    if configured:
        return configured
    name = path.name.removesuffix(".gz")
    return "\t" if name.endswith((".tsv", ".tab", ".txt")) else ","


def layout_for(ds: DatasetSettings, path: Path | None = None) -> SourceLayout:
    """The source layout of dataset `ds` (its main file unless `path` is given)."""
    path = Path(path or ds.path)
    check_readable(path)
    if ds.format == "simulated":
        return SourceLayout(path, True, ",", LOG_COLUMNS,
                            {"user_id": "account_id", "ts": "event_time", "location": "cell_id",
                             "behavior": "event", "lat": "latitude", "lon": "longitude"},
                            "%Y-%m-%d %H:%M:%S")
    if ds.format == "checkins_csv":
        return SourceLayout(path, True, ",", CHECKINS_COLUMNS,
                            {"user_id": "user_id", "ts": "timestamp", "location": "venue_id",
                             "behavior": ds.label_column,
                             **({} if ds.label_column == "intent" else {"category": "top_category"})},
                            ds.timestamp_format)
    if ds.format == "foursquare_tsmc2014":
        return SourceLayout(path, False, "\t", TSMC_COLUMNS,
                            {"user_id": "user_id", "ts": "utc_time", "location": "venue_id",
                             "behavior": "venue_category", "lat": "latitude", "lon": "longitude"},
                            TSMC_TIME_FORMAT, tz_offset_column="timezone_offset")
    if ds.format == "generic":
        mapping = {("ts" if k == "timestamp" else k): v for k, v in ds.columns.items()}
        name = path.name.removesuffix(".gz")
        if name.endswith(".parquet"):
            try:
                cols = tuple(duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet({sql_str(path)})").df()["column_name"])
            except duckdb.Error as exc:
                raise IngestError(f"{path}: not a readable Parquet file ({exc})") from exc
            return SourceLayout(path, True, "", cols, mapping, ds.timestamp_format, is_parquet=True)
        delimiter = _detect_delimiter(path, ds.delimiter)
        header = first_line(path).decode("utf-8", errors="replace").rstrip("\r\n")
        cols = tuple(next(csv.reader([header], delimiter=delimiter)))
        return SourceLayout(path, True, delimiter, cols, mapping, ds.timestamp_format)
    raise IngestError(f"unknown format '{ds.format}'")


def taxonomy_source(ds: DatasetSettings, layout: SourceLayout) -> tuple[str, dict | str | None]:
    """Where each label's category comes from: ("mapping", {label: category}) -- the config's
    `taxonomy`, else the format's own (the simulator's behaviour groups, the check-ins' intent
    groups) --, ("column", source column) -- a category column such as the check-ins' top
    category --, or ("identity", None): no taxonomy given, every label is its own category."""
    if ds.taxonomy:
        return "mapping", dict(ds.taxonomy)
    if ds.format == "simulated":
        return "mapping", EVENT_CATEGORIES
    if ds.format == "checkins_csv" and ds.label_column == "intent":
        return "mapping", INTENT_CATEGORIES
    if "category" in layout.mapping:
        return "column", layout.mapping["category"]
    return "identity", None


def category_sql(source: tuple[str, dict | str | None], behavior_sql: str) -> str:
    """SQL of the category of each row (NULL where a mapping has no entry for the label)."""
    kind, value = source
    if kind == "mapping":
        cases = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in sorted(value.items()))
        return f"(CASE {behavior_sql}::VARCHAR {cases} END)"
    if kind == "column":
        return f'NULLIF(trim("{value}"::VARCHAR), \'\')'
    return f"{behavior_sql}::VARCHAR"


def check_header(layout: SourceLayout, ds: DatasetSettings) -> None:
    """Missing required columns fail before anything is read."""
    if not layout.header or layout.is_parquet:
        actual = layout.source_columns
    else:
        first = first_line(layout.path)
        if not first.strip():
            raise IngestError(f"{layout.path}: the first line is empty; the file needs a header line "
                              f"({layout.delimiter.join(layout.source_columns)})")
        text = first.decode("utf-8", errors="replace").rstrip("\r\n")
        actual = tuple(next(csv.reader([text], delimiter=layout.delimiter)))
    needed = [layout.mapping[c] for c in (*REQUIRED, "lat", "lon", "category") if c in layout.mapping]
    if layout.tz_offset_column:
        needed.append(layout.tz_offset_column)
    missing = [c for c in needed if c not in actual]
    if missing:
        fix = (f"map them with datasets.{ds.name}.columns" if ds.format == "generic"
               else f"the '{ds.format}' format expects the header {','.join(layout.source_columns)}")
        raise IngestError(f"{layout.path}: required column(s) {missing} missing from the header "
                          f"{list(actual)}; {fix}")
    if layout.header and not layout.is_parquet and actual != layout.source_columns:
        layout.source_columns = actual  # generic files may carry extra columns


def transcode_to_utf8(src: Path, dst: Path) -> int:
    """Copy `src` to UTF-8, decoding lines that are not UTF-8 as cp1252 (else latin-1)."""
    fallback = 0
    with open_raw(src) as fin, open(dst, "wb") as fout:
        for raw in fin:
            try:
                raw.decode("utf-8")
                fout.write(raw)
            except UnicodeDecodeError:
                fallback += 1
                try:
                    text = raw.decode("cp1252")
                except UnicodeDecodeError:
                    text = raw.decode("latin-1")
                fout.write(text.encode("utf-8"))
    return fallback
