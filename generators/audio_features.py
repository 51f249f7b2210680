"""What drives a mouth: per-video-frame loudness and spectral features of speech.

One feature row per 25 fps frame (640 samples at 16 kHz), so frame t of the
fake lines up with samples [640 t, 640 (t+1)) of the driving audio. No ASR:
the mouth opening follows the loudness envelope, its width the spectral
balance (rounded vowels are dark, spread ones bright).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.media import SAMPLE_RATE, SAMPLES_PER_FRAME


@dataclass
class MouthDrive:
    opening: np.ndarray  # (T,) in [0, 1]: 0 closed, 1 widest
    width: np.ndarray  # (T,) in [-1, 1]: negative rounded, positive spread
    energy: np.ndarray  # (T,) frame RMS (linear)
    voiced: np.ndarray  # (T,) bool: above the speech threshold


def frame_rms(audio: np.ndarray, num_frames: int | None = None) -> np.ndarray:
    """RMS of each 640-sample frame (zero-padded to whole frames)."""
    n = num_frames if num_frames is not None else int(np.ceil(len(audio) / SAMPLES_PER_FRAME))
    padded = np.zeros(n * SAMPLES_PER_FRAME, np.float32)
    m = min(len(audio), len(padded))
    padded[:m] = audio[:m]
    frames = padded.reshape(n, SAMPLES_PER_FRAME)
    return np.sqrt((frames.astype(np.float64) ** 2).mean(1) + 1e-12)


def voiced_fraction(audio: np.ndarray, floor_db: float = -45.0, rel_db: float = -30.0) -> float:
    """Share of frames loud enough to be speech: above an absolute floor and
    within ``rel_db`` of the clip's loud frames (the clear-speech criterion)."""
    if len(audio) == 0:
        return 0.0
    db = 20 * np.log10(frame_rms(audio))
    ref = np.percentile(db, 95)
    return float(np.mean((db > floor_db) & (db > ref + rel_db)))


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(x) < 2:
        return x
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    return np.convolve(np.pad(x, width // 2, mode="edge"), kernel, mode="valid")[: len(x)]


def mouth_drive(audio: np.ndarray, num_frames: int, smooth: int = 3) -> MouthDrive:
    """Mouth opening and width per video frame from 16 kHz mono speech."""
    rms = frame_rms(audio, num_frames)
    db = 20 * np.log10(rms)
    top = np.percentile(db, 95) if num_frames else 0.0
    # 0 at 35 dB under the loud frames, 1 at their level: robust to recording gain.
    opening = np.clip((db - (top - 35.0)) / 35.0, 0.0, 1.0) ** 1.5
    voiced = (db > -45.0) & (db > top - 30.0)
    opening = np.where(voiced, opening, 0.0)
    # Spectral centroid per frame -> width.
    padded = np.zeros(num_frames * SAMPLES_PER_FRAME, np.float32)
    m = min(len(audio), len(padded))
    padded[:m] = audio[:m]
    spec = np.abs(np.fft.rfft(padded.reshape(num_frames, SAMPLES_PER_FRAME) * np.hanning(SAMPLES_PER_FRAME), axis=1))
    freqs = np.fft.rfftfreq(SAMPLES_PER_FRAME, 1 / SAMPLE_RATE)
    centroid = (spec * freqs).sum(1) / (spec.sum(1) + 1e-9)
    width = np.clip((centroid - 1500.0) / 1500.0, -1.0, 1.0) * voiced
    return MouthDrive(
        opening=_smooth(opening, smooth).astype(np.float32),
        width=_smooth(width, smooth).astype(np.float32),
        energy=rms.astype(np.float32),
        voiced=voiced,
    )


def rhythm(audio: np.ndarray, num_frames: int, seed: int = 0) -> np.ndarray:
    """(T, 3) head motion (yaw, pitch, roll in degrees) that follows the speech rhythm:
    slow seeded sway plus nods on loudness onsets, as one-shot talking heads produce."""
    rng = np.random.default_rng(seed)
    drive = mouth_drive(audio, num_frames, smooth=5)
    t = np.arange(num_frames) / 25.0
    phases = rng.uniform(0, 2 * np.pi, 3)
    sway = np.stack([4.0 * np.sin(2 * np.pi * 0.31 * t + phases[0]),
                     2.0 * np.sin(2 * np.pi * 0.23 * t + phases[1]),
                     1.5 * np.sin(2 * np.pi * 0.17 * t + phases[2])], 1)
    onset = np.clip(np.diff(drive.opening, prepend=drive.opening[:1]), 0, None)
    nod = _smooth(onset, 7) * 25.0
    sway[:, 1] += nod
    sway[:, 0] += 3.0 * (_smooth(drive.opening, 25) - drive.opening.mean())
    return sway.astype(np.float32)
