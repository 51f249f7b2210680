"""FaceForensics++: ``original_sequences/`` and ``manipulated_sequences/`` at one compression level.

Layout (the release's download script)::

    original_sequences/{youtube,actors}/{raw,c23,c40}/videos/NNN.mp4       (actors: NN__<scene>.mp4)
    manipulated_sequences/<Method>/{raw,c23,c40}/videos/<target>_<source>.mp4
        Method in Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter,
        DeepFakeDetection (DeepFakeDetection: <t>_<s>__<scene>__<CODE>.mp4)

``--compression`` (raw / c23 / c40, default c23) picks one quality folder; the
others hold the same videos again. ``method`` is the lowercase folder name.
A fake ``<target>_<source>`` keeps the *target* video with the source's face
(or expressions): ``identity`` and ``video_id`` are the target's, so an
original and every fake made on it share one group and no split cuts a video.

Splits: ``train.json`` / ``val.json`` / ``test.json`` (in the root or
``splits/``) are lists of ``["953", "974"]`` pairs; a pair covers both
originals and both fakes ``953_974`` and ``974_953``. ``extra.split`` holds
it; clips in no pair (the actors / DeepFakeDetection videos have none) keep
``null`` and are counted in the notes.

FF++ has no audio: every clip gets ``extra.video_only: true`` (preprocessing
gives such a clip a silent track instead of failing ``no_audio``), fakes are
video-fake / audio-real, and ``sync`` is unknown (null).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.clip import Clip, safe_id
from pipeline.ingest.base import Adapter, IngestError, ScanResult, dedupe_key, json_extra

ORIGINAL_DIR = "original_sequences"
MANIPULATED_DIR = "manipulated_sequences"
SOURCES = ("youtube", "actors")
METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
COMPRESSIONS = ("raw", "c23", "c40")
SPLITS = ("train", "val", "test")

_YOUTUBE_RE = re.compile(r"^(\d{3})$")
_ACTOR_RE = re.compile(r"^(\d+)__(.+)$")
_PAIR_RE = re.compile(r"^(\d{3})_(\d{3})$")
_DFD_RE = re.compile(r"^(\d+)_(\d+)__(.+)__([A-Za-z0-9]+)$")


def read_split_pairs(path: Path) -> list[tuple[str, str]]:
    """The ``[["953", "974"], ...]`` pairs of one split file (IngestError naming the file otherwise)."""
    try:
        pairs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IngestError(f"{path}: not a readable JSON split file ({exc})") from None
    if not isinstance(pairs, list):
        raise IngestError(f"{path}: expected a JSON list of [\"NNN\", \"NNN\"] pairs, got {type(pairs).__name__}")
    out = []
    for i, pair in enumerate(pairs):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, (str, int)) and _YOUTUBE_RE.match(f"{v:03d}" if isinstance(v, int) else v)
                           for v in pair)):
            raise IngestError(f"{path}: entry {i} is {pair!r}, expected a pair of 3-digit video numbers "
                              f"like [\"953\", \"974\"]")
        out.append(tuple(f"{v:03d}" if isinstance(v, int) else v for v in pair))
    return out


class FaceForensicsAdapter(Adapter):
    name = "faceforensics"

    def __init__(self, root: Path, compression: str | None = None) -> None:
        super().__init__(root)
        self.compression = compression or "c23"
        if self.compression not in COMPRESSIONS:
            raise IngestError(f"--compression {self.compression!r}: expected one of {', '.join(COMPRESSIONS)}")
        if not (self.root / ORIGINAL_DIR).is_dir() and not (self.root / MANIPULATED_DIR).is_dir():
            raise IngestError(f"{self.root}: no {ORIGINAL_DIR}/ or {MANIPULATED_DIR}/ folder (the FaceForensics++ layout)")

    def _folders(self) -> list[tuple[str, str, Path]]:
        """(kind, name, videos folder) at the chosen compression: ('original', youtube|actors, ...)
        or ('fake', Method, ...)."""
        out = []
        for source in SOURCES:
            out.append(("original", source, self.root / ORIGINAL_DIR / source / self.compression / "videos"))
        manipulated = self.root / MANIPULATED_DIR
        names = sorted(p.name for p in manipulated.iterdir() if p.is_dir()) if manipulated.is_dir() else []
        for method in names:
            out.append(("fake", method, manipulated / method / self.compression / "videos"))
        present = [f for f in out if f[2].is_dir()]
        if not present:
            levels = {p.parent.name for pattern in ("*/*/*/videos", "*/*/*/*/videos") for p in self.root.glob(pattern)}
            others = sorted(levels & set(COMPRESSIONS))
            hint = f"; found {', '.join(others)}: pass --compression" if others else ""
            raise IngestError(f"{self.root}: no */{self.compression}/videos/ folder{hint}")
        return present

    def _splits(self) -> dict[str, str]:
        """video number -> split, from the split files present."""
        of: dict[str, tuple[str, Path]] = {}
        for split in SPLITS:
            candidates = (self.root / f"{split}.json", self.root / "splits" / f"{split}.json")
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                continue
            for pair in read_split_pairs(path):
                for number in pair:
                    if number in of and of[number][0] != split:
                        raise IngestError(f"{path}: video {number} is also in {of[number][1]} ({of[number][0]})")
                    of[number] = (split, path)
        return {n: s for n, (s, _) in of.items()}

    def scan(self) -> ScanResult:
        result = ScanResult()
        seen: dict[str, object] = {}
        folders = self._folders()
        split_of = self._splits()
        if not split_of:
            result.notes["split files absent"] += 1
        originals: dict[str, Clip] = {}  # video number / actor video -> original clip
        pending: list[tuple[Clip, list[str]]] = []
        for kind, name, folder in folders:
            for path in sorted(folder.glob("*.mp4")):
                rel = path.relative_to(self.root).as_posix()
                parsed = self._parse(kind, name, path.stem)
                key = f"faceforensics/{safe_id(name.lower())}/{safe_id(path.stem)}"
                if parsed is None:
                    result.fail(key, "layout", f"{rel}: not a FaceForensics++ {name} file name")
                    continue
                if kind == "fake" and name not in METHODS:
                    result.fail(key, "bad_label", f"{rel}: {name!r} is not a FaceForensics++ method ({', '.join(METHODS)})")
                    continue
                if not dedupe_key(result, seen, key, rel, rel):
                    continue
                identity, video_id, split, refs, extra = parsed
                split = split_of.get(split) if split else None
                if split is None:
                    result.notes["clips in no split"] += 1
                fake = kind == "fake"
                clip = Clip(
                    key=key, corpus="faceforensics", identity=identity, video_id=video_id, path=rel,
                    label=int(fake), video_fake=fake, audio_fake=False, category="FVRA" if fake else "RVRA",
                    method=name.lower() if fake else "real", sync=None,
                    extra=json_extra(split=split, video_only=True, compression=self.compression,
                                     source=name if not fake else None, **extra),
                )
                if not fake:
                    originals[video_id] = clip
                pending.append((clip, refs))
        for clip, refs in pending:
            clip.source_keys = [originals[r].key for r in refs if r in originals]
            result.clips.append(clip)
        if not result.clips and not result.failures:
            raise IngestError(f"{self.root}: no .mp4 under */{self.compression}/videos/")
        return result

    @staticmethod
    def _parse(kind: str, name: str, stem: str):
        """(identity, video_id, split lookup number, video_ids of the originals used, extra) or None."""
        if kind == "original" and name == "youtube":
            m = _YOUTUBE_RE.match(stem)
            return m and (stem, f"youtube-{stem}", stem, [], {})
        if kind == "original":
            m = _ACTOR_RE.match(stem)
            return m and (f"actor-{m[1]}", f"actors-{stem}", None, [], {"scene": m[2]})
        if name == "DeepFakeDetection":
            m = _DFD_RE.match(stem)
            return m and (f"actor-{m[1]}", f"actors-{m[1]}__{m[3]}", None,
                          [f"actors-{m[1]}__{m[3]}", f"actors-{m[2]}__{m[3]}"],
                          {"target": m[1], "source_actor": m[2], "scene": m[3], "code": m[4]})
        m = _PAIR_RE.match(stem)
        return m and (m[1], f"youtube-{m[1]}", m[1], [f"youtube-{m[1]}", f"youtube-{m[2]}"],
                      {"target": m[1], "source_video": m[2]})
