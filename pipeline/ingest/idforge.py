"""IDForge: ``<subset>/idNN/idNN_SS/<name>.mp4`` under 11 subsets, splits ``{train,val,test}.csv``.

**v2** stores each "video" as a *folder* ``<name>.mp4/`` holding
``frames_ndarray.npy`` (16 frames: 4 groups of 4 consecutive frames at equal
intervals over the clip), ``<name>.mp3`` and the Whisper transcript
``<name>.txt``; v1 stores plain mp4 files under the same names. Both are read;
a clip's ``path`` is the folder (v2) or the file (v1). ffprobe cannot read a
folder, so this adapter fills the media fields of v2 folders itself
(``media_fields``): ``num_frames`` = the frames in the npy (16, not the
clip's length), ``fps`` unknown (the frames are samples, not a stream),
duration and sample counts from the mp3. ``extra.frame_layout`` is ``"4x4"``.

The split files list one relative path per line, no header; a path is real
iff it starts with ``pristine``. ``extra.split`` is train / val / test; a
clip in no split file keeps ``split: null`` and is counted in the notes; a
clip listed in two split files, or a listed path absent from disk, is a
failure. ``identity`` = ``idNN``, ``video_id`` = ``idNN_SS`` (the source
video: a pristine clip and the fakes made from it share the group).

Labels per subset, decided from the subset name (IDForge: ``face`` = face
swap, ``lip`` = lip-sync, ``tts`` / ``rvc`` = a synthetic voice (text to
speech / retrieval-based voice conversion), ``textgen`` / ``textmismatch`` =
what is said (generated text / the text of another clip), ``audiomismatch``
= the real audio of another clip)::

    subset                              video_fake audio_fake sync   why
    pristine                            no         no         yes    real
    face_tts                            yes        yes        no     swapped face, synthetic voice
    face_tts_textgen                    yes        yes        no     same, generated text
    face_audiomismatch_textmismatch     yes        no         no     swapped face; genuine speech of another clip
    face_rvc_textmismatch               yes        yes        no     swapped face, converted voice
    lip_tts_textgen                     yes        yes        yes    lips re-rendered to a synthetic voice
    lip_audiomismatch_textmismatch      yes        no         yes    lips re-rendered to genuine speech of another clip
    lip_rvc_textmismatch                yes        yes        yes    lips re-rendered to a converted voice
    rvc_textmismatch                    no         yes        no     real video, converted voice
    tts_textgen                         no         yes        no     real video, synthetic voice
    tts_textmismatch                    no         yes        no     real video, synthetic voice

``audiomismatch`` audio is a real recording, so it is not audio-fake: the
clip is fake through the pairing (and the face), which ``sync`` records.
Only ``lip_*`` fakes were made to match their audio; a face swap keeps the
original mouth and a replaced track does not follow it. ``method`` is the
subset name (IDForge does not name the tools per clip).
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.clip import Clip, category_of, safe_id
from pipeline.errors import MediaError
from pipeline.frame_folders import FRAMES_NAME, check_frames
from pipeline.ingest.base import Adapter, IngestError, ScanResult, _media_fields, dedupe_key, json_extra

PRISTINE = "pristine"
# subset -> (video_fake, audio_fake, sync); see the module docstring for the reasoning.
SUBSETS: dict[str, tuple[bool, bool, bool]] = {
    "pristine": (False, False, True),
    "face_tts": (True, True, False),
    "face_tts_textgen": (True, True, False),
    "face_audiomismatch_textmismatch": (True, False, False),
    "face_rvc_textmismatch": (True, True, False),
    "lip_tts_textgen": (True, True, True),
    "lip_audiomismatch_textmismatch": (True, False, True),
    "lip_rvc_textmismatch": (True, True, True),
    "rvc_textmismatch": (False, True, False),
    "tts_textgen": (False, True, False),
    "tts_textmismatch": (False, True, False),
}
SPLITS = ("train", "val", "test")
_ID_RE = re.compile(r"^id\d+$")


def labels_of(subset: str) -> tuple[bool, bool, bool]:
    """(video_fake, audio_fake, sync) of an IDForge subset."""
    return SUBSETS[subset]


def _norm(line: str) -> str:
    rel = line.strip().replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return rel.strip("/")


class IDForgeAdapter(Adapter):
    name = "idforge"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        if not any((self.root / s).is_dir() for s in SUBSETS):
            raise IngestError(
                f"{self.root}: no IDForge subset folder ({', '.join(SUBSETS)}); expected <subset>/idNN/idNN_SS/<name>.mp4"
            )

    def _splits(self, result: ScanResult) -> dict[str, list[tuple[str, int]]]:
        """relative path -> [(split, line number)] over the split files present."""
        listed: dict[str, list[tuple[str, int]]] = {}
        for split in SPLITS:
            path = self.root / f"{split}.csv"
            if not path.is_file():
                result.notes["split files absent"] += 1
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
                rel = _norm(line)
                if rel:
                    listed.setdefault(rel, []).append((split, n))
        return listed

    def scan(self) -> ScanResult:
        result = ScanResult()
        listed = self._splits(result)
        found: set[str] = set()
        seen: dict[str, object] = {}
        for top in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in sorted(top.rglob("*.mp4")):
                rel = path.relative_to(self.root).as_posix()
                found.add(rel)
                if dedupe_key(result, seen, self._key(rel), rel, rel):
                    self._add(result, rel, path, listed.get(rel, []))
        # Listed paths that are not on disk: inputs that did not become clips.
        for rel in sorted(set(listed) - found):
            where = ", ".join(f"{s}.csv line {n}" for s, n in listed[rel])
            result.fail(self._key(rel), "missing", f"{rel}: listed in {where} but not under {self.root}")
        if not result.clips and not result.failures:
            raise IngestError(f"{self.root}: no <subset>/idNN/idNN_SS/<name>.mp4 clips (the IDForge layout)")
        return result

    @staticmethod
    def _key(rel: str) -> str:
        parts = PurePosixPath(rel).parts
        stem = PurePosixPath(parts[-1]).stem
        if len(parts) == 4:
            return f"idforge/{safe_id(parts[0])}/{safe_id(f'{parts[2]}-{stem}')}"
        return f"idforge/{safe_id(PurePosixPath(rel).with_suffix('').as_posix())}"

    def _add(self, result: ScanResult, rel: str, path: Path, splits: list[tuple[str, int]]) -> None:
        key = self._key(rel)
        parts = PurePosixPath(rel).parts
        if len(parts) != 4 or not _ID_RE.match(parts[1]) or not parts[2].startswith(parts[1] + "_"):
            result.fail(key, "layout", f"{rel}: not in the IDForge layout <subset>/idNN/idNN_SS/<name>.mp4")
            return
        subset, identity, video = parts[0], parts[1], parts[2]
        if subset not in SUBSETS:
            result.fail(key, "bad_label", f"{rel}: {subset!r} is not an IDForge subset ({', '.join(SUBSETS)})")
            return
        names = sorted({s for s, _ in splits})
        if len(names) > 1:
            where = ", ".join(f"{s}.csv line {n}" for s, n in splits)
            result.fail(key, "bad_split", f"{rel}: listed in more than one split ({where})")
            return
        if not names:
            result.notes["clips in no split file"] += 1
        video_fake, audio_fake, sync = labels_of(subset)
        folder = path.is_dir()
        transcript = None
        if folder:
            txt = path / f"{path.stem}.txt"
            transcript = txt.read_text(encoding="utf-8", errors="replace").strip() if txt.is_file() else None
        result.clips.append(
            Clip(
                key=key, corpus="idforge", identity=identity, video_id=video, path=rel,
                label=int(video_fake or audio_fake), video_fake=video_fake, audio_fake=audio_fake,
                category=category_of(video_fake, audio_fake), method="real" if subset == PRISTINE else subset,
                audio_source_identity=identity if subset == PRISTINE else None, sync=sync,
                extra=json_extra(split=names[0] if names else None, subset=subset, version="v2" if folder else "v1",
                                 frame_layout="4x4" if folder else None, transcript=transcript),
            )
        )

    # ------------------------------------------------------------------ media of a v2 folder

    def media_exists(self, path: Path) -> bool:
        return path.is_dir() or path.is_file()

    def media_fields(self, path: Path) -> dict[str, Any]:
        if not path.is_dir():
            return _media_fields(path)  # v1: a plain mp4
        import numpy as np

        frames_path = path / FRAMES_NAME
        if not frames_path.is_file():
            raise MediaError(path, f"no {FRAMES_NAME} in the clip folder", "missing")
        try:
            frames = np.load(frames_path, mmap_mode="r", allow_pickle=False)  # reads the header only
        except (ValueError, OSError) as exc:
            raise MediaError(frames_path, f"not a readable .npy array ({exc})", "not_media") from None
        check_frames(frames, frames_path)  # what preprocessing reads (pipeline.frame_folders)
        mp3 = path / f"{path.stem}.mp3"
        if not mp3.is_file():
            raise MediaError(path, f"no {mp3.name} in the clip folder", "missing")
        from pipeline.media import probe

        info = probe(mp3)
        if info.audio is None or not info.audio.sample_rate:
            raise MediaError(mp3, "no audio stream", "no_audio")
        duration = info.audio.duration_s or info.duration_s
        return {
            "fps": None,
            "num_frames": int(frames.shape[0]),
            "duration_s": duration,
            "sample_rate": info.audio.sample_rate,
            "num_samples": round(duration * info.audio.sample_rate) if duration else None,
        }
