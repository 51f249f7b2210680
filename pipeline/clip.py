"""The Clip record: the one schema every stage reads and writes.

A manifest is a Parquet table of Clips kept beside the media it describes:
each ``path`` is relative to the folder that holds the manifest.
Fields are only ever added (with a default), never forked into a second schema.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

import pyarrow as pa

CATEGORIES = ("RVRA", "RVFA", "FVRA", "FVFA")

# WebDataset splits a sample key at its first dot, so keys never contain one.
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+){1,3}$")

CLIP_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("identity", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("video_fake", pa.bool_(), nullable=False),
        pa.field("audio_fake", pa.bool_(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("generator", pa.string()),
        pa.field("audio_source_identity", pa.string()),
        pa.field("self_audio", pa.bool_()),
        pa.field("sync", pa.bool_()),
        pa.field("ethnicity", pa.string()),
        pa.field("gender", pa.string()),
        pa.field("source_keys", pa.list_(pa.string())),
        pa.field("path", pa.string(), nullable=False),
        pa.field("fps", pa.float64()),
        pa.field("sample_rate", pa.int32()),
        pa.field("num_frames", pa.int64()),
        pa.field("num_samples", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("sha256", pa.string()),
        # Free-form per-corpus extras (studio transcript and phone alignment,
        # a corpus' native subset name, ...) as a JSON object string.
        pa.field("extra", pa.string()),
    ]
)

REQUIRED_FIELDS = tuple(f.name for f in CLIP_SCHEMA if not f.nullable)


def category_of(video_fake: bool, audio_fake: bool) -> str:
    """FakeAVCeleb's four categories from the two modality labels."""
    return ("FV" if video_fake else "RV") + ("FA" if audio_fake else "RA")


def validate_key(key: str) -> str:
    """Return ``key`` if it follows ``<corpus>/<clip_id>[/<variant>]``, else raise."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValueError(
            f"invalid clip key {key!r}: expected '<corpus>/<clip_id>[/<variant>]' "
            "made of letters, digits, '_' and '-' (no dots: WebDataset splits keys at the first dot)"
        )
    return key


def safe_id(text: str) -> str:
    """Turn a native file name or id into a key component (no dots, no slashes)."""
    out = re.sub(r"[^A-Za-z0-9_\-]+", "-", text).strip("-")
    if not out:
        raise ValueError(f"cannot make a clip id from {text!r}")
    return out


@dataclass
class Clip:
    """One row of a manifest. Defaults describe a real, synchronised clip."""

    key: str
    corpus: str
    identity: str
    video_id: str
    path: str
    label: int = 0
    video_fake: bool = False
    audio_fake: bool = False
    category: str = "RVRA"
    method: str = "real"
    generator: str | None = None
    audio_source_identity: str | None = None
    self_audio: bool | None = None
    sync: bool | None = True
    ethnicity: str | None = None
    gender: str | None = None
    source_keys: list[str] = field(default_factory=list)
    fps: float | None = None
    sample_rate: int | None = None
    num_frames: int | None = None
    num_samples: int | None = None
    duration_s: float | None = None
    sha256: str | None = None
    extra: str | None = None

    def __post_init__(self) -> None:
        validate_key(self.key)
        if self.label not in (0, 1):
            raise ValueError(f"clip {self.key}: label must be 0 or 1, got {self.label!r}")
        if self.category not in CATEGORIES:
            raise ValueError(f"clip {self.key}: category must be one of {CATEGORIES}, got {self.category!r}")
        if self.category != category_of(self.video_fake, self.audio_fake):
            raise ValueError(
                f"clip {self.key}: category {self.category} disagrees with "
                f"video_fake={self.video_fake}, audio_fake={self.audio_fake}"
            )
        if self.label != int(self.video_fake or self.audio_fake):
            raise ValueError(f"clip {self.key}: label {self.label} disagrees with the modality labels")

    def to_row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Clip":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

