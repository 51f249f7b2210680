"""``avdf perturb``: the test videos of chosen protocol folds, perturbed, preprocessed and sharded.

    avdf perturb --manifest M [M2 ...] --data SHARDS --out DIR

For each spec of ``perturb.specs`` (``pipeline.perturb``: DeeperForensics-1.0's video
distortions, audio noise / codecs / band-limiting / offsets; ``perturb.all`` takes every one),
the test clips of every fold in ``perturb.runs`` (split on SHARDS' clips.parquet, as evaluate
splits it) are perturbed as whole files, reals and fakes alike, on Ray (``PerturbWorker``: one
seed per clip from ``perturb.seed`` and its key), then preprocessed and sharded with the
``preprocess`` and ``shard`` settings of the clean corpus. Face detection belongs to preprocessing,
not to the detector under test: by default (``perturb.face_track: clean``) each perturbed copy is
cropped along its clean clip's face track, read from SHARDS, so the crops sit where the clean ones
do and a perturbation that defeats the face detector (DeeperForensics' blur at level 3 on 96 px
clips: every clip) does not drop clips. Keys, labels and every manifest field
but the media stay those of the clean clip; the perturbation is recorded under
``extra.perturbation``. Output per spec: ``DIR/<spec>/{videos,preprocessed,shards}`` (the first two keep
only their manifests and failure tables unless ``perturb.keep_media``);
``avdf evaluate --robustness DIR`` scores them. Failures are recorded per step and the stage
goes on (``inputs = outputs + failures`` holds in each step).
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import load_section

log = logging.getLogger(__name__)


FACE_TRACKS = ("clean", "detect")


@dataclass
class PerturbRun:
    protocol: str
    fold: str = "main"


@dataclass
class PerturbParams:
    """``perturb`` section."""

    # pipeline.perturb spec strings; null: its DEFAULT_SPECS (a quick subset)
    specs: list[str] | None = None
    all: bool = False  # every spec (pipeline.perturb.ALL_SPECS), whatever `specs` says
    runs: list[PerturbRun] = field(default_factory=list)  # folds whose test clips are perturbed
    seed: int = 0
    # clean: crop each perturbed copy along its clean clip's face track (from the clean shards);
    # detect: detect faces in the perturbed copy, like any clip (a face lost to the perturbation
    # drops the clip, recorded as a failure, and the fold leaves the robustness table)
    face_track: str = "clean"
    # false: once a spec's shards are written, its perturbed videos and per-clip .npz files are deleted
    # (the shards hold every array and the clip's provenance; the manifests and failure tables stay).
    # They are nearly all of the stage's files, which DVC hashes at every status (figures: params.yaml).
    keep_media: bool = False
    num_cpus_per_task: float = 1.0
    timeout_s: float | None = 900.0

    def __post_init__(self) -> None:
        from pipeline.errors import ConfigError

        if self.face_track not in FACE_TRACKS:
            raise ConfigError(f"perturb.face_track must be one of {FACE_TRACKS}, got {self.face_track!r}")

    def chosen_specs(self) -> list[str]:
        from pipeline.perturb import ALL_SPECS, DEFAULT_SPECS, parse_spec

        specs = ALL_SPECS if self.all else (DEFAULT_SPECS if self.specs is None else self.specs)
        return [str(parse_spec(s) if isinstance(s, str) else s) for s in specs]


def spec_dir(spec: str) -> str:
    """A folder name for a spec string (``GB:3`` -> ``GB_3``, ``offset:+2`` -> ``offset_+2``)."""
    return spec.replace(":", "_")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, type=Path, nargs="+", action="extend",
                        help="the source Clip manifest(s) preprocess read (their media files are perturbed)")
    parser.add_argument("--data", required=True, type=Path, help="the clean shard folder (its clips.parquet splits)")
    parser.add_argument("--out", required=True, type=Path, help="output folder, one sub-folder per spec")
    parser.add_argument("--address", help="Ray cluster address (default: params.yaml ray.address, else local)")


def test_keys(shard_dir: Path, runs: list[PerturbRun]) -> list[str]:
    """The test clips of every run's fold, split as ``avdf evaluate`` splits the clean shards."""
    from benchmark.protocols import load_protocol
    from pipeline.errors import ConfigError
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    if not runs:
        raise ConfigError("perturb.runs is empty: name the protocol folds whose test clips are perturbed")
    clips = read_manifest(shard_dir / CLIPS_NAME)
    keys: set[str] = set()
    for run in runs:
        name, _, version = run.protocol.partition("@")
        keys |= set(load_protocol(name, version or None).split(clips, folds=[run.fold]).fold(run.fold).test)
    return sorted(keys)


