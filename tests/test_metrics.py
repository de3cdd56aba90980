"""Fidelity metrics against hand-computed values (JSD, TVD, KS_P, BLEU) and their two levels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from behaviorflow.validation.metrics import bleu, compare, fidelity, jsd, ks_p, tvd


def events(user: str, rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """Events from (timestamp, location, behaviour) rows of one user."""
    ts = pd.to_datetime([r[0] for r in rows])
    return pd.DataFrame({"user_id": user, "ts": ts, "weekday": ts.day_of_week, "slot": ts.hour * 60 + ts.minute,
                         "location": [r[1] for r in rows], "behavior": [r[2] for r in rows]})


def week(user: str, behaviours: str, day: str = "2024-03-04") -> pd.DataFrame:
    """One event per hour from 08:00 on `day`, one behaviour letter each, all in zone z1."""
    return events(user, [(f"{day} {8 + i:02d}:00", "z1", b) for i, b in enumerate(behaviours)])


def test_identical_distributions_give_jsd_0_tvd_0_ks_p_1():
    a = pd.Series(["work", "eat", "eat", "sleep"])
    assert jsd(a, a.sample(frac=1, random_state=0)) == pytest.approx(0.0, abs=1e-12)
    assert tvd(a, a) == 0.0
    assert ks_p([1, 2, 3, 5, 8], [8, 5, 3, 2, 1]) == pytest.approx(1.0)


def test_disjoint_distributions_give_jsd_1_tvd_1():
    assert jsd(pd.Series(["a", "b"]), pd.Series(["c", "c", "d"])) == pytest.approx(1.0)
    assert tvd(pd.Series(["a", "b"]), pd.Series(["c", "c", "d"])) == pytest.approx(1.0)


def test_jsd_and_tvd_match_a_hand_computed_pair():
    # P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4):
    # KL(P||M) = log2(4/3); KL(Q||M) = 1/2 log2(2/3) + 1/2 log2(2); JSD = mean of the two.
    expected = 0.5 * (math.log2(4 / 3) + 0.5 * math.log2(2 / 3) + 0.5)
    p, q = pd.Series(["a", "a"]), pd.Series(["a", "b"])
    assert jsd(p, q) == pytest.approx(expected)  # 0.3112781
    assert tvd(p, q) == pytest.approx(0.5)


def test_ks_p_is_small_for_shifted_samples_and_nan_for_empty():
    rng = np.random.default_rng(0)
    assert ks_p(rng.normal(0, 1, 500), rng.normal(2, 1, 500)) < 1e-6
    assert math.isnan(ks_p([], [1.0]))


def test_bleu_matches_worked_examples():
    real = week("u1", "abcdef")
    # identical week: every n-gram precision 1, no brevity penalty
    assert bleu(real, week("u1", "abcdef"), "event") == pytest.approx(1.0)
    # the first 4 of 6 tokens: precisions 1, brevity penalty exp(1 - 6/4)
    assert bleu(real, week("u1", "abcd"), "event") == pytest.approx(math.exp(-0.5))
    # candidate a b c x against reference a b c d: p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0 -> 0.1 (smoothing
    # method 1, epsilon 0.1); BLEU = (3/4 * 2/3 * 1/2 * 1/10) ** (1/4)
    assert bleu(week("u1", "abcd"), week("u1", "abcx"), "event") == pytest.approx(0.025 ** 0.25)
    # a synthetic week of a user with no real weeks has no reference
    assert math.isnan(bleu(real, week("u2", "abcdef"), "event"))


def test_bleu_token_streams_separate_time_and_place():
    times = [f"2024-03-04 {8 + i:02d}:00" for i in range(5)]
    real = events("u1", [(t, "z1", b) for t, b in zip(times, "abcde")])
    moved = events("u1", [(t, z, b) for t, z, b in zip(times, ["z2", "z3", "z4", "z5", "z6"], "abcde")])
    assert bleu(real, moved, "event") == pytest.approx(1.0)
    assert bleu(real, moved, "timestamp") == pytest.approx(1.0)
    assert bleu(real, moved, "location") < 0.1


def test_fidelity_reports_population_and_user_levels():
    real = pd.concat([week("u1", "aabb"), week("u2", "ccdd")])
    synthetic = pd.concat([week("u1", "aabb"), week("u2", "aabb")])
    out = fidelity(real, synthetic).set_index(["level", "metric"])
    # u1 matches exactly (JSD 0), u2's behaviours are disjoint (JSD 1): mean 0.5, sd sqrt(0.5)
    assert out.loc[("user", "jsd_behavior"), "value"] == pytest.approx(0.5)
    assert out.loc[("user", "jsd_behavior"), "sd"] == pytest.approx(math.sqrt(0.5))
    assert out.loc[("user", "jsd_behavior"), "n"] == 2
    # pooled: real a,a,b,b,c,c,d,d against synthetic a*4, b*4 -> TVD 1/2
    assert out.loc[("population", "tvd_behavior"), "value"] == pytest.approx(0.5)
    assert out.loc[("population", "ks_p_time"), "value"] == pytest.approx(1.0)


def test_empty_synthetic_data_gives_nan_not_an_error():
    real = week("u1", "abcd")
    out = fidelity(real, real.iloc[:0])
    assert set(out["level"]) == {"population", "user"}
    assert out["value"].isna().all()
    assert set(out["metric"]) == set(compare(real, real))
