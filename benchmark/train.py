"""``avdf train``: one detector, one protocol fold, from WebDataset shards, through the one loop.

    avdf train DETECTOR --protocol P[@VERSION] [--fold F] --data SHARDS --out DIR [--preset tiny|paper]

The protocol splits the shards' clips (``clips.parquet`` beside the index) and
``detectors.training.train_fold`` trains on the fold's train keys, selecting
the checkpoint on its validation keys; the test keys are never read.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.config import load_section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("detector", help="registered detector name (avdf ls detectors) or module:Class")
    parser.add_argument("--protocol", required=True, help="protocol name[@version] (avdf ls protocols)")
    parser.add_argument("--fold", help="fold of the protocol (required when folds train on different data)")
    parser.add_argument("--data", required=True, type=Path, help="shard folder (avdf shard)")
    parser.add_argument("--out", required=True, type=Path, help="output folder: checkpoints, history, metrics")
    parser.add_argument("--preset", help="detector preset (default: params.yaml train.preset)")
    parser.add_argument("--ablation", help="one of the detector's named ablations")
    parser.add_argument("--history", type=Path, help="also copy the per-epoch history here (DVC plots)")


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


def split_fold(protocol_name: str, clips: Any, fold_name: str | None) -> tuple[Any, Any]:
    """(protocol, fold) for ``name[@version]`` and a fold name on a manifest."""
    from benchmark.protocols import load_protocol

    name, _, version = protocol_name.partition("@")
    protocol = load_protocol(name, version or None)
    splits = protocol.split(clips, folds=[fold_name] if fold_name else None)
    return protocol, select_fold(splits, fold_name)


def train(detector_name: str, protocol_name: str, shard_dir: Path, out: Path, params: Any,
          fold_name: str | None = None, preset: str | None = None, ablation: str | None = None) -> dict[str, Any]:
    from detectors.training import train_fold
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    protocol, fold = split_fold(protocol_name, read_manifest(shard_dir / CLIPS_NAME), fold_name)
    return train_fold(detector_name, fold, {"protocol": protocol.identity()}, shard_dir, out, params, preset, ablation)


def run(args: argparse.Namespace) -> int:
    params_path = args.params if Path(args.params).exists() else None
    params = load_section("train", params_path)
    metrics = train(args.detector, args.protocol, args.data, args.out, params, args.fold, args.preset, args.ablation)
    if args.history:
        from pipeline.atomic import write_bytes_atomic

        write_bytes_atomic(args.history, (args.out / "history.json").read_bytes())
    best = {k: v for k, v in metrics.items() if k.startswith("best_")}
    print(f"train: {metrics['detector']} {metrics['epochs_run']} epochs in {metrics['seconds']:.1f} s, "
          f"best epoch {metrics['best_epoch']} {best}; checkpoints in {args.out}")
    return 0
