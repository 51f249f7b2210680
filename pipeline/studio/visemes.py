"""Phone alignments -> per-frame mouth shapes (visemes) with co-articulation.

A mouth shape is (open, width): ``open`` in [0, 1] is the gap between the
lips relative to a wide-open vowel; ``width`` is the mouth width relative to
rest (< 1 rounded/protruded, > 1 spread). Both ARPAbet (pocketsphinx) and the
IPA of espeak/piper map to the same shapes, so every speech source drives
the renderer the same way. Public so that the lip-sync generators can drive
mouths from the same alignments.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

REST = (0.0, 1.0)
NEUTRAL = (0.3, 1.0)
BILABIALS = frozenset({"P", "B", "M"})

ARPABET_SHAPES: dict[str, tuple[float, float]] = {
    "AA": (1.0, 1.0), "AE": (0.85, 1.1), "AH": (0.7, 1.0), "AO": (0.75, 0.8), "AW": (0.8, 0.85),
    "AY": (0.85, 1.05), "EH": (0.6, 1.1), "ER": (0.4, 0.85), "EY": (0.5, 1.12), "IH": (0.4, 1.1),
    "IY": (0.3, 1.18), "OW": (0.55, 0.7), "OY": (0.6, 0.78), "UH": (0.35, 0.75), "UW": (0.25, 0.65),
    "P": (0.0, 1.0), "B": (0.0, 1.0), "M": (0.0, 1.0),
    "F": (0.1, 1.0), "V": (0.1, 1.0), "TH": (0.25, 1.02), "DH": (0.25, 1.02),
    "T": (0.22, 1.05), "D": (0.22, 1.05), "N": (0.22, 1.05), "L": (0.28, 1.05), "S": (0.18, 1.1),
    "Z": (0.18, 1.1), "SH": (0.22, 0.8), "ZH": (0.22, 0.8), "CH": (0.22, 0.8), "JH": (0.22, 0.8),
    "K": (0.3, 1.0), "G": (0.3, 1.0), "NG": (0.3, 1.0), "HH": (0.45, 1.0), "R": (0.25, 0.8),
    "W": (0.12, 0.62), "Y": (0.25, 1.1), "SIL": REST,
}

# espeak / piper IPA symbols -> the ARPAbet phone with the same mouth shape.
IPA_TO_ARPABET: dict[str, str] = {
    "ɑ": "AA", "a": "AA", "ɐ": "AH", "æ": "AE", "ʌ": "AH", "ə": "AH", "ɔ": "AO", "ɒ": "AO", "ɛ": "EH",
    "e": "EY", "ɚ": "ER", "ɝ": "ER", "ɜ": "ER", "ɪ": "IH", "ᵻ": "IH", "i": "IY", "o": "OW", "ʊ": "UH",
    "u": "UW", "p": "P", "b": "B", "m": "M", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "t": "T",
    "d": "D", "n": "N", "l": "L", "ɫ": "L", "s": "S", "z": "Z", "ɾ": "D", "ʃ": "SH", "ʒ": "ZH",
    "k": "K", "ɡ": "G", "g": "G", "ŋ": "NG", "x": "HH", "h": "HH", "ɹ": "R", "r": "R", "w": "W",
    "j": "Y", "ʔ": "T", "sil": "SIL",
}

_STEP_S = 0.005  # alignments are resampled at 200 Hz before smoothing
_COARTICULATION_S = 0.03  # Gaussian sigma: neighbouring phones blend over ~±60 ms


def to_arpabet(phone: str) -> str:
    """ARPAbet name (stress digits dropped) of an ARPAbet or IPA phone; '' if unknown."""
    p = phone.strip()
    up = p.upper().rstrip("012")
    if up in ARPABET_SHAPES:
        return up
    if p.lower() in ("sil", "sp", "spn", "<sil>", "") or p in ("^", "$", ".", ",", "?", "!"):
        return "SIL"
    return IPA_TO_ARPABET.get(p, IPA_TO_ARPABET.get(p[:1], ""))


def shape_of(phone: str) -> tuple[float, float]:
    return ARPABET_SHAPES.get(to_arpabet(phone), NEUTRAL)


def mouth_track(
    phones: Sequence[Sequence], num_frames: int, fps: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (open, width) arrays from [[phone, start_s, end_s], ...].

    Targets are sampled every 5 ms, blended with a Gaussian (co-articulation),
    averaged over each frame's 40 ms, and then bilabials force the lips shut
    in the frames where they sound, since smoothing alone would leave them ajar.
    """
    duration = num_frames / fps
    n = max(1, int(round(duration / _STEP_S)))
    t = (np.arange(n) + 0.5) * _STEP_S
    open_ = np.zeros(n)
    width = np.ones(n)
    for phone, start, end in phones:
        lo, hi = np.searchsorted(t, float(start)), np.searchsorted(t, float(end))
        o, w = shape_of(str(phone))
        open_[lo:hi], width[lo:hi] = o, w
    sigma = _COARTICULATION_S / _STEP_S
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    open_s = np.convolve(np.pad(open_, radius, mode="edge"), kernel, mode="valid")
    width_s = np.convolve(np.pad(width, radius, mode="edge"), kernel, mode="valid")
    per_frame = int(round(1 / fps / _STEP_S))
    pad = num_frames * per_frame - n
    open_s = np.pad(open_s, (0, max(0, pad)), mode="edge")[: num_frames * per_frame]
    width_s = np.pad(width_s, (0, max(0, pad)), mode="edge")[: num_frames * per_frame]
    open_f = open_s.reshape(num_frames, per_frame).mean(1)
    width_f = width_s.reshape(num_frames, per_frame).mean(1)
    for phone, start, end in phones:
        if to_arpabet(str(phone)) in BILABIALS:
            mid = 0.5 * (float(start) + float(end))
            frames = {int(mid * fps)}
            frames.update(range(int(np.ceil(float(start) * fps - 0.5)), int(np.floor(float(end) * fps - 0.5)) + 1))
            for f in frames:
                if 0 <= f < num_frames:
                    open_f[f] = 0.0
    return open_f.clip(0, 1), width_f
