"""Training throughput: optimiser steps/s of a detector's runs one after another vs side by side.

Builds a small studio-shaped shard set (5 groups x 2 identities, a real clip and a fake each),
then trains the same runs of ``avdf train --grid`` twice: ``train.jobs`` = 1 (one run at a
time, all cores as torch threads) and ``train.jobs`` = the core count (runs side by side, one
thread each). Prints steps/s of each, their ratio, and the CPU time over wall time (core use).
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

RUNS = (("studio-intra-random", "main"), ("studio-intra-group", "main"),
        ("studio-cross-manipulation", "FVRA-WL"), ("studio-cross-dataset", "FAV"))
GROUPS = ("group-a", "group-b", "group-c", "group-d", "group-e")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", default="cad", help="registered detector, tiny preset (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (default: %(default)s)")
    parser.add_argument("--segments", type=int, default=64, help="segments per epoch (default: %(default)s)")
    parser.add_argument("--jobs", default=None, type=int, help="runs side by side (default: the core count)")
    parser.add_argument("--val-segments-per-clip", type=int, default=None,
                        help="validation segments per clip (train.loop.val_segments_per_clip; default: every one)")


def _shards(folder: Path) -> Path:
    from pipeline.loading.synthetic import frame_indexed_arrays, write_synthetic_corpus
    from pipeline.shards import CropSizes, write_shards

    rng = np.random.default_rng(0)
    clips = []
    for g, group in enumerate(GROUPS):
        for i in range(2):
            ident = f"s{g}{i}"
            common = dict(identity=ident, ethnicity=group, gender="female" if i else "male", num_frames=48,
                          video_id=f"{ident}-v1")
            for fake in (False, True):
                arrays = frame_indexed_arrays(48, 64, 48, 32)
                arrays["face"] = rng.integers(0, 255, arrays["face"].shape, dtype=np.uint8)
                arrays["audio"] = rng.standard_normal(arrays["audio"].shape).astype(np.float32) * 0.1
                if fake:
                    clips.append(dict(key=f"studio-fakeavceleb/{ident}-u1--x/wav2lip", video_fake=True,
                                      method="wav2lip", extra=json.dumps({"recipe": "fakeavceleb"}),
                                      arrays=arrays, **common))
                else:
                    clips.append(dict(key=f"studio/{ident}-u1", arrays=arrays, **common))
    manifest = write_synthetic_corpus(folder / "corpus", clips, (64, 48, 32))
    write_shards(manifest, folder / "shards", sizes=CropSizes(64, 48, 32), progress=False)
    return folder / "shards"


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(args: argparse.Namespace) -> int:
    from benchmark.parallel_runs import available_cpus
    from benchmark.train import train_grid
    from detectors.training import TrainGrid, TrainParams, TrainRun

    cores = available_cpus()
    side_by_side = args.jobs or cores
    with tempfile.TemporaryDirectory(prefix="avdf-bench-train-") as tmp:
        shards = _shards(Path(tmp))
        runs = [TrainRun(p, f) for p, f in RUNS]
        steps = len(runs) * args.epochs * -(-args.segments // 8)
        figures = {}
        for jobs in (1, side_by_side):
            loop = {"epochs": args.epochs, "batch_size": 8, "lr": 1e-3,
                    "val_segments_per_clip": args.val_segments_per_clip}
            params = TrainParams(loop=loop, jobs=jobs, segments_per_epoch=args.segments,
                                 grid=TrainGrid([args.detector], runs))
            cpu0, t0 = _cpu_seconds(), time.perf_counter()
            train_grid(args.detector, shards, Path(tmp) / f"jobs{jobs}", params)
            wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
            figures[jobs] = (steps / wall, cpu / wall)
    print(f"\n{args.detector} (tiny), {len(runs)} runs x {args.epochs} epochs x {args.segments} segments, {cores} cores:")
    for jobs, (rate, use) in figures.items():
        print(f"  {jobs} run(s) at a time: {rate:6.2f} steps/s, {use:.2f} cores busy (CPU time / wall time)")
    one, many = figures[1][0], figures[side_by_side][0]
    print(f"  side by side / one at a time: {many / one:.2f}x")
    return 0
