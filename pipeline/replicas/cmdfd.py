"""A CMDFD build written in the authors' released layout: the ``My_Test/`` tree and the list CSVs.

``avdf generate --recipe cmdfd`` makes a CMDFD build (its manifest holds the
``origin`` real clips and the fakes). This writes it the way the ECL authors
released CMDFD, so that the ``cmdfd`` ingest adapter reads it unchanged:

- ``My_Test/origin/<real>.mp4`` and ``.wav`` (16 kHz mono): the real clips;
- ``My_Test/<folder>/<target>-<audio>.mp4``, folder ``wav2lip``,
  ``VideoReTalk``, ``Audio2Head``, ``MakeItTalk`` and their ``_Self`` twins;
  the talking-head folders also hold the fake's ``.wav`` (their lists point
  there), while the lip-sync lists point at the driving real clip's wav in
  ``origin/`` (for ``_Self``: the clip's own wav);
- ``lists/<Subset>.csv`` (W2L, W2L_Self, VideoReTalk, …): every real clip,
  then the subset's fakes, with the released columns and labels, paths under
  the authors' prefix (``--prefix``; the adapter re-roots at ``My_Test``).

Names follow the release: reals ``<identity>_<video>`` (the clip id, which
starts with the VoxCeleb2 identity), fakes ``<target>-<audio>`` as identities
(``id00420-id07445``) or, where an identity is forged more than once in a
subset, as clip ids. The release has VoxCeleb2 identities only, so a build of
other identities (the studio corpus: write its ``voxceleb2`` replica and forge
that) is refused. Media are hard-linked where the filesystem allows.
"""
from __future__ import annotations

import csv
import json
import re
import wave
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.clip import Clip, safe_id
from pipeline.download import _link_or_copy
from pipeline.errors import ConfigError
from pipeline.ingest.cmdfd import CMDFD_METHODS, COLUMNS
from pipeline.manifest import read_clips

# The authors' prefix in the released lists (the adapter drops everything up to My_Test).
AUTHOR_PREFIX = "/data2/caiyu/data/My_Test"
ROOT_NAME = "My_Test"
# method -> (list stem, folder and ID_Name prefix) as released.
SUBSET_NAMES = {method: (subset, {"W2L": "wav2lip"}.get(subset, subset)) for subset, method in CMDFD_METHODS.items()}
_IDENTITY = re.compile(r"^id\d+$")


@dataclass
class CmdfdReplica:
    lists: dict[str, Path] = field(default_factory=dict)
    reals: int = 0
    fakes: int = 0
    files: Counter = field(default_factory=Counter)

    def line(self) -> str:
        return (f"replica cmdfd: {self.reals} real + {self.fakes} fake clips in {len(self.lists)} lists "
                f"({', '.join(f'{n} {k}' for k, n in sorted(self.files.items()))})")


def _clip_name(key: str) -> str:
    """A source clip key without its corpus, as one released name part (``id00420_<video>_<utt>``)."""
    return safe_id(key.split("/", 1)[1].replace("/", "_"))


def _write_wav(media: Path, dest: Path) -> str:
    from pipeline.media import decode_audio

    if dest.exists():
        return "up to date"
    pcm = np.clip(np.round(decode_audio(media) * 32767), -32768, 32767).astype("<i2")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return "wav written"


def _row(clip: Clip, id_name: str, audio: str, video: str) -> dict[str, object]:
    return {
        "ID_Name": id_name, "Audio_Path": audio, "Video_Path": video,
        "ENtire_Label": clip.label, "Audio_Label": int(clip.audio_fake), "Video_Label": int(clip.video_fake),
        "Identi_Label": int(clip.label == 0 or bool(clip.self_audio)), "Sync_Label": int(bool(clip.sync)),
        "Frame_Len": float(clip.num_frames or 0), "Audio_Len": int(clip.num_samples or 0),
        "FPS": float(clip.fps or 25.0), "AudioSamRate": int(clip.sample_rate or 16000),
    }


def write_cmdfd_replica(build: Path, out: Path, prefix: str = AUTHOR_PREFIX) -> CmdfdReplica:
    """Write the build whose manifest is ``build`` under ``out`` (``My_Test/`` and ``lists/``)."""
    build = Path(build)
    clips = read_clips(build)
    root = build.parent
    reals = [c for c in clips if c.label == 0]
    fakes = [c for c in clips if c.label == 1]
    if not reals or not fakes:
        raise ConfigError(f"{build}: a CMDFD build has real (origin) and fake clips; found {len(reals)} and {len(fakes)}")
    wrong = sorted({c.identity for c in clips if not _IDENTITY.match(c.identity or "")})
    if wrong:
        raise ConfigError(f"{build}: the released CMDFD layout names clips by VoxCeleb2 identity (idNNNNN); "
                          f"identities {wrong[:3]} are not (forge a voxceleb2 replica: avdf replica voxceleb2)")
    summary = CmdfdReplica(reals=len(reals), fakes=len(fakes))
    tree = Path(out) / ROOT_NAME
    prefix = prefix.rstrip("/")

    def place(media: Clip, rel: str) -> None:
        summary.files[_link_or_copy((root / media.path).resolve(), tree / rel)] += 1

    origin_rows = []
    real_name: dict[str, str] = {}  # source clip key -> released name
    for c in sorted(reals, key=lambda c: c.key):
        name = real_name[c.source_keys[0]] = _clip_name(c.source_keys[0])
        place(c, f"origin/{name}.mp4")
        summary.files[_write_wav(root / c.path, tree / f"origin/{name}.wav")] += 1
        origin_rows.append(_row(c, f"origin+{name}", f"{prefix}/origin/{name}.wav", f"{prefix}/origin/{name}.mp4"))

    by_subset: dict[str, list[Clip]] = defaultdict(list)
    for c in fakes:
        if c.method not in SUBSET_NAMES:
            raise ConfigError(f"{build}: fake {c.key} has method {c.method!r}; CMDFD's are {sorted(SUBSET_NAMES)}")
        by_subset[SUBSET_NAMES[c.method][0] + ("_Self" if c.self_audio else "")].append(c)
    for subset, members in sorted(by_subset.items()):
        folder = SUBSET_NAMES[members[0].method][1] + ("_Self" if subset.endswith("_Self") else "")
        pairs = Counter((c.identity, c.audio_source_identity) for c in members)
        rows = []
        for c in sorted(members, key=lambda c: c.key):
            info = json.loads(c.extra or "{}")
            target, audio = info["target_key"], info["audio_key"]
            # Identities where they name the fake uniquely (as released), clip ids otherwise.
            unique = pairs[(c.identity, c.audio_source_identity)] == 1
            pair = (f"{c.identity}-{c.audio_source_identity}" if unique
                    else f"{real_name.get(target, _clip_name(target))}-{_clip_name(audio)}")
            place(c, f"{folder}/{pair}.mp4")
            if c.sync:  # lip-sync lists point at the driving real clip's own wav
                wav = f"origin/{real_name.get(audio, _clip_name(audio))}.wav"
            else:  # talking-head lists keep the fake's wav beside it
                wav = f"{folder}/{pair}.wav"
            summary.files[_write_wav(root / c.path, tree / wav)] += 1
            rows.append(_row(c, f"{folder}+{pair}", f"{prefix}/{wav}", f"{prefix}/{folder}/{pair}.mp4"))
        path = Path(out) / "lists" / f"{subset}.csv"
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
            writer.writeheader()
            writer.writerows(origin_rows + rows)
        summary.lists[subset] = path
    return summary
