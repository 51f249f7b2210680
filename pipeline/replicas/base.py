"""What every replica writer shares: the inputs, the plan of one replica, and stable native ids.

A corpus module turns the inputs (the studio's real clips and the fakes of
``avdf generate``) into a :class:`ReplicaPlan`: which input clip goes to which
released file name and how it is made (hard link, video-only copy, IDForge
folder), the text files of the layout (CSV / JSON / TXT, as exact strings),
and every input it cannot place with the reason. It never touches the disk;
:mod:`pipeline.replicas.writer` does. Everything here is a pure function of
the inputs, so the same inputs give the same names and the same bytes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.clip import Clip
from pipeline.errors import AvdfError
from pipeline.manifest import read_clips

LINK, VIDEO_ONLY, IDFORGE_FOLDER, WAV = "link", "video_only", "idforge_folder", "wav"

# The studio's five groups onto FakeAVCeleb's five races (and so onto every
# corpus that names races): a fixed order, documented in docs and tests.
STUDIO_GROUPS = ("group-a", "group-b", "group-c", "group-d", "group-e")
RACES = ("African", "Asian (East)", "Asian (South)", "Caucasian (American)", "Caucasian (European)")
RACE_OF_GROUP = dict(zip(STUDIO_GROUPS, RACES))


class ReplicaError(AvdfError):
    """Inputs a replica cannot be written from (no studio manifest, colliding ids)."""


@dataclass(frozen=True)
class Placed:
    """One input clip at its released name under the replica folder."""

    key: str  # the input clip's key
    rel: str  # destination, relative to the output folder (posix)
    make: str = LINK  # LINK | VIDEO_ONLY | IDFORGE_FOLDER | WAV (the audio as 16 kHz mono PCM)
    transcript: str | None = None  # IDForge folders: the <name>.txt content


@dataclass
class ReplicaPlan:
    corpus: str
    root: str  # the folder to pass to ``avdf ingest --root``, relative to the output folder
    placed: list[Placed] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # rel path -> exact content
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input key, why)
    _names: set[str] = field(default_factory=set, repr=False)

    def place(self, key: str, rel: str, make: str = LINK, transcript: str | None = None) -> bool:
        """Add ``key`` at ``rel``; a name already taken skips it (counted, never overwritten)."""
        if rel in self._names:
            self.skip(key, "its released name is already taken by another input")
            return False
        self._names.add(rel)
        self.placed.append(Placed(key, rel, make, transcript))
        return True

    def skip(self, key: str, why: str) -> None:
        self.skipped.append((key, why))


@dataclass
class ReplicaInputs:
    """Real clips (from ``--studio``) and fakes (from ``--fakes``), each with its media's absolute path."""

    reals: list[Clip]
    fakes: list[Clip]
    media: dict[str, Path]
    ignored: list[tuple[str, str]] = field(default_factory=list)  # input rows that are not replica inputs

    def __post_init__(self) -> None:
        self.by_key = {c.key: c for c in [*self.reals, *self.fakes]}

    @property
    def all_keys(self) -> list[str]:
        return [c.key for c in self.reals] + [c.key for c in self.fakes] + [k for k, _ in self.ignored]

    def transcript(self, key: str | None) -> str | None:
        clip = self.by_key.get(key or "")
        return extra_of(clip).get("transcript") if clip else None


