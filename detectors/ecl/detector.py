"""ECL: explicit correlation learning (seeds/003, Sec. III).

- **encoders** (Sec. III-A, V-A): audio ResNet-34 (2-D, [3]) on MFCC / log-mel at
  100 Hz and a visual frontend + temporal network ([21], TalkNet) on 112 px
  grayscale faces, each giving 128-d per-frame features ``F_a``, ``F_v``.
- **detection branch**: two cross-attention modules ([21]) with ``F_a`` and ``F_v``
  as sources (TalkNet's: keys/values from the source, queries from the other stream),
  concatenated, a fully connected layer -> real/fake (cross-entropy).
- **correlation distillation** (Eq. 2): per frame, the prediction
  ``Sync = (cos(F_a, F_v) + 1)/2`` against the soft label ``Cont = 1 - JS(P_a, P_v)``
  from an ASR and a VSR teacher over one symbol set.
- **contrastive loss** (Eqs. 3-4): ``y d² + (1 - y) max(m - d, 0)²``, ``d = |Cont - Sync|``, m = 1.0.

Teacher posteriors come either precomputed in the batch (``inputs["teacher_audio"]``,
``inputs["teacher_video"]``: (B, T', C) probabilities) or from the frozen teachers
this detector holds (``teacher_audio``/``teacher_video`` checkpoint paths, see
``detectors.ecl.teachers``). ``predict`` never runs the teachers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from detectors.base import Detector, InputSpec
from detectors.paper_common import two_class_logit
from detectors.features import LogMel, unit_frames
from pipeline.errors import ConfigError

AUDIO_FEATURES = ("mfcc", "logmel")
VISUAL_INPUTS = ("face_gray", "mouth")


def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Orthonormal DCT-II basis (n_out, n_in): MFCC = DCT of the log-mel spectrum."""
    n = torch.arange(n_in).float()
    k = torch.arange(n_out).float()[:, None]
    basis = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis


