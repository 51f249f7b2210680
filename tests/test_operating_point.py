"""Operating points on validation scores: thresholds by hand, temperature against a brute-force fit, TPR@FPR."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.metrics import log_loss, roc_curve

from detectors.operating_point import (OperatingPointError, apply_temperature, fit_temperature, select_threshold,
                                       tpr_at_fpr)
from pipeline.errors import AvdfError

# Reals 0.1, 0.35, 0.4; fakes 0.3, 0.8, 0.9 (shuffled). Sorted: .1R .3F .35R .4R .8F .9F.
# The cuts (fake iff score >= t), by hand:
#   t      FP TP  FPR  TPR  FNR  |FPR-FNR|
#   0.05    3  3   1    1    0     1        (below the lowest: 0.1 / 2)
#   0.2     2  3   2/3  1    0     2/3
#   0.325   2  2   2/3  2/3  1/3   1/3
#   0.375   1  2   1/3  2/3  1/3   0        <- EER
#   0.6     0  2   0    2/3  1/3   1/3
#   0.85    0  1   0    1/3  2/3   2/3
#   0.95    0  0   0    0    1     1        (above the highest: midway to 1)
Y = [1, 0, 0, 1, 0, 1]
S = [0.9, 0.1, 0.35, 0.3, 0.4, 0.8]


def test_eer_threshold_by_hand():
    op = select_threshold(Y, S)
    assert op == {"threshold": pytest.approx(0.375), "rule": "eer", "target_fpr": None,
                  "fpr": pytest.approx(1 / 3), "tpr": pytest.approx(2 / 3), "n": 6, "n_real": 3, "n_fake": 3}


@pytest.mark.parametrize("target, threshold, fpr, tpr", [
    (0.0, 0.6, 0.0, 2 / 3),
    (0.34, 0.6, 0.0, 2 / 3),   # 0.375 also reaches TPR 2/3 (at FPR 1/3): the tie goes to the higher threshold
    (0.5, 0.6, 0.0, 2 / 3),    # 0.325 has FPR 2/3 > 0.5
    (2 / 3, 0.2, 2 / 3, 1.0),
    (1.0, 0.2, 2 / 3, 1.0),    # 0.05 reaches TPR 1 too, at FPR 1
])
def test_target_fpr_threshold_by_hand(target, threshold, fpr, tpr):
    op = select_threshold(Y, S, rule="fpr", target_fpr=target)
    assert (op["rule"], op["target_fpr"]) == ("fpr", target)
    assert (op["threshold"], op["fpr"], op["tpr"]) == (pytest.approx(threshold), pytest.approx(fpr), pytest.approx(tpr))


def test_eer_ties():
    # Reals .2 and .6, one fake .4. Cuts: t=.3 -> FPR 1/2, FNR 0; t=.5 -> FPR 1/2, FNR 1. Both have
    # |FPR - FNR| = 1/2; the smaller max(FPR, FNR) (1/2 against 1) wins although .5 is the higher threshold.
    assert select_threshold([0, 1, 0], [0.2, 0.4, 0.6])["threshold"] == pytest.approx(0.3)
    # Scores .2{R}, .5{R, F}, .8{F}. t=.35 -> FPR 1/2, FNR 0; t=.65 -> FPR 0, FNR 1/2: a full tie,
    # which goes to the higher threshold.
    op = select_threshold([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.8])
    assert (op["threshold"], op["fpr"], op["tpr"]) == (pytest.approx(0.65), 0.0, 0.5)


def test_edges_of_the_score_range():
    # Only the cut above every score has FPR 0: midway between the highest score and 1 ...
    op = select_threshold([1, 0], [0.3, 0.9], rule="fpr", target_fpr=0.0)
    assert (op["threshold"], op["fpr"], op["tpr"]) == (pytest.approx(0.95), 0.0, 0.0)
    # ... or just above 1 when the highest score is 1.
    op = select_threshold([1, 0], [0.3, 1.0], rule="fpr", target_fpr=0.0)
    assert op["threshold"] > 1.0 and op["threshold"] == np.nextafter(1.0, 2.0)
    # Only the cut below every score reaches TPR 1: midway between 0 and the lowest score ...
    assert select_threshold([1, 0], [0.2, 0.5], rule="fpr", target_fpr=1.0)["threshold"] == pytest.approx(0.1)
    # ... or just below 0 when the lowest score is 0.
    op = select_threshold([1, 0], [0.0, 0.5], rule="fpr", target_fpr=1.0)
    assert op["threshold"] < 0.0 and op["tpr"] == 1.0


def test_adjacent_floats_keep_the_cut():
    # No float lies strictly between two adjacent floats: the threshold is the upper score,
    # which still calls the fake fake and the real real.
    lo = 0.5
    hi = float(np.nextafter(lo, 1.0))
    op = select_threshold([0, 1], [lo, hi])
    assert op["threshold"] == hi and (op["fpr"], op["tpr"]) == (0.0, 1.0)


def _data(seed: int, n: int = 200, decimals: int | None = 1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    return y, (np.round(s, decimals) if decimals is not None else s)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("rule, target", [("eer", None), ("fpr", 0.0), ("fpr", 0.05), ("fpr", 0.3)])
def test_threshold_never_a_validation_score_and_rates_hold(seed, rule, target):
    y, s = _data(seed)  # one decimal: many ties
    op = select_threshold(y, s, rule, **({} if target is None else {"target_fpr": target}))
    t = op["threshold"]
    assert t not in set(s.tolist())
    fpr, tpr = np.mean(s[y == 0] >= t), np.mean(s[y == 1] >= t)
    assert (op["fpr"], op["tpr"]) == (pytest.approx(fpr), pytest.approx(tpr))
    # Optimal over every cut (a threshold at each distinct score, and one above them all).
    cuts = np.append(np.unique(s), np.inf)
    all_fpr = np.array([np.mean(s[y == 0] >= c) for c in cuts])
    all_tpr = np.array([np.mean(s[y == 1] >= c) for c in cuts])
    if rule == "eer":
        assert abs(op["fpr"] - (1 - op["tpr"])) == pytest.approx(np.min(np.abs(all_fpr - (1 - all_tpr))))
    else:
        assert op["fpr"] <= target
        assert op["tpr"] == pytest.approx(all_tpr[all_fpr <= target].max())


def test_one_class_and_bad_input():
    with pytest.raises(OperatingPointError, match=r"no real videos \(label 0\)"):
        select_threshold([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(OperatingPointError, match=r"no fake videos \(label 1\)"):
        select_threshold([0, 0], [0.2, 0.5])
    assert issubclass(OperatingPointError, AvdfError)
    with pytest.raises(OperatingPointError, match="not finite"):
        select_threshold([0, 1], [0.2, math.nan])
    with pytest.raises(OperatingPointError, match="not finite"):
        select_threshold([0, 1], [0.2, math.inf])
    with pytest.raises(OperatingPointError, match="unknown threshold rule"):
        select_threshold([0, 1], [0.2, 0.7], rule="youden")
    with pytest.raises(OperatingPointError, match="target FPR"):
        select_threshold([0, 1], [0.2, 0.7], rule="fpr", target_fpr=1.5)
    with pytest.raises(OperatingPointError, match="no fake videos"):
        fit_temperature([0, 0], [0.2, 0.5])


def _miscalibrated(t_true: float, seed: int = 0, n: int = 20_000):
    """Scores sigmoid(z) whose labels follow sigmoid(z / t_true): temperature t_true fixes them."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.5, n)
    y = (rng.random(n) < expit(z / t_true)).astype(int)
    return y, expit(z)


