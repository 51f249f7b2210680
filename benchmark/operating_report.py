"""Operating points and calibration of one result: what a deployed detector would do.

ACC@0.5 assumes scores are calibrated around 0.5, which a detector trained on a
balanced corpus and tested on another need not be. So every result also reports:

- ``operating_point``: ACC, TPR and FPR on the test set at the threshold the
  checkpoint carries, chosen on its *validation* scores during training
  (``detectors.operating_point.select_threshold``; the test labels are never
  read to choose it). A submission, or a checkpoint trained before avdf stored
  one, has ``threshold: null`` and the reason.
- ``tpr_at_fpr``: the best TPR with FPR <= 1 % and 5 % on the test set (the
  ROC's own points, no interpolation): how far the ROC reaches at the low
  false-alarm rates a deployment needs. Reads test labels, as AUC does.
- ``calibration``: ECE over equal-mass bins and the Brier score of the raw
  scores and, where the checkpoint carries a temperature fitted on validation,
  of the temperature-scaled scores; the reliability bins for the diagrams.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark.calibration import calibration_report
from benchmark.metrics import accuracy, bootstrap_ci
from detectors.operating_point import tpr_at_fpr

FPR_TARGETS = (0.01, 0.05)
CALIBRATION_BINS = 10


def fpr_label(fpr: float) -> str:
    """``0.01`` -> ``"1%"`` (the key under ``tpr_at_fpr``)."""
    return f"{fpr * 100:g}%"


def tpr_at_fprs(labels: np.ndarray, scores: np.ndarray) -> dict[str, float] | None:
    if len(set(labels.tolist())) < 2:
        return None
    return {fpr_label(f): float(tpr_at_fpr(labels, scores, f)) for f in FPR_TARGETS}


def operating_point_report(labels: np.ndarray, scores: np.ndarray, point: Mapping[str, Any] | None, *,
                           n_bootstrap: int, seed: int, level: float) -> dict[str, Any]:
    """Test-set ACC (with its bootstrap interval), TPR and FPR at the checkpoint's validation threshold."""
    if point is None:
        return {"threshold": None, "reason": "no operating point: a submission, or a checkpoint trained "
                                             "before avdf stored one"}
    if point.get("threshold") is None:
        return {"threshold": None, "reason": point.get("reason", "the validation split defined none")}
    t = float(point["threshold"])
    fake, real = labels == 1, labels == 0
    called = scores >= t
    out: dict[str, Any] = {
        "threshold": t,
        "rule": point["rule"],
        "target_fpr": point.get("target_fpr"),
        "chosen_on": "validation",
        "validation": {k: point[k] for k in ("fpr", "tpr", "n") if k in point},
        "acc": float(accuracy(labels, scores, t)),
        "tpr": float(called[fake].mean()) if fake.any() else None,
        "fpr": float(called[real].mean()) if real.any() else None,
    }
    if n_bootstrap:
        out["ci"] = {"acc": bootstrap_ci(labels, scores, n_bootstrap, seed, level, threshold=t)["acc"],
                     "level": level, "n_resamples": n_bootstrap}
    return out


def calibration_block(labels: np.ndarray, scores: np.ndarray, point: Mapping[str, Any] | None) -> dict[str, Any]:
    temperature = (point or {}).get("temperature")
    return calibration_report(labels, scores, n_bins=CALIBRATION_BINS, temperature=temperature)
