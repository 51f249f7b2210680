"""VoxCeleb2: ``{dev,test}/mp4/idXXXXX/<youtube_id>/<utt>.mp4``, all real.

The test archive extracts to ``mp4/...`` without the split folder; both
layouts are read, and the split (``dev``/``test``/unknown) goes into
``extra``. A file that does not follow the layout is a failure, not a guess.

``vox2_meta.csv`` (the release's identity sheet, header ``VoxCeleb2 ID
,VGGFace2 ID ,Gender ,Set`` with a space before each comma), read from the
root or ``--meta`` when present, gives each identity's gender (``m``/``f``
become ``male``/``female``); identities it does not list keep none.
"""
from __future__ import annotations

import re
from pathlib import Path

from pipeline.clip import Clip, safe_id
from pipeline.ingest.base import Adapter, ScanResult, dedupe_key, json_extra, read_csv_rows

_ID_RE = re.compile(r"^id\d+$")
META_NAME = "vox2_meta.csv"
GENDERS = {"m": "male", "f": "female"}


class VoxCeleb2Adapter(Adapter):
    name = "voxceleb2"

    def __init__(self, root: Path, meta: str | Path | None = None) -> None:
        super().__init__(root)
        self.meta = Path(meta) if meta else self.root / META_NAME
        self._meta_given = meta is not None

    def _genders(self) -> dict[str, str]:
        if not self._meta_given and not self.meta.is_file():
            return {}
        _, rows = read_csv_rows(self.meta, ("VoxCeleb2 ID", "Gender"), "VoxCeleb2 identity sheet")
        return {r["VoxCeleb2 ID"]: GENDERS.get(r["Gender"].lower(), r["Gender"]) for r in rows if r["Gender"]}

    def scan(self) -> ScanResult:
        result = ScanResult()
        genders = self._genders()
        seen: dict[str, object] = {}
        for path in sorted(self.root.rglob("*.mp4")):
            rel = path.relative_to(self.root)
            parts = rel.parts
            if len(parts) < 3 or not _ID_RE.match(parts[-3]):
                result.fail(
                    f"voxceleb2/{safe_id(rel.with_suffix('').as_posix())}",
                    "layout",
                    f"{rel}: not in the VoxCeleb2 layout idXXXXX/<youtube_id>/<utt>.mp4",
                )
                continue
            identity, youtube_id, utt = parts[-3], parts[-2], path.stem
            split = next((p for p in parts[:-3] if p in ("dev", "test")), None)
            key = f"voxceleb2/{safe_id(f'{identity}-{youtube_id}-{utt}')}"
            if not dedupe_key(result, seen, key, str(rel), str(rel)):
                continue
            result.clips.append(
                Clip(
                    key=key,
                    corpus="voxceleb2",
                    identity=identity,
                    video_id=f"{identity}-{youtube_id}",
                    path=rel.as_posix(),
                    sync=True,
                    audio_source_identity=identity,
                    gender=genders.get(identity),
                    extra=json_extra(split=split, youtube_id=youtube_id, utterance=utt),
                )
            )
        return result
