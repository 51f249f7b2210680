"""Whisper's log-mel front end, at the bottom layer where the loaders compute it.

The loaders (``pipeline.loading.segments``) compute mel features for mel-reading
detectors, and ``detectors.backbones.whisper`` re-exports ``log_mel`` as the
backbone's input features: one function, owned by the layer that both can import.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

SAMPLE_RATE = 16000
HOP_LENGTH = 160  # samples per mel frame; Whisper's stride-2 stem makes one encoder token per 2 frames (20 ms)
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
    from whisper.audio import log_mel_spectrogram, pad_or_trim

    audio = torch.as_tensor(audio_16k, dtype=torch.float32)
    if audio.dim() not in (1, 2):
        raise ValueError(f"log_mel: audio must be (samples,) or (batch, samples), got shape {list(audio.shape)}")
    if pad_to_30s:
        audio = pad_or_trim(audio, N_SAMPLES_30S)
    if audio.dim() == 1:
        return log_mel_spectrogram(audio, n_mels=n_mels)
    return torch.stack([log_mel_spectrogram(row, n_mels=n_mels) for row in audio])
