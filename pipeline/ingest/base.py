"""What every ingest adapter shares: the registry, the scan result and the driver.

An adapter only knows its corpus' native layout: ``scan()`` turns it into
Clips (media fields empty) plus Failures for rows it could not read. The
driver ``ingest()`` then probes every file (in threads: ffprobe is a
subprocess), fills fps / sample_rate / num_frames / num_samples /
duration_s, moves files that fail to probe to ``failures.parquet`` and
writes the manifest, checking ``inputs = outputs + failures``. An adapter
whose clips are not single media files (IDForge v2: a folder of frames and
an mp3 per clip) overrides ``Adapter.media_fields`` / ``media_exists``.

Paths in the written manifest are relative to the manifest's own folder, so
``Path(manifest).parent / clip.path`` finds the media wherever the corpus is
(with the manifest written into the corpus root, that is the corpus root).
"""
from __future__ import annotations

import inspect
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from pipeline.atomic import sha256_file
from pipeline.clip import Clip
from pipeline.errors import AvdfError, MediaError
from pipeline.manifest import FAILURES_NAME, Failure, check_accounting, write_failures, write_manifest
from pipeline.registry import Registry

log = logging.getLogger(__name__)

STAGE = "ingest"

ADAPTERS = Registry("ingest_adapters")
for _name, _spec in {
    "voxceleb2": "pipeline.ingest.voxceleb2:VoxCeleb2Adapter",
    "fakeavceleb": "pipeline.ingest.fakeavceleb:FakeAVCelebAdapter",
    "cmdfd": "pipeline.ingest.cmdfd:CMDFDAdapter",
    "kodf": "pipeline.ingest.kodf:KoDFAdapter",
    "studio": "pipeline.ingest.studio:StudioAdapter",
    "folder": "pipeline.ingest.folder:FolderAdapter",
    "idforge": "pipeline.ingest.idforge:IDForgeAdapter",
    "faceforensics": "pipeline.ingest.faceforensics:FaceForensicsAdapter",
    "celebdf": "pipeline.ingest.celebdf:CelebDFAdapter",
}.items():
    ADAPTERS.register(_name, _spec)


class IngestError(AvdfError):
    """A corpus folder or list that cannot be read at all (missing file, missing columns)."""


@dataclass
class ScanResult:
    """Clips found in the native layout, and inputs that could not become Clips."""

    clips: list[Clip] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    # Adapter-specific counts for the summary line (e.g. merged duplicate rows).
    notes: Counter = field(default_factory=Counter)

    def fail(self, key: str, error_type: str, message: str) -> None:
        self.failures.append(Failure(key=key, stage=STAGE, error_type=error_type, message=message))


class Adapter:
    """Base class: ``root`` is the corpus folder; keyword options come from the CLI."""

    name: ClassVar[str]

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise IngestError(f"{self.root}: corpus root folder does not exist")

    def scan(self) -> ScanResult:  # pragma: no cover - interface
        raise NotImplementedError

    # A corpus whose clips are not single media files (IDForge v2 stores a folder of
    # frames + mp3 per clip) overrides these two; everyone else is probed with ffprobe.
    def media_fields(self, path: Path) -> dict[str, Any]:
        """fps / num_frames / duration_s / sample_rate / num_samples of one clip's media."""
        return _media_fields(path)

    def media_exists(self, path: Path) -> bool:
        return path.is_file()


def dedupe_key(result: ScanResult, seen: dict[str, Any], key: str, fingerprint: Any, where: str) -> bool:
    """True when ``key`` is new. An identical repeat is merged (counted in notes);
    a conflicting repeat becomes a failure under ``key/dupN`` so no row vanishes."""
    if key not in seen:
        seen[key] = fingerprint
        return True
    if seen[key] == fingerprint:
        result.notes["duplicate rows merged"] += 1
        return False
    n = sum(1 for f in result.failures if f.key.startswith(key + "/dup")) + 1
    result.fail(f"{key}/dup{n}", "duplicate", f"{where}: a second, different entry for {key}")
    return False


def json_extra(**values: Any) -> str:
    return json.dumps({k: v for k, v in values.items() if v is not None}, sort_keys=True, ensure_ascii=False)


# --------------------------------------------------------------------------- driver


@dataclass
class IngestSummary:
    corpus: str
    manifest: Path
    failures_path: Path
    inputs: int
    outputs: int
    failures: int
    failure_types: dict[str, int]
    notes: dict[str, int]

    def line(self) -> str:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(self.failure_types.items()))
        notes = "".join(f"; {v} {k}" for k, v in sorted(self.notes.items()))
        return (
            f"ingest {self.corpus}: {self.inputs} inputs -> {self.outputs} clips, {self.failures} failures"
            f"{f' ({kinds})' if kinds else ''}{notes} -> {self.manifest}"
        )


