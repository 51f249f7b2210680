"""folder: a user's own videos plus a labels CSV.

``labels.csv`` columns: ``path,label`` required; ``identity, video_id,
method, category, audio_fake, video_fake`` optional. ``path`` is relative to
the folder (or absolute). Defaults for what is not given:
identity = the file's parent folder (the file stem at the top level),
video_id = the file stem (each file its own group), method = ``real`` /
``unknown``, and a fake with no modality labels is taken as a *video* fake
(FVRA) — give ``category`` or ``audio_fake``/``video_fake`` when that is
wrong. Missing columns, labels other than 0/1 and contradicting modality
labels are errors naming the line; a listed file that does not exist is a
failure row (and an error when none of the listed files exist: a wrong root).
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from pipeline.clip import CATEGORIES, Clip, category_of, safe_id
from pipeline.ingest.base import Adapter, IngestError, ScanResult, dedupe_key, json_extra, read_csv_rows

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


def _flag(value: str | None, column: str, where: str) -> bool | None:
    if value is None or value == "":
        return None
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise IngestError(f"{where}: {column} is {value!r}, expected 0/1 or true/false")


class FolderAdapter(Adapter):
    name = "folder"

    def __init__(self, root: Path, labels: str | Path | None = None, name: str | None = None) -> None:
        super().__init__(root)
        self.labels = Path(labels) if labels else self.root / "labels.csv"
        self.corpus = safe_id(name) if name else "folder"

    def scan(self) -> ScanResult:
        _, rows = read_csv_rows(self.labels, ("path", "label"), "labels CSV")
        if not rows:
            raise IngestError(f"{self.labels}: labels CSV has no rows")
        result = ScanResult()
        seen: dict[str, object] = {}
        missing = 0
        for n, row in enumerate(rows, 2):
            where = f"{self.labels.name} line {n}"
            label_text = row["label"].strip()
            if label_text not in ("0", "1"):
                raise IngestError(f"{where}: label is {label_text!r}, expected 0 (real) or 1 (fake)")
            label = int(label_text)
            raw = row["path"]
            if not raw:
                raise IngestError(f"{where}: empty path")
            rel = PurePosixPath(raw.replace("\\", "/"))
            key = f"{self.corpus}/{safe_id(rel.with_suffix('').as_posix())}"
            video_fake, audio_fake = _flag(row.get("video_fake"), "video_fake", where), _flag(row.get("audio_fake"), "audio_fake", where)
            category = row.get("category") or None
            if category is not None:
                if category not in CATEGORIES:
                    raise IngestError(f"{where}: category {category!r} is not one of {CATEGORIES}")
                video_fake = category.startswith("FV") if video_fake is None else video_fake
                audio_fake = category.endswith("FA") if audio_fake is None else audio_fake
            assumed = False
            if video_fake is None and audio_fake is None:
                video_fake, audio_fake, assumed = bool(label), False, bool(label)
            video_fake, audio_fake = bool(video_fake), bool(audio_fake)
            if label != int(video_fake or audio_fake):
                raise IngestError(f"{where}: label {label} contradicts video_fake={video_fake}, audio_fake={audio_fake}")
            if category is not None and category != category_of(video_fake, audio_fake):
                raise IngestError(f"{where}: category {category} contradicts video_fake/audio_fake")
            absolute = Path(raw) if Path(raw).is_absolute() else self.root / rel
            if not absolute.is_file():
                missing += 1
                result.fail(key, "missing", f"{where}: {raw} does not exist under {self.root}")
                continue
            if not dedupe_key(result, seen, key, tuple(sorted(row.items())), where):
                continue
            identity = row.get("identity") or (rel.parent.name if len(rel.parts) > 1 else rel.stem)
            result.clips.append(
                Clip(
                    key=key, corpus=self.corpus, identity=identity,
                    video_id=row.get("video_id") or safe_id(rel.stem),
                    path=str(absolute) if Path(raw).is_absolute() else rel.as_posix(),
                    label=label, video_fake=video_fake, audio_fake=audio_fake,
                    category=category_of(video_fake, audio_fake),
                    method=row.get("method") or ("unknown" if label else "real"),
                    sync=True if label == 0 else None,
                    extra=json_extra(modality_assumed=True) if assumed else None,
                )
            )
        if missing == len(rows):
            raise IngestError(f"{self.labels}: none of the {missing} listed files exist under {self.root} (wrong --root?)")
        return result
