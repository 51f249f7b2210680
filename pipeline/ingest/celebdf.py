"""Celeb-DF v2: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and ``List_of_testing_videos.txt``.

Names: ``Celeb-real/id0_0009.mp4`` is celebrity id0's video 0009;
``YouTube-real/00170.mp4`` a YouTube video of an unnamed person;
``Celeb-synthesis/id0_id16_0009.mp4`` is id0's video 0009 with id16's face
swapped in. A fake's ``identity`` and ``video_id`` are its target's
(``id0``, ``id0_0009``), so a real video and the fakes made on it share a
group; the face's owner is ``extra.source_identity``.

``List_of_testing_videos.txt`` (518 lines ``1 YouTube-real/00170.mp4``)
names the test set. Its label is **1 = real, 0 = fake** (the opposite of the
Clip's ``label``); a line whose label disagrees with the file's folder is a
failure, as is a listed file that is missing or a line that does not parse.
``extra.split`` is ``test`` for listed clips and ``train`` for the others.

Celeb-DF has no audio: every clip gets ``extra.video_only: true``, fakes are
video-fake / audio-real, ``sync`` is unknown (null). ``method`` is
``deepfake`` (the release's improved DeepFake face swap).
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from pipeline.clip import Clip, safe_id
from pipeline.ingest.base import Adapter, IngestError, ScanResult, json_extra

CELEB_REAL, YOUTUBE_REAL, SYNTHESIS = "Celeb-real", "YouTube-real", "Celeb-synthesis"
FOLDERS = (CELEB_REAL, YOUTUBE_REAL, SYNTHESIS)
TEST_LIST = "List_of_testing_videos.txt"
LIST_REAL, LIST_FAKE = "1", "0"  # the list's own convention: 1 = real

_REAL_RE = re.compile(r"^id(\d+)_(\d+)$")
_YOUTUBE_RE = re.compile(r"^(\d+)$")
_FAKE_RE = re.compile(r"^id(\d+)_id(\d+)_(\d+)$")


def _key(rel: str) -> str:
    p = PurePosixPath(rel)
    return f"celebdf/{safe_id(p.parent.name.lower())}/{safe_id(p.stem)}"


class CelebDFAdapter(Adapter):
    name = "celebdf"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        if not any((self.root / f).is_dir() for f in FOLDERS):
            raise IngestError(f"{self.root}: none of {', '.join(f + '/' for f in FOLDERS)} (the Celeb-DF v2 layout)")

    def _test_list(self, result: ScanResult) -> dict[str, tuple[str, int]]:
        """relative path -> (list label, line number); bad lines become failures."""
        path = self.root / TEST_LIST
        listed: dict[str, tuple[str, int]] = {}
        if not path.is_file():
            result.notes[f"no {TEST_LIST}: splits unknown"] += 1
            return listed
        for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            rel = fields[-1].replace("\\", "/")
            if len(fields) != 2 or fields[0] not in (LIST_REAL, LIST_FAKE):
                # Keyed by the line: the file itself may still be a clip.
                result.fail(f"celebdf/list-line{n}", "bad_row",
                            f"{TEST_LIST} line {n}: {line.strip()!r}, expected '<1 real|0 fake> <folder>/<file>.mp4'")
                continue
            if rel in listed:
                if listed[rel][0] != fields[0]:
                    result.fail(f"{_key(rel)}/dup-line{n}", "duplicate",
                                f"{TEST_LIST} line {n}: {rel} listed again with another label (line {listed[rel][1]})")
                else:
                    result.notes["duplicate list lines merged"] += 1
                continue
            listed[rel] = (fields[0], n)
        return listed

    def scan(self) -> ScanResult:
        result = ScanResult()
        listed = self._test_list(result)
        have_list = (self.root / TEST_LIST).is_file()
        reals: dict[str, str] = {}  # video_id -> key
        pending: list[tuple[Clip, str | None]] = []
        found: set[str] = set()
        for folder in FOLDERS:
            for path in sorted((self.root / folder).glob("*.mp4")):
                rel = path.relative_to(self.root).as_posix()
                found.add(rel)
                key, stem, fake = _key(rel), path.stem, folder == SYNTHESIS
                m = (_FAKE_RE if fake else _REAL_RE if folder == CELEB_REAL else _YOUTUBE_RE).match(stem)
                if m is None:
                    result.fail(key, "layout", f"{rel}: not a Celeb-DF v2 {folder} file name")
                    continue
                if rel in listed:
                    mark, n = listed[rel]
                    if (mark == LIST_FAKE) != fake:
                        result.fail(key, "bad_label", f"{TEST_LIST} line {n}: {rel} is labelled {mark} "
                                    f"({'real' if mark == LIST_REAL else 'fake'}; 1 = real, 0 = fake) but {folder}/ holds "
                                    f"{'fakes' if fake else 'real videos'}")
                        continue
                split = ("test" if rel in listed else "train") if have_list else None
                if folder == SYNTHESIS:
                    identity, video_id, source = f"id{m[1]}", f"id{m[1]}_{m[3]}", f"id{m[2]}"
                elif folder == CELEB_REAL:
                    identity, video_id, source = f"id{m[1]}", f"id{m[1]}_{m[2]}", None
                else:
                    identity = video_id = f"youtube-{stem}"
                    source = None
                clip = Clip(
                    key=key, corpus="celebdf", identity=identity, video_id=video_id, path=rel,
                    label=int(fake), video_fake=fake, audio_fake=False, category="FVRA" if fake else "RVRA",
                    method="deepfake" if fake else "real", sync=None,
                    extra=json_extra(split=split, video_only=True, folder=folder, source_identity=source),
                )
                if not fake:
                    reals[video_id] = key
                pending.append((clip, video_id if fake else None))
        for clip, target in pending:
            clip.source_keys = [reals[target]] if target in reals else []
            result.clips.append(clip)
        for rel in sorted(set(listed) - found):
            result.fail(_key(rel), "missing", f"{TEST_LIST} line {listed[rel][1]}: {rel} is not under {self.root}")
        if not result.clips and not result.failures:
            raise IngestError(f"{self.root}: no .mp4 in {', '.join(FOLDERS)}")
        return result
