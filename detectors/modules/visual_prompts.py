"""AVPrompt's sequential visual prompts (seeds/002, Eq. 6-7) and the VPT-replacing ablation.

Eq. 6: before layer l, ``N_vpt`` new learnable tokens ``P_v^l`` are inserted
right after the class token, and every token the previous layer produced,
including the earlier prompts, is kept::

    z^l = L^l([z^{l-1,0}, P^l, z^{l-1,1}, ..., z^{l-1, N + (l-1) N_vpt}])

so the sequence grows by ``N_vpt`` per layer. The frame feature is the output
at position 1, "the first newly injected learnable prompt in the last
transformer layer"; the segment feature is its mean over the T frames (Eq. 7).

``mode="replace"`` is Table 5 "VPT-replacing": the original deep VPT, where
each layer's prompts take the place of the previous layer's prompt outputs,
so the sequence length stays ``1 + N_vpt + N``.

Prompts carry no positional embedding (they are injected after Eq. 2), and the
paper takes the layer output itself, so CLIP's ``post_layernorm`` (part of its
pooler) is not applied unless ``post_layernorm=True``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from detectors.modules._layers import freeze, run_layer

PROMPT_MODES = ("sequential", "replace")


class SequentialVisualPrompts(nn.Module):
    """Learnable prompts interleaved with a stack of (frozen) ViT encoder layers."""

    def __init__(
        self,
        layers: nn.ModuleList,
        dim: int,
        num_prompts: int = 1,
        mode: str = "sequential",
        init_scale: float | None = None,
    ) -> None:
        super().__init__()
        if mode not in PROMPT_MODES:
            raise ValueError(f"SequentialVisualPrompts: mode must be one of {PROMPT_MODES}, got {mode!r}")
        if num_prompts < 1:
            raise ValueError(f"SequentialVisualPrompts: num_prompts must be >= 1, got {num_prompts}")
        self.layers = layers
        self.mode = mode
        self.num_prompts = num_prompts
        self.prompts = nn.Parameter(torch.empty(len(layers), num_prompts, dim))
        scale = init_scale if init_scale is not None else math.sqrt(6.0 / (3 * dim))
        nn.init.uniform_(self.prompts, -scale, scale)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1 + N, D) embedded tokens (class token first) -> (last hidden states, (B, D) feature)."""
        batch = hidden_states.shape[0]
        n = self.num_prompts
        h = hidden_states
        for index, layer in enumerate(self.layers):
            new = self.prompts[index].to(h.dtype).expand(batch, -1, -1)
            if self.mode == "sequential" or index == 0:
                rest = h[:, 1:]
            else:
                rest = h[:, 1 + n :]  # drop the previous layer's prompt outputs
            h = run_layer(layer, torch.cat([h[:, :1], new, rest], dim=1))
        return h, h[:, 1]


def vpt_init_scale(patch_size: int, dim: int) -> float:
    """VPT's uniform init bound ``sqrt(6 / (3 * p * p + D))`` (Jia et al. 2022)."""
    return math.sqrt(6.0 / float(3 * patch_size * patch_size + dim))


class CLIPPromptedFrameEncoder(nn.Module):
    """A `transformers` CLIP vision model with sequential visual prompts, applied frame by frame.

    ``vision_model``: a ``CLIPVisionModel`` or its ``.vision_model``. The backbone
    is frozen (the paper trains only prompts and heads) unless ``freeze_backbone=False``.
    """

    def __init__(
        self,
        vision_model: nn.Module,
        num_prompts: int = 1,
        mode: str = "sequential",
        freeze_backbone: bool = True,
        post_layernorm: bool = False,
    ) -> None:
        super().__init__()
        self.vision = getattr(vision_model, "vision_model", vision_model)
        config = self.vision.config
        self.dim = config.hidden_size
        if freeze_backbone:
            freeze(self.vision)
        self.prompted = SequentialVisualPrompts(
            self.vision.encoder.layers,
            self.dim,
            num_prompts,
            mode,
            init_scale=vpt_init_scale(config.patch_size, self.dim),
        )
        self.post_layernorm = post_layernorm
        if not post_layernorm:  # unused: trainable it would be dead weight in the optimiser and the count
            freeze(self.vision.post_layernorm)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) CLIP-normalised frames -> (B, T, D) per-frame features ``z^{L,1}``."""
        if frames.dim() != 5:
            raise ValueError(f"CLIPPromptedFrameEncoder: frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        batch, num_frames = frames.shape[:2]
        h = self.vision.embeddings(frames.flatten(0, 1))
        h = self.vision.pre_layrnorm(h)
        _, feature = self.prompted(h)
        if self.post_layernorm:
            feature = self.vision.post_layernorm(feature)
        return feature.view(batch, num_frames, self.dim)
