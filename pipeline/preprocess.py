"""``avdf preprocess``: decode, track the face, crop and resample audio for every clip, on Ray.

Input: one or more Clip manifests (paths relative to each manifest's folder),
e.g. the real corpus and the generated fakes. Output, in
``--out``: one ``.npz`` of model-ready arrays per clip under ``clips/``, a
manifest whose rows point at them (same keys and labels), and
``failures.parquet`` for the clips that could not be used, with
``inputs = outputs + failures``.

A row whose JSON ``extra`` has ``"video_only": true`` (a clip of a video-only
corpus such as FaceForensics++ or Celeb-DF, set by its ingest adapter) is
given a silent audio track when its file has no audio stream; any other
audio-less clip fails ``no_audio``.

Clips whose media file holds the same bytes as an earlier clip's (same size and
sha256; the CMDFD-style build re-keys each forged real clip as an ``origin``
clip pointing at the very same mp4) are preprocessed once: the stage runs the
first of each such group, then links the others' ``.npz`` to its arrays (a hard
link, else a copy), with ``same_media_as`` (the first clip's key) in their
``extra.preprocess``. Preprocessing is deterministic, so the arrays are those a
second computation would give. A copy of a failed clip fails with its error.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.config import load_section
from pipeline.preprocess_clip import PreprocessOptions

log = logging.getLogger(__name__)


@dataclass
class PreprocessParams(PreprocessOptions):
    """``preprocess`` section: the per-clip options plus how the stage schedules its tasks."""

    num_cpus_per_task: float = 1.0
    timeout_s: float | None = 900.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, type=Path, nargs="+", action="extend",
                        help="input Clip manifest(s); repeat the flag or list several after it")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--address", help="Ray cluster address (default: params.yaml ray.address, else local)")


SUMMARY_FIELDS = (
    "face_fraction", "frames_without_face", "interpolated_frames", "silent_audio", "decode_errors", "track", "backend",
    "repairs", "source",
)


class PreprocessWorker:
    """One per Ray worker process: the face backend's models load once.

    ``face_tracks``: a shard folder whose clips' face tracks are reused by key instead of detecting
    faces (``preprocess_manifest``)."""

    def __init__(self, face_tracks: str | None = None, **options: Any) -> None:
        from pipeline.faces import make_face_backend

        self.options = PreprocessOptions(**options)
        self.face_tracks = FaceTracks(Path(face_tracks)) if face_tracks else None
        self.backend = None if self.face_tracks else make_face_backend(self.options.face_backend,
                                                                      **self.options.face_backend_options)

    def __call__(self, item: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        from pipeline.preprocess_clip import preprocess_clip

        item = dict(item)
        media = Path(item.pop("media_path"))
        rel = _clip_path(item["key"])
        track = self.face_tracks.of(item["key"], media) if self.face_tracks else None
        summary = preprocess_clip(media, out_dir / rel, self.options, self.backend, allow_silent=_video_only(item),
                                  face_track=track)
        # Only what describes the result: paths and timings would make rows machine-dependent.
        described = {k: summary[k] for k in SUMMARY_FIELDS if k in summary}
        return _result_row(item, rel, described, int(summary["num_frames"]), int(summary["num_samples"]))


class FaceTracks:
    """The face tracks (``landmarks``, ``boxes``, ``face_found``) of a shard folder's clips, by key."""

    NAMES = ("landmarks", "boxes", "face_found")

    def __init__(self, shard_dir: Path) -> None:
        from pipeline.loading.format import read_index
        from pipeline.loading.reader import ClipReader

        self.shard_dir = shard_dir
        self.reader = ClipReader(shard_dir)
        self.rows = {row["key"]: row for row in read_index(shard_dir).to_pylist()}

    def of(self, key: str, media: Path) -> dict[str, Any]:
        import numpy as np

        from pipeline.errors import MediaError

        row = self.rows.get(key)
        if row is None:
            raise MediaError(media, f"no face track of {key!r} in {self.shard_dir}", "no_track")
        return {name: np.array(self.reader.array(row, name)) for name in self.NAMES}


