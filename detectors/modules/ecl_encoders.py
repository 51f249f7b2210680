"""ECL's encoders (seeds/003, Sec. III-A and V-A), producing 128-d per-frame F_a and F_v.

- Audio: "a 2D ResNet34 network introduced in [3]" (Chung et al., "In defence
  of metric learning for speaker recognition"): the thin ResNet-34 with
  squeeze-excitation blocks, layers (3, 4, 6, 3) and filters (16, 32, 64, 128),
  run on a (features x time) map at 100 frames/s. Time is downsampled 4x
  (100 -> 25 per second, one step per video frame) and frequency is averaged
  out, as the active-speaker model [21] (TalkNet) uses it. ECL's text says the
  input is MFCC; DESIGN.md says log-mel — the encoder takes either
  (``in_features`` coefficients or mel bins).
- Visual: "a visual frontend and the visual temporal network employed [21]"
  (TalkNet): a 3-D conv frontend (5x7x7, stride 1x2x2) + max-pool, a
  ResNet-18 applied per frame, then 5 depthwise-separable temporal conv blocks
  (kernel 3, residual) and a 1-D conv head 512 -> 256 -> 128, on 112 x 112
  grayscale faces.

``width`` scales every internal channel count (1.0 is the paper size; 0.125
makes a model that trains on a CPU); the output stays ``out_dim`` (128).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _scaled(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


class SqueezeExcite(nn.Module):
    """The SE gate of [3]: average pool -> Linear(C, C/8) -> ReLU -> Linear -> sigmoid.

    It squeezes the output of a BatchNorm, whose per-channel mean over a training
    batch is the BN shift (0 at init): the pooled vector is tiny and centred on 0,
    so a hidden unit whose initial bias is negative (PyTorch's default draws it
    from +-1/sqrt(C)) is below zero for every input and never gets a gradient. With
    ``C/8`` = 1 or 2 hidden units (narrow presets; 2 in the paper's first stage) the
    whole gate is often dead from the first step. So the first bias starts at 0 (the
    unit then fires for about half of the inputs), and the hidden width is at least
    2 — which leaves the paper's widths (16 // 8 = 2 and up) as [3] has them.
    """

    MIN_HIDDEN = 2

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(self.MIN_HIDDEN, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid())
        nn.init.zeros_(self.fc[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class BasicBlock2d(nn.Module):
    """The ResNet basic block; ``squeeze_excite`` adds the SE gate of ResNetSE34 [3]."""

    def __init__(self, in_ch: int, out_ch: int, stride: tuple[int, int] | int = 1, squeeze_excite: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.se = SqueezeExcite(out_ch) if squeeze_excite else nn.Identity()
        needs_projection = in_ch != out_ch or stride not in (1, (1, 1))
        self.shortcut = (
            nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
            if needs_projection
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return F.relu(out + self.shortcut(x))


def _stage(in_ch: int, out_ch: int, blocks: int, stride, squeeze_excite: bool) -> nn.Sequential:
    layers = [BasicBlock2d(in_ch, out_ch, stride, squeeze_excite)]
    layers += [BasicBlock2d(out_ch, out_ch, 1, squeeze_excite) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class AudioResNet34(nn.Module):
    """(B, in_features, 4T) audio features at 100 Hz -> (B, T, out_dim) at the video's 25 fps."""

    LAYERS = (3, 4, 6, 3)
    FILTERS = (16, 32, 64, 128)

    def __init__(self, in_features: int = 13, width: float = 1.0, out_dim: int = 128) -> None:
        super().__init__()
        self.in_features = in_features
        ch = [_scaled(c, width) for c in self.FILTERS]
        # strides are (frequency, time): time is downsampled by 4 in total, 100 Hz -> 25 fps
        self.stem = nn.Sequential(nn.Conv2d(1, ch[0], 7, stride=(2, 1), padding=3, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True))
        self.layer1 = _stage(ch[0], ch[0], self.LAYERS[0], 1, True)
        self.layer2 = _stage(ch[0], ch[1], self.LAYERS[1], (2, 2), True)
        self.layer3 = _stage(ch[1], ch[2], self.LAYERS[2], (2, 2), True)
        self.layer4 = _stage(ch[2], ch[3], self.LAYERS[3], 1, True)
        self.project = nn.Identity() if ch[3] == out_dim else nn.Linear(ch[3], out_dim)

    def forward(self, features: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        if features.dim() != 3 or features.shape[1] != self.in_features:
            raise ValueError(
                f"AudioResNet34: features must be (B, {self.in_features}, time), got {tuple(features.shape)}"
            )
        x = self.stem(features.unsqueeze(1))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = x.mean(dim=2).transpose(1, 2)  # average out frequency -> (B, time/4, C)
        if num_frames is not None and x.shape[1] != num_frames:
            x = F.adaptive_avg_pool1d(x.transpose(1, 2), num_frames).transpose(1, 2)
        return self.project(x)


class VisualFrontend(nn.Module):
    """TalkNet's visual frontend: 3-D conv + max-pool, then a ResNet-18 on every frame."""

    FILTERS = (64, 128, 256, 512)

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        ch = [_scaled(c, width) for c in self.FILTERS]
        self.out_channels = ch[3]
        self.frontend3d = nn.Sequential(
            nn.Conv3d(1, ch[0], (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(ch[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.resnet = nn.Sequential(
            _stage(ch[0], ch[0], 2, 1, False),
            _stage(ch[0], ch[1], 2, 2, False),
            _stage(ch[1], ch[2], 2, 2, False),
            _stage(ch[2], ch[3], 2, 2, False),
        )

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) grayscale faces -> (B, T, C) per-frame features."""
        batch, num_frames = faces.shape[:2]
        x = self.frontend3d(faces.unsqueeze(1))  # (B, C, T, H/4, W/4)
        x = x.transpose(1, 2).flatten(0, 1)
        x = self.resnet(x).mean(dim=(2, 3))
        return x.view(batch, num_frames, -1)


class DepthwiseSeparableTemporalBlock(nn.Module):
    """One block of TalkNet's visual temporal network: ReLU-BN-depthwise conv-PReLU-BN-pointwise conv, residual."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.BatchNorm1d(channels),
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False),
            nn.PReLU(),
            nn.BatchNorm1d(channels),
            nn.Conv1d(channels, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class VisualTemporalNetwork(nn.Module):
    """(B, T, C) frame features -> (B, T, out_dim): 5 temporal blocks, then conv 5 (C -> C/2) and conv 1 (-> out_dim)."""

    def __init__(self, channels: int, out_dim: int = 128, num_blocks: int = 5) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(DepthwiseSeparableTemporalBlock(channels) for _ in range(num_blocks)))
        mid = max(out_dim, channels // 2)
        self.head = nn.Sequential(
            nn.Conv1d(channels, mid, 5, padding=2, bias=False), nn.BatchNorm1d(mid), nn.ReLU(), nn.Conv1d(mid, out_dim, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x.transpose(1, 2))).transpose(1, 2)


class VisualEncoder(nn.Module):
    """(B, T, 112, 112) grayscale faces -> (B, T, out_dim) = F_v."""

    def __init__(self, width: float = 1.0, out_dim: int = 128) -> None:
        super().__init__()
        self.frontend = VisualFrontend(width)
        self.temporal = VisualTemporalNetwork(self.frontend.out_channels, out_dim)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        if faces.dim() != 4:
            raise ValueError(f"VisualEncoder: faces must be (B, T, H, W) grayscale, got {tuple(faces.shape)}")
        return self.temporal(self.frontend(faces))
