"""``avdf detect VIDEO --checkpoint C``: P(fake) of one video with a trained detector.

Runs the full preprocessing of the ``preprocess`` section (decode, face
tracking, crops, 16 kHz audio), scores every non-overlapping segment, and
prints the video-level P(fake) (mean over segments) and, where the detector
has them, the per-modality scores. A video without an audio stream is scored
with a silent track (as clips of video-only corpora are), and the result says
so under ``notes``.

Latency (``avdf bench detect`` prints the split): the video is decoded and its
face tracked in a child process while this one imports torch and loads the
detector's weights, so on two cores the two overlap; ``seconds`` reports each
part's own wall time (``load`` includes importing torch and the detectors), so
``load`` + ``preprocess`` can exceed ``total``. The face detector's native start-up log
lines are kept off stderr (``pipeline.native_logs``) unless ``--debug``.

The first run with a checkpoint (up to ``trace_max_mb``, on the CPU) scores with the eager
detector, then traces its ``predict`` and keeps the trace in the user cache when it gives the same
scores bit for bit (``detectors.traced``). Later runs load that trace with torch alone instead of
importing the detector's code (``transformers`` for CLIP and Whisper: about 2 s). The result's
``inference`` says which path scored.

``--timeline`` also prints each segment's span and score (``benchmark.timeline``);
``--localisation-json PATH`` writes them as AV-Deepfake1M's localisation JSON
(``{video file name: [[score, start_s, end_s], ...]}``, highest score first).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from pipeline.config import load_section
from pipeline.native_logs import filtered_stderr

T = TypeVar("T")

# Nothing is left to clean up when run() returns (the preprocessed clip lived in a temporary folder that is
# gone), so the console script skips the interpreter's slow teardown of torch & co (see benchmark.cli).
EXIT_WITHOUT_TEARDOWN = True


@dataclass
class DetectParams:
    """``detect`` section."""

    # None: the threshold the checkpoint chose on its validation split (its operating point), or 0.5 where
    # it carries none; a number overrides it (and the result says so).
    threshold: float | None = None
    batch_size: int = 16
    device: str = "auto"
    # Checkpoints up to this size get a traced copy in the user cache (detectors.traced); 0: never.
    # The tiny presets' are a few MB; a paper-size one would be copied whole for little gain, since
    # reading its weights, not importing code, is what its load costs.
    trace_max_mb: float = 256.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="an mp4 (or any file ffmpeg reads)")
    parser.add_argument("--checkpoint", required=True, type=Path, help="trained checkpoint (avdf train's best.pt)")
    parser.add_argument("--detector", help="must match the checkpoint's detector (a check, not a choice)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--threshold", type=float,
                        help="verdict threshold on P(fake) (default: the checkpoint's validation-chosen one)")
    parser.add_argument("--timeline", action="store_true",
                        help="also print each scored segment: start_s, end_s, P(fake)")
    parser.add_argument("--localisation-json", type=Path, metavar="PATH",
                        help="write the segments as AV-Deepfake1M's localisation JSON for this video")


def detect_video(video: Path, checkpoint: Path, params: DetectParams, preprocess: Any,
                 detector: str | None = None) -> dict[str, Any]:
    """Preprocess ``video`` and score it; returns scores, segment count and timings."""
    import numpy as np

    from pipeline.preprocess_clip import PreprocessOptions

    t0 = time.perf_counter()
    options = PreprocessOptions(**{f.name: getattr(preprocess, f.name) for f in fields(PreprocessOptions)})
    # Preprocessing runs in a child process while this one loads the weights: both are mostly Python-bound
    # (imports, model construction / frame reads, face tracking), so threads would share one GIL and, on a
    # busy pair of cores, finish no sooner than one after the other. The child starts first, before torch
    # is imported here, so that its own start-up (interpreter, mediapipe) overlaps that import too.
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        with tempfile.TemporaryDirectory(prefix="avdf-detect-") as tmp:
            pending = pool.apply_async(_preprocess_file, (Path(video), Path(tmp) / "clip.npz", options))
            # A bad checkpoint is reported first, as when it loaded before the video (the child is stopped).
            (model, point, segment_scores, untraced), load_s = _timed(_load_detector, checkpoint, detector, params)
            summary, preprocess_s = pending.get()
            with np.load(Path(tmp) / "clip.npz") as npz:
                arrays = {name: npz[name] for name in npz.files}
    finally:
        # Stopped, not asked to exit: its result is in, its file written and closed, and finalising
        # mediapipe & co would only take CPU from the scoring below.
        pool.terminate()
    t_ready = time.perf_counter()
    from detectors.loop import resolve_device
    from detectors.training import input_spec_to_segments
    from pipeline.loading.segments import DecodedClip, collate_segments, make_segment

    spec = input_spec_to_segments(model.inputs)
    n = int(summary["num_frames"])
    # A lone video has no labels; make_segment's targets are filled with zeros and never read.
    row = {"key": "detect/video", "video_id": "video", "label": 0, "video_fake": 0, "audio_fake": 0}
    clip = DecodedClip(key=row["key"], row=row, arrays={k: arrays[k] for k in spec.arrays()}, num_frames=n)
    segments = [make_segment(clip, start, spec, i) for i, start in enumerate(spec.eval_starts(n))]
    batches = [collate_segments(segments[i : i + params.batch_size]) for i in range(0, len(segments), params.batch_size)]
    device = resolve_device(params.device)
    rows = segment_scores(model.to(device), batches, device)
    inference = "traced (cached)" if untraced is None else "eager"
    scores = {name: float(np.mean([r[name] for r in rows])) for name in rows[0] if name != "key"}
    from benchmark.timeline import as_dicts, segment_timeline

    # A "groups" segment samples the whole clip: its span is the clip.
    length = n if spec.frame_sampling == "groups" else spec.num_frames
    timeline = segment_timeline(spec.eval_starts(n), length, n, [r["score"] for r in rows])
    threshold, threshold_source = verdict_threshold(params.threshold, point)
    t_end = time.perf_counter()
    seconds = {"load": round(load_s, 3), "preprocess": round(preprocess_s, 3),
               "score": round(t_end - t_ready, 3), "total": round(t_end - t0, 3),
               "preprocess_parts": summary["timings"]}
    if untraced is not None and untraced.entry is not None:
        inference = _trace_for_next_time(model, batches, untraced)
        seconds["trace"] = round(time.perf_counter() - t_end, 3)
    return {
        "video": str(video),
        "detector": model.name,
        "scores": scores,
        "verdict": "fake" if scores["score"] >= threshold else "real",
        "threshold": threshold,
        "threshold_source": threshold_source,
        "segments": len(segments),
        "timeline": as_dicts(timeline),
        "duration_s": n / 25,
        "face_fraction": summary.get("face_fraction"),
        "repairs": summary["repairs"],
        "notes": _notes(summary),
        "inference": inference,
        "seconds": seconds,
    }


def verdict_threshold(override: float | None, point: dict[str, Any] | None) -> tuple[float, str]:
    """(threshold, where it came from): an explicit one, else the checkpoint's validation-chosen one, else 0.5."""
    if override is not None:
        return float(override), "given (overrides the checkpoint's)"
    if point and point.get("threshold") is not None:
        return float(point["threshold"]), f"checkpoint ({point['rule']} on its validation split)"
    return 0.5, "default 0.5 (the checkpoint carries no operating point)"


