"""Files of temporal localisation: AV-Deepfake1M's proposals JSON and the corpora's ground truth.

Proposals (what a detector says), times in seconds, as AV-Deepfake1M's scorer reads them
(``ap_ar_1d(..., fps=1)``)::

    {"000001.mp4": [[confidence, start_s, end_s], ...], ...}

Ground truth: AV-Deepfake1M's ``{train,val}_metadata.json`` (field ``fake_segments``, or
``visual_fake_segments`` / ``audio_fake_segments`` for one modality) and LAV-DF's
``metadata.json`` (field ``fake_periods``): a list of objects with ``file`` and
``[[start_s, end_s], ...]``. Both keep the file's order, which decides ties in AP
(``benchmark.localisation``).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.atomic import write_bytes_atomic
from pipeline.errors import AvdfError

Proposal = tuple[float, float, float]  # (confidence, start_s, end_s)
Segment = tuple[float, float]  # (start_s, end_s)

AV1M_FIELD = "fake_segments"
LAVDF_FIELD = "fake_periods"
SHOW = 5


class LocalisationError(AvdfError):
    """A proposals or ground-truth file that cannot be scored (the message names the file and entry)."""


def _number(value: Any) -> float | None:
    # bool is an int to Python, never a time or a confidence to a user
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _segment_problem(start: float | None, end: float | None) -> str | None:
    if start is None or end is None:
        return "times must be numbers"
    if not (math.isfinite(start) and math.isfinite(end)):
        return "times must be finite"
    if start < 0:
        return "negative start time"
    if start >= end:
        return "start is not before end"
    return None


def _raise(path: Path, what: str, problems: list[str]) -> None:
    more = f" (and {len(problems) - SHOW} more)" if len(problems) > SHOW else ""
    raise LocalisationError(f"{path}: {len(problems)} bad {what}: {'; '.join(problems[:SHOW])}{more}")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LocalisationError(f"{path}: file does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LocalisationError(f"{path}: not readable JSON ({exc})") from None


# --------------------------------------------------------------------------- proposals

def check_proposals(data: Any, where: str | Path = "proposals") -> dict[str, list[Proposal]]:
    """Validate proposals as loaded from JSON; every problem is reported at once, each by video and row."""
    where = Path(where)
    if not isinstance(data, dict):
        raise LocalisationError(f"{where}: expected a JSON object {{file: [[confidence, start, end], ...]}}, "
                                f"got {type(data).__name__}")
    out: dict[str, list[Proposal]] = {}
    problems: list[str] = []
    for file, rows in data.items():
        if not isinstance(rows, list):
            problems.append(f"{file!r}: expected a list of [confidence, start, end], got {type(rows).__name__}")
            continue
        kept: list[Proposal] = []
        for i, row in enumerate(rows):
            if not isinstance(row, (list, tuple)) or len(row) != 3:
                problems.append(f"{file!r} row {i}: expected [confidence, start, end], got {row!r}")
                continue
            confidence, start, end = (_number(v) for v in row)
            if confidence is None or not math.isfinite(confidence):
                problems.append(f"{file!r} row {i}: confidence {row[0]!r} is not a finite number")
                continue
            problem = _segment_problem(start, end)
            if problem:
                problems.append(f"{file!r} row {i}: {problem} in {list(row)!r}")
                continue
            kept.append((confidence, start, end))  # type: ignore[arg-type]
        out[file] = kept
    if problems:
        _raise(where, "proposal(s)", problems)
    return out


def read_proposals(path: str | Path) -> dict[str, list[Proposal]]:
    """A localisation JSON ``{file: [[confidence, start_s, end_s], ...]}``, validated, in the file's order."""
    path = Path(path)
    return check_proposals(_load_json(path), path)


def write_proposals(path: str | Path, proposals: Mapping[str, Sequence[Sequence[float]]]) -> Path:
    """Write proposals as AV-Deepfake1M's localisation JSON, each video's sorted by confidence, highest first.

    Its scorer ranks a video's proposals in the order they are written (when matching them to fake
    segments and for AR@N), so the sort is what makes that order the detector's ranking; ties keep
    the given order. A video without proposals is refused: the scorer cannot read ``[]``
    (avdeepfake1m 0.0.4 panics loading it).
    """
    path = Path(path)
    checked = check_proposals({file: [list(p) for p in rows] for file, rows in proposals.items()}, path)
    empty = [file for file, rows in checked.items() if not rows]
    if empty:
        raise LocalisationError(f"{path}: {len(empty)} video(s) without proposals {empty[:SHOW]}: AV-Deepfake1M's "
                                "scorer cannot read an empty list")
    ordered = {file: [list(p) for p in sorted(rows, key=lambda p: -p[0])] for file, rows in checked.items()}
    write_bytes_atomic(path, (json.dumps(ordered) + "\n").encode())
    return path


# --------------------------------------------------------------------------- ground truth

def read_ground_truth(path: str | Path, field: str | None = None, split: str | None = None) -> dict[str, list[Segment]]:
    """``{file: [(start_s, end_s), ...]}`` from a metadata list of ``{"file": ..., field: [[s, e], ...]}``.

    ``field``: which segments (default: ``fake_segments`` for AV-Deepfake1M, ``fake_periods`` for
    LAV-DF, whichever the first entry has). ``split``: keep only entries whose ``split`` is this
    (LAV-DF's one file holds train, dev and test). A real video has no segments.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise LocalisationError(f"{path}: expected a JSON list of objects with 'file' (a metadata.json)")
    if field is None:
        first = data[0] if data else {}
        field = next((f for f in (AV1M_FIELD, LAVDF_FIELD) if f in first), None)
        if field is None:
            raise LocalisationError(f"{path}: entries have neither {AV1M_FIELD!r} (AV-Deepfake1M) nor "
                                    f"{LAVDF_FIELD!r} (LAV-DF); name the field")
    out: dict[str, list[Segment]] = {}
    problems: list[str] = []
    for i, entry in enumerate(data):
        if split is not None and entry.get("split") != split:
            continue
        file = entry.get("file")
        if not isinstance(file, str) or not file:
            problems.append(f"entry {i}: no 'file'")
            continue
        if file in out:
            problems.append(f"entry {i}: {file!r} appears twice")
            continue
        segments = entry.get(field)
        if not isinstance(segments, list):
            problems.append(f"entry {i} ({file!r}): no list {field!r}")
            continue
        kept: list[Segment] = []
        for j, seg in enumerate(segments):
            start, end = (_number(v) for v in seg) if isinstance(seg, list) and len(seg) == 2 else (None, None)
            problem = _segment_problem(start, end)
            if problem:
                problems.append(f"entry {i} ({file!r}) segment {j}: {problem} in {seg!r}")
                continue
            kept.append((start, end))  # type: ignore[arg-type]
        out[file] = kept
    if problems:
        _raise(path, "ground-truth entr(y/ies)", problems)
    if not out:
        raise LocalisationError(f"{path}: no entries" + (f" of split {split!r}" if split is not None else ""))
    return out


def read_av1m_metadata(path: str | Path, field: str = AV1M_FIELD, split: str | None = None) -> dict[str, list[Segment]]:
    """AV-Deepfake1M's ``{train,val}_metadata.json`` (``fake_segments``, or a modality's)."""
    return read_ground_truth(path, field, split)


def read_lavdf_metadata(path: str | Path, split: str | None = None) -> dict[str, list[Segment]]:
    """LAV-DF's ``metadata.json`` (``fake_periods``); ``split``: train, dev or test."""
    return read_ground_truth(path, LAVDF_FIELD, split)
