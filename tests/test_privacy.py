"""Privacy metrics on constructed data where the answer is known: copying vs independent generators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behaviorflow.validation.privacy import (
    closest_distance,
    membership_auc,
    overlap,
    privacy_report,
    records,
)


def random_weeks(rng: np.random.Generator, n: int, events: int = 30) -> list[list[str]]:
    """Weeks of random events over a large event space (7 days x 48 slots x 11 zones x 20 behaviours)."""
    out = []
    for _ in range(n):
        days = np.sort(rng.integers(0, 7, events))
        out.append([f"{d}|{rng.integers(0, 48) * 30}|z{rng.integers(1, 12)}|b{rng.integers(0, 20)}" for d in days])
    return out


def test_overlap_and_distance_on_hand_made_weeks():
    # grams of a b c d (n=2): ab, bc, cd; the training week a b c x holds ab and bc -> 2/3
    assert overlap([list("abcd")], [list("abcx"), list("zzzz")], n=2)[0] == pytest.approx(2 / 3)
    # a week shorter than n is one gram
    assert overlap([list("ab")], [list("ab")], n=3)[0] == 1.0
    # Jaccard of {a, b} and {b, c} is 1/3 -> distance 2/3; the closest record wins
    assert closest_distance([list("ab")], [list("bc"), list("cd")])[0] == pytest.approx(2 / 3)
    assert closest_distance([list("ab")], [list("bc"), list("ba")])[0] == 0.0


def test_a_copying_generator_is_caught():
    rng = np.random.default_rng(1)
    members, holdout, others = random_weeks(rng, 100), random_weeks(rng, 100), random_weeks(rng, 200)
    training = members + others
    report = privacy_report(synthetic=[list(w) for w in members[:80]], training=training, members=members,
                            holdout=holdout, n=3, threshold=0.3)
    assert report["overlap_share_above"] == 1.0 and report["overlap_mean"] == 1.0
    assert report["dcr_synthetic_median"] == 0.0 and report["dcr_holdout_median"] > 0.8
    assert report["dcr_share_below_holdout_p5"] == 1.0
    assert report["mia_auc"] > 0.85  # the 80 copied members are found; the 20 others are chance


def test_an_independent_generator_is_not_flagged():
    rng = np.random.default_rng(2)
    members, holdout, others = random_weeks(rng, 150), random_weeks(rng, 150), random_weeks(rng, 200)
    report = privacy_report(synthetic=random_weeks(rng, 150), training=members + others, members=members,
                            holdout=holdout, n=3, threshold=0.3)
    assert report["overlap_share_above"] == 0.0
    assert report["dcr_ratio"] == pytest.approx(1.0, abs=0.05)
    assert report["mia_auc"] == pytest.approx(0.5, abs=0.1)


def test_membership_auc_needs_both_classes():
    assert np.isnan(membership_auc([list("ab")], [], [list("ab")]))


def test_records_are_user_weeks_of_event_tokens():
    ts = pd.to_datetime(["2024-03-04 08:00", "2024-03-10 09:30", "2024-03-11 08:00", "2024-03-04 10:00"])
    ev = pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2"], "ts": ts, "weekday": ts.day_of_week,
                       "slot": ts.hour * 60 + ts.minute, "location": "z1", "behavior": ["a", "b", "c", "d"]})
    assert records(ev) == [["0|480|z1|a", "6|570|z1|b"], ["0|480|z1|c"], ["0|600|z1|d"]]