class SameMediaWorker:
    """Second pass: a clip whose media file equals an already preprocessed clip's gets that clip's arrays.

    The item carries the first clip's result row under ``same_media_as``; ``options`` are
    the stage's (unused here, but part of every item's hash, so new options redo the link).
    """

    def __init__(self, **options: Any) -> None:
        self.options = options

    def __call__(self, item: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        from pipeline.atomic import atomic_path

        item = dict(item)
        item.pop("media_path")
        first = item.pop("same_media_as")
        rel = _clip_path(item["key"])
        with atomic_path(out_dir / rel) as tmp:
            tmp.unlink()
            try:
                os.link(out_dir / first["path"], tmp)
            except OSError:  # a file system without hard links
                shutil.copyfile(out_dir / first["path"], tmp)
        described = {**json.loads(first["extra"])["preprocess"], "same_media_as": first["key"]}
        return _result_row(item, rel, described, int(first["num_frames"]), int(first["num_samples"]))


def _clip_path(key: str) -> Path:
    from pipeline.runner import item_dir_name

    return Path("clips") / f"{item_dir_name(key)}.npz"


def _video_only(item: dict[str, Any]) -> bool:
    # The corpus, not the file, says whether a missing audio stream is expected.
    return bool(item.get("extra")) and json.loads(item["extra"]).get("video_only") is True


def _result_row(item: dict[str, Any], rel: Path, described: dict[str, Any], num_frames: int,
                num_samples: int) -> dict[str, Any]:
    """The output manifest row of ``item``, preprocessed into ``rel``."""
    from pipeline.media import FPS, SAMPLE_RATE

    extra = json.loads(item["extra"]) if item.get("extra") else {}
    extra["preprocess"] = described
    extra.setdefault("source_path", item["path"])
    return {
        **item,
        "path": str(rel),
        "fps": float(FPS),
        "sample_rate": SAMPLE_RATE,
        "num_frames": num_frames,
        "num_samples": num_samples,
        "duration_s": num_frames / FPS,
        "extra": json.dumps(extra, sort_keys=True, default=str),
    }


def same_media(items: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Key -> key of the first earlier item whose media file has the same bytes (and whose
    ``video_only`` flag, the one per-item option, agrees). Frame folders and missing files
    are left alone (the latter fail on their own)."""
    from pipeline.atomic import sha256_file

    groups: dict[tuple[int, bool], list[dict[str, Any]]] = {}
    for item in items:
        if os.path.isfile(item["media_path"]):
            groups.setdefault((os.path.getsize(item["media_path"]), _video_only(item)), []).append(item)
    out = {}
    for group in groups.values():
        if len(group) < 2:  # only files that share their size with another are hashed
            continue
        firsts: dict[str, str] = {}
        for item in group:
            first = firsts.setdefault(sha256_file(item["media_path"]), item["key"])
            if first != item["key"]:
                out[item["key"]] = first
    return out


def collect_items(manifests: Sequence[Path]) -> list[dict[str, Any]]:
    """Rows of every manifest, each with the absolute ``media_path`` its ``path`` points at.

    A key listed by two manifests must describe the same clip; it is kept once.
    """
    from pipeline.errors import ManifestError
    from pipeline.manifest import read_manifest

    items: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        root = Path(manifest).resolve().parent
        for row in read_manifest(manifest).to_pylist():
            row["media_path"] = str(root / row["path"])
            seen = items.setdefault(row["key"], row)
            if seen["media_path"] != row["media_path"]:
                raise ManifestError(f"{manifest}: clip {row['key']!r} is also listed, with other media, by another manifest")
    return list(items.values())


def preprocess_manifest(
    manifests: Path | Sequence[Path], out: Path, params: PreprocessParams, ray_params: Any = None,
    address: str | None = None, face_tracks: Path | None = None,
) -> Any:
    """Run the stage; write ``out/manifest.parquet`` and ``out/failures.parquet``; return the StageResult.

    ``face_tracks``: a shard folder holding every clip's key (e.g. the clean corpus of a perturbed
    copy of its clips): each clip is cropped along that clip's face track, and no face is detected."""
    from pipeline.manifest import Failure, check_accounting, rows_to_table, write_failures, write_manifest
    from pipeline.raycluster import RayParams
    from pipeline.runner import StageResult, run_stage

    ray_params = ray_params or RayParams()
    items = collect_items([manifests] if isinstance(manifests, (str, Path)) else manifests)
    options = {f.name: getattr(params, f.name) for f in fields(PreprocessOptions)}
    if face_tracks is not None:
        options["face_tracks"] = str(face_tracks)
    copies = same_media(items)

    def stage(todo: list[dict[str, Any]], worker: str) -> StageResult:
        return run_stage(
            "preprocess",
            todo,
            worker,
            options,
            out,
            num_cpus=params.num_cpus_per_task,
            max_retries=ray_params.max_retries,
            timeout_s=params.timeout_s,
            address=address or ray_params.address,
            ray_num_cpus=ray_params.num_cpus,
            object_store_mb=ray_params.object_store_mb,
        )

    result = stage([i for i in items if i["key"] not in copies], "pipeline.preprocess:PreprocessWorker")
    if copies:
        done = {row["key"]: row for row in result.rows}
        failed = {f.key: f for f in result.failures}
        linked = stage([{**i, "same_media_as": done[copies[i["key"]]]} for i in items if copies.get(i["key"]) in done],
                       "pipeline.preprocess:SameMediaWorker")
        inherited = [Failure(key, f.stage, f.error_type, f"{f.message} (same media file as {first})")
                     for key, first in copies.items() if (f := failed.get(first))]
        order = {item["key"]: i for i, item in enumerate(items)}
        result = StageResult(
            "preprocess",
            rows=sorted(result.rows + linked.rows, key=lambda r: order[r["key"]]),
            failures=result.failures + linked.failures + inherited,
            computed=result.computed + linked.computed,
            skipped=result.skipped + linked.skipped,
            seconds=result.seconds + linked.seconds,
        )
        check_accounting(list(order), [r["key"] for r in result.rows], result.failures)
        log.info(f"{result.summary()}; {len(copies)} clips share their media file with an earlier clip: "
                 "preprocessed once, arrays linked")
    write_manifest(rows_to_table(result.rows), out / "manifest.parquet")
    write_failures(result.failures, out / "failures.parquet")
    return result


def run(args: argparse.Namespace) -> int:
    params_path = args.params if Path(args.params).exists() else None
    # The runner logs the summary line (inputs -> done, up to date, failed).
    preprocess_manifest(
        args.manifest, args.out, load_section("preprocess", params_path), load_section("ray", params_path), args.address
    )
    return 0
