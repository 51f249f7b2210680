"""``avdf train``: one detector, one protocol fold, from WebDataset shards, through the one loop.

    avdf train DETECTOR --protocol P[@VERSION] [--fold F] --data SHARDS --out DIR [--preset tiny|paper]
    avdf train DETECTOR --grid --data SHARDS --out DIR [--history-dir LOGS]

``--grid`` trains the detector on every run of ``train.grid.runs`` (DIR/<protocol>/<fold>,
the same files as one run each), ``train.jobs`` runs side by side (``benchmark.parallel_runs``).
With ``--grid``, DETECTOR may name several detectors, comma-separated or as a pattern of
registered names (``'probe-*'``: every shortcut probe): their runs share one pool and go to
DIR/<detector>/<protocol>/<fold>.

The protocol splits the shards' clips (``clips.parquet`` beside the index) and
``detectors.training.train_fold`` trains on the fold's train keys, selecting
the checkpoint on its validation keys; the test keys are never read.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pipeline.config import load_section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("detector", help="registered detector name (avdf ls detectors) or module:Class")
    parser.add_argument("--protocol", help="protocol name[@version] (avdf ls protocols)")
    parser.add_argument("--grid", action="store_true",
                        help="every run of train.grid.runs, side by side (train.jobs); --out is the detector's folder")
    parser.add_argument("--history-dir", type=Path, help="with --grid: copy each run's history to "
                        "HISTORY_DIR/<protocol>/<fold>.json (DVC plots)")
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
          fold_name: str | None = None, preset: str | None = None, ablation: str | None = None,
          progress: bool = True) -> dict[str, Any]:
    from detectors.training import train_fold
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    protocol, fold = split_fold(protocol_name, read_manifest(shard_dir / CLIPS_NAME), fold_name)
    return train_fold(detector_name, fold, {"protocol": protocol.identity()}, shard_dir, out, params, preset, ablation,
                      progress=progress)


def train_run(detector: str, protocol: str, fold: str | None, shard_dir: Path, out: Path, params: Any,
              preset: str | None, ablation: str | None, history: Path | None, progress: bool = True) -> dict[str, Any]:
    """One run, its history copied to ``history`` (a module-level function: grid workers call it)."""
    metrics = train(detector, protocol, shard_dir, out, params, fold, preset, ablation, progress=progress)
    if history:
        from pipeline.atomic import write_bytes_atomic

        write_bytes_atomic(history, (out / "history.json").read_bytes())
    return metrics


def _summary(metrics: dict[str, Any]) -> str:
    best = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()
            if k.startswith("best_") and k != "best_epoch"}
    return f"{metrics['epochs_run']} epochs in {metrics['seconds']:.1f} s, best epoch {metrics['best_epoch']} {best}"


def grid_detectors(spec: str) -> list[str]:
    """The detectors a ``--grid`` spec names: one name or ``module:Class``, a comma-separated list, or
    patterns of registered names (``probe-*``)."""
    import fnmatch

    from detectors.registry import DETECTORS
    from pipeline.errors import ConfigError

    names: list[str] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if any(ch in part for ch in "*?["):
            matched = fnmatch.filter(DETECTORS.names(), part)
            if not matched:
                raise ConfigError(f"no registered detector matches {part!r} (avdf ls detectors)")
            names += sorted(matched)
        else:
            names.append(part)
    if not names:
        raise ConfigError(f"no detector named in {spec!r}")
    return list(dict.fromkeys(names))


def train_grid(detector: str, shard_dir: Path, out: Path, params: Any, preset: str | None = None,
               ablation: str | None = None, history_dir: Path | None = None) -> dict[str, Any]:
    """Every run of ``params.grid.runs`` into ``out/<protocol>/<fold>``, ``params.jobs`` at a time
    (several detectors: ``out/<detector>/<protocol>/<fold>``, all their runs in one pool)."""
    from benchmark.parallel_runs import plan_jobs, run_all
    from detectors.training import effective_loop
    from detectors.registry import DETECTORS
    from pipeline.errors import ConfigError

    runs = params.grid.runs
    if not runs:
        raise ConfigError("train.grid.runs is empty: nothing to train")
    run_names = [f"{r.protocol}/{r.fold}" for r in runs]
    if len(set(run_names)) != len(run_names):
        raise ConfigError(f"train.grid.runs names a protocol/fold twice: {run_names}")
    detectors = grid_detectors(detector)
    several = len(detectors) > 1
    device = effective_loop(DETECTORS.get(detectors[0]), params, preset).params.device
    plan = plan_jobs(len(runs) * len(detectors), params.jobs, device)
    print(f"train {detector}: {len(detectors)} detector(s) x {len(runs)} runs, {plan.describe()}", flush=True)
    names, jobs, epochs = [], [], []
    for name in detectors:
        root, logs = (out / name, history_dir / name if history_dir else None) if several else (out, history_dir)
        for r, run_name in zip(runs, run_names):
            names.append(f"{name}/{run_name}" if several else run_name)
            epochs.append(effective_loop(DETECTORS.get(name), params, preset, run=(r.protocol, r.fold)).params.epochs)
            jobs.append((name, r.protocol, r.fold, shard_dir, root / r.protocol / r.fold, params, preset, ablation,
                         logs / r.protocol / f"{r.fold}.json" if logs else None, plan.jobs == 1))
    finished = 0

    def report(name: str, metrics: dict[str, Any], seconds: float) -> None:
        nonlocal finished
        finished += 1
        print(f"train {detector} [{finished}/{len(names)}] {name}: {_summary(metrics)}", flush=True)

    start = time.perf_counter()
    results = run_all(names, train_run, jobs, plan, on_done=report, costs=epochs)
    print(f"train {detector}: {len(results)} runs in {time.perf_counter() - start:.1f} s ({plan.describe()}) -> {out}")
    return results


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import ConfigError

    params_path = args.params if Path(args.params).exists() else None
    params = load_section("train", params_path)
    if args.grid:
        if args.protocol or args.fold or args.history:
            raise ConfigError("--grid trains every run of train.grid.runs: drop --protocol/--fold/--history")
        train_grid(args.detector, args.data, args.out, params, args.preset, args.ablation, args.history_dir)
        return 0
    if not args.protocol:
        raise ConfigError("avdf train needs --protocol (or --grid for every run of train.grid.runs)")
    metrics = train_run(args.detector, args.protocol, args.fold, args.data, args.out, params, args.preset,
                        args.ablation, args.history)
    print(f"train: {metrics['detector']} {_summary(metrics)}; checkpoints in {args.out}")
    return 0
