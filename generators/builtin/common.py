"""What every built-in generator shares: loading inputs at 25 fps / 16 kHz, the face
backend, fitting the target's frames to the driving audio, and the labelled write."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generators.base import Generator, synthetic_metadata
from generators.cache import StageCache
from pipeline.errors import MediaError
from pipeline.media import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME, decode_audio, decode_video, probe, write_mp4

# A fake is encoded at the video bitrate of the clip it forges. At one fixed CRF a forged clip came out
# ~10 % bigger than its real clip (re-encoded pixels and a redrawn mouth cost bits): a container probe
# told the two apart by bitrate alone. x264's CRF trades rate for quality smoothly (about half the rate
# per 6 CRF steps), so a few encodes settle the rate within RATE_TOLERANCE; the CRF sequence depends
# only on the frames, so the same fake gets the same bytes.
BASE_CRF = 18.0
RATE_TOLERANCE = 0.03
MAX_ENCODES = 4


@dataclass
class Inputs:
    frames: np.ndarray  # (T, H, W, 3): the target's frames fitted to the driving audio's length
    audio: np.ndarray  # (N,) driving audio, 16 kHz mono
    num_frames: int
    frame_ids: np.ndarray  # (T,) which decoded frame of the target each of ``frames`` is


def frames_for(num_samples: int) -> int:
    """Video frames that cover ``num_samples`` of 16 kHz audio at 25 fps."""
    return max(1, int(round(num_samples / SAMPLES_PER_FRAME)))


def ping_pong_index(t: int, n: int) -> np.ndarray:
    """Indices of ``n`` frames taken from ``t``, bouncing back and forth when ``n`` > ``t``
    (a jump cut back to frame 0 would be a second, unwanted artefact)."""
    if t >= n:
        return np.arange(n)
    if t == 1:
        return np.zeros(n, np.int64)
    period = 2 * (t - 1)
    idx = np.arange(n) % period
    return np.where(idx < t, idx, period - idx)


def ping_pong(frames: np.ndarray, n: int) -> np.ndarray:
    """``n`` frames from ``frames``, bouncing back and forth when the audio is longer
    (see ``ping_pong_index``)."""
    return frames[:n] if len(frames) >= n else frames[ping_pong_index(len(frames), n)]


class BuiltinGenerator(Generator):
    """Base of the CPU generators: no weights, a face backend built once."""

    # 2: encoded at the forged clip's video bitrate; driven mouths open as far as the studio reals'
    # (face_geometry.MAX_LIP_DROP_IOD, jaw still)
    version = "2"

    def __init__(self, face_backend: str = "mediapipe", detect_every: int = 1, max_side: int | None = None,
                 seed: int = 0) -> None:
        self.face_backend_name = face_backend
        self.detect_every = detect_every
        self.max_side = max_side
        self.seed = seed
        self._backend = None
        self.cache: StageCache | None = None

    @property
    def backend(self):
        if self._backend is None:
            from generators.face_geometry import shared_face_backend

            self._backend = shared_face_backend(self.face_backend_name)
        return self._backend

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "face_backend": self.face_backend_name, "detect_every": self.detect_every,
                "max_side": self.max_side, "seed": self.seed}

    def use_cache(self, cache: StageCache | None) -> None:
        self.cache = cache

    def _size(self, target_video: Path) -> tuple[int, int] | None:
        if self.max_side is None:
            return None
        from pipeline.media import probe

        v = probe(target_video).video
        if v is None or max(v.width, v.height) <= self.max_side:
            return None
        s = self.max_side / max(v.width, v.height)
        return (int(v.width * s) // 2 * 2, int(v.height * s) // 2 * 2)

    def decode_audio(self, path: Path) -> np.ndarray:
        """A file's audio at 16 kHz mono, from the run's cache when another task decoded it."""
        return self._decoded("audio", path, lambda: decode_audio(path, SAMPLE_RATE), SAMPLE_RATE)

    def decode_video(self, path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
        """A file's frames at 25 fps (resized to ``size``), from the run's cache when another task
        decoded them."""
        return self._decoded("video", path, lambda: decode_video(path, FPS, size=size), FPS, size)

    def _decoded(self, kind: str, path: Path, decode: Callable[[], np.ndarray], *settings: Any) -> np.ndarray:
        return decode() if self.cache is None else self.cache.decoded(kind, path, decode, *settings)

    def load(self, target_video: Path, driving_audio: Path | None) -> Inputs:
        audio = self.decode_audio(driving_audio if driving_audio is not None else target_video)
        if len(audio) < SAMPLES_PER_FRAME:
            raise MediaError(driving_audio or target_video, f"driving audio too short ({len(audio)} samples)",
                             "too_short")
        n = frames_for(len(audio))
        video = self.decode_video(target_video, self._size(target_video))
        return Inputs(frames=ping_pong(video, n), audio=audio, num_frames=n,
                      frame_ids=ping_pong_index(len(video), n))

    def track(self, frames: np.ndarray, frame_ids: np.ndarray, video: Path) -> np.ndarray:
        """``track_landmarks`` of ``frames`` (decoded from ``video``; ``frame_ids``: which decoded
        frame each is), detecting only the frames no task of this run has detected yet."""
        from generators.face_geometry import track_landmarks

        if self.cache is None:
            return track_landmarks(frames, self.backend, video, self.detect_every, frame_ids=frame_ids)
        # The decoded size is part of the key: a file decoded at another size shows other pixels.
        key = self.cache.key("detections", self.cache.file_id(video), frames.shape[1:3], self.backend.describe())
        memo = self.cache.load_detections(key)
        known = set(memo)
        lms = track_landmarks(frames, self.backend, video, self.detect_every, frame_ids=frame_ids, memo=memo)
        if len(memo) > len(known):
            self.cache.store_detections(key, {i: v for i, v in memo.items() if i not in known})
        return lms

    def write(self, frames: np.ndarray, audio: np.ndarray, workdir: Path, source_keys: Sequence[str], *,
              like: Path | None, **extra: str) -> Path:
        """The labelled fake, encoded at the video bitrate of ``like`` (the clip it forges; None: BASE_CRF)."""
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        n = frames_for(len(audio))
        frames = ping_pong(np.asarray(frames), n) if len(frames) < n else np.asarray(frames)[:n]
        audio = np.asarray(audio, np.float32)[: n * SAMPLES_PER_FRAME]
        return write_at_rate_of(like, workdir / f"{self.name}.mp4", frames, audio,
                                synthetic_metadata(self, source_keys, **extra))


def _video_kbps(path: Path) -> float | None:
    video = probe(path).video
    return video.bit_rate_kbps if video is not None else None


def write_at_rate_of(like: Path | None, path: Path, frames: np.ndarray, audio: np.ndarray,
                     metadata: dict[str, str]) -> Path:
    """``write_mp4`` at the CRF whose video bitrate comes within RATE_TOLERANCE of ``like``'s
    (the last of MAX_ENCODES tries otherwise; BASE_CRF where ``like`` declares no rate)."""
    target = _video_kbps(Path(like)) if like is not None else None
    crf = BASE_CRF
    for _ in range(MAX_ENCODES):
        write_mp4(path, frames, audio, fps=FPS, sample_rate=SAMPLE_RATE, crf=crf, metadata=metadata)
        got = _video_kbps(path) if target else None
        if not got or abs(got / target - 1) <= RATE_TOLERANCE:
            break
        crf = float(np.clip(round(crf + 6 * np.log2(got / target), 1), 0, 51))
    return path
