"""Calibration measures: ECE by hand, Brier against scikit-learn, equal-mass bins, calibrated constructions."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.metrics import brier_score_loss

from benchmark.calibration import brier_score, calibration_report, expected_calibration_error, reliability_bins
from benchmark.metrics import ScoresError

# Six videos in shuffled order. Sorted by score: .1(R) .2(F) | .4(F) .6(R) | .7(F) .9(F)
#   bin 1: mean score .15, fraction fake 1/2 -> gap .35
#   bin 2: mean score .50, fraction fake 1/2 -> gap 0
#   bin 3: mean score .80, fraction fake 1   -> gap .20
# ECE = 2/6 * (.35 + 0 + .20) = .55 / 3.
# Brier: (.9-1)² + (.1-0)² + (.6-0)² + (.4-1)² + (.2-1)² + (.7-1)² = .01+.01+.36+.36+.64+.09 = 1.47; / 6 = .245.
Y = [1, 0, 0, 1, 1, 1]
S = [0.9, 0.1, 0.6, 0.4, 0.2, 0.7]


def test_ece_by_hand():
    assert expected_calibration_error(Y, S, n_bins=3) == pytest.approx(0.55 / 3)
    assert reliability_bins(Y, S, n_bins=3) == [
        {"mean_score": pytest.approx(0.15), "fraction_fake": 0.5, "count": 2},
        {"mean_score": pytest.approx(0.50), "fraction_fake": 0.5, "count": 2},
        {"mean_score": pytest.approx(0.80), "fraction_fake": 1.0, "count": 2},
    ]
    # Fewer videos than bins: one bin per video, ECE = mean |label - score| = (.1+.1+.6+.6+.8+.3) / 6.
    assert expected_calibration_error(Y, S, n_bins=10) == pytest.approx(2.5 / 6)
    assert len(reliability_bins(Y, S, n_bins=10)) == 6
    # One bin: |4/6 - mean score 2.9/6|.
    assert expected_calibration_error(Y, S, n_bins=1) == pytest.approx(abs(4 - 2.9) / 6)


def test_brier_by_hand_and_against_scikit_learn():
    assert brier_score(Y, S) == pytest.approx(0.245)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    s = rng.random(500)
    assert brier_score(y, s) == pytest.approx(brier_score_loss(y, s), abs=1e-12)


@pytest.mark.parametrize("n, n_bins", [(7, 3), (100, 10), (1003, 10), (5, 10), (50, 1)])
def test_equal_mass_bins_cover_every_video(n, n_bins):
    rng = np.random.default_rng(n)
    y, s = rng.integers(0, 2, n), rng.random(n)
    bins = reliability_bins(y, s, n_bins)
    counts = [b["count"] for b in bins]
    assert sum(counts) == n and len(bins) == min(n, n_bins)
    assert max(counts) - min(counts) <= 1 and counts == sorted(counts, reverse=True)  # array_split: extras first
    assert sum(b["fraction_fake"] * b["count"] for b in bins) == pytest.approx(y.sum())
    means = [b["mean_score"] for b in bins]
    assert means == sorted(means)


def test_ties_keep_their_input_order():
    # 40 tied scores, the first 20 fakes: a stable sort puts the fakes in the first bin.
    y = [1] * 20 + [0] * 20
    assert expected_calibration_error(y, [0.5] * 40, n_bins=2) == pytest.approx(0.5)
    # Sorted: .2(R) .5(F, first in the input) | .5(R) .8(F): both bins hold 1/2 fakes at mean scores
    # .35 and .65, ECE .15. The other order of the tie would give bins of 0 and 1 fakes, ECE .35.
    assert expected_calibration_error([1, 0, 0, 1], [0.5, 0.2, 0.5, 0.8], n_bins=2) == pytest.approx(0.15)


def test_perfectly_calibrated_construction():
    # Three groups of 10 videos whose fraction of fakes equals their score: ECE exactly 0.
    y = [1] * 2 + [0] * 8 + [1] * 5 + [0] * 5 + [1] * 8 + [0] * 2
    s = [0.2] * 10 + [0.5] * 10 + [0.8] * 10
    assert expected_calibration_error(y, s, n_bins=3) == pytest.approx(0.0, abs=1e-12)
    # Labels drawn from the scores: close to 0; the same labels against overconfident scores: far from 0.
    rng = np.random.default_rng(0)
    s = rng.random(100_000)
    y = (rng.random(100_000) < s).astype(int)
    assert expected_calibration_error(y, s) < 0.01
    assert expected_calibration_error(y, expit(3 * logit(s))) > 0.05


def test_single_class_is_defined():
    assert expected_calibration_error([1, 1, 1, 1], [0.9, 0.8, 0.6, 0.7], n_bins=2) == pytest.approx(0.25)
    assert brier_score([0, 0], [0.1, 0.3]) == pytest.approx(0.05)


def test_report_is_json_ready_and_scales():
    report = calibration_report(Y, S, n_bins=3)
    assert set(report) == {"ece", "brier", "n_bins", "bins"}
    assert (report["ece"], report["brier"], report["n_bins"]) == (pytest.approx(0.55 / 3), pytest.approx(0.245), 3)
    json.dumps(report, allow_nan=False)
    scaled = calibration_report(Y, S, n_bins=3, temperature=2.0)
    s2 = expit(logit(np.array(S)) / 2.0)
    assert scaled["temperature"] == 2.0
    assert scaled["brier_scaled"] == pytest.approx(np.mean((s2 - np.array(Y)) ** 2))
    # Temperature keeps the order, so the bins hold the same videos: .1,.2 | .4,.6 | .7,.9.
    order = np.argsort(S)
    y_sorted, s_sorted = np.array(Y)[order], s2[order]
    by_hand = sum(abs(y_sorted[i:i + 2].mean() - s_sorted[i:i + 2].mean()) for i in (0, 2, 4)) / 3
    assert scaled["ece_scaled"] == pytest.approx(by_hand)
    assert (scaled["ece"], scaled["brier"]) == (report["ece"], report["brier"])
    json.dumps(scaled, allow_nan=False)


def test_bad_input():
    with pytest.raises(ScoresError):
        expected_calibration_error([0, 1], [0.2, 1.5])
    with pytest.raises(ScoresError, match="n_bins"):
        expected_calibration_error([0, 1], [0.2, 0.5], n_bins=0)
    with pytest.raises(ScoresError):
        brier_score([0, 1, 1], [0.2, 0.5])
