"""Trivial facts of one clip: the inputs of the shortcut probes (``detectors.probes``).

Published audio-visual deepfake corpora can be told real from fake by facts that
say nothing about a forgery: leading silence, duration, codec, bitrate, loudness,
where the face sits in the frame. A probe that separates a corpus' real and fake
clips from one group of these facts measures a shortcut that a detector may learn
instead of the forgery. The facts come from a preprocessed clip's arrays (16 kHz
``audio``, ``boxes`` and ``face_found`` at 25 fps) and from what preprocessing
recorded about its source file (``extra.preprocess.source``, see
``pipeline.preprocess_clip``).

``FACTS``, in this order (group = the probe that reads them):

==========  ========================  ===========================================================================
group       fact                      definition
==========  ========================  ===========================================================================
silence     leading_silence_s         seconds of silent 10 ms audio frames before the first non-silent one
silence     trailing_silence_s        seconds of silent 10 ms audio frames after the last non-silent one
duration    video_duration_s          frames / 25
duration    audio_duration_s          audio samples / 16,000
loudness    rms_dbfs                  RMS level of the whole clip's audio, dB re. full scale (a full-scale sine: -3.01)
loudness    peak_dbfs                 largest absolute sample, dB re. full scale
container   bit_rate_kbps             the source file's overall bitrate, kbit/s
container   video_bit_rate_kbps       the source video stream's bitrate, kbit/s, as its container declares it
container   audio_bit_rate_kbps       the source audio stream's bitrate, kbit/s, as its container declares it
container   source_fps                the source video's average frame rate (before resampling to 25 fps)
container   source_width              the source frame's displayed width, px
container   source_height             the source frame's displayed height, px
container   source_sample_rate        the source audio's sample rate, Hz (before resampling to 16 kHz)
container   source_channels           the source audio's channel count (before the mono downmix)
container   container_code            the container format, coded from ``CONTAINERS`` (see "Codes")
container   video_codec_code          the source video codec, coded from ``VIDEO_CODECS``
container   audio_codec_code          the source audio codec, coded from ``AUDIO_CODECS``
av-sync     av_start_offset_s         source audio stream start time minus video stream start time, s
av-sync     av_duration_diff_s        source audio stream duration minus video stream duration, s
av-sync     av_array_mismatch_s       preprocessed audio samples / 16,000 minus frames / 25, s
face-box    face_width_rel            median face box width over the frames where the face was found / frame width
face-box    face_height_rel           median face box height over those frames / frame height
face-box    face_centre_x_rel         median box centre x over those frames / frame width
face-box    face_centre_y_rel         median box centre y over those frames / frame height
face-box    face_size_cv              SD over those frames of the box side sqrt(w h), divided by its median
==========  ========================  ===========================================================================

Silence: a 10 ms frame (160 samples; the last one may be shorter) is silent when its
RMS is below the larger of ``SILENCE_RELATIVE_DB`` (-40 dB) under the clip's loudest
frame and the absolute floor ``SILENCE_FLOOR_DBFS`` (-70 dBFS). The relative part
follows the recording's own level (a quiet clip's pauses are quieter), the floor
makes digital silence (and the coding noise a lossy codec leaves in it) silent even
in a clip that is silent throughout, where both facts are the clip's duration.

Levels of silent or empty audio are ``LEVEL_FLOOR_DBFS`` (-120 dBFS), not minus infinity.

Codes: 0 = not recorded (no source facts: a clip preprocessed before they were kept,
a frame folder, or a file without that stream), 1 = a name not in the list, 2 + its
index in the list otherwise. The lists only ever grow at their end, so a code keeps
its meaning for a trained probe.

Missing facts are 0, never NaN: a source fact not recorded, a face never found
(every face-box fact), a frame size not recorded (the relative face-box facts).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
FPS = 25
SILENCE_FRAME = SAMPLE_RATE // 100  # 10 ms
SILENCE_RELATIVE_DB = -40.0
SILENCE_FLOOR_DBFS = -70.0
LEVEL_FLOOR_DBFS = -120.0

# ffprobe names; a container is named by the first of ffprobe's aliases ("mov,mp4,m4a,..." -> "mov").
CONTAINERS = ("mov", "matroska", "avi", "mpegts", "flv", "mpeg", "ogg", "asf")
VIDEO_CODECS = ("h264", "hevc", "mpeg4", "vp8", "vp9", "av1", "mjpeg", "mpeg2video", "rawvideo")
AUDIO_CODECS = ("aac", "mp3", "opus", "vorbis", "pcm_s16le", "flac", "ac3", "alac")
NOT_RECORDED, OTHER = 0, 1

FACT_GROUPS: dict[str, tuple[str, ...]] = {
    "silence": ("leading_silence_s", "trailing_silence_s"),
    "duration": ("video_duration_s", "audio_duration_s"),
    "loudness": ("rms_dbfs", "peak_dbfs"),
    "container": ("bit_rate_kbps", "video_bit_rate_kbps", "audio_bit_rate_kbps", "source_fps", "source_width",
                  "source_height", "source_sample_rate", "source_channels", "container_code", "video_codec_code",
                  "audio_codec_code"),
    "av-sync": ("av_start_offset_s", "av_duration_diff_s", "av_array_mismatch_s"),
    "face-box": ("face_width_rel", "face_height_rel", "face_centre_x_rel", "face_centre_y_rel", "face_size_cv"),
}
FACTS: tuple[str, ...] = tuple(name for names in FACT_GROUPS.values() for name in names)


def fact_indices(group: str) -> list[int]:
    """Positions in ``FACTS`` of one group's facts."""
    if group not in FACT_GROUPS:
        raise ValueError(f"unknown fact group {group!r}; groups: {list(FACT_GROUPS)}")
    return [FACTS.index(name) for name in FACT_GROUPS[group]]


