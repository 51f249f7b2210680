"""KoDF: ``original_videos/<subject>/…/<clip>.mp4`` and ``synthesized_videos/<method>/…/<clip>.mp4``.

The folder names ``original_videos`` / ``synthesized_videos`` and per-method
folders such as ``fo`` and ``fsgan`` are the release layout as public code
that reads KoDF uses it; the full list of method folder names and the
metadata columns could not be confirmed from a public source, so method
folders map through ``METHODS`` when known and are kept verbatim otherwise.
Optional metadata CSVs in the root (the AI-Hub sheets use the Korean columns
``영상ID`` video id, ``타겟영상`` target video, ``변조모델`` model; English
``video_id``/``target_video``/``model`` are read too) link each fake to the
original it was made from (``source_keys``, ``video_id``).

KoDF keeps the original audio in every clip, so fakes are FVRA.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path, PurePosixPath

from pipeline.clip import Clip, safe_id
from pipeline.ingest.base import Adapter, IngestError, ScanResult, dedupe_key, json_extra

log = logging.getLogger(__name__)

REAL_DIR = "original_videos"
FAKE_DIR = "synthesized_videos"
METHODS = {
    "fo": "fomm",  # first-order motion model
    "fsgan": "fsgan",
    "dffs": "deepfake-faceswap",
    "dfl": "deepfacelab",
    "atfhp": "atfhp",  # audio-driven talking face with head pose
    "wav2lip": "wav2lip",
}
_ID_COLS = ("영상ID", "video_id", "vid")
_TARGET_COLS = ("타겟영상", "target_video", "ori_vid")
_MODEL_COLS = ("변조모델", "model", "method")


def _stem(name: str) -> str:
    return PurePosixPath(name.strip()).name.split(".")[0]


class KoDFAdapter(Adapter):
    name = "kodf"

    def __init__(self, root: Path, meta: str | Path | None = None) -> None:
        super().__init__(root)
        self.meta = [Path(meta)] if meta else sorted(self.root.glob("*.csv"))
        if not (self.root / REAL_DIR).is_dir() and not (self.root / FAKE_DIR).is_dir():
            raise IngestError(f"{self.root}: no {REAL_DIR}/ or {FAKE_DIR}/ folder (the KoDF release layout)")

    def _targets(self) -> dict[str, str]:
        """fake video stem -> original video stem, from whichever metadata sheets have both columns."""
        targets: dict[str, str] = {}
        for path in self.meta:
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                cols = reader.fieldnames or []
                vid = next((c for c in _ID_COLS if c in cols), None)
                target = next((c for c in _TARGET_COLS if c in cols), None)
                if vid is None or target is None:
                    continue
                for row in reader:
                    if row.get(vid) and row.get(target):
                        targets[_stem(row[vid])] = _stem(row[target])
        return targets

    def scan(self) -> ScanResult:
        result = ScanResult()
        seen: dict[str, object] = {}
        reals: dict[str, Clip] = {}
        for path in sorted((self.root / REAL_DIR).rglob("*.mp4")):
            rel = path.relative_to(self.root)
            inner = rel.relative_to(REAL_DIR)
            subject = inner.parts[0] if len(inner.parts) > 1 else path.stem
            key = f"kodf/{safe_id(f'real-{subject}-{path.stem}')}"
            if not dedupe_key(result, seen, key, str(rel), str(rel)):
                continue
            clip = Clip(
                key=key, corpus="kodf", identity=subject, video_id=safe_id(f"{subject}-{path.stem}"),
                path=rel.as_posix(), audio_source_identity=subject, extra=json_extra(subject=subject),
            )
            reals.setdefault(path.stem, clip)
            result.clips.append(clip)
        targets = self._targets()
        for path in sorted((self.root / FAKE_DIR).rglob("*.mp4")):
            rel = path.relative_to(self.root)
            inner = rel.relative_to(FAKE_DIR)
            if len(inner.parts) < 2:
                result.fail(f"kodf/{safe_id(f'fake-{path.stem}')}", "layout",
                            f"{rel}: expected {FAKE_DIR}/<method>/…/<clip>.mp4")
                continue
            folder = inner.parts[0]
            subject = inner.parts[1] if len(inner.parts) > 2 else path.stem.split("_")[0]
            key = f"kodf/{safe_id(f'{folder}-{subject}-{path.stem}')}"
            if not dedupe_key(result, seen, key, str(rel), str(rel)):
                continue
            source = reals.get(targets.get(path.stem, ""))
            result.clips.append(
                Clip(
                    key=key, corpus="kodf", identity=source.identity if source else subject,
                    video_id=source.video_id if source else safe_id(f"{subject}-{path.stem}"),
                    path=rel.as_posix(), label=1, video_fake=True, category="FVRA",
                    method=METHODS.get(folder, safe_id(folder).lower()), sync=None,
                    source_keys=[source.key] if source else [],
                    extra=json_extra(method_folder=folder, subject=subject, target_video=targets.get(path.stem)),
                )
            )
        if not result.clips and not result.failures:
            raise IngestError(f"{self.root}: no .mp4 under {REAL_DIR}/ or {FAKE_DIR}/")
        return result
