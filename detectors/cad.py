"""CAD: Cross-modal Alignment and Distillation (seeds/000, seeds/001).

Two paths over one segment (16 frames at 224 px + its audio), fused at the end:

- **modality-shared** (Sec. 3.3): frozen CLIP ViT-B/16 frame features and frozen
  Whisper-small audio tokens go through cross-attention v→a and a→v
  (``BidirectionalCrossAttention``); Eq. 7 aligns ``softmax(x_v2a)`` with
  ``softmax(x_a2v)`` by KL (``kl_alignment``).
- **modality-specific** (Sec. 3.4): a spatio-temporal video encoder (adapters on
  a frozen CLIP, after [62]; ``SpatioTemporalVideoEncoder``) gives ``x_v^u``; a
  Whisper encoder with LoRA (r=8, α=16) gives ``x_a^u``; Eq. 8's SimSiam
  distillation with stop-gradient ties them (``simsiam_distillation``).
- a classifier on the concatenation of both paths (Sec. 4.4, ``FusedClassifier``).

Loss: cross-entropy + ``L_KL`` + ``L_KD`` (the paper gives no weights: all 1).

Ablations (Tables 4-5) are config fields; ``CAD.ABLATIONS`` names them as
overrides so a leaderboard can list the rows. Backbone loading,
CLIP normalisation and Whisper mel live in ``detectors.paper_common``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from detectors.base import Detector, InputSpec
from detectors.modules.cross_attention import masked_mean
from detectors.paper_common import (
    MEL_MODES,
    audio_padding_mask,
    build_clip,
    build_whisper,
    clip_frames,
    freeze_,
    keep_frozen_in_eval,
    two_class_logit,
    whisper_mel,
    whisper_tokens,
)
from pipeline.errors import ConfigError

@dataclass
class CADConfig:
    num_frames: int = 16
    # consecutive (16 frames = 0.64 s, "preserving temporal continuity", Sec. 4.1) | groups
    # (IDForge-v2's 4 evenly spaced runs of 4 frames over the clip; docs/detectors/cad.md)
    frame_sampling: str = "consecutive"
    image_size: int = 224
    mel: str = "whisper30"  # whisper30 (paper: "aligned with Whisper's 30-second feature extraction") | truncated
    clip_arch: str = "ViT-B/16"  # ViT-B/16 | ViT-B/32 | tiny
    whisper_arch: str = "small"  # tiny | base | small | tiny-random
    clip_weights: str | None = None  # local path; required unless random_init
    whisper_weights: str | None = None
    random_init: bool = False  # random backbone weights (benchmarks, tests)
    train_backbones: bool = False  # tiny: the specific path's ViT and Whisper train too (random weights)
    shared_dim: int = 512  # width of the cross-attention (modality-shared) path
    shared_heads: int = 8
    embed_dim: int = 512  # width of x_v^u and x_a^u (modality-specific path)
    adapter_bottleneck: int = 64
    lora_r: int = 8
    lora_alpha: int = 16
    projector_norm: str = "batch"  # SimSiam projector: batch (SimSiam) | layer
    classifier_hidden: int = 512
    dropout: float = 0.1
    # --- ablations (Tables 4-5) ---
    only_video: bool = False  # "only video": the spatio-temporal video encoder alone
    alignment: bool = True  # "w/o alignment": no L_KL
    cross_attention: bool = True  # "w/o cross attention": shared path pools the projected frozen features
    shared_frozen: bool = True  # "w/o frozen model": the shared path's CLIP/Whisper are fine-tuned
    distillation: str = "simsiam"  # simsiam | kl ("Substitute SimSiam with KL") | none ("w/o distillation")


class CAD(Detector):
    """Cross-modal Alignment and Distillation (CAD)."""

    name = "cad"
    Config = CADConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "image_size": 64, "mel": "truncated", "clip_arch": "tiny", "whisper_arch": "tiny-random",
            "random_init": True, "train_backbones": True, "shared_dim": 64, "shared_heads": 4, "embed_dim": 64,
            "adapter_bottleneck": 16, "projector_norm": "layer", "classifier_hidden": 64,
        },
        "paper": {},
    }
    ABLATIONS: ClassVar[dict[str, dict[str, Any]]] = {
        "only video": {"only_video": True},
        "w/o alignment": {"alignment": False},
        "w/o cross attention": {"cross_attention": False},
        "w/o frozen model": {"shared_frozen": False},
        "w/o distillation": {"distillation": "none"},
        "SimSiam -> KL": {"distillation": "kl"},
    }
    # The paper states no training setting: all of these are avdf's choices (TRAIN_FROM_PAPER is empty).
    TRAIN: ClassVar[dict[str, Any]] = {"optimizer": "adamw", "lr": 1e-4, "epochs": 15, "batch_size": 8}

    def __init__(self, config: CADConfig) -> None:
        super().__init__(config)
        c = config
        if c.mel not in MEL_MODES:
            raise ConfigError(f"cad: mel must be one of {MEL_MODES}, got {c.mel!r}")
        if c.frame_sampling not in ("consecutive", "groups"):
            raise ConfigError(f"cad: frame_sampling must be consecutive or groups, got {c.frame_sampling!r}")
        if c.distillation not in ("simsiam", "kl", "none"):
            raise ConfigError(f"cad: distillation must be simsiam, kl or none, got {c.distillation!r}")
        from detectors.backbones.lora import apply_lora
        from detectors.modules.cross_attention import BidirectionalCrossAttention
        from detectors.modules.heads import FusedClassifier, SimSiamProjector
        from detectors.modules.spatiotemporal import SpatioTemporalVideoEncoder

        self._frozen: list[nn.Module] = []
        # modality-specific video path: adapters on a frozen ViT (the ViT trains too in `tiny`)
        clip_specific = build_clip(c.clip_weights, c.clip_arch, c.random_init, c.image_size, self.name)
        self.video_encoder = SpatioTemporalVideoEncoder(
            clip_specific, c.adapter_bottleneck, freeze_backbone=not c.train_backbones
        )
        if not c.train_backbones:
            self._frozen.append(self.video_encoder.vision)
        video_dim = self.video_encoder.dim
        self.project_video = nn.Linear(video_dim, c.embed_dim)
        in_dims = [c.embed_dim]
        if not c.only_video:
            # modality-specific audio path: Whisper + LoRA
            whisper = build_whisper(c.whisper_weights, c.whisper_arch, c.random_init, self.name)
            self.audio_encoder = apply_lora(whisper, r=c.lora_r, alpha=c.lora_alpha)
            if c.train_backbones:  # tiny: random Whisper weights must learn as well as the LoRA factors
                for p in self.audio_encoder.parameters():
                    p.requires_grad_(True)
            audio_dim = whisper.config.d_model
            self.project_audio = nn.Linear(audio_dim, c.embed_dim)
            in_dims.append(c.embed_dim)
            # modality-shared path: its own frozen CLIP + Whisper (the same weights files)
            self.shared_clip = build_clip(c.clip_weights, c.clip_arch, c.random_init, c.image_size, self.name)
            self.shared_clip = getattr(self.shared_clip, "vision_model", self.shared_clip)
            self.shared_whisper = build_whisper(c.whisper_weights, c.whisper_arch, c.random_init, self.name)
            if c.shared_frozen:
                freeze_(self.shared_clip)
                freeze_(self.shared_whisper)
                self._frozen += [self.shared_clip, self.shared_whisper]
            self.shared = BidirectionalCrossAttention(
                video_dim, audio_dim, c.shared_dim, c.shared_heads, use_cross_attention=c.cross_attention
            )
            in_dims = [c.shared_dim, c.shared_dim, *in_dims]
            if c.distillation != "none":
                self.projector_video = SimSiamProjector(c.embed_dim, norm=c.projector_norm)
                self.projector_audio = SimSiamProjector(c.embed_dim, norm=c.projector_norm)
        self.classifier = FusedClassifier(in_dims, c.classifier_hidden, dropout=c.dropout)

    @property
    def inputs(self) -> InputSpec:
        c = self.config
        if c.only_video:
            return InputSpec(("face",), c.num_frames, face_size=c.image_size, frame_sampling=c.frame_sampling)
        return InputSpec(("face", "mel"), c.num_frames, mel=c.mel, face_size=c.image_size,
                         frame_sampling=c.frame_sampling)

    def train(self, mode: bool = True) -> "CAD":
        super().train(mode)
        keep_frozen_in_eval(self._frozen)
        return self

    def _shared_path(self, frames: torch.Tensor, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        b, t = frames.shape[:2]
        grad = torch.enable_grad() if not self.config.shared_frozen else torch.no_grad()
        with grad:
            clip_out = self.shared_clip(pixel_values=frames.flatten(0, 1))
            video_tokens = clip_out.pooler_output.view(b, t, -1)  # per-frame class token after post-LN
            audio_tokens = whisper_tokens(self.shared_whisper, mel)
        mask = audio_padding_mask(audio_tokens, self.config.num_frames, self.config.mel)
        return self.shared(video_tokens, audio_tokens, audio_padding_mask=mask)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.config
        frames = clip_frames(inputs["face"], c.image_size)
        x_v = self.project_video(self.video_encoder(frames)["embedding"])
        out: dict[str, torch.Tensor] = {"x_v": x_v}
        if c.only_video:
            class_logits = self.classifier(x_v)
        else:
            mel = whisper_mel(inputs, c.mel)
            # Whisper sees its whole (30 s) window, as it was trained; only the tokens that carry
            # the segment's audio are pooled (with whisper30, 32 of 1,500: the rest is padding).
            tokens = whisper_tokens(self.audio_encoder, mel)
            x_a = self.project_audio(masked_mean(tokens, audio_padding_mask(tokens, c.num_frames, c.mel)))
            shared = self._shared_path(frames, mel)
            out.update(x_a=x_a, x_v2a=shared["x_v2a"], x_a2v=shared["x_a2v"])
            if c.distillation != "none":
                out.update(z_v=self.projector_video(x_v), z_a=self.projector_audio(x_a))
            class_logits = self.classifier(shared["x_v2a"], shared["x_a2v"], x_v, x_a)
        out["class_logits"] = class_logits
        out["logits"] = two_class_logit(class_logits)
        return out

    def loss(self, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from detectors.losses import cad_losses

        c = self.config
        if c.only_video:
            return cad_losses(out["class_logits"], targets["label"], alignment=False, distillation="none")
        return cad_losses(
            out["class_logits"], targets["label"], out["x_v2a"], out["x_a2v"],
            out["x_v"], out.get("z_v"), out["x_a"], out.get("z_a"),
            alignment=c.alignment, distillation=c.distillation,
        )
