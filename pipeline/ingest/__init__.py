"""``avdf ingest``: one adapter per corpus turns its native layout into Clips.

Adapters (``pipeline/ingest/<corpus>.py``) are registered in
``pipeline.ingest.base.ADAPTERS``; third-party ones can register through the
``avdf.ingest_adapters`` entry-point group or be named as ``module:Class``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import load_section


@dataclass
class IngestParams:
    """``ingest`` section."""

    corpus: str = "studio"
    probe: bool = True  # ffprobe every file (fills fps, sample counts; finds corrupt files)
    workers: int | None = None  # probing threads (default: 2 x CPUs, at most 8)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="adapter name (voxceleb2, fakeavceleb, cmdfd, kodf, studio, folder, idforge, faceforensics, "
                        "celebdf) or module:Class")
    parser.add_argument("--root", required=True, type=Path, help="the corpus folder in its native layout")
    parser.add_argument("--out", required=True, type=Path, help="manifest to write (.parquet); paths in it are relative to its folder")
    parser.add_argument("--failures", type=Path, help="failures file (default: failures.parquet beside --out)")
    parser.add_argument("--no-probe", action="store_true", help="skip ffprobe (only check that files exist)")
    parser.add_argument("--hash", action="store_true", help="fill sha256 of every file (reads every byte)")
    parser.add_argument("--workers", type=int, help="probing threads")
    group = parser.add_argument_group("adapter options")
    group.add_argument("--meta", type=Path, help="fakeavceleb: meta_data.csv; kodf: metadata CSV; studio: manifest; "
                       "voxceleb2: vox2_meta.csv (default: ROOT/vox2_meta.csv when present)")
    group.add_argument("--lists", type=Path, help="cmdfd: folder of the released CSV split lists")
    group.add_argument("--strip-prefix", help="cmdfd: the authors' path prefix to replace by --root")
    group.add_argument("--fav-root", type=Path, help="cmdfd: FakeAVCeleb root for the FAV_* lists (default: --root)")
    group.add_argument("--subsets", help="cmdfd: comma-separated list names to read (default: all)")
    group.add_argument("--labels", type=Path, help="folder: labels CSV (default: ROOT/labels.csv)")
    group.add_argument("--name", help="folder: corpus name for keys (default: folder)")
    group.add_argument("--compression", choices=("raw", "c23", "c40"),
                       help="faceforensics: the quality folder to read (default: c23)")


def run(args: argparse.Namespace) -> int:
    from pipeline.ingest.base import ingest

    params_path = getattr(args, "params", None)
    params: IngestParams = load_section("ingest", params_path if params_path and Path(params_path).exists() else None)
    ingest(
        args.corpus,
        args.root,
        args.out,
        probe=params.probe and not args.no_probe,
        hash_files=args.hash,
        workers=args.workers or params.workers,
        failures_path=args.failures,
        meta=args.meta,
        lists=args.lists,
        strip_prefix=args.strip_prefix,
        fav_root=args.fav_root,
        subsets=args.subsets,
        labels=args.labels,
        name=args.name,
        compression=args.compression,
    )
    return 0
