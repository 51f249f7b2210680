"""Operating points chosen on validation scores: decision thresholds, temperature scaling, TPR@FPR.

The training loop stores the result with each checkpoint so that the test set
never chooses a threshold. Conventions (those of ``benchmark/metrics.py``,
which this module may not import: ``detectors/`` sits below ``benchmark/``):

- Scores are P(fake), finite numbers in [0, 1]; label 1 = fake, 0 = real; a
  video is called fake when score >= threshold.
- The candidate cuts are the ROC points: with the distinct scores
  u_0 < ... < u_{G-1}, cut k calls fake every video with score >= u_k
  (k = 0: every video; k = G: none).
- Threshold placement: a cut's threshold lies midway between the two distinct
  scores around it, so it never equals a validation score and a test score
  a little off a validation score is called as its neighbours are. At the
  edges the score range [0, 1] is the missing neighbour: below the lowest
  score the threshold is lowest / 2 (``nextafter(0, -inf)``, a tiny negative
  number, when the lowest score is 0); above the highest it is midway to 1
  (``nextafter(1, +inf)`` when the highest score is 1). Two distinct scores
  that are adjacent floats have no float between them: the threshold is then
  the upper one, which still makes the cut's calls.
- Rule ``"eer"``: the cut whose FPR and FNR are closest, an actual ROC point
  (not the interpolated EER of ``benchmark.metrics``). Ties: the smaller
  max(FPR, FNR), then the higher threshold (fewer videos called fake). The
  comparison is exact (integer counts), not on rounded rates.
- Rule ``"fpr"`` and ``tpr_at_fpr``: the highest TPR over the cuts whose FPR
  (false positives / reals, a float as scikit-learn's ``roc_curve`` computes
  it) is <= the target; conservative, no interpolation between ROC points.
  Ties in TPR: the higher threshold (fewest false positives). The cut that
  calls nothing fake (FPR 0) always qualifies, so the result exists.
- Temperature scaling: s' = sigmoid(logit(s) / T), scores clipped to
  [1e-6, 1 - 1e-6] first; T minimises the mean binary cross-entropy of s' on
  the validation set, searched with bounded Brent on log T in [-5, 5]
  (deterministic). Perfectly separated data push T to the bound e^-5.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit

from pipeline.errors import AvdfError

RULES = ("eer", "fpr")
CLIP = 1e-6
LOG_T_BOUNDS = (-5.0, 5.0)


class OperatingPointError(AvdfError):
    """Validation labels or scores from which no operating point can be chosen."""


def _validate(labels: Any, scores: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise OperatingPointError(f"{what}: labels and scores must be 1-D of equal length; got {y.shape} and {s.shape}")
    if len(y) == 0:
        raise OperatingPointError(f"{what}: no videos")
    if not np.isin(y, (0, 1)).all():
        raise OperatingPointError(f"{what}: labels must be 0 (real) or 1 (fake); got {sorted(set(y.tolist()))[:5]}")
    bad = np.nonzero(~np.isfinite(s) | (s < 0) | (s > 1))[0]
    if len(bad):
        raise OperatingPointError(
            f"{what}: {len(bad)} score(s) are not finite numbers in [0, 1]; first: row {int(bad[0])} = {s[bad[0]]!r}")
    y = y.astype(np.int8)
    if not (y == 1).any():
        raise OperatingPointError(f"{what} needs both classes: no fake videos (label 1) among the {len(y)} given")
    if not (y == 0).any():
        raise OperatingPointError(f"{what} needs both classes: no real videos (label 0) among the {len(y)} given")
    return y, s


def _cuts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (G,) and false/true positive counts (G + 1,) of cut k: fake iff score >= uniq[k]."""
    uniq, group = np.unique(s, return_inverse=True)
    g = len(uniq)
    real = np.bincount(group[y == 0], minlength=g)
    fake = np.bincount(group[y == 1], minlength=g)
    fp = np.append(np.cumsum(real[::-1])[::-1], 0).astype(np.int64)
    tp = np.append(np.cumsum(fake[::-1])[::-1], 0).astype(np.int64)
    return uniq, fp, tp


def _between(lo: float, hi: float) -> float | None:
    mid = lo + (hi - lo) / 2
    return mid if lo < mid < hi else None


