"""Natural head motion and blinks for one clip (seeded, smooth, small)."""
from __future__ import annotations

import numpy as np

# Peak amplitudes: yaw, pitch, roll (degrees); tx, ty (pixels); scale (fraction).
_AMPLITUDE = np.array([5.0, 3.0, 2.0, 3.0, 2.0, 0.015])
_BLINK_PROFILE = np.array([0.35, 0.85, 1.0, 0.7, 0.35, 0.1])  # closure over six 40 ms frames
_MEAN_BLINK_GAP_S = 3.2


def head_pose(rng: np.random.Generator, num_frames: int, speech_open: np.ndarray, fps: int = 25) -> np.ndarray:
    """(num_frames, 6) poses: a sum of slow random sinusoids per axis plus small nods while speaking."""
    t = np.arange(num_frames) / fps
    pose = np.zeros((num_frames, 6))
    for axis, amp in enumerate(_AMPLITUDE):
        for _ in range(3):
            freq = rng.uniform(0.08, 0.6)
            pose[:, axis] += amp / 3 * rng.uniform(0.4, 1.0) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    # Speakers nod slightly with their syllables (smoothed so it is not a tremor).
    kernel = np.hanning(9)
    nod = np.convolve(np.pad(speech_open, 4, mode="edge"), kernel / kernel.sum(), mode="valid")
    pose[:, 1] += 1.2 * nod
    pose[:, 5] += 1.0
    return pose


def blinks(rng: np.random.Generator, num_frames: int, fps: int = 25) -> np.ndarray:
    """Per-frame eyelid closure in [0, 1]: blinks at exponential intervals."""
    closure = np.zeros(num_frames)
    t = rng.uniform(0.3, 2.0)
    while True:
        start = int(t * fps)
        if start >= num_frames:
            break
        seg = _BLINK_PROFILE[: num_frames - start]
        closure[start: start + len(seg)] = np.maximum(closure[start: start + len(seg)], seg)
        t += 0.4 + rng.exponential(_MEAN_BLINK_GAP_S)
    return closure
