"""AVPrompt's temporal alignment (seeds/002, Eqs. 12-13).

Two 1-D convolutions bring the visual (T, D_v) and audio (N_t/2, D_a) feature
sequences to (T, D_f): ``k_v = s_v = 1`` and ``k_a = s_a = N_t / (2T)``
(2 for 16 frames and 32 Whisper tokens).
"""
from __future__ import annotations

import torch
from torch import nn


class TemporalAlignment(nn.Module):
    def __init__(self, video_dim: int, audio_dim: int, fused_dim: int, num_frames: int, num_audio_tokens: int) -> None:
        super().__init__()
        if num_audio_tokens % num_frames:
            raise ValueError(
                f"TemporalAlignment: {num_audio_tokens} audio tokens do not split evenly into {num_frames} frames"
            )
        self.num_frames = num_frames
        self.num_audio_tokens = num_audio_tokens
        stride = num_audio_tokens // num_frames
        self.conv_v = nn.Conv1d(video_dim, fused_dim, kernel_size=1, stride=1)
        self.conv_a = nn.Conv1d(audio_dim, fused_dim, kernel_size=stride, stride=stride)

    def forward(self, f_v: torch.Tensor, f_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D_v), (B, N_t/2, D_a) -> f'_v, f'_a, each (B, T, D_f)."""
        if f_v.shape[1] != self.num_frames or f_a.shape[1] != self.num_audio_tokens:
            raise ValueError(
                f"TemporalAlignment: expected {self.num_frames} frames and {self.num_audio_tokens} audio tokens, "
                f"got f_v {tuple(f_v.shape)} and f_a {tuple(f_a.shape)}"
            )
        aligned_v = self.conv_v(f_v.transpose(1, 2)).transpose(1, 2)
        aligned_a = self.conv_a(f_a.transpose(1, 2)).transpose(1, 2)
        return aligned_v, aligned_a
