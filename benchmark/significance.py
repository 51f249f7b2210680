"""Is detector A better than detector B on the same videos? Paired tests for two score rows.

Conventions (scores are P(fake) in [0, 1], label 1 = fake, as in ``metrics``):
- ``delong_test``: DeLong's test for two correlated AUCs, by the fast midrank
  algorithm of Sun & Xu (2014). With m fakes X and n reals Y, the structural
  components of a row are V10_i = (midrank of X_i among all - midrank among
  the fakes) / n, i.e. the fraction of reals below fake i (ties half), and
  V01_j = 1 - (midrank of Y_j among all - midrank among the reals) / m, the
  fraction of fakes above real j. AUC = mean V10 = mean V01. The covariance of
  the two AUCs is S10 / m + S01 / n (S10, S01: 2 x 2 sample covariances,
  ddof 1, of the components), so Var(diff) = Var(V10_a - V10_b) / m +
  Var(V01_a - V01_b) / n; z = diff / se and the p-value is two-sided normal.
  The variance needs at least 2 videos of each class.
- Zero variance: when both component differences are constant (e.g.
  identical rows, or rows ranking the videos the same way) se is 0: a zero
  diff gets z = 0 and p = 1; a non-zero diff gets z = None (infinite, not
  JSON) and p = 0.
- ``paired_bootstrap``: videos resampled with replacement (seeded), the same
  indices for both rows; the metric's difference a - b per resample; resamples
  where the metric is undefined (``MetricUndefined``, or a non-finite value:
  e.g. a single class) are skipped and ``n_valid`` counts the rest. Percentile
  interval; p = 2 * min(P(d <= 0), P(d >= 0)) over valid resamples, capped at
  1 (identical rows: p = 1).
- ``compare_rows``: AUC by DeLong; ACC (each row at its own threshold), AP,
  EER, ECE and Brier by paired bootstrap, all on the same resamples (one
  seed; ACC, AP and EER computed at once by ``metrics.bootstrap_samples``,
  whose index stream is the loop's). Differences are always a - b: for EER, ECE and Brier (lower is
  better) a negative difference favours A. ``significant`` is p < alpha.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import norm, rankdata

from benchmark.calibration import brier_score, expected_calibration_error
from benchmark.metrics import (MetricUndefined, ScoresError, _prepare, accuracy, average_precision,
                               bootstrap_samples, equal_error_rate)

Metric = Callable[[np.ndarray, np.ndarray], float]


def _paired(labels: Any, scores_a: Any, scores_b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(scores_a)
    b = np.asarray(scores_b)
    if a.shape != b.shape:
        raise ScoresError(f"the two score rows must cover the same videos; got shapes {a.shape} and {b.shape}")
    y, a = _prepare(labels, a)
    _, b = _prepare(y, b)
    return y, a, b


def _components(fake: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sun & Xu's V10 (per fake) and V01 (per real) of one score row, from midranks."""
    m, n = len(fake), len(real)
    t_z = rankdata(np.concatenate([fake, real]))  # midranks: ties get the average rank
    v10 = (t_z[:m] - rankdata(fake)) / n
    v01 = 1.0 - (t_z[m:] - rankdata(real)) / m
    return v10, v01


def delong_test(labels: Any, scores_a: Any, scores_b: Any) -> dict[str, Any]:
    """DeLong's test of AUC(a) = AUC(b) on the same videos (two-sided)."""
    y, a, b = _paired(labels, scores_a, scores_b)
    m, n = int((y == 1).sum()), int((y == 0).sum())
    if m < 2 or n < 2:
        raise MetricUndefined(f"DeLong's test needs at least 2 real and 2 fake videos; got {n} real, {m} fake")
    v10_a, v01_a = _components(a[y == 1], a[y == 0])
    v10_b, v01_b = _components(b[y == 1], b[y == 0])
    auc_a, auc_b = float(v10_a.mean()), float(v10_b.mean())
    diff = auc_a - auc_b
    se = math.sqrt(np.var(v10_a - v10_b, ddof=1) / m + np.var(v01_a - v01_b, ddof=1) / n)
    if se > 0:
        z: float | None = diff / se
        p = float(2 * norm.sf(abs(z)))
    elif diff == 0:
        z, p = 0.0, 1.0
    else:
        z, p = None, 0.0
    return {"auc_a": auc_a, "auc_b": auc_b, "diff": diff, "se": se, "z": z, "p_value": p, "n_real": n, "n_fake": m}