def code(name: str | None, names: tuple[str, ...]) -> int:
    """A name's code in ``names`` (see the module docstring)."""
    if not name:
        return NOT_RECORDED
    name = name.split(",")[0]
    return names.index(name) + 2 if name in names else OTHER


def source_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    """``extra.preprocess.source`` of a Clip row ({} when not recorded); ``extra`` may be JSON text or a dict."""
    extra = row.get("extra")
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            return {}
    if not isinstance(extra, Mapping):
        return {}
    source = (extra.get("preprocess") or {}).get("source")
    return dict(source) if isinstance(source, Mapping) else {}


def _stated(source: Mapping[str, Any], key: str) -> float | None:
    value = source.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _number(source: Mapping[str, Any], key: str) -> float:
    value = _stated(source, key)
    return 0.0 if value is None else value


def _dbfs(level: float) -> float:
    return max(LEVEL_FLOOR_DBFS, 20.0 * float(np.log10(level))) if level > 0 else LEVEL_FLOOR_DBFS


def _frame_rms(audio: np.ndarray) -> np.ndarray:
    """RMS of each 10 ms frame (the last one over the samples it has)."""
    whole = len(audio) // SILENCE_FRAME * SILENCE_FRAME
    power = np.mean(np.square(audio[:whole].reshape(-1, SILENCE_FRAME), dtype=np.float64), axis=1)
    if whole < len(audio):
        power = np.append(power, np.mean(np.square(audio[whole:], dtype=np.float64)))
    return np.sqrt(power)


def speech_bounds(audio: np.ndarray) -> tuple[int, int] | None:
    """(first, end) sample of the sounding part of a 16 kHz clip: from its first to the end of its last
    10 ms frame above the silence threshold (the ``silence`` facts' rule); None for a silent clip."""
    if audio.size == 0:
        return None
    rms = _frame_rms(audio)
    threshold = max(rms.max() * 10 ** (SILENCE_RELATIVE_DB / 20), 10 ** (SILENCE_FLOOR_DBFS / 20))
    sound = np.flatnonzero(rms >= threshold)
    if sound.size == 0:
        return None
    return int(sound[0] * SILENCE_FRAME), min(len(audio), int((sound[-1] + 1) * SILENCE_FRAME))


def _silence(audio: np.ndarray) -> dict[str, float]:
    duration = len(audio) / SAMPLE_RATE
    bounds = speech_bounds(audio)
    if bounds is None:
        return {"leading_silence_s": duration, "trailing_silence_s": duration}
    # from the end of the last sounding frame (the last frame may be short: count samples, not frames)
    return {"leading_silence_s": bounds[0] / SAMPLE_RATE, "trailing_silence_s": (len(audio) - bounds[1]) / SAMPLE_RATE}


