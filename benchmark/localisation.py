"""AV-Deepfake1M's temporal localisation metrics: AP at IoU thresholds and AR@N.

The defaults are the challenge's: AP at IoU 0.5, 0.75, 0.9, 0.95; AR@50, 30, 20,
10, 5, each averaged over IoU 0.5:0.05:0.95. Implemented from the definitions,
matching the conventions of the ``avdeepfake1m`` package's scorer (0.0.4,
``src/loc_1d.rs`` of ControlNet/AV-Deepfake1M), so the numbers agree with its
``ap_ar_1d`` (tests/test_localisation.py compares them where it is installed):

- IoU of two segments is their overlap over their hull; a proposal matches a
  fake segment only when the IoU is *strictly greater* than the threshold
  (``get_ap_values``: ``ious.mapv(|x| x > iou_threshold)``; ``calc_ar_values``:
  ``iou > threshold``).
- A video's proposals are taken in the order the submission lists them, never
  re-sorted by confidence, both when matching and for AR@N (``write_proposals``
  sorts by confidence before writing for that reason).
- AP matching is greedy and one-to-one, fake segment by fake segment in the
  ground truth's order: each takes the first proposal (in submission order)
  above the threshold that no earlier segment took (``get_ap_values``, the
  ``tp_indexes`` loop). A fake segment thus matches at most one proposal and a
  proposal at most one segment; unmatched proposals are false positives.
- AP pools every video: all proposals are ranked by confidence (a stable sort:
  ties keep the ground truth's video order, then the submission's order), and
  recall is over all fake segments (``calc_ap_scores``). Precision is
  interpolated as the running maximum from the lowest rank up and integrated
  over recall steps, with the scorer's curve: it starts at (recall 1, precision
  0) and has no (recall 0, precision 1) end, so the recall gained by the
  top-ranked proposal is not counted (``calc_ap_curve`` / ``calculate_ap``).
  Hence AP = sum over ranks k >= 1 of (recall_k - recall_(k-1)) * max precision
  at ranks >= k: a lone perfect proposal scores 0, as it does there.
- AR@N: a fake segment is recalled at a threshold when any of its video's first
  N proposals overlaps it above the threshold (not one-to-one: a proposal may
  recall several segments; ``cummax_2d`` of the IoUs). Recalled and missed
  segments are summed over all videos before dividing (``calc_ar_scores``), then
  averaged over the thresholds.
- Videos without fake segments (real videos) add their proposals to AP as false
  positives and nothing to AR.

Where this module decides what the scorer cannot: every ground-truth video
must have an entry in the proposals and every entry a ground-truth video (the
scorer panics on the first and silently ignores the second); a video listed
with ``[]`` (which the scorer cannot load) has all its fake segments missed;
with no fake segment at all the metrics are undefined and refused (the scorer
gives AP NaN). Arithmetic is float64 (the scorer's is float32: values agree to
~1e-6).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.localisation_io import LocalisationError, Proposal, Segment, check_proposals, read_proposals

AP_IOUS = (0.5, 0.75, 0.9, 0.95)
AR_NS = (50, 30, 20, 10, 5)
# Written out, not computed: 0.5 + 0.05 * i is not always the literal (and equality with a threshold matters).
AR_IOUS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def iou_matrix(proposals: Sequence[Proposal], segments: Sequence[Segment]) -> np.ndarray:
    """(n_proposals, n_segments) IoUs: overlap over the hull of the two segments."""
    if not proposals or not segments:
        return np.zeros((len(proposals), len(segments)))
    p = np.asarray([(s, e) for _, s, e in proposals], dtype=np.float64)
    g = np.asarray(segments, dtype=np.float64)
    inner = np.minimum(p[:, None, 1], g[None, :, 1]) - np.maximum(p[:, None, 0], g[None, :, 0])
    hull = np.maximum(p[:, None, 1], g[None, :, 1]) - np.minimum(p[:, None, 0], g[None, :, 0])
    return np.maximum(inner, 0.0) / hull


def _true_positives(ious: np.ndarray, threshold: float) -> np.ndarray:
    """Which proposals (rows, submission order) match a fake segment (columns, ground-truth order)."""
    taken = np.zeros(ious.shape[0], dtype=bool)
    for column in ious.T:
        free = np.nonzero((column > threshold) & ~taken)[0]
        if len(free):
            taken[free[0]] = True
    return taken


def _ap(confidence: np.ndarray, is_tp: np.ndarray, n_segments: int) -> float:
    order = np.argsort(-confidence, kind="stable")
    tp = np.cumsum(is_tp[order])
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / n_segments
    best_below = np.maximum.accumulate(precision[::-1])[::-1]  # max precision at this rank or lower
    return float(np.sum(np.diff(recall) * best_below[1:]))


def average_precision(proposals: Mapping[str, Sequence[Proposal]], truth: Mapping[str, Sequence[Segment]],
                      thresholds: Sequence[float] = AP_IOUS) -> dict[float, float]:
    """{IoU threshold: AP} over all videos of ``truth`` pooled (see the module docstring)."""
    ious = {file: iou_matrix(proposals[file], segments) for file, segments in truth.items()}
    confidence = np.asarray([p[0] for file in truth for p in proposals[file]], dtype=np.float64)
    n_segments = sum(len(s) for s in truth.values())
    out = {}
    for t in thresholds:
        is_tp = np.concatenate([_true_positives(ious[file], t) for file in truth]) if truth else np.zeros(0, bool)
        out[t] = _ap(confidence, is_tp, n_segments)
    return out


def average_recall(proposals: Mapping[str, Sequence[Proposal]], truth: Mapping[str, Sequence[Segment]],
                   ns: Sequence[int] = AR_NS, thresholds: Sequence[float] = AR_IOUS) -> dict[int, float]:
    """{N: recall of the first N proposals of each video, averaged over the IoU thresholds}."""
    n_segments = sum(len(s) for s in truth.values())
    out = {}
    for n in ns:
        recalled = np.zeros(len(thresholds))
        for file, segments in truth.items():
            ious = iou_matrix(list(proposals[file])[:n], segments)
            if ious.size:
                best = ious.max(axis=0)
                recalled += [(best > t).sum() for t in thresholds]
        out[n] = float(np.mean(recalled / n_segments))
    return out


def _check_videos(proposals: Mapping[str, Any], truth: Mapping[str, Any], where: str) -> None:
    missing = [f for f in truth if f not in proposals]
    unknown = [f for f in proposals if f not in truth]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(truth)} ground-truth video(s) have no entry: {missing[:5]}")
    if unknown:
        problems.append(f"{len(unknown)} video(s) are not in the ground truth: {unknown[:5]}")
    if problems:
        raise LocalisationError(f"{where}: " + "; ".join(problems))
    if not any(truth.values()):
        raise LocalisationError(f"{where}: the ground truth has no fake segment: AP and AR are undefined")


def score_localisation(predictions: str | Path | Mapping[str, Any], ground_truth: Mapping[str, Sequence[Segment]],
                       *, ap_thresholds: Sequence[float] = AP_IOUS, ar_ns: Sequence[int] = AR_NS,
                       ar_thresholds: Sequence[float] = AR_IOUS) -> dict[str, Any]:
    """AP and AR of a localisation JSON (path or loaded mapping) against ``{file: [(start_s, end_s), ...]}``.

    Returns ``{"ap": {iou: AP}, "ar": {n: AR}, "videos", "fake_segments", "proposals"}``; the
    ground truth's order is kept (it orders ties in AP).
    """
    if isinstance(predictions, (str, Path)):
        where = str(predictions)
        proposals = read_proposals(predictions)
    else:
        where = "proposals"
        proposals = check_proposals(dict(predictions), where)
    truth = {file: [(float(s), float(e)) for s, e in segments] for file, segments in ground_truth.items()}
    _check_videos(proposals, truth, where)
    return {
        "ap": average_precision(proposals, truth, ap_thresholds),
        "ar": average_recall(proposals, truth, ar_ns, ar_thresholds),
        "videos": len(truth),
        "fake_segments": sum(len(s) for s in truth.values()),
        "proposals": sum(len(proposals[f]) for f in truth),
    }
