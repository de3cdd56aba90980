"""Anonymisation: keyed pseudonyms with rotation, per-user zones, floored timestamps, k-anonymous attributes.

What leaves this step (`data/processed/<dataset>/`) holds no raw user id, account or device id,
coordinate or raw venue/cell id:
- user ids become HMAC-SHA256 pseudonyms keyed by a secret from the environment; with rotation
  every `rotation_months` the same person gets a new pseudonym per epoch (as BUA's data does), so
  each (person, epoch) is a separate pseudonymous user downstream;
- locations become each pseudonymous user's top-N zones by visits (`z1` most visited .. `zN`),
  everything else `z_other`; coordinates, venue/cell ids and venue categories are dropped;
- timestamps are floored to the configured slot;
- profile attributes are generalised along fixed hierarchies and, where that is not enough,
  suppressed, until every released combination covers at least k persons.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import tempfile

import pandas as pd

from behaviorflow.atomic import tmp_sibling, write_json
from behaviorflow.config import AnonymizationSettings, as_settings
from behaviorflow.duck import connect, sql_str

log = logging.getLogger(__name__)

# Used only for the simulated dataset, only when the key variable is unset, and said so in the
# report. It is printed here on purpose: it protects nothing and must never be used for real data.
FIXED_SIMULATED_KEY = b"behaviorflow-fixed-key-for-SIMULATED-data-only-NOT-SECRET"
SUPPRESSED = "*"


class AnonymizationError(RuntimeError):
    """Anonymisation cannot proceed safely; the message says what to set."""


def resolve_key(settings: AnonymizationSettings, dataset_format: str) -> tuple[bytes, str]:
    """The pseudonymisation key and a description of its source (never the key itself).

    Simulated data with `allow_fixed_key` always take the public fixed key, whatever the key
    variable holds: a key exported for real data must not change the simulated results.
    """
    if settings.allow_fixed_key and dataset_format == "simulated":
        return FIXED_SIMULATED_KEY, "FIXED PUBLIC KEY FOR SIMULATED DATA (not secret; never use for real data)"
    value = os.environ.get(settings.key_env)
    if value:
        if len(value) < 16:
            raise AnonymizationError(
                f"environment variable {settings.key_env} holds a key of {len(value)} characters; "
                "use at least 16 random characters (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        return value.encode("utf-8"), f"environment variable {settings.key_env}"
    raise AnonymizationError(
        f"no pseudonymisation key: export {settings.key_env} with a secret of at least 16 characters "
        "(the fixed key is allowed only for simulated data with anonymization.allow_fixed_key: true)"
    )


def key_id(key: bytes) -> str:
    """A short public identifier of the key, so auditors can tell runs with the same key apart."""
    return hmac.new(key, b"behaviorflow key id", hashlib.sha256).hexdigest()[:8]


def pseudonymize(key: bytes, raw_user_id: str, epoch: int) -> str:
    """Keyed pseudonym of one user in one rotation epoch."""
    msg = f"{raw_user_id}\x1f{epoch}".encode("utf-8")
    return "u" + hmac.new(key, msg, hashlib.sha256).hexdigest()[:16]


# --- k-anonymity of profile attributes -------------------------------------------------------

def _age_band(width: int):
    def f(v):
        try:
            a = int(float(v))
        except (TypeError, ValueError):
            return SUPPRESSED
        lo = a // width * width
        return f"{lo}-{lo + width - 1}"
    return f


def _age_broad(v):
    try:
        a = int(float(v))
    except (TypeError, ValueError):
        return SUPPRESSED
    return "<40" if a < 40 else "40-59" if a < 60 else "60+"


HIERARCHIES = {
    "age": [_age_band(5), _age_band(10), _age_broad, lambda v: SUPPRESSED],
    "education": [
        str,
        lambda v: {"high_school": "no_degree", "vocational": "no_degree"}.get(v, "degree"),
        lambda v: SUPPRESSED,
    ],
    "gender": [str, lambda v: SUPPRESSED],
    "consumption": [str, lambda v: SUPPRESSED],
    "occupation": [
        str,
        lambda v: "not_employed" if v in ("student", "retired", "unemployed") else "employed",
        lambda v: SUPPRESSED,
    ],
}


def _hierarchy(name: str, series: pd.Series):
    if name in HIERARCHIES:
        return HIERARCHIES[name]
    if pd.api.types.is_numeric_dtype(series):
        return [_age_band(5), _age_band(10), _age_band(20), lambda v: SUPPRESSED]
    return [str, lambda v: SUPPRESSED]


def k_anonymize(attrs: pd.DataFrame, quasi: list[str], k: int, max_suppression: float) -> tuple[pd.DataFrame, dict]:
    """Generalise (greedy, fewest persons left in small classes) then suppress until every released combination has >= k persons.

    `attrs` has one row per person (`person` column) plus the quasi-identifier columns.
    Returns the released attributes (same rows) and a summary.
    """
    quasi = [q for q in quasi if q in attrs.columns]
    n = attrs["person"].nunique()
    if not quasi or n == 0:
        return attrs[["person"]].copy(), {"quasi_identifiers": quasi, "k": k, "k_reached": None,
                                          "generalisation_levels": {}, "suppressed_persons": 0,
                                          "suppressed_share": 0.0, "released_combinations": 0}
    hier = {q: _hierarchy(q, attrs[q]) for q in quasi}
    levels = {q: 0 for q in quasi}

    def apply(lv):
        out = attrs[["person"]].copy()
        for q in quasi:
            out[q] = attrs[q].map(hier[q][lv[q]]).astype(str)
        return out

    while True:
        gen = apply(levels)
        sizes = gen.groupby(quasi)["person"].transform("nunique")
        small = gen.loc[sizes < k, "person"].nunique()
        if small <= max_suppression * n:
            break
        candidates = [q for q in quasi if levels[q] < len(hier[q]) - 1]
        if not candidates:
            break
        # Greedy step: generalise the attribute whose next level leaves the fewest persons in
        # classes smaller than k (ties: more released combinations, then config order).
        def cost(c):
            trial = apply({**levels, c: levels[c] + 1})
            trial_sizes = trial.groupby(quasi)["person"].transform("nunique")
            return (trial.loc[trial_sizes < k, "person"].nunique(), -trial.groupby(quasi).ngroups, quasi.index(c))

        levels[min(candidates, key=cost)] += 1
    suppressed = sizes < k
    gen.loc[suppressed, quasi] = SUPPRESSED
    released = gen.loc[~suppressed]
    k_reached = int(released.groupby(quasi)["person"].nunique().min()) if len(released) else None
    summary = {
        "quasi_identifiers": quasi,
        "k": k,
        "k_reached": k_reached,
        "generalisation_levels": {q: {"level": levels[q], "of": len(hier[q]) - 1} for q in quasi},
        "suppressed_persons": int(gen.loc[suppressed, "person"].nunique()),
        "suppressed_share": round(float(gen.loc[suppressed, "person"].nunique()) / n, 4),
        "released_combinations": int(released.groupby(quasi).ngroups) if len(released) else 0,
        "persons": int(n),
    }
    return gen, summary


# --- the dataset-level step -------------------------------------------------------------------

def anonymize(events_in, attributes_in, events_out, profiles_input_out, report_out,
              settings: AnonymizationSettings | dict, dataset_format: str, threads: int | None = None,
              memory_mb: int | None = None) -> dict:
    """Rule anonymize: anonymise interim events and attributes of one dataset; returns the report."""
    settings = as_settings(AnonymizationSettings, settings)
    key, key_source = resolve_key(settings, dataset_format)
    with tempfile.TemporaryDirectory(prefix="anonymize_", dir=tmp_sibling(events_out).parent) as spill:
        return _anonymize(events_in, attributes_in, events_out, profiles_input_out, report_out, settings,
                          key, key_source, connect(threads, memory_mb, spill))


def _anonymize(events_in, attributes_in, events_out, profiles_input_out, report_out, settings, key, key_source,
               con) -> dict:
    src = f"read_parquet({sql_str(events_in)})"
    rot = int(settings.rotation_months)
    anchor = con.execute(f"SELECT min(year(ts) * 12 + month(ts) - 1) FROM {src}").fetchone()[0]
    # rotation epochs count whole periods of `rot` months from the dataset's first month
    epoch = f"((year(ts) * 12 + month(ts) - 1 - {anchor}) // {rot})" if rot > 0 else "0"
    con.execute(f"CREATE VIEW ev AS SELECT user_id, ts, weekday, location, behavior, category, {epoch} AS epoch "
                f"FROM {src}")
    users = con.execute("SELECT DISTINCT user_id, epoch FROM ev ORDER BY 1, 2").df()
    users["pseudonym"] = [pseudonymize(key, u, int(e)) for u, e in zip(users["user_id"], users["epoch"])]
    if users["pseudonym"].duplicated().any():
        raise AnonymizationError("pseudonym collision; this should not happen with 64-bit pseudonyms")
    users["pid"] = [int(p[1:], 16) for p in users["pseudonym"]]  # compact sort key, same order as the pseudonym
    con.register("users_df", users.astype({"pid": "uint64"}))
    slot = int(settings.slot_minutes)
    n_zones = int(settings.top_zones)
    # One small lookup table: (raw user, epoch, raw location) -> pseudonym and zone.
    con.execute("""CREATE TEMP TABLE lookup AS
        SELECT c.user_id, c.epoch, c.location, u.pseudonym, u.pid,
               row_number() OVER (PARTITION BY c.user_id, c.epoch ORDER BY c.n DESC, c.location) AS rk
        FROM (SELECT user_id, epoch, location, count(*) AS n FROM ev GROUP BY ALL) c
        JOIN users_df u USING (user_id, epoch)""")
    tmp_events = tmp_sibling(events_out)
    con.execute(f"""COPY (
        SELECT k.pseudonym AS user_id,
               time_bucket(INTERVAL {slot} MINUTE, e.ts) AS ts,
               e.weekday,
               ((hour(e.ts) * 60 + minute(e.ts)) // {slot} * {slot})::SMALLINT AS slot,
               CASE WHEN k.rk <= {n_zones} THEN 'z' || k.rk ELSE 'z_other' END AS location,
               e.behavior,
               e.category,
               -- the order of the user's events by their exact times, which flooring loses
               (row_number() OVER (PARTITION BY k.pseudonym ORDER BY e.ts, k.rk, e.behavior) - 1)::INTEGER AS seq
        FROM ev e JOIN lookup k USING (user_id, epoch, location)
        ORDER BY k.pid, e.ts, k.rk, e.behavior)
        TO {sql_str(tmp_events)} (FORMAT parquet, COMPRESSION zstd)""")
    n_in = con.execute("SELECT count(*) FROM ev").fetchone()[0]
    n_out, other = con.execute(
        f"SELECT count(*), count(*) FILTER (location = 'z_other') FROM read_parquet({sql_str(tmp_events)})").fetchone()
    if n_in != n_out:
        raise AnonymizationError(f"events in {n_in} != events out {n_out}")

    attrs = pd.read_parquet(attributes_in)
    present = users[["user_id", "epoch", "pseudonym"]]
    attr_cols = [c for c in attrs.columns if c != "user_id"]
    merged = present.merge(attrs, on="user_id", how="left")
    persons = merged.drop_duplicates("user_id").rename(columns={"user_id": "person"})
    released, k_summary = k_anonymize(persons[["person", *attr_cols]], list(settings.quasi_identifiers),
                                      settings.k, settings.max_suppression)
    released = released.rename(columns={"person": "user_id"})
    other_attrs = [c for c in attr_cols if c not in k_summary["quasi_identifiers"]]
    profiles_input = present.merge(released, on="user_id", how="left")
    profiles_input = profiles_input.drop(columns=["user_id"]).rename(columns={"pseudonym": "user_id"})
    profiles_input = profiles_input[["user_id", "epoch", *k_summary["quasi_identifiers"]]]
    profiles_input = profiles_input.sort_values("user_id").reset_index(drop=True)

    report = {
        "events_in": int(n_in),
        "events_out": int(n_out),
        "pseudonymisation": {
            "method": "HMAC-SHA256(key, raw_user_id || epoch), first 64 bits, prefixed 'u'",
            "key_source": key_source,
            "key_id": key_id(key),
            "rotation_months": rot,
            "epochs": int(users["epoch"].nunique()),
            "raw_users": int(users["user_id"].nunique()),
            "pseudonymous_users": int(len(users)),
        },
        "locations": {
            "method": f"per pseudonymous user, top {n_zones} locations by visits -> z1..z{n_zones}, rest z_other",
            "share_z_other": round(other / n_out, 4) if n_out else 0.0,
            "dropped_columns": ["lat", "lon", "raw location id"],
        },
        "timestamps": {"floored_to_minutes": slot},
        "attributes": {**k_summary, "dropped_non_quasi_identifier_columns": other_attrs},
    }
    tmp_profiles = tmp_sibling(profiles_input_out)
    profiles_input.to_parquet(tmp_profiles, index=False)
    write_json(report_out, report)
    os.replace(tmp_profiles, profiles_input_out)
    os.replace(tmp_events, events_out)
    log.info("anonymised %d events of %d users into %d pseudonymous users (k reached: %s)",
             n_out, report["pseudonymisation"]["raw_users"], len(users), k_summary["k_reached"])
    return report