@dataclass
class _Untraced:
    """An eager detector's checkpoint, and the cache file its trace may go to (None: not to be traced)."""

    checkpoint: dict[str, Any]
    entry: tuple[Path, str] | None  # (cache file, checkpoint SHA-256)


def _trace_cache(checkpoint: Path, params: DetectParams) -> Path | None:
    """The cache folder for this checkpoint's trace, or None when it is not to be traced (turned off,
    scoring on a GPU, or a checkpoint over ``trace_max_mb``)."""
    from detectors.loop import resolve_device
    from pipeline.user_cache import user_cache_dir

    if params.trace_max_mb <= 0 or resolve_device(params.device).type != "cpu" or not checkpoint.is_file():
        return None
    return user_cache_dir() if checkpoint.stat().st_size <= params.trace_max_mb * 2**20 else None


def _load_detector(checkpoint: Path, detector: str | None, params: DetectParams
                   ) -> tuple[Any, dict[str, Any] | None, Callable[..., Any], _Untraced | None]:
    """(the trained detector, its operating point, the segment scorer, None when it is a cached trace);
    the import of torch and the detectors counts as loading."""
    from benchmark.evaluate import load_trained, segment_scores

    entry = None
    cache = _trace_cache(checkpoint, params)
    if cache is not None:
        from detectors.traced import cache_entry, load_traced

        entry = cache_entry(cache, checkpoint)
        traced = load_traced(*entry)
        # --detector is checked against the registry by the eager path: a trace only answers for its own name.
        if traced is not None and detector in (None, traced.name, traced.meta.get("detector_spec")):
            return traced, traced.meta.get("operating_point"), segment_scores, None
    model, ckpt = load_trained(checkpoint, detector)
    return model, ckpt.get("operating_point"), segment_scores, _Untraced(ckpt, entry)


