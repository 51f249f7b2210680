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
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, fields
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.config import load_section
from pipeline.preprocess_clip import PreprocessOptions


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
    "repairs",
)


class PreprocessWorker:
    """One per Ray worker process: the face backend's models load once."""

    def __init__(self, **options: Any) -> None:
        from pipeline.faces import make_face_backend

        self.options = PreprocessOptions(**options)
        self.backend = make_face_backend(self.options.face_backend, **self.options.face_backend_options)

    def __call__(self, item: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        from pipeline.media import FPS, SAMPLE_RATE
        from pipeline.preprocess_clip import preprocess_clip
        from pipeline.runner import item_dir_name

        item = dict(item)
        media = Path(item.pop("media_path"))
        rel = Path("clips") / f"{item_dir_name(item['key'])}.npz"
        extra = json.loads(item["extra"]) if item.get("extra") else {}
        # The corpus, not the file, says whether a missing audio stream is expected.
        video_only = extra.get("video_only") is True
        summary = preprocess_clip(media, out_dir / rel, self.options, self.backend, allow_silent=video_only)
        # Only what describes the result: paths and timings would make rows machine-dependent.
        extra["preprocess"] = {k: summary[k] for k in SUMMARY_FIELDS if k in summary}
        extra.setdefault("source_path", item["path"])
        return {
            **item,
            "path": str(rel),
            "fps": float(FPS),
            "sample_rate": SAMPLE_RATE,
            "num_frames": int(summary["num_frames"]),
            "num_samples": int(summary["num_samples"]),
            "duration_s": summary["num_frames"] / FPS,
            "extra": json.dumps(extra, sort_keys=True, default=str),
        }


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
    address: str | None = None,
) -> Any:
    """Run the stage; write ``out/manifest.parquet`` and ``out/failures.parquet``; return the StageResult."""
    from pipeline.manifest import rows_to_table, write_failures, write_manifest
    from pipeline.raycluster import RayParams
    from pipeline.runner import run_stage

    ray_params = ray_params or RayParams()
    items = collect_items([manifests] if isinstance(manifests, (str, Path)) else manifests)
    options = {f.name: getattr(params, f.name) for f in fields(PreprocessOptions)}
    result = run_stage(
        "preprocess",
        items,
        "pipeline.preprocess:PreprocessWorker",
        options,
        out,
        num_cpus=params.num_cpus_per_task,
        max_retries=ray_params.max_retries,
        timeout_s=params.timeout_s,
        address=address or ray_params.address,
        ray_num_cpus=ray_params.num_cpus,
        object_store_mb=ray_params.object_store_mb,
    )
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
