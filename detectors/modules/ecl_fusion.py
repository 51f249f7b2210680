"""ECL's detector (seeds/003, Sec. III-A): "two cross-attention modules as introduced in [21], where
F_a and F_v serve as the source sequences for each module ... the outputs of each module are
concatenated and fed into a fully connected layer to perform binary detection."

Each module is TalkNet's post-norm attention layer (d=128, 8 heads, MLP,
residual + LayerNorm); one lets audio attend to video, the other video to
audio. The paper predicts one label per video, so the concatenated (T, 256)
sequence is averaged over time before the fully connected layer.
"""
from __future__ import annotations

import torch
from torch import nn

from detectors.modules.cross_attention import CrossAttentionBlock


class ECLCrossModalFusion(nn.Module):
    def __init__(self, dim: int = 128, num_heads: int = 8, dropout: float = 0.1, num_classes: int = 2) -> None:
        super().__init__()
        self.audio_attends_video = CrossAttentionBlock(dim, num_heads, dropout=dropout, norm_first=False)
        self.video_attends_audio = CrossAttentionBlock(dim, num_heads, dropout=dropout, norm_first=False)
        self.classifier = nn.Linear(2 * dim, num_classes)

    def forward(self, f_a: torch.Tensor, f_v: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T, dim) F_a and F_v -> ``logits`` (B, num_classes) and the fused (B, T, 2*dim) ``tokens``."""
        if f_a.shape != f_v.shape:
            raise ValueError(f"ECLCrossModalFusion: F_a {tuple(f_a.shape)} and F_v {tuple(f_v.shape)} differ")
        fused = torch.cat([self.audio_attends_video(f_a, f_v), self.video_attends_audio(f_v, f_a)], dim=-1)
        return {"logits": self.classifier(fused.mean(dim=1)), "tokens": fused}
