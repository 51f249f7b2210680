"""FakeAVCeleb v1.2: ``meta_data.csv`` beside the four ``<Type>/<race>/<gender>/<id>/`` trees.

The real file's header is ``source,target1,target2,method,category,type,
race,gender,path,`` where ``path`` holds the *file name* (``00109.mp4``) and
the last, unnamed column the folder (``FakeAVCeleb/RealVideo-RealAudio/
African/men/id00076``). Which of the two holds the file name is decided per
row (the value ending in ``.mp4``), so a sheet with the two swapped reads too.
The 22 files the release lists twice (faceswap-wav2lip, then wav2lip) become
one clip each, with the first listing's method; the notes count them.

Grouping: ``video_id = <source id>-<source video number>`` (the number is the
file name's first field, ``00109`` in ``00109_id00476_wavtolip.mp4``), so a
real video and every fake made from it share a group and no split cuts them
apart. ``source_keys`` lists the real clips of the source and target ids.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from pipeline.clip import Clip, category_of, safe_id
from pipeline.ingest.base import Adapter, IngestError, ScanResult, dedupe_key, json_extra, read_csv_rows

TYPES = {
    "RealVideo-RealAudio": (False, False),
    "RealVideo-FakeAudio": (False, True),
    "FakeVideo-RealAudio": (True, False),
    "FakeVideo-FakeAudio": (True, True),
}
LETTERS = {"A": "RVRA", "B": "RVFA", "C": "FVRA", "D": "FVFA"}
METHODS = ("real", "rtvc", "wav2lip", "faceswap", "fsgan", "faceswap-wav2lip", "fsgan-wav2lip")
# The release lists 22 files twice: as faceswap-wav2lip, then as wav2lip. One file, one clip:
# the first listing is kept and the second counted in the notes (not a failure: nothing is lost).
RELISTED = ("faceswap-wav2lip", "wav2lip")
RACES = ("African", "Asian (East)", "Asian (South)", "Caucasian (American)", "Caucasian (European)")
REQUIRED = ("source", "target1", "target2", "method", "category", "type", "race", "gender")


def _audio_source(method: str, source: str, target1: str | None, target2: str | None) -> str | None:
    """Whose speech the audio track carries, as the method names tell it.

    Face swaps keep the source video's audio; wav2lip drives the lips with
    target1's speech, and the swap+wav2lip chains with target2's. RTVC clones
    a voice from a reference we cannot tell from the sheet: unknown.
    """
    if method in ("real", "faceswap", "fsgan"):
        return source
    if method == "wav2lip":
        return target1 or None
    if method.endswith("-wav2lip"):
        return target2 or target1 or None
    return None


class FakeAVCelebAdapter(Adapter):
    name = "fakeavceleb"

    def __init__(self, root: Path, meta: str | Path | None = None) -> None:
        super().__init__(root)
        self.meta = Path(meta) if meta else self.root / "meta_data.csv"

    def _relative(self, folder: str, filename: str) -> str:
        """The file's path under root; the sheet's folders start with ``FakeAVCeleb/``."""
        rel = PurePosixPath(folder.replace("\\", "/")) / filename
        if not (self.root / rel).exists() and len(rel.parts) > 1 and rel.parts[0].lower().startswith("fakeavceleb"):
            rel = PurePosixPath(*rel.parts[1:])
        return rel.as_posix()

    def scan(self) -> ScanResult:
        header, rows = read_csv_rows(self.meta, REQUIRED, "FakeAVCeleb meta_data.csv")
        loc_cols = [h for h in header if h not in REQUIRED]
        if len(loc_cols) < 2:
            raise IngestError(
                f"{self.meta}: expected a file-name column and a folder column after {list(REQUIRED)}, got {header}"
            )
        result = ScanResult()
        seen: dict[str, object] = {}
        pending: list[tuple[Clip, str, list[str]]] = []
        for n, row in enumerate(rows, 2):
            where = f"{self.meta.name} line {n}"
            values = [row[c] for c in loc_cols if row.get(c)]
            filename = next((v for v in values if v.lower().endswith(".mp4")), None)
            folder = next((v for v in values if v != filename), None)
            source = row["source"]
            stem = PurePosixPath(filename).stem if filename else f"line{n}"
            type_ = row["type"]
            cat = LETTERS.get(row["category"], "")
            key = f"fakeavceleb/{safe_id(f'{cat or type_}-{source}-{stem}')}"
            if filename is None or folder is None:
                result.fail(key, "bad_row", f"{where}: no file name (*.mp4) and folder in columns {loc_cols}")
                continue
            if type_ not in TYPES:
                result.fail(key, "bad_label", f"{where}: type {type_!r} is not one of {list(TYPES)}")
                continue
            video_fake, audio_fake = TYPES[type_]
            if cat != category_of(video_fake, audio_fake):
                result.fail(key, "bad_label", f"{where}: category {row['category']!r} disagrees with type {type_!r}")
                continue
            method = row["method"]
            if method not in METHODS:
                result.fail(key, "bad_label", f"{where}: method {method!r} is not one of {list(METHODS)}")
                continue
            if key in seen and (dict(seen[key])["method"], method) == RELISTED:
                result.notes["files listed twice (faceswap-wav2lip, then wav2lip): first kept"] += 1
                continue
            if not dedupe_key(result, seen, key, tuple(sorted(row.items())), where):
                continue
            targets = [t for t in (row["target1"], row["target2"]) if t and t != "-"]
            target1 = row["target1"] if row["target1"] not in ("", "-") else None
            target2 = row["target2"] if row["target2"] not in ("", "-") else None
            clip = Clip(
                key=key,
                corpus="fakeavceleb",
                identity=source,
                video_id=f"{source}-{stem.split('_')[0]}",
                path=self._relative(folder, filename),
                label=int(video_fake or audio_fake),
                video_fake=video_fake,
                audio_fake=audio_fake,
                category=cat,
                method=method,
                audio_source_identity=_audio_source(method, source, target1, target2),
                sync=True if method == "real" else None,
                ethnicity=row["race"] or None,
                gender=row["gender"] or None,
                extra=json_extra(type=type_, category_letter=row["category"], target1=target1, target2=target2),
            )
            pending.append((clip, source, targets))
        # Provenance once every real clip is known: the source's real clip of the
        # same video, then the real clips of the target identities.
        real_by_video = {c.video_id: c.key for c, _, _ in pending if c.category == "RVRA"}
        real_by_identity: dict[str, list[str]] = {}
        for c, _, _ in pending:
            if c.category == "RVRA":
                real_by_identity.setdefault(c.identity, []).append(c.key)
        for clip, source, targets in pending:
            if clip.category != "RVRA":
                keys = [real_by_video[clip.video_id]] if clip.video_id in real_by_video else []
                for t in targets:
                    keys += [k for k in real_by_identity.get(t, []) if k not in keys]
                clip.source_keys = keys
            result.clips.append(clip)
        return result
