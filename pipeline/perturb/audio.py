"""Audio perturbations of a mono float32 track (16 kHz in the pipeline).

- ``snr``: additive white Gaussian noise, scaled so that the clip's signal-to-noise
  ratio (mean power of the whole track, silences included, over that of the drawn
  noise) is exactly the level in dB. A silent track is returned unchanged: there is
  no signal power to set the noise against. Nothing is clipped.
- ``mp3`` / ``aac`` / ``opus``: a codec round trip at the level in kbit/s
  (``pipeline.perturb.audio_codec``).
- ``band``: resampled to the level in kHz and back (``scipy.signal.resample_poly``,
  its Kaiser-windowed FIR), a telephone-like band limit.
- ``offset``: the audio moved by the level in video frames (25 fps: 640 samples
  at 16 kHz): positive delays it (silence in front), negative advances it (silence
  at the end); the length is kept.
"""
from __future__ import annotations

from collections.abc import Callable
from math import gcd

import numpy as np
from scipy.signal import resample_poly

from pipeline.media import FPS, SAMPLE_RATE, fit_length
from pipeline.perturb.audio_codec import CODECS, codec_round_trip
from pipeline.perturb.spec import PerturbSpec


def add_noise_snr(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus white Gaussian noise from ``rng`` at exactly ``snr_db`` over the whole clip."""
    x = audio.astype(np.float64)
    signal_power = float(np.mean(x**2)) if x.size else 0.0
    if signal_power == 0.0:
        return audio.astype(np.float32, copy=True)
    noise = rng.standard_normal(x.shape)
    # Scaled by the power of this draw, not the expected one, so the SNR is the level exactly.
    noise *= np.sqrt(signal_power / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return (x + noise).astype(np.float32)


def band_limit(audio: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` resampled from ``sample_rate`` to ``rate`` Hz and back, same length."""
    g = gcd(rate, sample_rate)
    low = resample_poly(audio.astype(np.float32), rate // g, sample_rate // g)
    back = resample_poly(low, sample_rate // g, rate // g)
    return fit_length(back.astype(np.float32), len(audio))


def shift_audio(audio: np.ndarray, frames: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> np.ndarray:
    """``audio`` moved by ``frames`` video frames (``sample_rate // fps`` samples each), padded
    with silence, same length: positive delays the audio behind the video."""
    n = frames * (sample_rate // fps)
    out = np.zeros_like(audio, dtype=np.float32)
    if abs(n) >= len(audio):
        return out
    if n >= 0:
        out[n:] = audio[: len(audio) - n]
    else:
        out[:n] = audio[-n:]
    return out


AudioFn = Callable[[np.ndarray, int, np.random.Generator, int], np.ndarray]
AUDIO_PERTURBATIONS: dict[str, AudioFn] = {
    "snr": lambda a, v, rng, sr: add_noise_snr(a, v, rng),
    "band": lambda a, v, rng, sr: band_limit(a, v * 1000, sr),
    "offset": lambda a, v, rng, sr: shift_audio(a, v, sr),
    **{c: (lambda a, v, rng, sr, c=c: codec_round_trip(a, c, v, sr)) for c in CODECS},
}


def apply_audio(
    audio: np.ndarray, kind: str, level: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Apply audio perturbation ``kind`` at ``level`` (its value: dB, kbit/s, kHz, frames) to a
    mono track; float32 of the same length. Raises PerturbSpecError for an unknown kind or level."""
    spec = PerturbSpec(kind, level)
    if spec.modality != "audio":
        raise ValueError(f"{spec} is not an audio perturbation")
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (N,), got shape {audio.shape}")
    return AUDIO_PERTURBATIONS[spec.kind](audio, int(spec.level), rng, sample_rate)  # type: ignore[arg-type]
