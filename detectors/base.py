"""The Detector interface: small on purpose, the same for every method.

A detector declares the inputs it needs (``InputSpec``), maps a batch of
inputs to logits (``forward``), names its losses (``loss``) and turns inputs
into P(fake) (``predict``). It never receives labels outside ``loss``: the
training loop passes ``batch["inputs"]`` to ``forward``/``predict`` and
``batch["targets"]`` only to ``loss``.

Hyper-parameters live in a dataclass (``Config``) with named presets
(``tiny`` for CPU and the studio default, ``paper`` for the published
configuration); ``from_preset("tiny", **overrides)`` builds one.
"""
from __future__ import annotations

import dataclasses
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from pipeline.config import from_mapping
from pipeline.errors import ConfigError, RegistryError

# "facts": the clip's trivial facts (pipeline.clip_facts), one vector per clip, for the shortcut probes.
MODALITIES = ("face", "face_gray", "mouth", "audio", "mel", "facts")


@dataclass(frozen=True)
class InputSpec:
    """What a detector reads from each segment."""

    modalities: tuple[str, ...]  # subset of MODALITIES
    num_frames: int = 16  # frames per segment (25 fps); audio window = num_frames * 640 samples
    mel: str | None = None  # None | "whisper30" (padded to 30 s) | "truncated" (segment only)
    # RGB face side the model consumes; the loader resizes (area-averaged) so that
    # detectors never interpolate full-size frames themselves. None: as stored (224 px).
    face_size: int | None = None
    # "consecutive" (num_frames consecutive frames) | "groups" (IDForge-v2's 4 evenly spaced runs
    # of num_frames/4 frames over the whole clip, each with its own 640 samples; pipeline SegmentSpec).
    frame_sampling: str = "consecutive"

    def __post_init__(self) -> None:
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; known: {MODALITIES}")
        if ("mel" in self.modalities) != (self.mel is not None):
            raise ValueError("'mel' in modalities and InputSpec.mel must be set together")
        if self.face_size is not None and self.face_size < 8:
            raise ValueError(f"InputSpec.face_size must be >= 8 px, got {self.face_size}")
        if self.frame_sampling not in ("consecutive", "groups"):
            raise ValueError(f"InputSpec.frame_sampling must be 'consecutive' or 'groups', got {self.frame_sampling!r}")


class Detector(nn.Module):
    """Base class of every detector (built-in or plugged in)."""

    name: ClassVar[str] = "?"
    Config: ClassVar[type]  # dataclass of hyper-parameters
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}}
    # LoopParams settings the `paper` preset trains with (detectors.training.effective_loop), and which
    # of them the paper states; the others are avdf's choices, named as such in the model card.
    TRAIN: ClassVar[dict[str, Any]] = {}
    TRAIN_FROM_PAPER: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @classmethod
    def from_preset(cls, preset: str = "tiny", **overrides: Any) -> "Detector":
        if preset not in cls.PRESETS:
            raise ConfigError(f"{cls.name}: unknown preset {preset!r}; presets: {sorted(cls.PRESETS)}")
        values = {**cls.PRESETS[preset], **overrides}
        return cls(from_mapping(cls.Config, values, f"{cls.name}[{preset}]"))

    @classmethod
    def from_config_dict(cls, values: dict[str, Any]) -> "Detector":
        return cls(from_mapping(cls.Config, values, cls.name))

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @property
    @abstractmethod
    def inputs(self) -> InputSpec:
        """The modalities and segment length this detector reads."""

    @abstractmethod
    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"logits": (B,)}`` plus per-modality logits (``video_logits``, ``audio_logits``) where the method has them."""

    @abstractmethod
    def loss(self, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named losses; the loop optimises their sum (each name is logged)."""

    def fitted_on(self) -> dict[str, list[str] | None]:
        """Parts trained before this run (frozen teachers) -> the clip keys they learned from
        (None: trained outside avdf). ``avdf train`` checks them against the run's training split."""
        return {}

    @torch.no_grad()
    def predict(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """P(fake) per segment as ``score`` (+ ``video_score``/``audio_score`` where available)."""
        out = self.forward(inputs)
        scores = {"score": torch.sigmoid(out["logits"].float())}
        for modality in ("video", "audio"):
            if f"{modality}_logits" in out:
                scores[f"{modality}_score"] = torch.sigmoid(out[f"{modality}_logits"].float())
        return scores


def check_detector_class(name: str, cls: Any) -> None:
    """Registry hook: refuse classes that do not implement the interface."""
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        raise RegistryError(
            f"detector {name!r} resolves to {cls!r}, which is not a subclass of detectors.base.Detector"
        )
    missing = [m for m in ("inputs", "forward", "loss") if getattr(cls, m, None) in (None, getattr(Detector, m))]
    if getattr(cls, "Config", None) is None or not dataclasses.is_dataclass(cls.Config):
        missing.append("Config (a dataclass)")
    if missing:
        raise RegistryError(f"detector {name!r} ({cls.__module__}:{cls.__qualname__}) does not implement {missing}")
