"""Detection metrics: video scores, ACC / AUC / AP / EER, per category, bootstrap CIs.

Conventions (the papers' tables use them):
- A video's score is the mean of its segment scores (``video_scores``).
- Scores are P(fake) in [0, 1]; a video is called fake when score >= threshold
  (0.5) for ACC.
- AUC is the area under the ROC curve with ties counted half; AP is the
  step-wise average precision (sum over thresholds of recall gain x
  precision), identical to scikit-learn's ``roc_auc_score`` and
  ``average_precision_score``; EER is the point of the ROC curve where
  FPR = FNR, linearly interpolated between the two ROC points around it.
- Per-category metrics of a fake category are computed on that category's
  fakes against *all* real clips of the test set (a category holds only fakes).
  ``category_mean`` is the unweighted mean over categories.
- Undefined values: AUC, AP and EER need both classes. The low-level
  functions (``roc_auc``...) raise ``MetricUndefined`` saying which class is
  missing; the report functions (``binary_metrics``, ``evaluate_scores``)
  put ``None`` in the JSON (never NaN, which is not JSON) and the reason under
  ``undefined``. ACC is defined with one class. Bootstrap resamples that draw
  a single class are left out of that metric's interval (``n_valid`` says
  how many were used).
- Bootstrap: resample videos with replacement (seeded), percentile interval;
  all resamples are computed at once with numpy, in chunks to bound memory.

Every function returns plain dicts/floats ready for ``metrics.json``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import AvdfError

METRICS = ("acc", "auc", "ap", "eer")
AVG_FV_MEMBERS = ("FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL")
REAL = "real"
# Upper bound of resamples x distinct scores held in memory at once.
_CHUNK_CELLS = 2_000_000


class MetricUndefined(AvdfError):
    """A metric that the given labels cannot define (e.g. AUC with one class)."""


class ScoresError(AvdfError):
    """Scores or labels that cannot be evaluated (non-finite, out of range, mismatched)."""


# --------------------------------------------------------------------------- video scores

def _as_table(rows: Any) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(rows, preserve_index=False)
    if isinstance(rows, Mapping):
        return pa.table(dict(rows))
    return pa.Table.from_pylist(list(rows))


def video_scores(rows: Any, by: str = "key", score: str = "score") -> pa.Table:
    """Mean segment score per video.

    ``rows``: a table (pyarrow, pandas, mapping of columns or list of row
    dicts) with one row per segment: ``by`` (the clip key), ``score`` and
    optionally ``video_id`` and ``label``, which must be constant per video.
    Returns a table sorted by ``by`` with ``score`` (the mean), ``n_segments``
    and the optional columns.
    """
    table = _as_table(rows)
    for col in (by, score):
        if col not in table.column_names:
            raise ScoresError(f"segment scores need a {col!r} column; got {table.column_names}")
    if table.num_rows == 0:
        raise ScoresError("no segment scores to aggregate")
    keys = np.asarray(table.column(by).to_pylist(), dtype=object)
    if any(k is None for k in keys):
        raise ScoresError(f"segment scores: column {by!r} has nulls")
    values = table.column(score).to_numpy(zero_copy_only=False).astype(np.float64)
    _check_scores(values, keys)
    uniq, inverse = np.unique(keys.astype(str), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(uniq))
    means = np.bincount(inverse, weights=values, minlength=len(uniq)) / counts
    out: dict[str, Any] = {by: uniq.tolist(), score: means, "n_segments": counts.astype(np.int64)}
    for extra in ("video_id", "label"):
        if extra in table.column_names and extra != by:
            col = np.asarray(table.column(extra).to_pylist(), dtype=object)
            first = np.empty(len(uniq), dtype=object)
            first[inverse[::-1]] = col[::-1]  # any member's value; checked constant below
            bad = np.nonzero(col != first[inverse])[0]
            if len(bad):
                raise ScoresError(f"video {keys[bad[0]]!r}: segments disagree on {extra!r}")
            out[extra] = first.tolist()
    return pa.table(out)


def _check_scores(scores: np.ndarray, keys: Sequence[Any] | None = None) -> None:
    bad = np.nonzero(~np.isfinite(scores) | (scores < 0) | (scores > 1))[0]
    if len(bad):
        i = int(bad[0])
        who = f"key {keys[i]!r}" if keys is not None else f"row {i}"
        raise ScoresError(f"{len(bad)} score(s) are not finite numbers in [0, 1]; first: {who} = {scores[i]!r}")


def _prepare(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise ScoresError(f"labels and scores must be 1-D of equal length; got {y.shape} and {s.shape}")
    if len(y) == 0:
        raise ScoresError("no videos to evaluate")
    if not np.isin(y, (0, 1)).all():
        raise ScoresError(f"labels must be 0 (real) or 1 (fake); got values {sorted(set(y.tolist()))[:5]}")
    _check_scores(s)
    return y.astype(np.int8), s


# --------------------------------------------------------------------------- core computation

def _counts_per_score(
    y: np.ndarray, s: np.ndarray, idx: np.ndarray | None, grouped: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, ...]:
    """Real and fake counts per distinct score (ascending), for each resample.

    ``idx``: (B, N) resampled video indices, or None for the data itself;
    ``grouped``: ``np.unique(s, return_inverse=True)`` when already known.
    Returns (uniq scores (G,), real counts (B, G), fake counts (B, G)).
    """
    uniq, group = grouped if grouped is not None else np.unique(s, return_inverse=True)
    g = len(uniq)
    if idx is None:
        idx = np.arange(len(s))[None, :]
    b = idx.shape[0]
    cell = group[idx] + (np.arange(b) * g)[:, None]  # (B, N): resample-local bin
    fake = y[idx].astype(bool)
    real_counts = np.bincount(cell[~fake], minlength=b * g).reshape(b, g).astype(np.float64)
    fake_counts = np.bincount(cell[fake], minlength=b * g).reshape(b, g).astype(np.float64)
    return uniq, real_counts, fake_counts


def _stats(uniq: np.ndarray, real: np.ndarray, fake: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """ACC, AUC, AP, EER for each row of (B, G) count matrices (NaN where one class is absent)."""
    n_real = real.sum(1)
    n_fake = fake.sum(1)
    both = (n_real > 0) & (n_fake > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        called_fake = uniq >= threshold
        acc = (fake[:, called_fake].sum(1) + real[:, ~called_fake].sum(1)) / (n_real + n_fake)
        # AUC: each fake beats the reals below it, ties count half.
        reals_below = np.cumsum(real, axis=1) - real
        auc = (fake * (reals_below + 0.5 * real)).sum(1) / (n_fake * n_real)
        # Walk thresholds from the highest score down.
        tp = np.cumsum(fake[:, ::-1], axis=1)
        fp = np.cumsum(real[:, ::-1], axis=1)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        ap = (fake[:, ::-1] * precision).sum(1) / n_fake
        tpr = tp / n_fake[:, None]
        fpr = fp / n_real[:, None]
        zeros = np.zeros((len(n_real), 1))
        fpr = np.hstack([zeros, fpr])
        fnr = 1.0 - np.hstack([zeros, tpr])
        gap = fpr - fnr  # rises from -1 to +1 along the curve
        k = np.argmax(gap >= 0, axis=1)
        k = np.maximum(k, 1)
        rows = np.arange(len(k))
        g0, g1 = gap[rows, k - 1], gap[rows, k]
        t = np.where(g1 > g0, -g0 / np.where(g1 > g0, g1 - g0, 1.0), 1.0)
        eer = fpr[rows, k - 1] + t * (fpr[rows, k] - fpr[rows, k - 1])
    nan = np.nan
    return {
        "acc": acc,
        "auc": np.where(both, auc, nan),
        "ap": np.where(both, ap, nan),
        "eer": np.where(both, eer, nan),
    }


def _point(labels: Any, scores: Any, threshold: float) -> dict[str, float]:
    y, s = _prepare(labels, scores)
    stats = _stats(*_counts_per_score(y, s, None), threshold)
    return {m: float(v[0]) for m, v in stats.items()}


def _missing_class(y: np.ndarray) -> str | None:
    has_real, has_fake = bool((y == 0).any()), bool((y == 1).any())
    if has_real and has_fake:
        return None
    return "no fake videos (label 1) in the evaluated set" if has_real else "no real videos (label 0) in the evaluated set"


def _strict(metric: str, labels: Any, scores: Any, threshold: float = 0.5) -> float:
    y, s = _prepare(labels, scores)
    reason = _missing_class(y) if metric != "acc" else None
    if reason:
        raise MetricUndefined(f"{metric.upper()} is undefined: {reason}")
    return _point(y, s, threshold)[metric]


def accuracy(labels: Any, scores: Any, threshold: float = 0.5) -> float:
    """Fraction of videos called right (fake iff score >= threshold)."""
    return _strict("acc", labels, scores, threshold)


def roc_auc(labels: Any, scores: Any) -> float:
    return _strict("auc", labels, scores)


def average_precision(labels: Any, scores: Any) -> float:
    return _strict("ap", labels, scores)


def equal_error_rate(labels: Any, scores: Any) -> float:
    return _strict("eer", labels, scores)


# --------------------------------------------------------------------------- reports

def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def binary_metrics(labels: Any, scores: Any, threshold: float = 0.5) -> dict[str, Any]:
    """ACC, AUC, AP, EER and counts; undefined metrics are None with a reason."""
    y, s = _prepare(labels, scores)
    point = _point(y, s, threshold)
    out: dict[str, Any] = {m: _clean(point[m]) for m in METRICS}
    out.update(n=int(len(y)), n_real=int((y == 0).sum()), n_fake=int((y == 1).sum()))
    reason = _missing_class(y)
    if reason:
        out["undefined"] = {m: reason for m in ("auc", "ap", "eer")}
    return out


def bootstrap_samples(labels: Any, scores: Any, n_resamples: int, seed: int = 0,
                      threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Every metric on ``n_resamples`` resamples of the videos (with replacement), vectorised.

    NaN where a resample lacks a class. Resamples are drawn in chunks so
    memory stays bounded whatever the number of videos.
    """
    y, s = _prepare(labels, scores)
    n = len(y)
    rng = np.random.default_rng(seed)
    grouped = np.unique(s, return_inverse=True)
    chunk = max(1, _CHUNK_CELLS // n)
    parts: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(b, n))
        for m, v in _stats(*_counts_per_score(y, s, idx, grouped), threshold).items():
            parts[m].append(v)
    return {m: np.concatenate(v) for m, v in parts.items()}


