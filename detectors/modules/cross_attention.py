"""Cross-attention between a video and an audio token sequence.

CAD (seeds/000, Sec. 3.3) extracts "high-level semantic features using a
cross-attention mechanism" on the frozen CLIP and Whisper features and aligns
the two outputs ``x_v2a`` and ``x_a2v`` with Eq. 7. The paper says no more;
we read ``v2a`` as "video queries attend to audio keys/values" and ``a2v``
the other way, and use a standard transformer block around the attention
(residual + LayerNorm + MLP). Pre-norm is our choice for CAD; ECL uses the
post-norm form of its reference [21] (TalkNet), selected by ``norm_first``.
"""
from __future__ import annotations

import torch
from torch import nn


class CrossAttentionBlock(nn.Module):
    """Queries from one sequence, keys and values from another; residual on the queries."""

    def __init__(
        self, dim: int, num_heads: int, ffn_ratio: float = 4.0, dropout: float = 0.0, norm_first: bool = True
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"CrossAttentionBlock: dim {dim} is not divisible by num_heads {num_heads}")
        self.norm_first = norm_first
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_query = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim) if norm_first else nn.Identity()
        self.norm_ffn = nn.LayerNorm(dim)
        hidden = int(dim * ffn_ratio)
        self.ffn = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU() if norm_first else nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, query: torch.Tensor, context: torch.Tensor, context_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, Lq, dim) queries and (B, Lc, dim) context -> (B, Lq, dim).

        ``context_padding_mask``: (B, Lc) bool, True where a context token is padding.
        """
        if self.norm_first:
            q, c = self.norm_query(query), self.norm_context(context)
            x = query + self.dropout(self.attn(q, c, c, key_padding_mask=context_padding_mask, need_weights=False)[0])
            return x + self.dropout(self.ffn(self.norm_ffn(x)))
        attended = self.attn(query, context, context, key_padding_mask=context_padding_mask, need_weights=False)[0]
        x = self.norm_query(query + self.dropout(attended))
        return self.norm_ffn(x + self.dropout(self.ffn(x)))


class BidirectionalCrossAttention(nn.Module):
    """CAD's modality-shared path: project both modalities to ``dim``, then v→a and a→v attention.

    Returns token sequences and their time-averaged vectors; Eq. 7 compares the
    averaged ``x_v2a`` and ``x_a2v`` (the two sequences have different lengths,
    16 frames vs. Whisper's tokens, so the KL needs one vector per modality).
    ``use_cross_attention=False`` is CAD Table 4 "w/o cross attention": the
    projected frozen features are pooled directly.

    ``audio_padding_mask`` (B, Ta) bool, True where an audio token carries no audio
    of the segment (CAD pads a 0.64 s segment to Whisper's 30 s window: 32 of 1,500
    tokens carry audio). Video queries do not attend to those tokens, and they are left
    out of the mean that gives ``x_a2v``; without it both would be dominated by the
    padding, the same for every sample.
    """

    def __init__(
        self,
        video_dim: int,
        audio_dim: int,
        dim: int,
        num_heads: int = 8,
        dropout: float = 0.0,
        use_cross_attention: bool = True,
    ) -> None:
        super().__init__()
        self.use_cross_attention = use_cross_attention
        self.project_video = nn.Linear(video_dim, dim)
        self.project_audio = nn.Linear(audio_dim, dim)
        if use_cross_attention:
            self.video_to_audio = CrossAttentionBlock(dim, num_heads, dropout=dropout)
            self.audio_to_video = CrossAttentionBlock(dim, num_heads, dropout=dropout)

    def forward(
        self, video_tokens: torch.Tensor, audio_tokens: torch.Tensor, audio_padding_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """(B, Tv, video_dim), (B, Ta, audio_dim) -> dict with ``x_v2a``, ``x_a2v`` (B, dim) and ``*_tokens``."""
        v = self.project_video(video_tokens)
        a = self.project_audio(audio_tokens)
        if self.use_cross_attention:
            v2a = self.video_to_audio(v, a, context_padding_mask=audio_padding_mask)
            a2v = self.audio_to_video(a, v)
        else:
            v2a, a2v = v, a
        return {"x_v2a": v2a.mean(dim=1), "x_a2v": masked_mean(a2v, audio_padding_mask), "v2a_tokens": v2a,
                "a2v_tokens": a2v}


def masked_mean(tokens: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, L, D) -> (B, D): the mean over the tokens where ``padding_mask`` (B, L) is False (all when None)."""
    if padding_mask is None:
        return tokens.mean(dim=1)
    if padding_mask.shape != tokens.shape[:2]:
        raise ValueError(f"masked_mean: mask {tuple(padding_mask.shape)} does not match tokens {tuple(tokens.shape[:2])}")
    keep = (~padding_mask).unsqueeze(-1).to(tokens.dtype)
    count = keep.sum(dim=1)
    if bool((count == 0).any()):
        raise ValueError("masked_mean: a sample has every token masked")
    return (tokens * keep).sum(dim=1) / count
