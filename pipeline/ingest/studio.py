"""studio: the built-in corpus already comes with a manifest; re-read, validate and re-root it.

``avdf fetch studio --out DIR`` writes ``DIR/manifest.parquet`` whose paths
are relative to ``DIR``; the driver re-expresses them relative to the new
manifest's folder and re-probes the files (``--no-probe`` only checks that
they exist), so a moved or damaged studio corpus shows up in failures.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.ingest.base import Adapter, IngestError, ScanResult
from pipeline.manifest import read_clips


class StudioAdapter(Adapter):
    name = "studio"

    def __init__(self, root: Path, meta: str | Path | None = None) -> None:
        super().__init__(root)
        self.manifest = Path(meta) if meta else self.root / "manifest.parquet"
        if not self.manifest.is_file():
            raise IngestError(f"{self.manifest}: studio manifest does not exist (run `avdf fetch studio --out {self.root}`)")

    def scan(self) -> ScanResult:
        base = self.manifest.resolve().parent
        result = ScanResult()
        for clip in read_clips(self.manifest):
            path = Path(clip.path)
            clip.path = str(path if path.is_absolute() else base / path)
            result.clips.append(clip)
        return result
