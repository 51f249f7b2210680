"""Describe a media file in-process with libav (PyAV), in the shape of ``ffprobe -show_format -show_streams -of json``.

Every stage probes every clip it reads, often twice (a perturbed copy, a generator's
output), and Debian's ffprobe spends ~80 ms of CPU loading 215 shared libraries before
it reads a byte: ~2,500 starts were ~200 CPU-s of the default DAG. Opening the file with
the libav libraries that the pinned PyAV wheel links statically takes ~2 ms.

``probe_json`` fills the fields ``pipeline.media`` reads, from the same libavformat
structures ffprobe prints them from: the container's ``format_name``, ``duration``,
``size``, ``bit_rate`` and ``tags``; per stream ``codec_type``, ``codec_name`` (the codec
descriptor's name, as ffprobe gives it: ``av1``, never the decoder ``libdav1d``),
``width``, ``height``, ``avg_frame_rate``, ``r_frame_rate``, ``nb_frames``, ``duration``,
``start_time``, ``bit_rate``, ``sample_rate``, ``channels``, ``disposition.attached_pic``
and ``tags``. Values ffprobe leaves out as N/A (an unknown duration, a zero frame count)
are left out here too; times are formatted as ffprobe formats them (``%f``).

The display matrix of a rotated phone clip is stream side data that PyAV does not
expose; the decoder copies it onto every frame, so the rotation is read from the first
decoded frame (``side_data_list[0].rotation``, counter-clockwise like ffprobe's). A file
whose first frame cannot be decoded is reported unrotated, as ffprobe reports a file
without a display matrix.
"""
from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

_LOG_LEVEL_LOCK = threading.Lock()


class ProbeFailed(Exception):
    """libav could not open the file as media; ``reason`` is libav's own account (its log and error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def probe_json(path: str | Path) -> dict[str, Any]:
    """``{"format": {...}, "streams": [...]}`` as ffprobe prints them (see the module docstring)."""
    import av

    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError):
        raise ProbeFailed(_failure_reason(path)) from None
    with container:
        streams = [_stream(container, s) for s in container.streams]
        fmt: dict[str, Any] = {
            "format_name": container.format.name,
            "size": str(container.size),
            "tags": dict(container.metadata),
        }
        if container.duration is not None:
            fmt["duration"] = _seconds(Fraction(container.duration, 1_000_000))
        if container.bit_rate:
            fmt["bit_rate"] = str(container.bit_rate)
    return {"format": fmt, "streams": streams}


def _failure_reason(path: str | Path) -> str:
    """libav's log lines and error for a file it cannot open, from a second try with its log on.

    The telling line ("moov atom not found") is only in libav's log, which PyAV keeps off; the
    log level is process-wide, so it is raised only here, on the rare failing file, under a lock.
    """
    import av
    import av.logging

    with _LOG_LEVEL_LOCK:
        level = av.logging.get_level()
        av.logging.set_level(av.logging.ERROR)
        try:
            with av.logging.Capture() as logs:
                try:
                    av.open(str(path), mode="r").close()
                    error = "opened on the second try"
                except (av.FFmpegError, OSError, ValueError) as exc:
                    error = str(exc)
        finally:
            av.logging.set_level(level)
    lines = [str(message).strip() for _level, _name, message in logs if str(message).strip()]
    return "\n".join([*lines, error])


def _stream(container: Any, stream: Any) -> dict[str, Any]:
    import av

    cc = stream.codec_context
    codec = getattr(cc, "codec", None)
    attached_pic = av.stream.Disposition.attached_pic in stream.disposition
    out: dict[str, Any] = {
        "codec_type": stream.type,
        "codec_name": codec.canonical_name if codec is not None else "?",
        "disposition": {"attached_pic": int(attached_pic)},
        "tags": dict(stream.metadata),
    }
    tb = stream.time_base
    if stream.duration is not None and tb is not None:
        out["duration"] = _seconds(stream.duration * tb)
    if stream.start_time is not None and tb is not None:
        out["start_time"] = _seconds(stream.start_time * tb)
    if stream.frames:
        out["nb_frames"] = str(stream.frames)
    if getattr(cc, "bit_rate", None):
        out["bit_rate"] = str(cc.bit_rate)
    if stream.type == "video":
        out.update(width=cc.width, height=cc.height, avg_frame_rate=_ratio(stream.average_rate),
                   r_frame_rate=_ratio(stream.base_rate))
        # A cover picture has no display matrix, and nothing worth decoding.
        rotation = 0 if attached_pic else _first_frame_rotation(container, stream)
        if rotation:
            out["side_data_list"] = [{"side_data_type": "Display Matrix", "rotation": rotation}]
    elif stream.type == "audio":
        out.update(sample_rate=str(cc.sample_rate), channels=cc.channels)
    return out


def _first_frame_rotation(container: Any, stream: Any) -> int:
    import av

    try:
        for frame in container.decode(stream):
            return int(round(getattr(frame, "rotation", 0) or 0))
    except (av.FFmpegError, ValueError):
        pass
    return 0


def _ratio(rate: Fraction | None) -> str:
    """ffprobe's ``num/den`` (``0/0`` when unknown)."""
    if not rate:
        return "0/0"
    return f"{rate.numerator}/{rate.denominator}"


def _seconds(value: Fraction | float) -> str:
    return f"{float(value):f}"
