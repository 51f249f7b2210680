"""Where in a video each scored segment lies: ``avdf detect --timeline`` and its localisation JSON.

Segment i starts at frame ``starts[i]`` and covers ``length`` frames at 25 fps,
cut at the clip's end (a clip shorter than one segment is padded for the
detector, but only its own frames are real). Frames after the last full
segment are not scored, so the rows need not reach the end of the video.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.media import FPS


@dataclass(frozen=True)
class TimelineRow:
    """One scored segment: its span in seconds and its P(fake)."""

    start_s: float
    end_s: float
    score: float


def segment_timeline(starts: Sequence[int], length: int, clip_frames: int, scores: Sequence[float],
                     fps: float = FPS) -> list[TimelineRow]:
    """Rows in segment order; segment i covers frames [starts[i], min(starts[i] + length, clip_frames))."""
    if len(starts) != len(scores):
        raise ValueError(f"{len(starts)} segment starts but {len(scores)} scores")
    return [TimelineRow(start / fps, min(start + length, clip_frames) / fps, float(score))
            for start, score in zip(starts, scores)]


def as_dicts(rows: Sequence[TimelineRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]


def as_proposals(rows: Sequence[TimelineRow]) -> list[tuple[float, float, float]]:
    """The rows as AV-Deepfake1M proposals (confidence, start_s, end_s), segment order kept
    (``localisation_io.write_proposals`` ranks them)."""
    return [(row.score, row.start_s, row.end_s) for row in rows]
