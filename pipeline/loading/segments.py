"""Segments: T frames of a clip with the aligned audio window, as model inputs.

Frame ``t`` (25 fps) is aligned with audio samples ``[640 t, 640 (t + 1))`` (16 kHz),
so a 16-frame segment starting at frame ``s`` carries samples ``[640 s, 640 (s + 16))``
(10,240 samples). The ``facts`` modality is not a window: it is the clip's
``pipeline.clip_facts`` vector, the same for every segment of the clip (the
shortcut probes read it). A segment is a dict of three parts kept apart on purpose:
``inputs`` (what a detector sees), ``targets`` (labels; never passed to predict)
and ``meta`` (key, video id, segment index to group scores back to videos).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.audio_features import log_mel
from pipeline.clip_facts import clip_facts
from pipeline.frame_folders import GROUPS, group_frame_indices

if TYPE_CHECKING:
    import torch

SAMPLES_PER_FRAME = 640
FRAME_MODALITIES = ("face", "face_gray", "mouth", "landmarks", "face_found")
# "facts": one vector per clip (pipeline.clip_facts), computed from these arrays and the Clip row.
FACTS_ARRAYS = ("audio", "boxes", "face_found")
MODALITIES = FRAME_MODALITIES + ("audio", "facts")
MEL_MODES = ("whisper30", "truncated")
# "consecutive": num_frames consecutive frames from a start frame (0.64 s at 16 frames);
# "groups": IDForge-v2's layout (pipeline.frame_folders): 4 runs of num_frames/4 consecutive
# frames at evenly spaced starts over the whole clip, each frame with its own 640 samples.
FRAME_SAMPLINGS = ("consecutive", "groups")
TARGETS = ("label", "video_fake", "audio_fake")


class CorruptSample(Exception):
    """A shard sample whose members cannot be decoded (skipped and counted by the loaders)."""


@dataclass(frozen=True)
class SegmentSpec:
    """What a detector wants from each segment.

    ``hop`` is the evaluation stride in frames (``None``: ``num_frames``, i.e.
    non-overlapping segments; frames after the last full segment are not scored).
    ``mel``: ``None``; ``"whisper30"`` (the segment's audio padded to Whisper's 30 s
    window, 3,000 frames); ``"truncated"`` (only the segment's own frames, 10,240
    samples → 64 frames, for encoders that slice their positional embeddings).
    ``face_float``: faces as float32 in [0, 1] instead of uint8 (uint8 moves 4× less
    data between loader workers; detectors can normalise on their device).
    ``face_size``: RGB faces resized to this side in the loader (area averaging when
    shrinking, bicubic when growing); ``None`` keeps the stored size.
    ``frame_sampling``: ``"consecutive"`` (segments of consecutive frames) or ``"groups"``
    (one segment per clip: ``frame_folders.group_frame_indices`` over the whole clip, the
    audio of each kept frame concatenated; ``hop`` does not apply).
    """

    num_frames: int = 16
    hop: int | None = None
    modalities: tuple[str, ...] = ("face", "audio")
    mel: str | None = None
    n_mels: int = 80
    face_float: bool = False
    face_size: int | None = None
    frame_sampling: str = "consecutive"

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown:
            raise ValueError(f"SegmentSpec: unknown modality {unknown}; known: {list(MODALITIES)}")
        if not self.modalities and self.mel is None:
            raise ValueError("SegmentSpec: asks for no modality and no mel features")
        if self.mel not in (None, *MEL_MODES):
            raise ValueError(f"SegmentSpec: mel must be None or one of {MEL_MODES}, got {self.mel!r}")
        if self.face_size is not None and self.face_size < 1:
            raise ValueError(f"SegmentSpec: face_size must be >= 1, got {self.face_size}")
        if self.num_frames < 1 or (self.hop is not None and self.hop < 1):
            raise ValueError(f"SegmentSpec: num_frames and hop must be >= 1, got {self.num_frames}, {self.hop}")
        if self.frame_sampling not in FRAME_SAMPLINGS:
            raise ValueError(f"SegmentSpec: frame_sampling must be one of {FRAME_SAMPLINGS}, got {self.frame_sampling!r}")
        if self.frame_sampling == "groups" and self.num_frames % GROUPS:
            raise ValueError(f"SegmentSpec: frame_sampling='groups' needs num_frames divisible by {GROUPS}, "
                             f"got {self.num_frames}")

    @property
    def num_samples(self) -> int:
        return self.num_frames * SAMPLES_PER_FRAME

    @property
    def stride(self) -> int:
        return self.hop or self.num_frames

    def arrays(self) -> tuple[str, ...]:
        """Shard members to read: the modalities, plus audio for mel features and what the facts need."""
        names = [m for m in self.modalities if m != "facts"]
        needed = (["audio"] if self.mel else []) + (list(FACTS_ARRAYS) if "facts" in self.modalities else [])
        names += [n for n in needed if n not in names]
        return tuple(names)

    def eval_starts(self, num_frames: int) -> list[int]:
        """Start frames of the evaluation segments: every full segment at ``stride``; one for a short clip
        (and one per clip with ``groups``, which spans the whole clip)."""
        if num_frames <= self.num_frames or self.frame_sampling == "groups":
            return [0]
        return list(range(0, num_frames - self.num_frames + 1, self.stride))

    def max_start(self, num_frames: int) -> int:
        if self.frame_sampling == "groups":
            return 0
        return max(0, num_frames - self.num_frames)

    def frame_indices(self, start: int, clip_frames: int) -> list[int] | None:
        """The clip's frame numbers a segment holds with ``groups`` (``None``: ``num_frames`` from ``start``)."""
        if self.frame_sampling != "groups":
            return None
        return group_frame_indices(clip_frames, GROUPS, self.num_frames // GROUPS)


@dataclass
class DecodedClip:
    key: str
    row: dict[str, Any]
    arrays: dict[str, np.ndarray]
    num_frames: int
    # Values computed from the whole clip (its ``facts``), kept for its other segments; a reader may
    # pass a dict it keeps per clip, so that training visits compute them once, not once per segment.
    derived: dict[str, Any] = field(default_factory=dict)

    def facts(self) -> np.ndarray:
        """The clip's ``pipeline.clip_facts`` vector (computed on first use)."""
        if "facts" not in self.derived:
            self.derived["facts"] = clip_facts(self.arrays, self.row)
        return self.derived["facts"]

    def faces_at(self, size: int) -> np.ndarray | None:
        """The clip's RGB faces resized to ``size`` px, every frame (``resize_frames``), resized once and
        kept in ``derived``; ``None`` once the process keeps ``RESIZED_FACES_MAX_BYTES`` of them (the
        caller then resizes only its window, as for a clip seen once).

        A training run visits each clip many times with overlapping segments: resizing the same frames
        again was half the training loader's time (tiny CAD, 16 epochs of 256 segments: 5.3 -> 2.5 s).
        Resizing works frame by frame, so a window of the kept array is exactly the window resized alone."""
        name = f"face@{size}"
        if name not in self.derived:
            face = self.arrays["face"]
            if not _resized_faces.room_for(face.shape[0] * size * size * face.shape[3]):
                return None
            self.derived[name] = _resized_faces.keep(resize_frames(face, size))
        return self.derived[name]


def _window(array: np.ndarray, start: int, length: int) -> np.ndarray:
    """``array[start:start+length]`` as a copy (never a view that keeps the clip alive), edge-padded when short."""
    part = array[start : start + length]
    if part.shape[0] < length:
        pad = [(0, length - part.shape[0])] + [(0, 0)] * (array.ndim - 1)
        # Short clips repeat their last frame; audio is padded with silence.
        return np.pad(part, pad, mode="constant" if array.dtype == np.float32 and array.ndim == 1 else "edge")
    return part.copy()


def make_segment(clip: DecodedClip, start: int, spec: SegmentSpec, segment: int) -> dict[str, Any]:
    """One segment as ``{"inputs", "targets", "meta"}`` of tensors (no batch axis)."""
    import torch

    length = spec.num_frames
    indices = spec.frame_indices(start, clip.num_frames)
    inputs: dict[str, torch.Tensor] = {}
    audio = None
    if "audio" in spec.modalities or spec.mel:
        if indices is None:
            audio = _window(clip.arrays["audio"], start * SAMPLES_PER_FRAME, spec.num_samples)
        else:  # each kept frame brings its own 640 samples, as frame_folders.read_frame_folder does
            audio = np.concatenate([_window(clip.arrays["audio"], i * SAMPLES_PER_FRAME, SAMPLES_PER_FRAME)
                                    for i in indices])
    for name in spec.modalities:
        if name == "audio":
            inputs["audio"] = torch.from_numpy(audio)
            continue
        if name == "facts":
            inputs["facts"] = torch.from_numpy(clip.facts().copy())  # a copy: the clip's vector is shared
            continue
        source = clip.arrays[name]
        resize = name == "face" and spec.face_size and source.shape[1:3] != (spec.face_size, spec.face_size)
        kept = clip.faces_at(spec.face_size) if resize else None
        if kept is not None:
            source, resize = kept, False
        # fancy indexing copies, so the segment never keeps the memory-mapped clip alive
        window = _window(source, start, length) if indices is None else np.asarray(source[indices])
        if resize:
            window = resize_frames(window, spec.face_size)
        frames = torch.from_numpy(window)
        if name == "face":
            frames = frames.permute(0, 3, 1, 2)  # (T, H, W, 3) → (T, 3, H, W)
            if spec.face_float:
                frames = frames.float().div_(255.0)
        elif name in ("face_gray", "mouth"):
            frames = frames.unsqueeze(1)  # (T, 1, H, W)
        inputs[name] = frames
    if spec.mel:
        inputs["mel"] = log_mel(audio, n_mels=spec.n_mels, pad_to_30s=spec.mel == "whisper30")
    row = clip.row
    return {
        "inputs": inputs,
        "targets": {name: int(bool(row[name])) for name in TARGETS},
        "meta": {"key": clip.key, "video_id": row["video_id"], "segment": segment, "start": start},
    }


class _KeptBytes:
    """What this process keeps of resized faces, in bytes; an array's bytes are given back when it is freed."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def room_for(self, nbytes: int) -> bool:
        return self.used + nbytes <= self.limit

    def keep(self, array: np.ndarray) -> np.ndarray:
        self.used += array.nbytes
        weakref.finalize(array, self._release, array.nbytes)
        return array

    def _release(self, nbytes: int) -> None:
        self.used -= nbytes


# A studio training process keeps every clip it reads at 64 px in ~300 MB; past the limit (a larger
# corpus), the other clips' windows are resized per segment.
RESIZED_FACES_MAX_BYTES = 512 << 20
_resized_faces = _KeptBytes(RESIZED_FACES_MAX_BYTES)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, C) uint8 frames -> (T, size, size, C): area averaging to shrink (no aliasing), bicubic to grow."""
    import cv2

    shrink = size < min(frames.shape[1:3])
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (size, size), interpolation=interpolation) for f in frames])


def collate_segments(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack segments into a batch: inputs (B, ...) tensors, targets (B,) long, meta lists + (B,) long."""
    import torch

    first = segments[0]
    return {
        "inputs": {name: torch.stack([s["inputs"][name] for s in segments]) for name in first["inputs"]},
        "targets": {name: torch.tensor([s["targets"][name] for s in segments], dtype=torch.long) for name in TARGETS},
        "meta": {
            "key": [s["meta"]["key"] for s in segments],
            "video_id": [s["meta"]["video_id"] for s in segments],
            "segment": torch.tensor([s["meta"]["segment"] for s in segments], dtype=torch.long),
            "start": torch.tensor([s["meta"]["start"] for s in segments], dtype=torch.long),
        },
    }
