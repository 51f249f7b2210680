"""Tiny debug talking clips (a drawn face whose mouth follows a speech-like sound).

For tests and benchmarks of the generators when no corpus is at hand: the
face is simple but is found and landmarked by the face backends, and the
audio has syllable-rate loudness bursts over a voiced harmonic source, so the
audio-driven mouth really opens and closes. Not a corpus (that is
``pipeline.studio``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.media import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME, write_mp4


def speech_like(seconds: float, f0: float = 120.0, seed: int = 0) -> np.ndarray:
    """Harmonic 'vowels' at ~4 syllables/s with pauses, float32 at 16 kHz."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    vibrato = 1 + 0.03 * np.sin(2 * np.pi * 5 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = np.zeros(n)
    pos = int(0.1 * SAMPLE_RATE)
    while pos < n:
        length = int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)
        seg = np.hanning(length) * rng.uniform(0.5, 1.0)
        env[pos : pos + length] = seg[: max(0, min(length, n - pos))]
        pos += length + int(rng.uniform(0.03, 0.15) * SAMPLE_RATE)
    audio = 0.25 * voice * env + 0.002 * rng.standard_normal(n)
    return audio.astype(np.float32)


def draw_face(size: int = 160, opening: float = 0.0, skin=(200, 160, 130), hair=(40, 30, 20),
              shift: tuple[int, int] = (0, 0), seed: int = 0) -> np.ndarray:
    """One RGB frame: background, neck, face, hair, eyes, brows, nose, mouth (``opening`` in [0, 1])."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 24, (max(1, size // 8), max(1, size // 8), 3)).astype(np.uint8)
    img = cv2.add(np.full((size, size, 3), (70, 90, 120), np.uint8), cv2.resize(noise, (size, size)))
    s = size / 192
    cx, cy = int(96 * s) + shift[0], int(100 * s) + shift[1]
    S = lambda v: max(1, int(v * s))  # noqa: E731
    cv2.ellipse(img, (cx, cy + S(70)), (S(40), S(40)), 0, 0, 360, skin, -1)
    cv2.ellipse(img, (cx, cy), (S(52), S(68)), 0, 0, 360, skin, -1)
    cv2.ellipse(img, (cx, cy - S(55)), (S(56), S(30)), 0, 180, 360, hair, -1)
    for dx in (-22, 22):
        ex, ey = cx + int(dx * s), cy - S(15)
        cv2.ellipse(img, (ex, ey), (S(11), S(6)), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(img, (ex, ey), S(4), (60, 40, 20), -1)
        cv2.line(img, (ex - S(12), ey - S(12)), (ex + S(12), ey - S(13)), (60, 40, 30), S(3))
    cv2.line(img, (cx, cy - S(8)), (cx - S(4), cy + S(14)), (170, 120, 100), S(2))
    cv2.ellipse(img, (cx, cy + S(16)), (S(8), S(3)), 0, 0, 360, (150, 100, 90), -1)
    h = S(3 + 12 * opening)
    cv2.ellipse(img, (cx, cy + S(36)), (S(18), h), 0, 0, 360, (150, 60, 60), -1)
    cv2.ellipse(img, (cx, cy + S(36)), (S(14), max(1, h - S(3))), 0, 0, 360, (40, 10, 10), -1)
    return cv2.GaussianBlur(img, (3, 3), 0)


def make_talking_clip(path: str | Path, seconds: float = 1.6, size: int = 160, seed: int = 0,
                      f0: float = 120.0, skin=(200, 160, 130)) -> Path:
    """Write a debug talking clip (25 fps, 16 kHz) whose mouth follows its own audio."""
    audio = speech_like(seconds, f0=f0, seed=seed)
    n = int(round(seconds * FPS))
    frames = []
    for t in range(n):
        seg = audio[t * SAMPLES_PER_FRAME : (t + 1) * SAMPLES_PER_FRAME]
        rms = float(np.sqrt(np.mean(seg**2))) if len(seg) else 0.0
        sway = (int(2 * np.sin(t / 9 + seed)), int(np.sin(t / 13)))
        frames.append(draw_face(size, min(1.0, rms / 0.12), skin=skin, shift=sway, seed=seed))
    return write_mp4(path, np.stack(frames), audio[: n * SAMPLES_PER_FRAME])


def talking_corpus(root: str | Path, identities: int = 3, utterances: int = 2, seconds: float = 0.8,
                   size: int = 128) -> list:
    """Debug talking clips ``root/id<i>/u<u>.mp4`` (one voice pitch per identity) as VoxCeleb2-style Clip rows."""
    from pipeline.clip import Clip

    root = Path(root)
    clips = []
    for i in range(identities):
        for u in range(utterances):
            rel = f"id{i}/u{u}.mp4"
            (root / f"id{i}").mkdir(parents=True, exist_ok=True)
            make_talking_clip(root / rel, seconds=seconds, size=size, seed=10 * i + u, f0=110 + 40 * i)
            clips.append(Clip(key=f"voxceleb2/id{i}/u{u}", corpus="voxceleb2", identity=f"id{i}",
                              video_id=f"id{i}/v{u}", path=rel))
    return clips
