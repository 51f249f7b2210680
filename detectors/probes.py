"""Shortcut probes: trivial detectors that see one group of a clip's trivial facts and nothing else.

A corpus whose real and fake clips differ in leading silence, duration, codec,
bitrate, loudness, audio/video timing or where the face sits can be "solved"
without looking at a forgery. Each probe reads one group of
``pipeline.clip_facts.FACTS`` (the group is its name: ``probe-silence`` reads the
``silence`` facts) and is trained and evaluated like every detector, by the one
loop and the one evaluation. A probe scoring well above chance on a protocol says
that protocol can be passed by that shortcut, and by how much.

The model is trivial on purpose: each fact is scaled by a fixed rule (``SCALING``:
``log1p`` for bitrates, fixed offsets and units for the others, so the inputs are
of order one whatever the corpus; nothing is fitted to the data but the weights),
then one hidden layer of ``hidden`` tanh units and a linear output give the logit.
The hidden layer is there so that a shortcut that is not monotone in a fact (fakes
in a narrow bitrate band, reals on both sides of it) is caught too; tanh units
never die, so no weight is left untrained. BCE on ``targets[label]``.

A probe has no paper: its ``tiny`` and ``paper`` presets are the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from detectors.base import Detector, InputSpec
from pipeline.clip_facts import FACT_GROUPS, FACTS, fact_indices
from pipeline.errors import ConfigError

# fact -> (log1p first, offset, unit): the probe's input is (f(x) - offset) / unit, f = log1p or identity.
# The offset is a typical value and the unit a typical spread, so that a corpus' values span a few units
# around 0, where tanh bends: a shortcut in a band of values is then a few steps of training away.
SCALING: dict[str, tuple[bool, float, float]] = {
    "leading_silence_s": (False, 0.0, 0.5),  # seconds: 0 to a few
    "trailing_silence_s": (False, 0.0, 0.5),
    "video_duration_s": (False, 5.0, 5.0),  # clips last seconds to tens of seconds
    "audio_duration_s": (False, 5.0, 5.0),
    "rms_dbfs": (False, -30.0, 10.0),  # speech sits around -30 dBFS; the silent floor (-120) maps to -9
    "peak_dbfs": (False, -30.0, 10.0),
    "bit_rate_kbps": (True, 5.0, 1.0),  # log1p(kbit/s): 30 kbit/s -> -1.6, 8 Mbit/s -> 4, not recorded -> -5
    "video_bit_rate_kbps": (True, 5.0, 1.0),
    "audio_bit_rate_kbps": (True, 5.0, 1.0),
    "source_fps": (False, 25.0, 5.0),
    "source_width": (False, 500.0, 500.0),  # px
    "source_height": (False, 500.0, 500.0),
    "source_sample_rate": (False, 32000.0, 16000.0),  # 16 kHz -> -1, 48 kHz -> 1
    "source_channels": (False, 1.5, 0.5),  # mono -> -1, stereo -> 1
    "container_code": (False, 2.0, 2.0),  # codes: 0 not recorded, 1 other, 2 the first listed (the commonest)
    "video_codec_code": (False, 2.0, 2.0),
    "audio_codec_code": (False, 2.0, 2.0),
    "av_start_offset_s": (False, 0.0, 0.1),  # tens of milliseconds already matter
    "av_duration_diff_s": (False, 0.0, 0.1),
    "av_array_mismatch_s": (False, 0.0, 0.1),
    "face_width_rel": (False, 0.3, 0.15),  # fractions of the frame
    "face_height_rel": (False, 0.3, 0.15),
    "face_centre_x_rel": (False, 0.5, 0.15),
    "face_centre_y_rel": (False, 0.5, 0.15),
    "face_size_cv": (False, 0.0, 0.1),
}


@dataclass
class ProbeConfig:
    group: str  # the fact group read (pipeline.clip_facts.FACT_GROUPS); set by each probe's presets
    hidden: int = 16
    num_frames: int = 16  # segment length: every segment of a clip carries the same facts
    label: str = "label"  # target to learn: label | video_fake | audio_fake


class ShortcutProbe(Detector):
    """Base of the probes: fixed scaling of one fact group, one tanh hidden layer, a logit."""

    Config = ProbeConfig
    GROUP: ClassVar[str] = ""  # each registered probe names its group
    # avdf's choices (a probe has no paper): a tiny model learns in few epochs at a high rate, and one
    # validation segment per clip is exact, since every segment of a clip has the same facts.
    TRAIN: ClassVar[dict[str, Any]] = {"optimizer": "adam", "lr": 1e-2, "epochs": 30, "batch_size": 32,
                                       "val_segments_per_clip": 1}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.GROUP:
            cls.PRESETS = {"tiny": {"group": cls.GROUP}, "paper": {"group": cls.GROUP}}

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__(config)
        if config.group not in FACT_GROUPS:
            raise ConfigError(f"{self.name}: unknown fact group {config.group!r}; groups: {list(FACT_GROUPS)}")
        if self.GROUP and config.group != self.GROUP:
            raise ConfigError(f"{self.name} reads the {self.GROUP!r} facts, not {config.group!r} "
                              f"(use probe-{config.group})")
        if config.hidden < 1:
            raise ConfigError(f"{self.name}: hidden must be >= 1, got {config.hidden}")
        names = FACT_GROUPS[config.group]
        log, offset, unit = zip(*(SCALING[n] for n in names))
        # Not saved with the weights: the scaling is part of the code, as a layer's formula is.
        self.register_buffer("index", torch.tensor(fact_indices(config.group)), persistent=False)
        self.register_buffer("log", torch.tensor(log), persistent=False)
        self.register_buffer("offset", torch.tensor(offset), persistent=False)
        self.register_buffer("unit", torch.tensor(unit), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(len(names), config.hidden), nn.Tanh(), nn.Linear(config.hidden, 1))

    @property
    def inputs(self) -> InputSpec:
        return InputSpec(("facts",), self.config.num_frames)

    def scaled(self, facts: torch.Tensor) -> torch.Tensor:
        """(B, len(FACTS)) facts -> (B, group size) model inputs (the fixed scaling of ``SCALING``)."""
        if facts.shape[-1] != len(FACTS):
            raise ValueError(f"{self.name}: facts have {facts.shape[-1]} values, pipeline.clip_facts has "
                             f"{len(FACTS)} (shards and code from different versions?)")
        x = facts.float()[:, self.index]
        x = torch.where(self.log, torch.log1p(x.clamp_min(0.0)), x)
        return (x - self.offset) / self.unit

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.mlp(self.scaled(inputs["facts"])).squeeze(-1)}

    def loss(self, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"bce": F.binary_cross_entropy_with_logits(out["logits"].float(), targets[self.config.label].float())}


class SilenceProbe(ShortcutProbe):
    name = "probe-silence"
    GROUP = "silence"


class DurationProbe(ShortcutProbe):
    name = "probe-duration"
    GROUP = "duration"


class LoudnessProbe(ShortcutProbe):
    name = "probe-loudness"
    GROUP = "loudness"


class ContainerProbe(ShortcutProbe):
    name = "probe-container"
    GROUP = "container"


class AVSyncProbe(ShortcutProbe):
    name = "probe-av-sync"
    GROUP = "av-sync"


class FaceBoxProbe(ShortcutProbe):
    name = "probe-face-box"
    GROUP = "face-box"