def bootstrap_ci(
    labels: Any,
    scores: Any,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    threshold: float = 0.5,
) -> dict[str, dict[str, Any]]:
    """Percentile intervals of each metric over videos resampled with replacement.

    Returns ``{metric: {"low", "high", "n_valid"}}``; the same seed gives the
    same interval. Resamples with a single class are left out of AUC/AP/EER.
    """
    if n_resamples < 1:
        raise ScoresError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < level < 1:
        raise ScoresError(f"level must be in (0, 1), got {level}")
    samples = bootstrap_samples(labels, scores, n_resamples, seed, threshold)
    alpha = (1 - level) / 2
    out = {}
    for m in METRICS:
        values = samples[m]
        valid = values[~np.isnan(values)]
        if len(valid) == 0:
            out[m] = {"low": None, "high": None, "n_valid": 0}
            continue
        low, high = np.quantile(valid, [alpha, 1 - alpha])
        out[m] = {"low": float(low), "high": float(high), "n_valid": int(len(valid))}
    return out


def score_spread(scores: Any) -> dict[str, float]:
    """How far a detector's video scores spread: a collapsed, constant-output model has a
    spread near 0 whatever its AUC (ties of nearly equal scores can still rank by chance)."""
    s = np.asarray(scores, dtype=np.float64)
    _check_scores(s)
    q25, median, q75 = np.quantile(s, [0.25, 0.5, 0.75])
    return {"std": float(s.std()), "iqr": float(q75 - q25), "min": float(s.min()), "median": float(median),
            "max": float(s.max())}


