"""Calibration of P(fake) scores: ECE with equal-mass bins, Brier score, reliability bins.

Conventions (scores are P(fake) in [0, 1], label 1 = fake, as in ``metrics``):
- Bins are equal-mass: the videos are sorted by score (stable, so tied
  scores keep their input order and may straddle a bin edge) and the order is
  split by ``np.array_split`` into ``n_bins`` groups whose sizes differ by at
  most one (the first groups take the extra video). With fewer videos than
  bins, each video is its own bin.
- ECE = sum over bins of (n_b / N) * |mean label_b - mean score_b|, where
  mean label_b is the fraction of fakes in the bin.
- Brier score = mean of (score - label)^2.
- Both are defined with a single class (unlike AUC); they never raise
  ``MetricUndefined``.
- ``calibration_report`` with a temperature (fitted on validation scores by
  ``detectors.operating_point.fit_temperature``) adds the same measures on the
  temperature-scaled scores. ``n_bins`` in the report is the number of bins
  actually used.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.metrics import ScoresError, _prepare
from detectors.operating_point import apply_temperature


def _bins(y: np.ndarray, s: np.ndarray, n_bins: int) -> list[np.ndarray]:
    if int(n_bins) != n_bins or n_bins < 1:
        raise ScoresError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    order = np.argsort(s, kind="stable")
    return np.array_split(order, min(int(n_bins), len(s)))


def reliability_bins(labels: Any, scores: Any, n_bins: int = 10) -> list[dict[str, Any]]:
    """Per equal-mass bin, ascending: ``{"mean_score", "fraction_fake", "count"}`` (the bins of the ECE)."""
    y, s = _prepare(labels, scores)
    return [
        {"mean_score": float(s[b].mean()), "fraction_fake": float(y[b].mean()), "count": int(len(b))}
        for b in _bins(y, s, n_bins)
    ]


def expected_calibration_error(labels: Any, scores: Any, n_bins: int = 10) -> float:
    """ECE over equal-mass bins: the count-weighted mean gap between fraction of fakes and mean score."""
    y, s = _prepare(labels, scores)
    n = len(y)
    return float(sum(len(b) / n * abs(y[b].mean() - s[b].mean()) for b in _bins(y, s, n_bins)))


def brier_score(labels: Any, scores: Any) -> float:
    """Mean squared difference between score and label."""
    y, s = _prepare(labels, scores)
    return float(np.mean((s - y) ** 2))


def calibration_report(labels: Any, scores: Any, n_bins: int = 10, temperature: float | None = None) -> dict[str, Any]:
    """ECE, Brier and reliability bins (JSON-ready); with ``temperature``, also on the scaled scores."""
    bins = reliability_bins(labels, scores, n_bins)
    out: dict[str, Any] = {
        "ece": expected_calibration_error(labels, scores, n_bins),
        "brier": brier_score(labels, scores),
        "n_bins": len(bins),
        "bins": bins,
    }
    if temperature is not None:
        _, s = _prepare(labels, scores)
        scaled = apply_temperature(s, temperature)
        out["temperature"] = float(temperature)
        out["ece_scaled"] = expected_calibration_error(labels, scaled, n_bins)
        out["brier_scaled"] = brier_score(labels, scaled)
    return out