def extra_of(clip: Clip) -> dict:
    try:
        value = json.loads(clip.extra or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def target_key(fake: Clip) -> str | None:
    """The real clip whose video a fake forged (the recipes' ``extra.target_key``, else its first source)."""
    return extra_of(fake).get("target_key") or (fake.source_keys[0] if fake.source_keys else None)


def audio_key(fake: Clip) -> str | None:
    return extra_of(fake).get("audio_key")


def face_source_key(fake: Clip) -> str | None:
    return extra_of(fake).get("face_source_key")


def _resolve(manifest: Path) -> Path:
    return manifest / "manifest.parquet" if manifest.is_dir() else manifest


def load_inputs(studio: Path, fakes: Sequence[Path] = ()) -> ReplicaInputs:
    """Read the studio manifest (a folder holding ``manifest.parquet``, or the file) and the fakes manifests.

    Real rows of a fakes manifest (``combined.parquet``, CMDFD ``origin`` rows) are the studio's
    reals again: they are ignored with a reason, the reals come from ``--studio`` only.
    """
    studio_manifest = _resolve(Path(studio))
    if not studio_manifest.is_file():
        raise ReplicaError(f"{studio_manifest}: studio manifest does not exist (run `avdf fetch studio --out {studio}`)")
    reals: dict[str, Clip] = {}
    fake_rows: dict[str, Clip] = {}
    media: dict[str, Path] = {}
    ignored: list[tuple[str, str]] = []

    def add(clip: Clip, base: Path, from_studio: bool) -> None:
        p = Path(clip.path)
        path = p if p.is_absolute() else (base / p)
        if clip.key in reals or clip.key in fake_rows:
            ignored.append((clip.key, "listed twice in the inputs"))
            return
        if clip.label == 0 and not from_studio:
            ignored.append((clip.key, "real row of a fakes manifest (the real clips come from --studio)"))
            return
        (reals if clip.label == 0 else fake_rows)[clip.key] = clip
        media[clip.key] = path.resolve()

    for clip in read_clips(studio_manifest):
        add(clip, studio_manifest.resolve().parent, True)
    for manifest in fakes:
        manifest = _resolve(Path(manifest))
        for clip in read_clips(manifest):
            add(clip, manifest.resolve().parent, False)
    return ReplicaInputs(
        reals=sorted(reals.values(), key=lambda c: c.key),
        fakes=sorted(fake_rows.values(), key=lambda c: c.key),
        media=media,
        ignored=ignored,
    )


# --------------------------------------------------------------------------- native ids


def stable_numbers(names: Iterable[str], what: str = "identity") -> dict[str, int]:
    """Each name -> a number that does not depend on the other names.

    The studio's names carry their own (``s007`` -> 7), so adding identities never
    renumbers the old ones; other names get a hash. Two names on one number are an error.
    """
    out: dict[str, int] = {}
    owner: dict[int, str] = {}
    for name in sorted(set(names)):
        m = re.fullmatch(r"[A-Za-z_\-]*(\d+)", name)
        number = int(m[1]) if m else int(hashlib.sha256(name.encode()).hexdigest(), 16) % 100_000
        if number in owner:
            raise ReplicaError(f"{what}s {owner[number]!r} and {name!r} map to the same native number {number}")
        owner[number] = name
        out[name] = number
    return out


def youtube_id(text: str) -> str:
    """A YouTube-like 11-character id ([A-Za-z0-9_-]) hashed from ``text``."""
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode()[:11]


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def clip_numbers(clips: Iterable[Clip]) -> dict[str, int]:
    """key -> 0-based rank of the clip among its identity's real clips (sorted by key)."""
    by_identity: dict[str, list[str]] = {}
    for c in clips:
        by_identity.setdefault(c.identity, []).append(c.key)
    return {k: i for keys in by_identity.values() for i, k in enumerate(sorted(keys))}


def video_numbers(clips: Iterable[Clip]) -> dict[str, int]:
    """video_id -> 0-based rank among its identity's videos."""
    by_identity: dict[str, set[str]] = {}
    for c in clips:
        by_identity.setdefault(c.identity, set()).add(c.video_id)
    return {v: i for vids in by_identity.values() for i, v in enumerate(sorted(vids))}


def identity_splits(identities: Iterable[str]) -> dict[str, str]:
    """Identity-disjoint train / val / test (7 / 1 / 2 of every 10 identities in number order)."""
    numbers = stable_numbers(identities)
    order = sorted(numbers, key=numbers.get)
    return {name: ("train" if i % 10 < 7 else "val" if i % 10 == 7 else "test") for i, name in enumerate(order)}


def csv_text(rows: Iterable[Sequence[str]]) -> str:
    """Rows as CSV with ``\\n`` line ends (deterministic; quoting only where a value needs it)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    return buf.getvalue()