def _value(metric: Metric, y: np.ndarray, s: np.ndarray) -> float:
    try:
        v = float(metric(y, s))
    except MetricUndefined:
        return math.nan
    return v if math.isfinite(v) else math.nan


def _check(n_resamples: int, level: float) -> None:
    if n_resamples < 1:
        raise ScoresError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < level < 1:
        raise ScoresError(f"level must be in (0, 1), got {level}")


def _summary(value_a: float, value_b: float, diffs: np.ndarray, level: float) -> dict[str, Any]:
    """Interval and p-value of the per-resample differences (NaN: an undefined resample, skipped)."""
    d = diffs[~np.isnan(diffs)]
    out: dict[str, Any] = {"value_a": float(value_a), "value_b": float(value_b), "diff": float(value_a - value_b)}
    if len(d):
        low, high = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
        p = min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
        out.update(low=float(low), high=float(high), p_value=p)
    else:
        out.update(low=None, high=None, p_value=None)
    out.update(n_valid=int(len(d)), n_resamples=int(len(diffs)))
    return out


def paired_bootstrap(labels: Any, scores_a: Any, scores_b: Any, metric: Metric, n_resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Paired bootstrap of ``metric(labels, a) - metric(labels, b)``.

    Returns ``{"diff"`` (full data), ``"low", "high"`` (percentile interval at
    ``level``), ``"p_value", "n_valid", "n_resamples"}`` plus ``"value_a",
    "value_b"`` (the metric of each row on the full data). ``low``, ``high``
    and ``p_value`` are None when no resample is valid. A metric undefined on
    the full data raises.
    """
    _check(n_resamples, level)
    y, a, b = _paired(labels, scores_a, scores_b)
    value_a, value_b = metric(y, a), metric(y, b)
    n = len(y)
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for r in range(n_resamples):
        # One row of indices per resample: the stream of metrics.bootstrap_samples, which draws
        # (chunk, n) blocks from the same generator, so compare_rows pairs the resamples of both.
        idx = rng.integers(0, n, size=n)
        diffs[r] = _value(metric, y[idx], a[idx]) - _value(metric, y[idx], b[idx])
    return _summary(value_a, value_b, diffs, level)


def compare_rows(labels: Any, scores_a: Any, scores_b: Any, *, threshold_a: float = 0.5, threshold_b: float = 0.5,
                 n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Every metric of row A against row B: DeLong for AUC, paired bootstrap for the rest.

    Each bootstrap result is ``paired_bootstrap``'s, at level 1 - alpha, plus
    ``"significant"`` (p < alpha); ACC uses each row's own threshold.
    """
    if not 0 < alpha < 1:
        raise ScoresError(f"alpha must be in (0, 1), got {alpha}")
    _check(n_resamples, 1 - alpha)
    y, a, b = _paired(labels, scores_a, scores_b)
    out: dict[str, Any] = {"auc": delong_test(y, a, b)}
    # ACC, AP and EER of every resample at once (vectorised); the same seed draws the same
    # indices for both rows and for the looped ECE and Brier below.
    samples_a = bootstrap_samples(y, a, n_resamples, seed, threshold_a)
    samples_b = bootstrap_samples(y, b, n_resamples, seed, threshold_b)
    full = {
        "acc": (accuracy(y, a, threshold_a), accuracy(y, b, threshold_b)),
        "ap": (average_precision(y, a), average_precision(y, b)),
        "eer": (equal_error_rate(y, a), equal_error_rate(y, b)),
    }
    for name, (value_a, value_b) in full.items():
        out[name] = _summary(value_a, value_b, samples_a[name] - samples_b[name], 1 - alpha)
    out["ece"] = paired_bootstrap(y, a, b, expected_calibration_error, n_resamples, seed, 1 - alpha)
    out["brier"] = paired_bootstrap(y, a, b, brier_score, n_resamples, seed, 1 - alpha)
    for name in ("auc", "acc", "ap", "eer", "ece", "brier"):
        p = out[name]["p_value"]
        out[name]["significant"] = p is not None and p < alpha
    out["alpha"] = alpha
    return out
