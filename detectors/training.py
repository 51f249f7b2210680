"""``avdf train``: one detector, one protocol fold, from WebDataset shards, through the one loop.

    avdf train DETECTOR --protocol P[@VERSION] [--fold F] --data SHARDS --out DIR [--preset tiny|paper]

The protocol splits the shards' clips (``clips.parquet`` beside the index);
training reads the train keys, model selection the validation keys — the
test keys are never touched here. Loop settings merge, later winning:
LoopParams defaults < the detector's recommended ``TRAIN`` < ``train.loop``
in params.yaml < ``train.per_detector[DETECTOR]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import load_section

log = logging.getLogger(__name__)


@dataclass
class TrainRun:
    protocol: str
    fold: str


@dataclass
class TrainGrid:
    """The detector x protocol-fold matrix of dvc.yaml's train and evaluate stages."""

    detectors: list[str] = field(default_factory=lambda: ["video-baseline", "audio-baseline"])
    runs: list[TrainRun] = field(default_factory=list)


@dataclass
class TrainParams:
    """``train`` section."""

    preset: str = "tiny"
    loop: dict[str, Any] = field(default_factory=dict)  # LoopParams keys for every detector
    per_detector: dict[str, dict[str, Any]] = field(default_factory=dict)  # LoopParams keys per detector
    detector_config: dict[str, dict[str, Any]] = field(default_factory=dict)  # config overrides per detector
    segments_per_epoch: int | None = None  # None: one pass over the train clips' non-overlapping segments
    segments_per_clip: int = 2  # segments cut from a clip per visit (amortises reading it)
    balanced: bool = True  # equal expected segments per class
    num_workers: int = 0
    eval_batch_size: int = 16
    grid: TrainGrid = field(default_factory=lambda: TrainGrid())  # what `dvc repro` trains (dvc.yaml matrix)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("detector", help="registered detector name (avdf ls detectors) or module:Class")
    parser.add_argument("--protocol", required=True, help="protocol name[@version] (avdf ls protocols)")
    parser.add_argument("--fold", help="fold of the protocol (required when folds train on different data)")
    parser.add_argument("--data", required=True, type=Path, help="shard folder (avdf shard)")
    parser.add_argument("--out", required=True, type=Path, help="output folder: checkpoints, history, metrics")
    parser.add_argument("--preset", help="detector preset (default: params.yaml train.preset)")
    parser.add_argument("--ablation", help="one of the detector's named ablations")
    parser.add_argument("--history", type=Path, help="also copy the per-epoch history here (DVC plots)")


def input_spec_to_segments(spec: Any) -> Any:
    """The loaders' SegmentSpec for a detector's InputSpec."""
    from pipeline.loaders import SegmentSpec

    return SegmentSpec(
        num_frames=spec.num_frames,
        modalities=tuple(m for m in spec.modalities if m != "mel") or ("audio",),
        mel=spec.mel,
        face_size=getattr(spec, "face_size", None),
    )