def _with_ci(y, s, threshold, n_bootstrap, seed, level) -> dict[str, Any]:
    report = binary_metrics(y, s, threshold)
    if n_bootstrap:
        report["ci"] = bootstrap_ci(y, s, n_bootstrap, seed, level, threshold)
        report["ci"]["level"] = level
        report["ci"]["n_resamples"] = n_bootstrap
    return report


def evaluate_scores(
    labels: Any,
    scores: Any,
    categories: Sequence[str] | None = None,
    *,
    threshold: float = 0.5,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Overall and per-category metrics (with CIs) of video-level scores.

    ``categories``: per video, ``real`` or its fake category name (as in
    ``Fold.test_categories``). A category's metrics use its fakes against all
    real videos. ``n_bootstrap=0`` skips the intervals.
    """
    y, s = _prepare(labels, scores)
    out: dict[str, Any] = {
        "threshold": threshold,
        "overall": {**_with_ci(y, s, threshold, n_bootstrap, seed, level), "score_spread": score_spread(s)},
    }
    if categories is None:
        return out
    cats = np.asarray(list(categories), dtype=object)
    if len(cats) != len(y):
        raise ScoresError(f"{len(cats)} categories for {len(y)} videos")
    wrong = np.nonzero((cats == REAL) != (y == 0))[0]
    if len(wrong):
        i = int(wrong[0])
        raise ScoresError(f"video {i}: category {cats[i]!r} disagrees with label {int(y[i])} ('real' iff label 0)")
    is_real = cats == REAL
    per: dict[str, Any] = {}
    for cat in sorted({c for c in cats.tolist() if c != REAL}):
        mask = is_real | (cats == cat)
        # One seed per category would correlate them; offset it by the name.
        cat_seed = seed + sum(map(ord, cat))
        per[cat] = _with_ci(y[mask], s[mask], threshold, n_bootstrap, cat_seed, level)
    out["per_category"] = per
    if per:
        out["category_mean"] = average_over(per, list(per))
    return out


def average_over(results: Mapping[str, Mapping[str, Any]], members: Sequence[str]) -> dict[str, Any]:
    """Unweighted mean of each metric over ``members`` (categories or folds).

    A metric undefined (None) in any member is None in the mean, with a reason.
    """
    missing = [m for m in members if m not in results]
    if missing:
        raise ScoresError(f"cannot average: no results for {missing} (have {sorted(results)})")
    out: dict[str, Any] = {"members": list(members)}
    undefined = {}
    for metric in METRICS:
        values = [results[m].get(metric) for m in members]
        if any(v is None for v in values):
            which = [m for m, v in zip(members, values) if v is None]
            out[metric] = None
            undefined[metric] = f"undefined for {which}"
        else:
            out[metric] = float(np.mean(values))
    if undefined:
        out["undefined"] = undefined
    return out


def avg_fv(results: Mapping[str, Mapping[str, Any]], members: Sequence[str] = AVG_FV_MEMBERS) -> dict[str, Any]:
    """AVG-FV: the mean over the four fake-video cross-manipulation folds."""
    return average_over(results, members)


def evaluate_segments(
    segment_rows: Any,
    labels: Mapping[str, int],
    categories: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Segment scores -> video scores -> ``evaluate_scores``.

    ``labels`` (key -> 0/1, from the manifest, never from the detector) names
    exactly the videos to score: a labelled key without scores or a scored key
    without a label is an error naming the key.
    """
    videos = video_scores(segment_rows)
    keys = videos.column("key").to_pylist()
    unlabelled = sorted(set(keys) - set(labels))
    unscored = sorted(set(labels) - set(keys))
    if unlabelled or unscored:
        raise ScoresError(
            f"scores and test keys differ: {len(unscored)} test key(s) without scores {unscored[:3]}, "
            f"{len(unlabelled)} scored key(s) not in the test set {unlabelled[:3]}"
        )
    y = [labels[k] for k in keys]
    cats = [categories[k] for k in keys] if categories is not None else None
    report = evaluate_scores(y, videos.column("score").to_numpy(), cats, **kwargs)
    report["n_segments"] = int(pc.sum(videos.column("n_segments")).as_py())
    return report
