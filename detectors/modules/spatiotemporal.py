"""CAD's spatio-temporal video encoder for the modality-specific path (seeds/000, Sec. 3.4).

The paper says only that it "draw[s] inspiration from [62] in the encoder
design to optimize the spatiotemporal feature aggregation strategy ... to
integrate the local detail information of individual video frames with the
global temporal patterns". [62] (Yan et al. 2024, "video-level blending and
spatiotemporal adapter tuning") plugs light spatio-temporal adapters into a
frozen image ViT. We build that shape, not [62]'s exact adapter (which CAD
does not reproduce): before every ViT layer, the patch tokens of all T frames
are arranged as a (C, T, h, w) volume, down-projected, passed through a
temporal (k_t x 1 x 1) and a spatial (1 x k x k) depthwise 3-D convolution in parallel,
up-projected and added back. The up-projection starts at zero so the encoder
equals the frozen ViT at initialisation. The video embedding ``x_v^u`` is the
time-averaged class token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detectors.modules._layers import freeze, run_layer


class SpatioTemporalAdapter(nn.Module):
    """Residual adapter mixing patch tokens across space (1xkxk) and time (k_t x1x1)."""

    def __init__(self, dim: int, bottleneck: int, temporal_kernel: int = 3, spatial_kernel: int = 3) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.temporal = nn.Conv3d(
            bottleneck, bottleneck, (temporal_kernel, 1, 1), padding=(temporal_kernel // 2, 0, 0), groups=bottleneck
        )
        self.spatial = nn.Conv3d(
            bottleneck, bottleneck, (1, spatial_kernel, spatial_kernel), padding=(0, spatial_kernel // 2, spatial_kernel // 2), groups=bottleneck
        )
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, tokens: torch.Tensor, num_frames: int, grid: tuple[int, int]) -> torch.Tensor:
        """(B*T, 1 + h*w, D) tokens -> same shape; the class token is left unchanged."""
        frames_batch, length, _ = tokens.shape
        height, width = grid
        if length != 1 + height * width or frames_batch % num_frames:
            raise ValueError(
                f"SpatioTemporalAdapter: tokens {tuple(tokens.shape)} do not fit {num_frames} frames of a {grid} grid"
            )
        batch = frames_batch // num_frames
        x = F.gelu(self.down(tokens[:, 1:]))
        x = x.view(batch, num_frames, height, width, -1).permute(0, 4, 1, 2, 3)  # (B, C, T, h, w)
        x = F.gelu(self.temporal(x) + self.spatial(x))
        x = x.permute(0, 2, 3, 4, 1).reshape(frames_batch, height * width, -1)
        delta = self.up(x)
        return torch.cat([tokens[:, :1], tokens[:, 1:] + delta], dim=1)


class SpatioTemporalVideoEncoder(nn.Module):
    """A `transformers` CLIP vision model with a spatio-temporal adapter before each layer.

    ``freeze_backbone=True`` trains only the adapters (the adapter-tuning of [62]).
    """

    def __init__(
        self,
        vision_model: nn.Module,
        bottleneck: int = 64,
        temporal_kernel: int = 3,
        spatial_kernel: int = 3,
        freeze_backbone: bool = True,
    ) -> None:
        super().__init__()
        self.vision = getattr(vision_model, "vision_model", vision_model)
        config = self.vision.config
        self.dim = config.hidden_size
        side = config.image_size // config.patch_size
        self.grid = (side, side)
        if freeze_backbone:
            freeze(self.vision)
        self.adapters = nn.ModuleList(
            SpatioTemporalAdapter(self.dim, bottleneck, temporal_kernel, spatial_kernel) for _ in self.vision.encoder.layers
        )

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T, 3, H, W) -> ``frame_features`` (B, T, D) class tokens and ``embedding`` (B, D) = x_v^u."""
        if frames.dim() != 5:
            raise ValueError(f"SpatioTemporalVideoEncoder: frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        batch, num_frames = frames.shape[:2]
        h = self.vision.pre_layrnorm(self.vision.embeddings(frames.flatten(0, 1)))
        for adapter, layer in zip(self.adapters, self.vision.encoder.layers):
            h = run_layer(layer, adapter(h, num_frames, self.grid))
        cls = self.vision.post_layernorm(h[:, 0]).view(batch, num_frames, self.dim)
        return {"frame_features": cls, "embedding": cls.mean(dim=1)}