class ShardBatchSource:
    """BatchSource over shards: resampled training epochs and the fixed-order validation pass."""

    def __init__(self, shard_dir: Path, segments: Any, train_keys: Iterable[str], val_keys: Iterable[str],
                 batch_size: int, params: TrainParams, seed: int) -> None:
        from pipeline.loaders import ShardSet

        self.shard_dir = shard_dir
        self.segments = segments
        self.train_set = ShardSet(shard_dir, list(train_keys))
        self.val_set = ShardSet(shard_dir, list(val_keys))
        self.batch_size = batch_size
        self.params = params
        self.seed = seed

    def train_epoch(self, epoch: int, rank: int, world_size: int) -> Iterable[dict[str, Any]]:
        from pipeline.loaders import TrainLoader

        loader = TrainLoader(
            self.train_set, self.segments, batch_size=max(1, self.batch_size // world_size),
            num_workers=self.params.num_workers, seed=self.seed, balanced=self.params.balanced,
            segments_per_epoch=self.params.segments_per_epoch,
            segments_per_clip=self.params.segments_per_clip, rank=rank, world_size=world_size,
        )
        loader.set_epoch(epoch)
        return loader

    def validation(self) -> Iterable[dict[str, Any]]:
        from pipeline.loaders import EvalLoader

        return EvalLoader(self.val_set, self.segments, batch_size=self.params.eval_batch_size,
                          num_workers=self.params.num_workers)


def warn_if_upsampled(shardset: Any, spec: Any) -> None:
    """Say so when the shards hold smaller faces than the detector consumes (they get upsampled)."""
    from pipeline.loading.reader import ClipReader
    from pipeline.loading.segments import CorruptSample

    want = getattr(spec, "face_size", None)
    if not want or "face" not in spec.modalities:
        return
    try:
        stored = ClipReader(shardset.shard_dir).array(shardset.rows[0], "face").shape[1]
    except CorruptSample:
        return  # the loader reports corrupt clips itself
    if stored < want:
        log.warning("faces in %s are %d px but the detector consumes %d px: they are upsampled (set "
                    "preprocess.face_size: %d and rebuild the shards for the real thing)",
                    shardset.shard_dir, stored, want, want)


def build_detector(name: str, preset: str, overrides: dict[str, Any], ablation: str | None = None) -> Any:
    """Resolve, check and build a detector (with a named ablation's config overrides applied)."""
    from detectors.registry import DETECTORS
    from pipeline.errors import ConfigError

    cls = DETECTORS.get(name)
    if ablation is not None:
        ablations = getattr(cls, "ABLATIONS", {})
        if ablation not in ablations:
            raise ConfigError(f"{cls.name}: unknown ablation {ablation!r}; ablations: {sorted(ablations)}")
        overrides = {**overrides, **ablations[ablation]}
    return cls.from_preset(preset, **overrides)


def loop_params_for(detector: Any, params: TrainParams) -> Any:
    from detectors.loop import LoopParams
    from pipeline.config import from_mapping

    merged: dict[str, Any] = {}
    for layer in (getattr(detector, "TRAIN", {}), params.loop, params.per_detector.get(detector.name, {})):
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                value = {**merged[key], **value}
            merged[key] = value
    return from_mapping(LoopParams, merged, f"train loop params for {detector.name}")


def select_fold(splits: Any, fold: str | None) -> Any:
    """The fold to train on: named, or the only training set the protocol has."""
    from pipeline.errors import ConfigError

    if fold is not None:
        return splits.fold(fold)
    by_training = {f.training_id: f for f in splits.folds.values()}
    if len(by_training) > 1:
        raise ConfigError(
            f"protocol {splits.protocol} trains on different data per fold; pass --fold (one of {list(splits.folds)})"
        )
    return next(iter(splits.folds.values()))


def data_hash(shard_dir: Path, fold: Any) -> str:
    from pipeline.atomic import sha256_file, sha256_json
    from pipeline.loading.format import INDEX_NAME

    return sha256_json({"index": sha256_file(shard_dir / INDEX_NAME), "train": fold.train, "val": fold.val})


def train(detector_name: str, protocol_name: str, shard_dir: Path, out: Path, params: TrainParams,
          fold_name: str | None = None, preset: str | None = None, ablation: str | None = None) -> dict[str, Any]:
    from benchmark.protocols import load_protocol
    from detectors.loop import fit
    from pipeline.atomic import write_json_atomic
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    name, _, version = protocol_name.partition("@")
    protocol = load_protocol(name, version or None)
    splits = protocol.split(read_manifest(shard_dir / CLIPS_NAME), folds=[fold_name] if fold_name else None)
    fold = select_fold(splits, fold_name)
    preset = preset or params.preset
    model = build_detector(detector_name, preset, params.detector_config.get(detector_name, {}), ablation)
    loop = loop_params_for(model, params)
    source = ShardBatchSource(shard_dir, input_spec_to_segments(model.inputs), fold.train, fold.val,
                              loop.batch_size, params, loop.seed)
    warn_if_upsampled(source.train_set, model.inputs)
    identity = {"protocol": protocol.identity(), "fold": fold.name, "preset": preset, "ablation": ablation,
                "detector_spec": detector_name}
    d_hash = data_hash(shard_dir, fold)
    metrics = fit(model, source, out, loop, data_hash=d_hash, extra_identity=identity)
    write_json_atomic(out / "train.json", {**identity, "detector": model.name, "data_hash": d_hash,
                                           "loop": dataclasses.asdict(loop), "train_clips": len(fold.train),
                                           "val_clips": len(fold.val)})
    return metrics


def run(args: argparse.Namespace) -> int:
    params_path = args.params if Path(args.params).exists() else None
    params: TrainParams = load_section("train", params_path)
    metrics = train(args.detector, args.protocol, args.data, args.out, params, args.fold, args.preset, args.ablation)
    if args.history:
        from pipeline.atomic import write_bytes_atomic

        write_bytes_atomic(args.history, (args.out / "history.json").read_bytes())
    best = {k: v for k, v in metrics.items() if k.startswith("best_")}
    print(f"train: {metrics['detector']} {metrics['epochs_run']} epochs in {metrics['seconds']:.1f} s, "
          f"best epoch {metrics['best_epoch']} {best}; checkpoints in {args.out}")
    return 0
