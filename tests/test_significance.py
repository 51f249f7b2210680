"""Paired significance tests: DeLong against the placement-value definition and by hand; paired bootstrap."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import accuracy_score, roc_auc_score

from benchmark.calibration import brier_score, expected_calibration_error
from benchmark.metrics import MetricUndefined, ScoresError, accuracy, average_precision, equal_error_rate
from benchmark.significance import compare_rows, delong_test, paired_bootstrap
from pipeline.errors import AvdfError


def _naive_delong(y, a, b):
    """DeLong from the definition, O(n_real * n_fake): psi(x, y) = 1 if x > y, 1/2 if equal, 0 below."""
    y = np.asarray(y)
    v10, v01 = [], []
    for s in (np.asarray(a, float), np.asarray(b, float)):
        x, r = s[y == 1], s[y == 0]
        psi = (x[:, None] > r[None, :]) + 0.5 * (x[:, None] == r[None, :])  # (m, n)
        v10.append(psi.mean(1))  # per fake: share of reals below it
        v01.append(psi.mean(0))  # per real: share of fakes above it
    m, n = len(v10[0]), len(v01[0])
    s10, s01 = np.cov(np.array(v10)), np.cov(np.array(v01))  # 2 x 2, ddof 1
    cov = s10 / m + s01 / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    auc = [v.mean() for v in v10]
    return auc[0], auc[1], math.sqrt(var)


def _rows(seed, n=120, decimals=1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:4] = [0, 0, 1, 1]
    a = np.clip(rng.normal(0.4 + 0.25 * y, 0.2), 0, 1)
    b = np.clip(0.6 * a + 0.4 * rng.normal(0.45 + 0.1 * y, 0.2), 0, 1)  # correlated with a
    return y, np.round(a, decimals), np.round(b, decimals)  # one decimal: many ties


@pytest.mark.parametrize("seed", range(4))
def test_delong_matches_the_definition_and_scikit_learn(seed):
    y, a, b = _rows(seed)
    auc_a, auc_b, se = _naive_delong(y, a, b)
    r = delong_test(y, a, b)
    assert r["auc_a"] == pytest.approx(auc_a, abs=1e-12) and r["auc_b"] == pytest.approx(auc_b, abs=1e-12)
    assert r["auc_a"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert r["auc_b"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert r["diff"] == pytest.approx(auc_a - auc_b, abs=1e-12)
    assert r["se"] == pytest.approx(se, rel=1e-9)
    assert r["z"] == pytest.approx((auc_a - auc_b) / se, rel=1e-9)
    assert r["p_value"] == pytest.approx(2 * norm.cdf(-abs(auc_a - auc_b) / se), rel=1e-9)
    assert (r["n_real"], r["n_fake"]) == (int((y == 0).sum()), int(y.sum()))


def test_delong_by_hand():
    # Reals / fakes: row a (.1, .4) / (.3, .8); row b (.2, .5) / (.5, .6) (a tie at .5 counts half).
    #   a: V10 = (1/2, 1), V01 = (1, 1/2); AUC 3/4.    b: V10 = (3/4, 1), V01 = (1, 3/4); AUC 7/8.
    #   V10_a - V10_b = (-1/4, 0): sample variance (ddof 1) 2 * (1/8)² = 1/32; over m = 2: 1/64.
    #   V01_a - V01_b = (0, -1/4): likewise 1/64.   Var(diff) = 1/32, se = 0.17678.
    #   diff = -1/8, z = -(1/8) / sqrt(1/32) = -1/sqrt(2), p = 2 Phi(-1/sqrt 2) = erfc(1/2).
    r = delong_test([0, 1, 0, 1], [0.1, 0.3, 0.4, 0.8], [0.2, 0.5, 0.5, 0.6])
    assert (r["auc_a"], r["auc_b"], r["diff"]) == (0.75, 0.875, -0.125)
    assert r["se"] == pytest.approx(math.sqrt(1 / 32), abs=1e-15)
    assert r["z"] == pytest.approx(-1 / math.sqrt(2), abs=1e-12)
    assert r["p_value"] == pytest.approx(math.erfc(0.5), abs=1e-12)
    assert (r["n_real"], r["n_fake"]) == (2, 2)


def test_delong_zero_variance():
    y, a, _ = _rows(5)
    for b in (a.copy(), a ** 2):  # the same row, and one that ranks the videos the same way
        r = delong_test(y, a, b)
        assert (r["diff"], r["se"], r["z"], r["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    # A perfect row against a constant one: AUC 1 vs 1/2, components constant -> se 0, p 0.
    r = delong_test([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], [0.5] * 4)
    assert (r["diff"], r["se"], r["z"], r["p_value"]) == (0.5, 0.0, None, 0.0)
    json.dumps(r, allow_nan=False)


def test_delong_errors():
    with pytest.raises(ScoresError, match="same videos"):
        delong_test([0, 1, 0], [0.1, 0.9, 0.2], [0.1, 0.9])
    with pytest.raises(MetricUndefined, match="0 fake"):
        delong_test([0, 0, 0], [0.1, 0.9, 0.2], [0.1, 0.9, 0.3])
    with pytest.raises(MetricUndefined, match="1 real"):
        delong_test([0, 1, 1], [0.1, 0.9, 0.2], [0.1, 0.9, 0.3])
    assert issubclass(MetricUndefined, AvdfError) and issubclass(ScoresError, AvdfError)


def _auc(y, s):
    """AUC from its definition (cheaper than scikit-learn's checks, for many resamples)."""
    x, r = s[y == 1], s[y == 0]
    return float(((x[:, None] > r[None, :]) + 0.5 * (x[:, None] == r[None, :])).mean())


def _auc_metric(y, s):
    if y.min() == y.max():
        raise MetricUndefined("one class")
    return _auc(y, s)


def test_paired_bootstrap_follows_its_definition():
    y, a, b = _rows(2, n=40)
    r = paired_bootstrap(y, a, b, _auc_metric, n_resamples=300, seed=7, level=0.9)
    # Replayed here: one row of indices per resample from default_rng(seed), both rows on the same indices.
    rng = np.random.default_rng(7)
    d = []
    for _ in range(300):
        idx = rng.integers(0, 40, size=40)
        if y[idx].min() != y[idx].max():
            d.append(_auc(y[idx], a[idx]) - _auc(y[idx], b[idx]))
    d = np.array(d)
    assert r["diff"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert (r["n_valid"], r["n_resamples"]) == (len(d), 300)
    assert (r["low"], r["high"]) == (pytest.approx(np.quantile(d, 0.05)), pytest.approx(np.quantile(d, 0.95)))
    assert r["p_value"] == pytest.approx(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))


def test_paired_bootstrap_skips_undefined_resamples():
    # One fake among five videos: about (4/5)^5 = 1/3 of the resamples draw no fake.
    y, a, b = [0, 0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4, 0.9], [0.1, 0.2, 0.3, 0.95, 0.9]
    r = paired_bootstrap(y, a, b, average_precision, n_resamples=400, seed=0)
    rng = np.random.default_rng(0)
    with_fake = sum(int(rng.integers(0, 5, size=5).__contains__(4)) for _ in range(400))
    assert r["n_valid"] == with_fake and 200 < with_fake < 330


def test_paired_bootstrap_determinism_and_extremes():
    y, a, b = _rows(3, n=80)
    first = paired_bootstrap(y, a, b, average_precision, n_resamples=200, seed=1)
    assert paired_bootstrap(y, a, b, average_precision, n_resamples=200, seed=1) == first
    assert paired_bootstrap(y, a, b, average_precision, n_resamples=200, seed=2)["low"] != first["low"]
    same = paired_bootstrap(y, a, a, average_precision, n_resamples=200)
    assert (same["diff"], same["low"], same["high"], same["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    # A clearly better row: separates the classes against a row of noise.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.1, 200), 0, 1)
    noise = rng.random(200)
    better = paired_bootstrap(y, good, noise, average_precision, n_resamples=300)
    assert better["diff"] > 0.3 and better["low"] > 0 and better["p_value"] < 0.05
    worse = paired_bootstrap(y, noise, good, average_precision, n_resamples=300)
    assert worse["high"] < 0 and worse["p_value"] < 0.05
    assert delong_test(y, good, noise)["p_value"] < 1e-6


def test_compare_rows_pairs_every_metric_on_the_same_resamples():
    y, a, b = _rows(4, n=60, decimals=2)
    r = compare_rows(y, a, b, threshold_a=0.4, threshold_b=0.6, n_resamples=150, seed=3, alpha=0.1)
    assert set(r) == {"auc", "acc", "ap", "eer", "ece", "brier", "alpha"} and r["alpha"] == 0.1
    assert {k: v for k, v in r["auc"].items() if k != "significant"} == delong_test(y, a, b)
    assert r["acc"]["value_a"] == pytest.approx(accuracy_score(y, a >= 0.4))
    assert r["acc"]["value_b"] == pytest.approx(accuracy_score(y, b >= 0.6))
    # The vectorised ACC / AP / EER must pair the same resamples as the loop of paired_bootstrap.
    same_threshold = compare_rows(y, a, b, n_resamples=150, seed=3, alpha=0.1)
    for name, metric in [("acc", accuracy), ("ap", average_precision), ("eer", equal_error_rate),
                         ("ece", expected_calibration_error), ("brier", brier_score)]:
        looped = paired_bootstrap(y, a, b, metric, n_resamples=150, seed=3, level=0.9)
        got = same_threshold[name]
        assert got["significant"] == (got["p_value"] < 0.1)
        del got["significant"]
        assert got == pytest.approx(looped, abs=1e-12), name
    json.dumps(r, allow_nan=False)


def test_compare_rows_flags_a_clear_winner():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 150)
    good = np.clip(0.25 + 0.5 * y + rng.normal(0, 0.1, 150), 0, 1)
    r = compare_rows(y, good, rng.random(150), n_resamples=200)
    assert all(r[m]["significant"] for m in ("auc", "acc", "ap", "eer"))
    assert r["eer"]["diff"] < 0 < r["auc"]["diff"]  # lower EER is better: a - b is negative