def _threshold(uniq: np.ndarray, k: int) -> float:
    """The threshold of cut k, placed as the module docstring says."""
    if k == 0:
        lowest = float(uniq[0])
        mid = _between(0.0, lowest)
        return mid if mid is not None else float(np.nextafter(lowest, -np.inf))
    if k == len(uniq):
        highest = float(uniq[-1])
        mid = _between(highest, 1.0)
        return mid if mid is not None else float(np.nextafter(highest, np.inf))
    mid = _between(float(uniq[k - 1]), float(uniq[k]))
    return mid if mid is not None else float(uniq[k])


def _best_under_fpr(fp: np.ndarray, tp: np.ndarray, n_real: int, target_fpr: float) -> int:
    if not 0.0 <= target_fpr <= 1.0:
        raise OperatingPointError(f"target FPR must be in [0, 1], got {target_fpr!r}")
    k = np.arange(len(fp))
    feasible = k[fp / n_real <= target_fpr]
    order = np.lexsort((-feasible, -tp[feasible]))  # highest TPR, then highest threshold
    return int(feasible[order[0]])


def select_threshold(labels: Any, scores: Any, rule: str = "eer", target_fpr: float = 0.05) -> dict[str, Any]:
    """Choose a decision threshold on validation scores (never on test).

    ``rule``: ``"eer"`` (FPR closest to FNR) or ``"fpr"`` (highest TPR with
    FPR <= ``target_fpr``). Returns ``{"threshold", "rule", "target_fpr"``
    (None for ``"eer"``), ``"fpr", "tpr"`` (on the validation data at that
    threshold), ``"n", "n_real", "n_fake"}``.
    """
    if rule not in RULES:
        raise OperatingPointError(f"unknown threshold rule {rule!r}; choose one of {list(RULES)}")
    y, s = _validate(labels, scores, "select_threshold")
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    uniq, fp, tp = _cuts(y, s)
    if rule == "eer":
        fn = n_fake - tp
        # FPR - FNR scaled by n_real * n_fake: integers, so ties are exact.
        a, b = fp * n_fake, fn * n_real
        k = int(np.lexsort((-np.arange(len(fp)), np.maximum(a, b), np.abs(a - b)))[0])
    else:
        k = _best_under_fpr(fp, tp, n_real, float(target_fpr))
    return {
        "threshold": _threshold(uniq, k),
        "rule": rule,
        "target_fpr": float(target_fpr) if rule == "fpr" else None,
        "fpr": float(fp[k] / n_real),
        "tpr": float(tp[k] / n_fake),
        "n": int(len(y)),
        "n_real": n_real,
        "n_fake": n_fake,
    }


def tpr_at_fpr(labels: Any, scores: Any, fpr: float) -> float:
    """The highest TPR over thresholds (fake iff score >= t) whose FPR <= ``fpr``; no interpolation."""
    y, s = _validate(labels, scores, "tpr_at_fpr")
    _, fp, tp = _cuts(y, s)
    k = _best_under_fpr(fp, tp, int((y == 0).sum()), float(fpr))
    return float(tp[k] / (y == 1).sum())


def _logits(scores: np.ndarray) -> np.ndarray:
    return logit(np.clip(scores, CLIP, 1 - CLIP))


def fit_temperature(labels: Any, scores: Any) -> float:
    """T > 0 minimising the mean binary cross-entropy of sigmoid(logit(s) / T) on validation data."""
    y, s = _validate(labels, scores, "fit_temperature")
    z = _logits(s)
    sign = 2.0 * y - 1.0  # BCE of sigmoid(x) is softplus(-x) for fakes, softplus(x) for reals

    def loss(log_t: float) -> float:
        return float(np.mean(np.logaddexp(0.0, -sign * z * math.exp(-log_t))))

    result = minimize_scalar(loss, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-8})
    return float(math.exp(result.x))


def apply_temperature(scores: Any, temperature: float) -> np.ndarray:
    """sigmoid(logit(s) / T), with s clipped to [1e-6, 1 - 1e-6] as in the fit (T = 1 only clips)."""
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise OperatingPointError(f"temperature must be a finite number > 0, got {temperature!r}")
    s = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(s).all():
        raise OperatingPointError("apply_temperature: scores must be finite")
    return expit(_logits(s) / t)
