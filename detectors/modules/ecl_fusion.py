"""ECL's detector (seeds/003, Sec. III-A): "two cross-attention modules as introduced in [21], where
F_a and F_v serve as the source sequences for each module ... the outputs of each module are
concatenated and fed into a fully connected layer to perform binary detection."

[21] is TalkNet. Its attention layer ``forward(src, tar)`` takes the *target* as the
query and the *source* as keys and values, adds the attended sequence to the source
(residual), then LayerNorm, a ReLU MLP (4x), residual and LayerNorm (post-norm, 8
heads, d = 128); TalkNet builds ``crossA2V(src=audio, tar=visual)`` and
``crossV2A(src=visual, tar=audio)``. ECL's "F_a and F_v serve as the source
sequences" is that wiring, so ``cross_attention="talknet"`` (the default and the
``paper`` preset) does exactly this: the module with source F_a outputs
``LN(F_a + Attn(q=F_v, k=v=F_a))`` and so on.

``cross_attention="query-own-stream"`` keeps the convention avdf used before (and
CAD's block uses): each stream queries with its own features and takes keys and
values from the other stream, residual on its own stream. It reads "source" as the
query side; it is kept for comparison and for checkpoints trained with it.

The paper predicts one label per video, so the concatenated (T, 256) sequence is
averaged over time before the fully connected layer (the paper does not say how).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detectors.modules.cross_attention import CrossAttentionBlock

CROSS_ATTENTION = ("talknet", "query-own-stream")


class TalkNetCrossAttention(nn.Module):
    """TalkNet's attention layer: queries from ``target``, keys/values and the residual from ``source``."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.1, ffn_ratio: int = 4) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"TalkNetCrossAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn_ratio * dim)
        self.linear2 = nn.Linear(ffn_ratio * dim, dim)
        self.dropout = nn.Dropout(dropout)  # inside the MLP
        self.dropout1 = nn.Dropout(dropout)  # on the attended sequence
        self.dropout2 = nn.Dropout(dropout)  # on the MLP output

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) ``source`` (keys, values, residual) and ``target`` (queries) -> (B, T, dim)."""
        if source.shape != target.shape:
            # the residual adds the attended sequence (one row per query) to the source
            raise ValueError(f"TalkNetCrossAttention: source {tuple(source.shape)} and target {tuple(target.shape)} differ")
        attended = self.attn(target, source, source, need_weights=False)[0]
        x = self.norm1(source + self.dropout1(attended))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x))))))


class ECLCrossModalFusion(nn.Module):
    """F_a, F_v -> two cross-attention modules -> concatenated -> time average -> FC."""

    def __init__(self, dim: int = 128, num_heads: int = 8, dropout: float = 0.1, num_classes: int = 2,
                 cross_attention: str = "talknet") -> None:
        super().__init__()
        if cross_attention not in CROSS_ATTENTION:
            raise ValueError(f"ECLCrossModalFusion: cross_attention must be one of {CROSS_ATTENTION}, got {cross_attention!r}")
        self.cross_attention = cross_attention
        if cross_attention == "talknet":
            self.cross_a2v = TalkNetCrossAttention(dim, num_heads, dropout)  # source F_a, queries F_v
            self.cross_v2a = TalkNetCrossAttention(dim, num_heads, dropout)  # source F_v, queries F_a
        else:
            # the names of the earlier modules, so checkpoints trained with this convention still load
            self.audio_attends_video = CrossAttentionBlock(dim, num_heads, dropout=dropout, norm_first=False)
            self.video_attends_audio = CrossAttentionBlock(dim, num_heads, dropout=dropout, norm_first=False)
        self.classifier = nn.Linear(2 * dim, num_classes)

    def forward(self, f_a: torch.Tensor, f_v: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T, dim) F_a and F_v -> ``logits`` (B, num_classes) and the fused (B, T, 2*dim) ``tokens``
        (first half: the module whose source is F_a; second half: F_v's)."""
        if f_a.shape != f_v.shape:
            raise ValueError(f"ECLCrossModalFusion: F_a {tuple(f_a.shape)} and F_v {tuple(f_v.shape)} differ")
        if self.cross_attention == "talknet":
            parts = [self.cross_a2v(source=f_a, target=f_v), self.cross_v2a(source=f_v, target=f_a)]
        else:
            parts = [self.audio_attends_video(f_a, f_v), self.video_attends_audio(f_v, f_a)]
        fused = torch.cat(parts, dim=-1)
        return {"logits": self.classifier(fused.mean(dim=1)), "tokens": fused}