def _trace_for_next_time(model: Any, batches: list[dict[str, Any]], untraced: _Untraced) -> str:
    """Trace ``model`` and cache it when it scores as the eager one did; what ``inference`` reports."""
    import torch

    from detectors.traced import TraceMismatch, save_traced, trace_predict

    inputs = batches[0]["inputs"]
    # The video's own batch, one of 1 segment and one of n + 1: a size frozen into the trace shows.
    checks = [inputs, {k: v[:1] for k, v in inputs.items()},
              {k: torch.cat([v, v[:1]]) for k, v in inputs.items()}]
    path, digest = untraced.entry
    try:
        module = trace_predict(model, checks)
    except TraceMismatch as exc:
        return f"eager (not traced: {exc})"
    except Exception as exc:  # noqa: BLE001 - a detector TorchScript cannot trace is scored eagerly, as always
        return f"eager (not traced: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    ckpt = untraced.checkpoint
    save_traced(path, module, model, digest, {"operating_point": ckpt.get("operating_point"),
                                               "detector_spec": ckpt.get("detector_spec") or ckpt.get("detector")})
    return f"eager; traced for the next run ({path})"


def _preprocess_file(video: Path, out: Path, options: Any) -> tuple[dict[str, Any], float]:
    """The child's work: ``preprocess_clip`` into ``out``; (summary, its own wall seconds)."""
    from pipeline.preprocess_clip import preprocess_clip

    t0 = time.perf_counter()
    # A user's video-only file is scored, not refused: silence stands in for its audio.
    summary = preprocess_clip(video, out, options, allow_silent=True, silent_reason="the video has none")
    return summary, time.perf_counter() - t0


def _timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


def _notes(summary: dict[str, Any]) -> list[str]:
    """What a user must know to read the score (the repairs that change what the detector saw)."""
    notes = []
    if summary.get("silent_audio"):
        notes.append("no audio stream: scored with a silent track (audio cues carry no evidence)")
    return notes


def run(args: argparse.Namespace) -> int:
    params_path = args.params if Path(args.params).exists() else None
    params = load_section("detect", params_path)
    if getattr(args, "threshold", None) is not None:  # a Namespace built by hand may not carry it
        params.threshold = args.threshold
    with filtered_stderr(enabled=not getattr(args, "debug", False)):
        result = detect_video(args.video, args.checkpoint, params, load_section("preprocess", params_path),
                              args.detector)
    if getattr(args, "localisation_json", None) is not None:
        write_localisation(args.localisation_json, result)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    s = result["scores"]
    modal = ", ".join(f"{name.removesuffix('_score')} {value:.3f}" for name, value in s.items() if name != "score")
    print(f"{result['video']}: P(fake) = {s['score']:.3f} -> {result['verdict']} "
          f"({result['detector']}, {result['segments']} segments of {result['duration_s']:.1f} s"
          f"{'; ' + modal if modal else ''}; threshold {result['threshold']:.3f}, {result['threshold_source']}; "
          f"{result['seconds']['total']:.1f} s)")
    for note in result["notes"]:
        print(f"note: {note}")
    if getattr(args, "timeline", False):
        print("start_s\tend_s\tscore")
        for row in result["timeline"]:
            print(f"{row['start_s']:.2f}\t{row['end_s']:.2f}\t{row['score']:.4f}")
    return 0


def write_localisation(path: Path, result: dict[str, Any]) -> Path:
    """The video's segments as AV-Deepfake1M proposals, keyed by the video's file name."""
    from benchmark.localisation_io import write_proposals
    from benchmark.timeline import TimelineRow, as_proposals

    rows = [TimelineRow(**row) for row in result["timeline"]]
    return write_proposals(path, {Path(result["video"]).name: as_proposals(rows)})
