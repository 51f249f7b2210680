"""Whisper's log-mel front end, at the bottom layer where the loaders compute it.

The loaders (``pipeline.loading.segments``) compute mel features for mel-reading
detectors, and ``detectors.backbones.whisper`` re-exports ``log_mel`` as the
backbone's input features: one function, owned by the layer that both can import.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

SAMPLE_RATE = 16000
HOP_LENGTH = 160  # samples per mel frame; Whisper's stride-2 stem makes one encoder token per 2 frames (20 ms)
N_FFT = 400
N_SAMPLES_30S = 30 * SAMPLE_RATE


def log_mel(audio_16k: "np.ndarray | torch.Tensor", n_mels: int = 80, pad_to_30s: bool = True) -> "torch.Tensor":
    """Whisper's log-mel features (openai-whisper's filters and STFT) of 16 kHz mono audio.

    ``(N,)`` → ``(n_mels, frames)``; ``(B, N)`` → ``(B, n_mels, frames)``, each row
    normalised on its own (Whisper clamps at ``max - 8``, a per-clip statistic).
    ``pad_to_30s`` pads/trims to 480,000 samples (3,000 frames) as Whisper's full
    window needs; otherwise frames = N // 160 (10,240 samples → 64 frames).
    ValueError for audio that is neither 1-D nor 2-D.
    """
    import torch

    audio = torch.as_tensor(audio_16k, dtype=torch.float32)
    if audio.dim() not in (1, 2):
        raise ValueError(f"log_mel: audio must be (samples,) or (batch, samples), got shape {list(audio.shape)}")
    if pad_to_30s:
        n = audio.shape[-1]
        audio = audio[..., :N_SAMPLES_30S] if n >= N_SAMPLES_30S else torch.nn.functional.pad(audio, (0, N_SAMPLES_30S - n))
    if audio.dim() == 1:
        return _log_mel_spectrogram(audio, n_mels)
    return torch.stack([_log_mel_spectrogram(row, n_mels) for row in audio])


def _log_mel_spectrogram(audio: "torch.Tensor", n_mels: int) -> "torch.Tensor":
    """openai-whisper's ``whisper.audio.log_mel_spectrogram``, the same operations in the same order
    (tests/test_backbones_whisper.py checks it bit for bit). Not imported from there: the ``whisper``
    package's __init__ imports its transcription code and numba (0.15 s), and this runs at the start
    of every mel-reading process, ``avdf detect`` included."""
    import torch

    window = torch.hann_window(N_FFT).to(audio.device)
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    mel_spec = _mel_filters(n_mels).to(audio.device) @ magnitudes
    log_spec = torch.clamp(mel_spec, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


@functools.cache
def _mel_filters(n_mels: int) -> "torch.Tensor":
    """The mel filter bank that openai-whisper ships (``whisper/assets/mel_filters.npz``), found without
    importing the package."""
    import importlib.util
    from pathlib import Path

    import numpy as np
    import torch

    if n_mels not in (80, 128):
        raise ValueError(f"log_mel: Whisper ships mel filters for 80 and 128 bands, not {n_mels}")
    spec = importlib.util.find_spec("whisper")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("log_mel needs the openai-whisper package (its mel filter bank); pip install openai-whisper")
    with np.load(Path(spec.submodule_search_locations[0]) / "assets" / "mel_filters.npz", allow_pickle=False) as f:
        return torch.from_numpy(f[f"mel_{n_mels}"])
