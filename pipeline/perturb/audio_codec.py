"""Lossy-codec round trips of a mono track through the system ffmpeg: encode, decode back.

Each codec goes into the container that records its encoder delay, so the decoded
track starts where the original does: MP3 (libmp3lame) in .mp3 (the LAME tag's
delay and padding), AAC (ffmpeg's native encoder) in .m4a (an edit list skips the
1024 priming samples; the last frame's padding is trimmed here), Opus (libopus)
in .ogg (its pre-skip). The result is cut or padded to the original length.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pipeline.errors import MediaError
from pipeline.ffmpeg_bin import ffmpeg_exe
from pipeline.media import SAMPLE_RATE, fit_length

# codec name in a spec -> (ffmpeg encoder, container suffix)
CODECS: dict[str, tuple[str, str]] = {
    "mp3": ("libmp3lame", ".mp3"),
    "aac": ("aac", ".m4a"),
    "opus": ("libopus", ".ogg"),
}
_QUIET = ("-nostdin", "-loglevel", "error", "-y")


def codec_round_trip(audio: np.ndarray, codec: str, kbps: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` (mono float32) encoded with ``codec`` at ``kbps`` kbit/s and decoded back,
    at the same rate and length."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; known: {', '.join(CODECS)}")
    encoder, suffix = CODECS[codec]
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="avdf-codec-") as tmp:
        raw, coded = Path(tmp) / "in.f32", Path(tmp) / f"coded{suffix}"
        raw.write_bytes(audio.tobytes())
        pcm = ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1"]
        _ffmpeg([*_QUIET, *pcm, "-i", str(raw), "-c:a", encoder, "-b:a", f"{kbps}k", str(coded)], codec)
        decoded = _ffmpeg([*_QUIET, "-i", str(coded), *pcm, "pipe:"], codec)
    return fit_length(np.frombuffer(decoded, np.float32).copy(), len(audio))


def _ffmpeg(args: list[str], codec: str) -> bytes:
    proc = subprocess.run([ffmpeg_exe(), *args], capture_output=True)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise MediaError(f"<{codec} round trip>", f"ffmpeg failed ({reason[-1] if reason else 'no message'})", "encode")
    return proc.stdout
