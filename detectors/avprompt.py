"""AVPrompt: multi-task audio-visual prompt learning (seeds/002, AAAI 2025).

- **visual branch**: a frozen CLIP ViT-B/32 with *sequential* visual prompts
  (Eq. 6: ``N_vpt`` new tokens before every layer, earlier prompts kept); the
  frame feature is the first prompt of the last layer, the segment feature
  its mean over T frames (Eq. 7) -> video head (``L_v``, visual-content label).
- **audio branch**: a frozen Whisper-base on the segment's own 64 mel frames
  ("truncated": 10,240 samples -> N_t/2 = 32 tokens) with short-time audio
  prompts concatenated on the feature axis + ``FC_l`` per layer + a global
  token (Eqs. 4, 8); segment feature = mean of the last tokens (Eq. 9) ->
  audio head (``L_a``, audio label).
- **fusion**: 1-D convs align both to T frames (Eqs. 12-13, k_a = s_a = N_t/2T),
  concatenation, mean over time -> fused head (``L_f``); the frame-level CMFM
  loss (Eqs. 14-15, α=2, β=2, γ=1) on the aligned features.

Heads are "two linear layers with a ReLU". Loss (Eq. 16) ``L_v + L_a + L_f + L_CMFM``.
Training (Implementation details): Adam 1e-4, ÷10 at epoch 12, 15 epochs (``TRAIN``).
Test: mean over non-overlapping segments (the evaluation loader's job).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from detectors.base import Detector, InputSpec
from detectors.paper_common import (
    build_clip,
    build_whisper,
    clip_frames,
    freeze_,
    keep_frozen_in_eval,
    two_class_logit,
    whisper_mel,
)
from pipeline.errors import ConfigError

BRANCHES = ("both", "audio", "visual")
SAMPLES_PER_FRAME = 640


@dataclass
class AVPromptConfig:
    num_frames: int = 16  # T; the audio window is T * 640 samples (10,240 for 16)
    image_size: int = 224
    clip_arch: str = "ViT-B/32"  # ViT-B/32 | ViT-B/16 | tiny
    whisper_arch: str = "base"  # tiny | base | small | tiny-random
    clip_weights: str | None = None  # local path; required unless random_init
    whisper_weights: str | None = None  # local path or "packaged-base"
    random_init: bool = False
    train_backbones: bool = False  # tiny: random backbones are trained too (the paper freezes them)
    num_prompts: int = 1  # N_vpt
    prompt_dim: int | None = None  # D_p of the audio prompts (None = D_a)
    fused_dim: int = 512  # D_f
    head_hidden: int = 128
    alpha: float = 2.0
    beta: float = 2.0
    gamma: float = 1.0
    # --- ablations (Tables 4-5) ---
    branches: str = "both"  # both | audio ("audio branch only") | visual ("visual branch only")
    cmfm: str = "frame"  # frame | none ("w/o L_CMFM") | segment ("segment-level loss")
    use_l_a: bool = True  # "w/o L_a"
    use_l_v: bool = True  # "w/o L_v"
    prompt_mode: str = "sequential"  # sequential | replace ("VPT-replacing")


class AVPrompt(Detector):
    """Multi-modal prompt learning with frame-level cross-modal feature matching."""

    name = "avprompt"
    Config = AVPromptConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "image_size": 64, "clip_arch": "tiny", "whisper_arch": "tiny-random", "random_init": True,
            "train_backbones": True, "fused_dim": 64, "head_hidden": 32,
        },
        "paper": {},
    }
    ABLATIONS: ClassVar[dict[str, dict[str, Any]]] = {
        "audio branch only": {"branches": "audio", "cmfm": "none"},
        "visual branch only": {"branches": "visual", "cmfm": "none"},
        "w/o L_CMFM": {"cmfm": "none"},
        "w/o L_a": {"use_l_a": False},
        "w/o L_v": {"use_l_v": False},
        "VPT-replacing": {"prompt_mode": "replace"},
        "segment-level loss": {"cmfm": "segment"},
    }
    # Implementation details: "15 training epochs with the Adam optimizer. The initial learning rate is
    # set to 0.0001, with a reduction by a factor of 10 occurring at the 12th epoch": read as PyTorch's
    # MultiStepLR(milestones=[12]), i.e. 12 epochs at 1e-4 and 3 at 1e-5. The batch size is not given:
    # 8 is avdf's choice (the model card says so).
    TRAIN: ClassVar[dict[str, Any]] = {
        "optimizer": "adam", "lr": 1e-4, "epochs": 15, "batch_size": 8,
        "schedule": {"kind": "step", "milestones": [12], "gamma": 0.1},
    }
    TRAIN_FROM_PAPER: ClassVar[tuple[str, ...]] = ("optimizer", "lr", "epochs", "schedule")

    def __init__(self, config: AVPromptConfig) -> None:
        super().__init__(config)
        c = config
        if c.branches not in BRANCHES:
            raise ConfigError(f"avprompt: branches must be one of {BRANCHES}, got {c.branches!r}")
        if c.cmfm not in ("frame", "segment", "none"):
            raise ConfigError(f"avprompt: cmfm must be frame, segment or none, got {c.cmfm!r}")
        if c.branches != "both" and (c.cmfm != "none" or not (c.use_l_a and c.use_l_v)):
            # a single branch has neither fusion nor the other modality's loss to drop
            raise ConfigError(f"avprompt: branches={c.branches!r} runs one branch: set cmfm='none' and keep use_l_a/use_l_v")
        from detectors.modules.audio_prompts import ShortTimeAudioPrompts
        from detectors.modules.heads import TwoLayerHead
        from detectors.modules.param_budget import audio_tokens_for
        from detectors.modules.temporal_alignment import TemporalAlignment
        from detectors.modules.visual_prompts import CLIPPromptedFrameEncoder

        self._frozen: list[nn.Module] = []
        self.num_audio_tokens = audio_tokens_for(c.num_frames * SAMPLES_PER_FRAME)
        frozen = not c.train_backbones
        video_dim = audio_dim = None
        if c.branches in ("both", "visual"):
            clip = build_clip(c.clip_weights, c.clip_arch, c.random_init, c.image_size, self.name)
            self.visual = CLIPPromptedFrameEncoder(clip, c.num_prompts, c.prompt_mode, freeze_backbone=frozen)
            if frozen:
                self._frozen.append(self.visual.vision)
            video_dim = self.visual.dim
            if c.use_l_v:
                self.head_video = TwoLayerHead(video_dim, c.head_hidden)
        if c.branches in ("both", "audio"):
            whisper = build_whisper(c.whisper_weights, c.whisper_arch, c.random_init, self.name)
            if frozen:
                freeze_(whisper)
                self._frozen.append(whisper)
            self.audio = ShortTimeAudioPrompts(whisper, self.num_audio_tokens, c.prompt_dim, freeze_backbone=frozen)
            audio_dim = self.audio.dim
            if c.use_l_a:
                self.head_audio = TwoLayerHead(audio_dim, c.head_hidden)
        if c.branches == "both":
            self.align = TemporalAlignment(video_dim, audio_dim, c.fused_dim, c.num_frames, self.num_audio_tokens)
            self.head_fused = TwoLayerHead(2 * c.fused_dim, c.head_hidden)

    @property
    def inputs(self) -> InputSpec:
        c = self.config
        if c.branches == "visual":
            return InputSpec(("face",), c.num_frames, face_size=c.image_size)
        if c.branches == "audio":
            return InputSpec(("mel",), c.num_frames, mel="truncated")
        return InputSpec(("face", "mel"), c.num_frames, mel="truncated", face_size=c.image_size)

    def train(self, mode: bool = True) -> "AVPrompt":
        super().train(mode)
        keep_frozen_in_eval(self._frozen)
        return self

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.config
        out: dict[str, torch.Tensor] = {}
        if c.branches in ("both", "visual"):
            f_v = self.visual(clip_frames(inputs["face"], c.image_size))  # (B, T, D_v), Eq. 10
            out["f_v"] = f_v
            if c.use_l_v:
                out["video_class_logits"] = self.head_video(f_v.mean(dim=1))  # Eq. 7
                out["video_logits"] = two_class_logit(out["video_class_logits"])
        if c.branches in ("both", "audio"):
            audio = self.audio(whisper_mel(inputs, "truncated"))
            out["f_a"] = audio["tokens"]  # (B, N_t/2, D_a), Eq. 11
            if c.use_l_a:
                out["audio_class_logits"] = self.head_audio(audio["feature"])  # Eq. 9
                out["audio_logits"] = two_class_logit(out["audio_class_logits"])
        if c.branches == "both":
            aligned_v, aligned_a = self.align(out["f_v"], out["f_a"])  # Eqs. 12-13
            out.update(aligned_v=aligned_v, aligned_a=aligned_a)
            out["fused_class_logits"] = self.head_fused(torch.cat([aligned_v, aligned_a], dim=-1).mean(dim=1))
            out["logits"] = two_class_logit(out["fused_class_logits"])
        else:
            # Table 4's single-branch rows: the branch's own head decides
            out["logits"] = out["video_logits" if c.branches == "visual" else "audio_logits"]
        return out

    def loss(self, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from detectors.losses import avprompt_losses, cmfm_loss, segment_level_cmfm_loss

        c = self.config
        both = c.branches == "both"
        losses = avprompt_losses(
            targets["label"],
            logits_f=out.get("fused_class_logits"),
            logits_v=out.get("video_class_logits"),
            logits_a=out.get("audio_class_logits"),
            video_fake=targets.get("video_fake"),
            audio_fake=targets.get("audio_fake"),
            use_l_v=c.use_l_v and c.branches in ("both", "visual"),
            use_l_a=c.use_l_a and c.branches in ("both", "audio"),
            use_l_f=both,
            cmfm="none",
        )
        if both and c.cmfm != "none":
            fn = cmfm_loss if c.cmfm == "frame" else segment_level_cmfm_loss
            losses[f"cmfm_{c.cmfm}"] = fn(out["aligned_v"], out["aligned_a"], targets["label"], c.alpha, c.beta, c.gamma)
        return losses

    @classmethod
    def paper_trainable_parameters(cls) -> int:
        """Trainable parameters of the ``paper`` configuration, built with random weights (paper: 4.4 M)."""
        from detectors.backbones.params import count_parameters

        return count_parameters(cls.from_preset("paper", random_init=True))[0]
