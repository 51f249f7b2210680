"""Which perturbation, at which level: the names, the level tables and the spec parser.

Video kinds are DeeperForensics-1.0's seven distortions (its
``perturbation/add_distortion_to_video.py``, ``get_distortion_parameter``);
their level is DF's 1..5 and their ``value`` the parameter DF uses at that
level. Audio kinds are ours; their level *is* the value (dB, kbit/s, kHz,
frames), as the spec strings read: ``snr:10``, ``mp3:32``, ``offset:+2``.

``mixed-5`` (a random video kind at level 5) and ``mixed`` (random kind and
level) are DF's ``--type random`` modes; ``resolve`` draws the concrete spec
from the seeded generator so that provenance can record what was drawn.
``none`` re-encodes without perturbing: the control that separates a
perturbation's effect from the re-encode every perturbed file goes through.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ConfigError

# DF's order (its ``dist_types``), which the mixed modes draw from.
VIDEO_LEVELS: dict[str, tuple[float, ...]] = {
    "CS": (0.4, 0.3, 0.2, 0.1, 0.0),  # colour saturation: chroma scale
    "CC": (0.85, 0.725, 0.6, 0.475, 0.35),  # colour contrast: pixel scale
    "BW": (16, 32, 48, 64, 80),  # block-wise: grey blocks per 256 px of the shorter side
    "GNC": (0.001, 0.002, 0.005, 0.01, 0.05),  # Gaussian noise variance in YCbCr
    "GB": (7, 9, 13, 17, 21),  # Gaussian blur kernel size (sigma = k / 6)
    "JPEG": (2, 3, 4, 5, 6),  # pixelation: down/up-scale factor
    "VC": (30, 32, 35, 38, 40),  # H.264 CRF at the re-encode
}
NUM_LEVELS = 5
AUDIO_LEVELS: dict[str, tuple[int, ...]] = {
    "snr": (30, 20, 10, 5, 0),  # additive white noise, dB
    "mp3": (64, 32, 16),  # kbit/s
    "aac": (64, 32, 16),
    "opus": (64, 32, 16),
    "band": (8,),  # kHz: resample to it and back
    "offset": (-5, -2, 2, 5),  # video frames (40 ms); + delays the audio
}
NONE = "none"
MIXED = "mixed"
_KINDS = {k.lower(): k for k in (*VIDEO_LEVELS, *AUDIO_LEVELS, NONE, MIXED)}


class PerturbSpecError(ConfigError):
    """An unknown perturbation kind, or a level that kind does not have."""


@dataclass(frozen=True)
class PerturbSpec:
    """One perturbation: ``kind`` and ``level`` (``None`` for ``none`` and for ``mixed``'s random level)."""

    kind: str
    level: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS.values():
            raise PerturbSpecError(f"unknown perturbation kind {self.kind!r}{_did_you_mean(self.kind)}")
        allowed = _levels(self.kind)
        if self.level not in allowed:
            shown = ", ".join("none" if a is None else _level_text(self.kind, a) for a in allowed)
            raise PerturbSpecError(f"perturbation {self.kind!r} has no level {self.level!r}; its levels: {shown}")

    @classmethod
    def parse(cls, text: str) -> PerturbSpec:
        """``"GB:3"``, ``"mp3:32"``, ``"snr:10"``, ``"offset:+2"``, ``"mixed-5"``, ``"mixed"``, ``"none"``.

        Kinds are matched without regard to case.
        """
        raw = text.strip()
        name, sep, level_text = raw.partition(":")
        if not sep and raw.lower().startswith(MIXED + "-"):
            name, sep, level_text = MIXED, "-", raw[len(MIXED) + 1 :]
        kind = _KINDS.get(name.strip().lower())
        if kind is None:
            raise PerturbSpecError(f"unknown perturbation {text!r}{_did_you_mean(name.strip())}")
        if not sep:
            return cls(kind)
        try:
            level = int(level_text.strip())
        except ValueError:
            raise PerturbSpecError(f"perturbation {text!r}: level {level_text!r} is not an integer") from None
        return cls(kind, level)

    def __str__(self) -> str:
        if self.level is None:
            return self.kind
        if self.kind == MIXED:
            return f"{MIXED}-{self.level}"
        return f"{self.kind}:{_level_text(self.kind, self.level)}"

    @property
    def modality(self) -> str:
        """``video``, ``audio``, ``none`` or ``mixed`` (a video kind once resolved)."""
        if self.kind in VIDEO_LEVELS:
            return "video"
        if self.kind in AUDIO_LEVELS:
            return "audio"
        return self.kind

    @property
    def value(self) -> float | int | None:
        """The parameter the perturbation applies (DF's table for video kinds, the level for audio)."""
        if self.kind in VIDEO_LEVELS:
            return VIDEO_LEVELS[self.kind][self.level - 1]  # type: ignore[operator]
        if self.kind in AUDIO_LEVELS:
            return self.level
        return None


def parse_spec(text: str) -> PerturbSpec:
    return PerturbSpec.parse(text)


def resolve(spec: PerturbSpec, rng: np.random.Generator) -> PerturbSpec:
    """The concrete spec: a mixed mode draws its video kind (uniform over DF's seven, VC included)
    and, for ``mixed``, its level (uniform 1..5) from ``rng``; other specs come back as they are,
    drawing nothing."""
    if spec.kind != MIXED:
        return spec
    kinds = list(VIDEO_LEVELS)
    kind = kinds[int(rng.integers(len(kinds)))]
    level = spec.level if spec.level is not None else int(rng.integers(1, NUM_LEVELS + 1))
    return PerturbSpec(kind, level)


def _levels(kind: str) -> tuple[int | None, ...]:
    if kind in VIDEO_LEVELS:
        return tuple(range(1, NUM_LEVELS + 1))
    if kind in AUDIO_LEVELS:
        return AUDIO_LEVELS[kind]
    if kind == MIXED:
        return (None, NUM_LEVELS)
    return (None,)


def _level_text(kind: str, level: int) -> str:
    return f"{level:+d}" if kind == "offset" else str(level)


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), _KINDS, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(_KINDS[c]) for c in close)}?" if close else ""
    return f"{hint} (known: {', '.join(_KINDS.values())})"


# Every spec, in a stable order: the control, DF's 7 kinds x 5 levels, the audio kinds, the mixed modes.
ALL_SPECS: tuple[PerturbSpec, ...] = (
    PerturbSpec(NONE),
    *(PerturbSpec(k, lv) for k in VIDEO_LEVELS for lv in range(1, NUM_LEVELS + 1)),
    *(PerturbSpec(k, lv) for k, levels in AUDIO_LEVELS.items() for lv in levels),
    PerturbSpec(MIXED, NUM_LEVELS),
    PerturbSpec(MIXED),
)

# A quick CPU run (24 encodes per test video): the re-encode control, each of DF's kinds at its
# mildest, middle and strongest level (the shape of a degradation curve), and one audio noise and
# one audio codec setting at levels where speech is still clearly intelligible.
DEFAULT_SPECS: tuple[PerturbSpec, ...] = (
    PerturbSpec(NONE),
    *(PerturbSpec(k, lv) for k in VIDEO_LEVELS for lv in (1, 3, 5)),
    PerturbSpec("snr", 10),
    PerturbSpec("mp3", 32),
)
