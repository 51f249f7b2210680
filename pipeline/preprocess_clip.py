"""Preprocess one clip: 25 fps frames + 16 kHz mono audio -> tracked face, aligned crops, one .npz.

This is the per-clip work of the ``preprocess`` stage; the stage (Ray, manifests,
failures) lives in ``pipeline.preprocess``. Inputs that cannot become model
inputs raise ``MediaError`` with an ``error_type`` the stage records:

- from ``pipeline.media``: ``missing``, ``empty``, ``truncated``, ``not_media``, ``decode``, ``no_video``
- ``no_audio``: the file has no audio stream (unless the caller allows a silent track, as the
  stage does for clips of video-only corpora: ``extra.video_only``)
- ``decode_errors``: ffmpeg reported more than ``max_decode_errors`` errors while decoding the
  video (corrupt bytes in the stream: frames still come out, but smeared or blocky)
- ``too_short``: fewer than ``min_frames`` frames at 25 fps (less than one 16-frame segment)
- ``no_face``: the main face is found in fewer than ``min_face_fraction`` of the frames
- ``face_lost``: the face is found often enough but missing for a run longer than
  ``max_gap_frames`` (shorter runs are filled by interpolation)

A frame folder (IDForge v2: ``frames_ndarray.npy`` + ``<name>.mp3``, see
``pipeline.frame_folders``) gives its 16 stored frames, each with its own 640
audio samples; it is not decoded by ffmpeg.

Repairs, not failures: any frame rate (including variable) is resampled to a
constant 25 fps by ffmpeg's ``fps`` filter (frames dropped or duplicated), any
sample rate and channel count to 16 kHz mono, and the audio is trimmed or
zero-padded to exactly ``frames x 640`` samples. A rotation stored in the
file's metadata (phone clips) is applied, so frames are upright as a player
shows them. A clip without audio of a video-only corpus gets a silent track
(``allow_silent``). Each repair is listed in the returned summary under
``repairs``; the count of decode errors tolerated under ``decode_errors``.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import MediaError
from pipeline.frame_folders import is_frame_folder, read_frame_folder
from pipeline.media import (
    FPS,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    AudioCapture,
    DecodeReport,
    expected_frames,
    fit_length,
    iter_frames,
    probe,
    read_ahead,
)

# A file yielding fewer frames than this share of what its duration promises is truncated (as in media.decode_video).
MIN_DECODED_SHARE = 0.9


@dataclass
class PreprocessOptions:
    """Per-clip settings (the ``preprocess`` section of params.yaml carries the same names)."""

    face_backend: str = "mediapipe"
    face_backend_options: dict[str, Any] = field(default_factory=dict)
    face_size: int = 224
    gray_face_size: int = 112
    mouth_size: int = 96
    min_face_fraction: float = 0.9
    min_frames: int = 16
    max_gap_frames: int = 12
    detect_every: int = 1
    crop_smoothing: float = 2.0  # Gaussian sigma, in frames, of the crop alignment anchors
    max_buffer_mb: int = 1024  # frames kept between the detect and crop passes; beyond it, decode twice
    # ffmpeg error lines tolerated while decoding the video. 0: a clean file reports none (every
    # real clip of the test media does), while each error smears blocks until the next keyframe,
    # an artefact a detector would learn as "fake"; raise it for a corpus with benign errors.
    max_decode_errors: int = 0

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if self.max_decode_errors < 0:
            raise ValueError(f"max_decode_errors must be >= 0, got {self.max_decode_errors}")
        if not 0.0 <= self.min_face_fraction <= 1.0:
            raise ValueError(f"min_face_fraction must be in [0, 1], got {self.min_face_fraction}")


ARRAY_NAMES = ("face", "face_gray", "mouth", "audio", "landmarks", "boxes", "face_found")


def _repairs(info: Any) -> list[str]:
    out = []
    v, a = info.video, info.audio
    if v.rotation:
        out.append(f"rotation metadata {v.rotation} degrees applied: frames decoded upright ({v.width}x{v.height})")
    if v.vfr:
        out.append(f"variable frame rate (average {v.fps:.3f} fps) resampled to constant {FPS} fps")
    elif abs(v.fps - FPS) > 0.01:
        out.append(f"frame rate {v.fps:.3f} fps resampled to {FPS} fps")
    if a is not None and a.sample_rate != SAMPLE_RATE:  # no stream: a silent track, listed by the caller
        out.append(f"audio resampled from {a.sample_rate} Hz to {SAMPLE_RATE} Hz")
    if a is not None and a.channels != 1:
        out.append(f"audio downmixed from {a.channels} channels to mono")
    return out


def _check_decode(path: Path, report: DecodeReport, options: PreprocessOptions) -> None:
    if report.errors > options.max_decode_errors:
        raise MediaError(
            path,
            f"corrupt video stream: ffmpeg reported {report.errors} decode errors (max_decode_errors "
            f"{options.max_decode_errors}); first: {report.first_error}",
            "decode_errors",
        )


def _check_face(path: Path, track: Any, options: PreprocessOptions, backend_name: str) -> None:
    ran = int(track.detected_on.sum())
    hits = int((track.found & track.detected_on).sum())
    start, stop = track.longest_gap
    if track.main_track is None:
        raise MediaError(path, f"no face found in any of {ran} frames (backend {backend_name})", "no_face")
    if track.face_fraction < options.min_face_fraction:
        raise MediaError(
            path,
            f"face found in only {hits} of {ran} frames ({track.face_fraction:.0%}; need "
            f"{options.min_face_fraction:.0%}, backend {backend_name}); longest run without it: "
            f"{stop - start} frames from frame {start}",
            "no_face",
        )
    if stop - start > options.max_gap_frames:
        raise MediaError(
            path,
            f"face lost for {stop - start} frames ({(stop - start) / FPS:.2f} s, frames {start}-{stop - 1}); "
            f"at most {options.max_gap_frames} missing frames in a row are filled by interpolation",
            "face_lost",
        )


def preprocess_clip(
    video_path: str | Path,
    out_path: str | Path,
    options: PreprocessOptions | None = None,
    backend: Any = None,
    allow_silent: bool = False,
    silent_reason: str = "video-only corpus",
    face_track: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Decode, track the main face, crop, and write ``out_path`` (.npz) atomically; return a summary.

    Arrays written (T frames at 25 fps): ``face`` (T, S, S, 3) uint8 RGB,
    ``face_gray`` (T, s, s) uint8, ``mouth`` (T, m, m) uint8, ``audio``
    (T*640,) float32 16 kHz mono, ``landmarks`` (T, 68, 2) float32 in
    source-frame pixels (iBUG layout, see ``pipeline.faces.base``; gaps
    interpolated), ``boxes`` (T, 4) float32, ``face_found`` (T,) bool (the face
    was detected in that very frame; False where interpolated or not run).

    Pass ``backend`` (a built ``FaceBackend``) to reuse loaded models across clips.
    With ``allow_silent`` (a clip of a video-only corpus, which an audio-visual
    detector must still score) a file without an audio stream gets T*640 zeros
    instead of failing ``no_audio``; the repair says so, with ``silent_reason``.

    ``face_track`` (``landmarks``, ``boxes`` and ``face_found`` of these very frames, e.g. the clean
    clip's for a perturbed copy of it) skips face detection: the crops are cut where the track says.
    """
    from pipeline.faces import make_face_backend
    from pipeline.faces.crops import CropSizes, CropWriter
    from pipeline.faces.track import given_track, track_faces

    options = options or PreprocessOptions()
    path, out_path = Path(video_path), Path(out_path)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    t = time.perf_counter()
    audio: np.ndarray | None = None
    capture: AudioCapture | None = None  # a media file's audio, decoded beside its frames
    if is_frame_folder(path):
        # IDForge v2: 16 frames in 4 groups, each group with its own audio window (pipeline.frame_folders).
        folder_frames, audio = read_frame_folder(path)
        info, promised = None, len(folder_frames)
        size = (folder_frames.shape[2], folder_frames.shape[1])
        repairs = ["frame folder: 16 frames in 4 evenly spaced groups of 4, each with its own audio window"]

        def frames_of(report: DecodeReport | None = None, audio: AudioCapture | None = None) -> Any:
            yield from folder_frames
    else:
        info = probe(path)
        if info.video is None:
            raise MediaError(path, "no video stream", "no_video")
        if info.audio is None and not allow_silent:
            raise MediaError(path, "no audio stream (audio-visual preprocessing needs one)", "no_audio")
        duration = info.video.duration_s or info.duration_s
        promised = expected_frames(duration)
        if 0 < promised < options.min_frames:
            raise MediaError(
                path, f"too short: {duration:.2f} s = {promised} frames at {FPS} fps; need at least "
                f"{options.min_frames} (one segment)", "too_short",
            )
        # The audio comes from the frames' ffmpeg run (one process start less per clip); a broken
        # audio stream fails once that run ends. No stream (allowed): silence, sized below.
        capture = AudioCapture() if info.audio is not None else None
        size, repairs = (info.video.width, info.video.height), _repairs(info)

        def frames_of(report: DecodeReport | None = None, audio: AudioCapture | None = None) -> Any:
            return iter_frames(path, info=info, report=report, audio=audio)
    timings["probe_s"] = time.perf_counter() - t

    if backend is None and face_track is None:
        t = time.perf_counter()
        backend = make_face_backend(options.face_backend, **options.face_backend_options)
        timings["backend_load_s"] = time.perf_counter() - t
    backend_name = "given face track" if face_track is not None else getattr(backend, "name", type(backend).__name__)
    detect_every = options.detect_every if face_track is None else 0

    frame_bytes = size[0] * size[1] * 3
    keep_frames = promised * frame_bytes <= options.max_buffer_mb * 2**20
    frames: list[np.ndarray] = []
    detections: list[Any] = []
    detect_s = 0.0
    t = time.perf_counter()
    last = None
    decode = DecodeReport()
    for i, frame in enumerate(read_ahead(frames_of(decode, capture))):
        last = frame
        if keep_frames:
            frames.append(frame)
        if detect_every and i % detect_every == 0:
            t_det = time.perf_counter()
            detections.append(backend.detect(frame))
            detect_s += time.perf_counter() - t_det
        else:
            detections.append(None)
    if detect_every and last is not None and detections[-1] is None:
        # Always detect on the last frame so the end of the clip is interpolated, not extrapolated.
        t_det = time.perf_counter()
        detections[-1] = backend.detect(last)
        detect_s += time.perf_counter() - t_det
    timings["decode_detect_s"] = time.perf_counter() - t
    timings["detect_s"] = detect_s
    if capture is not None:
        audio = capture.samples

    num_frames = len(detections)
    if num_frames == 0:
        raise MediaError(path, "video stream has no decodable frames (truncated or corrupt)", "truncated")
    if num_frames < MIN_DECODED_SHARE * promised:
        raise MediaError(path, f"truncated video: decoded {num_frames} of {promised} expected frames", "truncated")
    _check_decode(path, decode, options)  # after the truncation check: a cut file is "truncated", not corrupt
    if num_frames < options.min_frames:
        raise MediaError(
            path, f"too short: {num_frames} frames at {FPS} fps; need at least {options.min_frames} (one segment)",
            "too_short",
        )

    t = time.perf_counter()
    if face_track is None:
        track = track_faces(detections, size)
        _check_face(path, track, options, backend_name)
    else:
        track = given_track(face_track["landmarks"], face_track["boxes"], face_track["face_found"])
        if track.num_frames != num_frames:
            raise MediaError(path, f"{num_frames} frames, but the given face track has {track.num_frames}",
                             "track_mismatch")
    timings["track_s"] = time.perf_counter() - t

    t = time.perf_counter()
    sizes = CropSizes(options.face_size, options.gray_face_size, options.mouth_size)
    writer = CropWriter(track.landmarks, sizes, sigma=options.crop_smoothing)
    source = frames if keep_frames else frames_of()
    for i, frame in enumerate(source):
        if i >= num_frames:
            break
        writer.add(i, frame)
    del frames
    timings["crop_s"] = time.perf_counter() - t

    num_samples = num_frames * SAMPLES_PER_FRAME
    if decode.errors:
        repairs.append(f"{decode.errors} video decode errors tolerated (max_decode_errors "
                       f"{options.max_decode_errors}); first: {decode.first_error}")
    if audio is None:
        audio = np.zeros(num_samples, np.float32)
        repairs.append(f"no audio stream: silent track ({silent_reason})")
    elif len(audio) != num_samples:
        what = "trimmed" if len(audio) > num_samples else "zero-padded"
        repairs.append(f"audio {what} from {len(audio)} to {num_samples} samples (frames x {SAMPLES_PER_FRAME})")
    arrays = {
        "face": writer.face,
        "face_gray": writer.face_gray,
        "mouth": writer.mouth,
        "audio": fit_length(audio, num_samples).astype(np.float32, copy=False),
        "landmarks": track.landmarks.astype(np.float32, copy=False),
        "boxes": track.boxes.astype(np.float32, copy=False),
        "face_found": track.found,
    }
    t = time.perf_counter()
    with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # uncompressed: crops barely compress and loading speed matters
    timings["write_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t_start

    describe = backend.describe() if hasattr(backend, "describe") else {"name": backend_name}
    return {
        "path": str(path),
        "out": str(out_path),
        "num_frames": num_frames,
        "num_samples": num_samples,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "face_fraction": round(track.face_fraction, 4),
        "frames_without_face": int((track.detected_on & ~track.found).sum()),
        "interpolated_frames": int((~track.found).sum()),
        "silent_audio": info is not None and info.audio is None,
        "decode_errors": decode.errors,
        "first_decode_error": decode.first_error,
        "track": track.summary(),
        "backend": describe,
        "options": asdict(options),
        "source": _source_summary(info, size),
        "repairs": repairs,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "frames_per_s": round(num_frames / timings["total_s"], 2) if timings["total_s"] > 0 else None,
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _source_summary(info: Any, size: tuple[int, int]) -> dict[str, Any]:
    """What the source file was, before the repairs made every clip alike: container, codecs,
    bitrates, each stream's start and duration. Corpora differ in these between real and fake
    clips (another encoder wrote the fakes), so they are recorded for the shortcut probes
    (``pipeline.clip_facts``). None where the file does not say."""
    if info is None:  # a frame folder: frames sampled from the clip, not a stream
        return {"width": size[0], "height": size[1], "layout": "frame folder (4x4)"}
    v, a = info.video, info.audio
    return {
        "width": v.width,
        "height": v.height,
        "fps": round(v.fps, 3),
        "vfr": v.vfr,
        "rotation": v.rotation,
        "sample_rate": a.sample_rate if a else None,
        "channels": a.channels if a else None,
        "format": info.format,
        "duration_s": _rounded(info.duration_s, 4),
        "bit_rate_kbps": _rounded(info.bit_rate_kbps, 2),
        "video_codec": v.codec,
        "video_bit_rate_kbps": _rounded(v.bit_rate_kbps, 2),
        "video_start_s": _rounded(v.start_time_s, 4),
        "video_duration_s": _rounded(v.duration_s, 4),
        "audio_codec": a.codec if a else None,
        "audio_bit_rate_kbps": _rounded(a.bit_rate_kbps, 2) if a else None,
        "audio_start_s": _rounded(a.start_time_s, 4) if a else None,
        "audio_duration_s": _rounded(a.duration_s, 4) if a else None,
    }


def load_clip_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read a preprocessed clip's arrays back (all of ``ARRAY_NAMES``)."""
    with np.load(path) as data:
        missing = [n for n in ARRAY_NAMES if n not in data.files]
        if missing:
            raise MediaError(path, f"preprocessed clip lacks arrays {missing}", "bad_arrays")
        return {n: data[n] for n in ARRAY_NAMES}
