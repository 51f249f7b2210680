"""Perturbations for the robustness axis: how a detector degrades under compression, noise, blur.

Whole test videos, real and fake alike, are perturbed before preprocessing,
seeded and recorded in provenance:

- video: DeeperForensics-1.0's seven distortions at its five levels (CS, CC, BW,
  GNC, GB, JPEG, VC) and its mixed modes (``pipeline.perturb.video``);
- audio: white noise at an SNR, MP3/AAC/Opus round trips, band-limiting, an
  audio-video offset (``pipeline.perturb.audio``);
- ``perturb_file`` applies one spec to a file and writes an mp4.

Specs are strings such as ``"GB:3"``, ``"mp3:32"``, ``"offset:+2"``, ``"mixed-5"``
(``PerturbSpec.parse``); ``ALL_SPECS`` lists every one, ``DEFAULT_SPECS`` a quick subset.
"""
from __future__ import annotations

from pipeline.perturb.audio import apply_audio
from pipeline.perturb.file import perturb_file
from pipeline.perturb.spec import (
    ALL_SPECS,
    AUDIO_LEVELS,
    DEFAULT_SPECS,
    VIDEO_LEVELS,
    PerturbSpec,
    PerturbSpecError,
    parse_spec,
    resolve,
)
from pipeline.perturb.video import apply_video

__all__ = [
    "ALL_SPECS",
    "AUDIO_LEVELS",
    "DEFAULT_SPECS",
    "VIDEO_LEVELS",
    "PerturbSpec",
    "PerturbSpecError",
    "apply_audio",
    "apply_video",
    "parse_spec",
    "perturb_file",
    "resolve",
]