def make_adapter(corpus: str, root: Path, **options: Any) -> Adapter:
    """Build the registered adapter, refusing options it does not take (None = not given)."""
    cls = ADAPTERS.get(corpus)
    given = {k: v for k, v in options.items() if v is not None}
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "root"}
    wrong = sorted(set(given) - accepted)
    if wrong:
        flags = ", ".join("--" + w.replace("_", "-") for w in wrong)
        raise IngestError(f"option(s) {flags} do not apply to the {corpus} adapter (it takes: {sorted(accepted) or 'none'})")
    return cls(Path(root), **given)


def _media_fields(path: Path) -> dict[str, Any]:
    from pipeline.media import probe

    info = probe(path)
    if info.video is None:
        raise MediaError(path, "no video stream (an audio-visual clip needs one)", "no_video")
    v, a = info.video, info.audio
    duration = v.duration_s or info.duration_s
    fields: dict[str, Any] = {
        "fps": v.fps or None,
        "num_frames": v.num_frames if v.num_frames is not None else (round(duration * v.fps) if v.fps else None),
        "duration_s": info.duration_s,
        "sample_rate": a.sample_rate if a else None,
        "num_samples": round((a.duration_s or info.duration_s) * a.sample_rate) if a and a.sample_rate else None,
    }
    return fields


def _sha256_media(path: Path) -> str:
    """sha256 of a media file, or of a media folder's files (names and contents, sorted)."""
    if not path.is_dir():
        return sha256_file(path)
    from pipeline.atomic import sha256_json

    return sha256_json([[p.relative_to(path).as_posix(), sha256_file(p)] for p in sorted(path.rglob("*")) if p.is_file()])


def ingest(
    corpus: str,
    root: str | Path,
    out: str | Path,
    *,
    probe: bool = True,
    hash_files: bool = False,
    workers: int | None = None,
    failures_path: str | Path | None = None,
    progress: bool = True,
    **options: Any,
) -> IngestSummary:
    """Scan ``root`` with the ``corpus`` adapter, probe, and write ``out`` + failures.parquet."""
    from tqdm import tqdm

    out = Path(out)
    failures_path = Path(failures_path) if failures_path else out.with_name(FAILURES_NAME)
    adapter = make_adapter(corpus, Path(root), **options)
    scanned = adapter.scan()
    failures = list(scanned.failures)
    out_dir = out.resolve().parent
    root_abs = Path(root).resolve()

    def locate(clip: Clip) -> Path:
        p = Path(clip.path)
        return p if p.is_absolute() else root_abs / p

    cache: dict[Path, dict[str, Any] | MediaError] = {}

    def examine(path: Path) -> dict[str, Any] | MediaError:
        # Several clips may share one file (CMDFD lists repeat the real clips).
        if path in cache:
            return cache[path]
        try:
            if probe:
                fields = adapter.media_fields(path)
            elif not adapter.media_exists(path):
                raise MediaError(path, "file does not exist", "missing")
            else:
                fields = {}
            if hash_files:
                fields["sha256"] = _sha256_media(path)
            result: dict[str, Any] | MediaError = fields
        except MediaError as exc:
            result = exc
        cache[path] = result
        return result

    paths = [locate(c) for c in scanned.clips]
    n_workers = workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        results = list(
            tqdm(pool.map(examine, paths), total=len(paths), desc=f"ingest {corpus}", unit="clip",
                 disable=not progress, leave=False)
        )
    clips: list[Clip] = []
    for clip, path, res in zip(scanned.clips, paths, results):
        if isinstance(res, MediaError):
            failures.append(Failure(clip.key, STAGE, res.error_type, str(res)))
            continue
        rel = Path(os.path.relpath(path, out_dir)).as_posix()
        clips.append(replace(clip, path=rel, **res))
    write_manifest(clips, out)
    write_failures(failures, failures_path)
    inputs = [c.key for c in scanned.clips] + [f.key for f in scanned.failures]
    check_accounting(inputs, [c.key for c in clips], failures)
    summary = IngestSummary(
        corpus=corpus,
        manifest=out,
        failures_path=failures_path,
        inputs=len(inputs),
        outputs=len(clips),
        failures=len(failures),
        failure_types=dict(Counter(f.error_type for f in failures)),
        notes=dict(scanned.notes),
    )
    print(summary.line())
    return summary


def read_csv_rows(path: Path, required: Iterable[str], what: str) -> tuple[list[str], list[dict[str, str]]]:
    """Read a CSV with a header; raise IngestError naming the file and any missing columns."""
    import csv

    if not path.is_file():
        raise IngestError(f"{path}: {what} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise IngestError(f"{path}: {what} is empty (no header row)") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise IngestError(f"{path}: {what} lacks column(s) {missing}; it has {header}")
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            values = values + [""] * (len(header) - len(values))
            rows.append({h: v.strip() for h, v in zip(header, values)})
    return header, rows