class AudioFeatures(nn.Module):
    """(B, N) 16 kHz audio -> (B, C, N // 160) features at 100 Hz: log-mel, or MFCC (DCT of a 40-band log-mel)."""

    def __init__(self, kind: str, n_mels: int, n_mfcc: int) -> None:
        super().__init__()
        self.kind = kind
        self.mel = LogMel(n_mels=n_mels)
        self.dim = n_mfcc if kind == "mfcc" else n_mels
        if kind == "mfcc":
            self.register_buffer("dct", dct_matrix(n_mels, n_mfcc), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.mel(audio)
        if self.kind == "mfcc":
            x = torch.einsum("cm,bmt->bct", self.dct, x)
        # per-utterance mean/variance normalisation (as speaker/sync models do)
        return (x - x.mean(dim=-1, keepdim=True)) / x.std(dim=-1, keepdim=True).clamp_min(1e-3)


@dataclass
class ECLConfig:
    num_frames: int = 16
    visual_input: str = "face_gray"  # face_gray (the paper: 112 px face crops) | mouth
    face_size: int = 112
    audio_features: str = "mfcc"  # mfcc (the paper's text) | logmel (DESIGN.md)
    n_mels: int = 40  # mel bands (MFCC is computed from these)
    n_mfcc: int = 13
    audio_width: float = 1.0  # ResNet-34 channel multiplier (1.0 = [3]'s 16-32-64-128)
    visual_width: float = 1.0  # TalkNet frontend multiplier (1.0 = 64-128-256-512)
    feature_dim: int = 128  # F_a, F_v
    fusion_heads: int = 8
    # TalkNet's attention ([21]): keys/values (and residual) from the source F_a / F_v, queries from the
    # other stream; "query-own-stream" is the reverse (see detectors/modules/ecl_fusion.py)
    cross_attention: str = "talknet"
    dropout: float = 0.1
    margin: float = 1.0
    js_base: float = 2.0
    teacher_audio: str | None = None  # ASR: avdf teacher checkpoint or deep_avsr audio-only .pt; else posteriors come in the batch
    teacher_video: str | None = None  # VSR: avdf teacher checkpoint or deep_avsr video-only .pt
    teacher_video_frontend: str | None = None  # deep_avsr's visual_frontend.pt (default: next to teacher_video)
    teacher_video_input: str = "mouth"  # what a deep_avsr VSR teacher reads: mouth | face_gray (central half)
    # --- ablations (Table IV) ---
    distillation: bool = True  # "w/o Cons&Dis" turns both off
    contrastive: bool = True  # "w/o Cons"


class ECL(Detector):
    """Explicit correlation learning with ASR/VSR teachers."""

    name = "ecl"
    Config = ECLConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"face_size": 48, "audio_features": "logmel", "audio_width": 0.25, "visual_width": 0.0625,
                 "fusion_heads": 4},
        "paper": {},
    }
    ABLATIONS: ClassVar[dict[str, dict[str, Any]]] = {
        "w/o Cons": {"contrastive": False},
        "w/o Cons&Dis": {"contrastive": False, "distillation": False},
    }
    # Implementations: "The initial learning rate is set to 10^-4, and it is decreased by 5% for every epoch"
    # (read as lr x 0.95 per epoch). The optimiser, epochs and batch size are not given: avdf's choices.
    TRAIN: ClassVar[dict[str, Any]] = {
        "optimizer": "adam", "lr": 1e-4, "epochs": 30, "batch_size": 8,
        "schedule": {"kind": "exponential", "gamma": 0.95},
    }
    TRAIN_FROM_PAPER: ClassVar[tuple[str, ...]] = ("lr", "schedule")

    def __init__(self, config: ECLConfig) -> None:
        super().__init__(config)
        c = config
        if c.audio_features not in AUDIO_FEATURES:
            raise ConfigError(f"ecl: audio_features must be one of {AUDIO_FEATURES}, got {c.audio_features!r}")
        if c.visual_input not in VISUAL_INPUTS:
            raise ConfigError(f"ecl: visual_input must be one of {VISUAL_INPUTS}, got {c.visual_input!r}")
        from detectors.modules.ecl_encoders import AudioResNet34, VisualEncoder
        from detectors.modules.ecl_fusion import CROSS_ATTENTION, ECLCrossModalFusion

        if c.cross_attention not in CROSS_ATTENTION:
            raise ConfigError(f"ecl: cross_attention must be one of {CROSS_ATTENTION}, got {c.cross_attention!r}")

        self.audio_features = AudioFeatures(c.audio_features, c.n_mels, c.n_mfcc)
        self.audio_encoder = AudioResNet34(self.audio_features.dim, c.audio_width, c.feature_dim)
        self.visual_encoder = VisualEncoder(c.visual_width, c.feature_dim)
        self.fusion = ECLCrossModalFusion(c.feature_dim, c.fusion_heads, c.dropout, cross_attention=c.cross_attention)
        # Held teachers are frozen and not part of the detector's state dict (they have their own files).
        self._teachers: dict[str, Any] = {}
        if self.uses_teachers:
            from detectors.ecl.teachers import load_teacher

            for modality, path in (("audio", c.teacher_audio), ("video", c.teacher_video)):
                if path:
                    self._teachers[modality] = load_teacher(path, expect_modality=modality,
                                                            frontend=c.teacher_video_frontend,
                                                            video_input=c.teacher_video_input)
            if len(self._teachers) == 2:
                a, v = self._teachers["audio"].symbols, self._teachers["video"].symbols
                if a.symbols != v.symbols:
                    raise ConfigError(f"ecl: the ASR teacher ({a.name}) and VSR teacher ({v.name}) use different symbol sets")

    def fitted_on(self) -> dict[str, list[str] | None]:
        return {f"{m} teacher": (t.trained_on or {}).get("keys") for m, t in self._teachers.items()}

    @property
    def uses_teachers(self) -> bool:
        return self.config.distillation or self.config.contrastive

    @property
    def inputs(self) -> InputSpec:
        modalities = {self.config.visual_input, "audio"}
        modalities |= {t.input_key for t in self._teachers.values()}
        return InputSpec(tuple(m for m in ("face", "face_gray", "mouth", "audio") if m in modalities), self.config.num_frames)

    def to(self, *args: Any, **kwargs: Any) -> "ECL":
        super().to(*args, **kwargs)
        for teacher in self._teachers.values():
            teacher.to(*args, **kwargs)
        return self

    def encode(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> F_a, F_v, each (B, T, feature_dim)."""
        c = self.config
        frames = inputs[c.visual_input]
        if frames.dim() != 5 or frames.shape[2] != 1:
            raise ValueError(f"ecl: {c.visual_input} must be (B, T, 1, H, W) grayscale, got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        x = unit_frames(frames)
        if x.shape[-1] != c.face_size:
            x = F.interpolate(x, size=(c.face_size, c.face_size), mode="bilinear", align_corners=False, antialias=True)
        x = x.sub_(0.4161).div_(0.1688).view(b, t, c.face_size, c.face_size)  # TalkNet's grayscale normalisation
        f_v = self.visual_encoder(x)
        f_a = self.audio_encoder(self.audio_features(inputs["audio"]), num_frames=t)
        return f_a, f_v

    def teacher_posteriors(self, inputs: dict[str, torch.Tensor], num_frames: int) -> dict[str, torch.Tensor]:
        """P_a, P_v on the T video frames, from the batch or the held teachers ({} when neither has them)."""
        from detectors.losses import resample_posteriors

        out = {}
        for modality in ("audio", "video"):
            key = f"teacher_{modality}"
            if key in inputs:
                p = inputs[key].float()
            elif modality in self._teachers:
                p = self._teachers[modality].posteriors(inputs)
            else:
                continue
            out[modality] = resample_posteriors(p, num_frames)
        return out

    def forward(self, inputs: dict[str, torch.Tensor], with_teachers: bool = True) -> dict[str, torch.Tensor]:
        f_a, f_v = self.encode(inputs)
        fused = self.fusion(f_a, f_v)
        out = {"f_a": f_a, "f_v": f_v, "class_logits": fused["logits"], "logits": two_class_logit(fused["logits"])}
        if with_teachers and self.uses_teachers:
            posteriors = self.teacher_posteriors(inputs, f_a.shape[1])
            if "audio" in posteriors:
                out["p_a"] = posteriors["audio"]
            if "video" in posteriors:
                out["p_v"] = posteriors["video"]
        return out

    @torch.no_grad()
    def predict(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"score": torch.sigmoid(self.forward(inputs, with_teachers=False)["logits"].float())}

    def loss(self, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from detectors.losses import ecl_losses

        c = self.config
        has_posteriors = "p_a" in out and "p_v" in out
        if not has_posteriors and not self.training:
            # validation without teachers: the detection loss alone (selection uses AUC anyway)
            return ecl_losses(out["class_logits"], targets["label"], use_distillation=False, use_contrastive=False)
        if self.uses_teachers and not has_posteriors:
            raise ValueError(
                "ecl: the correlation branch needs ASR and VSR teacher posteriors: put 'teacher_audio' and "
                "'teacher_video' (B, T', C) in the batch inputs, or set teacher_audio=/teacher_video= to avdf "
                "teacher checkpoints (detectors.ecl.teachers), or use the 'w/o Cons&Dis' ablation"
            )
        return ecl_losses(
            out["class_logits"], targets["label"], out["f_a"], out["f_v"], out.get("p_a"), out.get("p_v"),
            use_distillation=c.distillation, use_contrastive=c.contrastive, margin=c.margin, js_base=c.js_base,
        )