@pytest.mark.parametrize("t_true", [0.5, 2.0])
def test_fit_temperature_recovers_the_temperature(t_true):
    y, s = _miscalibrated(t_true)
    t = fit_temperature(y, s)
    assert t == pytest.approx(t_true, rel=0.08)
    # Independently: brute-force scikit-learn log-loss over a grid of T, coarse then fine around the
    # coarse minimum (the loss has a single minimum in T).
    z = logit(np.clip(s, 1e-6, 1 - 1e-6))

    def grid_min(grid):
        losses = [log_loss(y, expit(z / g), labels=[0, 1]) for g in grid]
        return grid[int(np.argmin(losses))], min(losses)

    coarse, _ = grid_min(np.arange(0.2, 4.0, 0.05))
    fine, fine_loss = grid_min(np.arange(coarse - 0.05, coarse + 0.05, 0.001))
    assert t == pytest.approx(fine, abs=0.001)
    assert log_loss(y, expit(z / t)) <= fine_loss + 1e-12
    assert fit_temperature(y, s) == t  # deterministic


def test_apply_temperature():
    s = np.array([0.5, expit(2.0), expit(-4.0)])
    assert apply_temperature(s, 2.0) == pytest.approx([0.5, expit(1.0), expit(-2.0)], abs=1e-12)
    assert apply_temperature([0.0, 1.0], 1.0) == pytest.approx([1e-6, 1 - 1e-6])  # clipped as in the fit
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(OperatingPointError, match="temperature"):
            apply_temperature(s, bad)


def test_tpr_at_fpr_by_hand():
    # From the table above: FPR 0 allows t = 0.6 (TPR 2/3); FPR 2/3 allows t = 0.2 (TPR 1).
    assert tpr_at_fpr(Y, S, 0.0) == pytest.approx(2 / 3)
    assert tpr_at_fpr(Y, S, 0.5) == pytest.approx(2 / 3)   # no interpolation towards (2/3, 1)
    assert tpr_at_fpr(Y, S, 2 / 3) == pytest.approx(1.0)
    # All fakes below all reals: only the empty cut has FPR < 1.
    assert tpr_at_fpr([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.4) == 0.0


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("decimals", [None, 1])
def test_tpr_at_fpr_matches_scikit_learn_roc_curve(seed, decimals):
    y, s = _data(seed, 300, decimals)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    for target in (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0):
        assert tpr_at_fpr(y, s, target) == pytest.approx(tpr[fpr <= target].max(), abs=1e-12)