def _loudness(audio: np.ndarray) -> dict[str, float]:
    if audio.size == 0:
        return {"rms_dbfs": LEVEL_FLOOR_DBFS, "peak_dbfs": LEVEL_FLOOR_DBFS}
    return {
        "rms_dbfs": _dbfs(float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))),
        "peak_dbfs": _dbfs(float(np.max(np.abs(audio)))),
    }


def _container(source: Mapping[str, Any]) -> dict[str, float]:
    return {
        "bit_rate_kbps": _number(source, "bit_rate_kbps"),
        "video_bit_rate_kbps": _number(source, "video_bit_rate_kbps"),
        "audio_bit_rate_kbps": _number(source, "audio_bit_rate_kbps"),
        "source_fps": _number(source, "fps"),
        "source_width": _number(source, "width"),
        "source_height": _number(source, "height"),
        "source_sample_rate": _number(source, "sample_rate"),
        "source_channels": _number(source, "channels"),
        "container_code": float(code(source.get("format"), CONTAINERS)),
        "video_codec_code": float(code(source.get("video_codec"), VIDEO_CODECS)),
        "audio_codec_code": float(code(source.get("audio_codec"), AUDIO_CODECS)),
    }


def _difference(source: Mapping[str, Any], audio_key: str, video_key: str) -> float:
    # Only where the file states both: a start or a length it does not state is not zero.
    audio, video = _stated(source, audio_key), _stated(source, video_key)
    return audio - video if audio is not None and video is not None else 0.0


def _face_box(boxes: np.ndarray | None, found: np.ndarray | None, width: float, height: float) -> dict[str, float]:
    out = dict.fromkeys(FACT_GROUPS["face-box"], 0.0)
    if boxes is None or len(boxes) == 0:
        return out
    boxes = np.asarray(boxes, dtype=np.float64).reshape(len(boxes), 4)
    keep = np.isfinite(boxes).all(axis=1)
    if found is not None:
        keep &= np.asarray(found, dtype=bool).reshape(-1)[: len(boxes)]
    boxes = boxes[keep]
    if len(boxes) == 0:
        return out
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.sqrt(np.clip(w * h, 0.0, None))
    median_side = float(np.median(side))
    out["face_size_cv"] = float(np.std(side)) / median_side if median_side > 0 else 0.0
    if width > 0 and height > 0:
        out["face_width_rel"] = float(np.median(w)) / width
        out["face_height_rel"] = float(np.median(h)) / height
        out["face_centre_x_rel"] = float(np.median((boxes[:, 0] + boxes[:, 2]) / 2)) / width
        out["face_centre_y_rel"] = float(np.median((boxes[:, 1] + boxes[:, 3]) / 2)) / height
    return out


def _num_frames(arrays: Mapping[str, np.ndarray], row: Mapping[str, Any]) -> int:
    for name in ("face_found", "boxes"):
        if name in arrays:
            return len(arrays[name])
    return int(row.get("num_frames") or 0)


def clip_facts(arrays: Mapping[str, np.ndarray], row: Mapping[str, Any]) -> np.ndarray:
    """The clip's ``FACTS`` as a float32 vector (finite; missing facts are 0, see the module docstring).

    ``arrays``: the preprocessed clip's ``audio`` (16 kHz, float in [-1, 1]), ``boxes`` ((T, 4) x0, y0,
    x1, y1 in source pixels) and ``face_found`` ((T,) bool); any of them may be absent.
    ``row``: its Clip row, whose ``extra`` holds the source facts.
    """
    audio = np.asarray(arrays["audio"]).reshape(-1) if "audio" in arrays else np.zeros(0, np.float32)
    source = source_facts(row)
    frames = _num_frames(arrays, row)
    values: dict[str, float] = {
        **_silence(audio),
        "video_duration_s": frames / FPS,
        "audio_duration_s": len(audio) / SAMPLE_RATE,
        **_loudness(audio),
        **_container(source),
        "av_start_offset_s": _difference(source, "audio_start_s", "video_start_s"),
        "av_duration_diff_s": _difference(source, "audio_duration_s", "video_duration_s"),
        "av_array_mismatch_s": len(audio) / SAMPLE_RATE - frames / FPS,
        **_face_box(arrays.get("boxes"), arrays.get("face_found"), _number(source, "width"),
                    _number(source, "height")),
    }
    vector = np.array([values[name] for name in FACTS], dtype=np.float32)
    return np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)
