"""Uni-modal baselines (the video-only and audio-only rows of the papers' tables).

Deliberately plain: a per-frame CNN pooled over time on face crops, and a CNN
on the log-mel spectrogram of the segment's audio. They exercise the
Detector interface and give every protocol a reference row.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from detectors.base import Detector, InputSpec
from detectors.features import LogMel


def _conv_stack(in_ch: int, width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    ch = in_ch
    for i in range(depth):
        out = width * 2**i
        # GroupNorm, not BatchNorm: batch-independent, so DDP ranks and batch sizes agree.
        layers += [nn.Conv2d(ch, out, 3, stride=2, padding=1), nn.GroupNorm(min(8, out), out), nn.ReLU(inplace=True)]
        ch = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


@dataclass
class VideoBaselineConfig:
    num_frames: int = 16
    frame_size: int = 112  # face crops are resized to this before the CNN
    width: int = 16
    depth: int = 4
    label: str = "label"  # target to learn: label | video_fake


class VideoBaseline(Detector):
    """Per-frame CNN on RGB face crops, temporal 1-D conv, mean over time."""

    name = "video-baseline"
    Config = VideoBaselineConfig
    PRESETS = {"tiny": {"frame_size": 64}, "paper": {"frame_size": 224, "width": 32, "depth": 5}}
    MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def __init__(self, config: VideoBaselineConfig) -> None:
        super().__init__(config)
        self.frames = _conv_stack(3, config.width, config.depth)
        dim = config.width * 2 ** (config.depth - 1)
        self.temporal = nn.Conv1d(dim, dim, 3, padding=1)
        self.head = nn.Linear(dim, 1)

    @property
    def inputs(self) -> InputSpec:
        return InputSpec(("face",), self.config.num_frames, face_size=self.config.frame_size)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        face = inputs["face"]  # (B, T, 3, H, W) uint8
        b, t = face.shape[:2]
        # Its own float tensor, normalised in place. Not features.unit_frames: this baseline has always
        # divided float input by 255 too, and a checkpoint trained that way must score the same.
        x = face.flatten(0, 1).to(torch.float32, copy=True).div_(255.0)
        size = self.config.frame_size
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = x.sub_(self.MEAN.to(x.device)).div_(self.STD.to(x.device))
        feats = self.frames(x).view(b, t, -1).transpose(1, 2)  # (B, C, T)
        feats = F.relu(self.temporal(feats)).mean(-1)
        logits = self.head(feats).squeeze(-1)
        return {"logits": logits, "video_logits": logits}

    def loss(self, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"bce": bce(out["logits"], targets[self.config.label])}


@dataclass
class AudioBaselineConfig:
    num_frames: int = 16
    n_mels: int = 64
    width: int = 16
    depth: int = 4
    label: str = "label"  # label | audio_fake


class AudioBaseline(Detector):
    """CNN on the log-mel spectrogram of the segment's 16 kHz audio."""

    name = "audio-baseline"
    Config = AudioBaselineConfig
    PRESETS = {"tiny": {}, "paper": {"n_mels": 80, "width": 32, "depth": 5}}

    def __init__(self, config: AudioBaselineConfig) -> None:
        super().__init__(config)
        self.mel = LogMel(n_mels=config.n_mels)
        self.cnn = _conv_stack(1, config.width, config.depth)
        self.head = nn.Linear(config.width * 2 ** (config.depth - 1), 1)

    @property
    def inputs(self) -> InputSpec:
        return InputSpec(("audio",), self.config.num_frames)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        spec = self.mel(inputs["audio"]).unsqueeze(1)  # (B, 1, n_mels, frames)
        logits = self.head(self.cnn(spec)).squeeze(-1)
        return {"logits": logits, "audio_logits": logits}

    def loss(self, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"bce": bce(out["logits"], targets[self.config.label])}