def perturb_corpus(manifests: list[Path], shard_dir: Path, out: Path, params: PerturbParams, preprocess: Any,
                   shard: Any, ray_params: Any = None, address: str | None = None) -> dict[str, dict[str, int]]:
    """Every spec: perturb (Ray), preprocess (Ray), shard; returns {spec: counts per step}."""
    from dataclasses import fields

    from pipeline.manifest import rows_to_table, write_failures, write_manifest
    from pipeline.preprocess import collect_items, preprocess_manifest
    from pipeline.preprocess_clip import PreprocessOptions
    from pipeline.raycluster import RayParams
    from pipeline.runner import run_stage
    from pipeline.shards import CropSizes, write_shards

    ray_params = ray_params or RayParams()
    keys = set(test_keys(shard_dir, params.runs))
    items = [i for i in collect_items(manifests) if i["key"] in keys]
    missing = sorted(keys - {i["key"] for i in items})
    if missing:
        from pipeline.errors import ManifestError

        raise ManifestError(f"{len(missing)} test clip(s) are in no source manifest, e.g. {missing[:3]}")
    sizes = CropSizes(face=preprocess.face_size, face_gray=preprocess.gray_face_size, mouth=preprocess.mouth_size)
    counts: dict[str, dict[str, int]] = {}
    specs = params.chosen_specs()
    print(f"perturb: {len(items)} test clips x {len(specs)} perturbations", flush=True)
    for spec in specs:
        folder = out / spec_dir(spec)
        result = run_stage(
            f"perturb {spec}", items, "pipeline.perturb.worker:PerturbWorker", {"spec": spec, "seed": params.seed},
            folder / "videos", num_cpus=params.num_cpus_per_task, max_retries=ray_params.max_retries,
            timeout_s=params.timeout_s, address=address or ray_params.address, ray_num_cpus=ray_params.num_cpus,
            object_store_mb=ray_params.object_store_mb,
        )
        write_manifest(rows_to_table(result.rows), folder / "videos" / "manifest.parquet")
        write_failures(result.failures, folder / "videos" / "failures.parquet")
        pre = preprocess_manifest(folder / "videos" / "manifest.parquet", folder / "preprocessed", preprocess,
                                  ray_params, address, face_tracks=shard_dir if params.face_track == "clean" else None)
        sharded = write_shards(folder / "preprocessed" / "manifest.parquet", folder / "shards", shard, sizes,
                               progress=False)
        counts[spec] = {"clips": len(items), "perturbed": len(result.rows), "preprocessed": len(pre.rows),
                        "sharded": sharded.clips}
        if not params.keep_media:
            drop_media(folder / "videos", folder / "preprocessed")
        print(f"perturb {spec}: {counts[spec]}", flush=True)
    return counts


def drop_media(*folders: Path) -> None:
    """Delete everything under ``folders`` but the Parquet tables (manifests, failures), and the emptied folders."""
    for folder in folders:
        for path in sorted(folder.rglob("*"), reverse=True):  # children before their folders
            if path.is_dir():
                if not any(path.iterdir()):
                    path.rmdir()
            elif path.suffix != ".parquet":
                path.unlink()


def run(args: argparse.Namespace) -> int:
    params_path = args.params if Path(args.params).exists() else None
    counts = perturb_corpus(args.manifest, args.data, args.out, load_section("perturb", params_path),
                            load_section("preprocess", params_path), load_section("shard", params_path),
                            load_section("ray", params_path), args.address)
    done = sum(c["sharded"] for c in counts.values())
    print(f"perturb: {len(counts)} perturbations, {done} perturbed test clips sharded -> {args.out}")
    return 0
