"""``avdf teach``: ECL's ASR (audio) or VSR (video) teacher on the training split of one protocol fold.

    avdf teach --modality audio|video --data SHARDS --protocol P[@V] [--fold F] --out T.pt
    avdf teach --grid --data SHARDS --out DIR

``--grid`` teaches both teachers of every run of ``train.grid.runs`` (DIR/<protocol>/<fold>/<modality>.pt),
side by side (``teach.jobs``). Runs whose training splits hold the same real clips (the
cross-manipulation folds: they differ only in the fakes left out) get one teacher, trained once
and written for each of them with its own protocol and fold.

Settings are the ``teach`` section (``detectors.teaching.TeachParams``); the
teacher reads only the real clips of the fold's training split, and records them.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.config import load_section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modality", choices=("audio", "video"), help="ASR (audio) or VSR (video)")
    parser.add_argument("--data", required=True, type=Path, help="shard folder (avdf shard)")
    parser.add_argument("--protocol", help="protocol name[@version] of the runs this teacher serves")
    parser.add_argument("--fold", help="its fold (required when folds train on different data)")
    parser.add_argument("--transcripts", type=Path, help="words with times of the real clips (avdf transcribe): "
                        "targets are their characters; default: each clip's phone alignment (studio)")
    parser.add_argument("--out", required=True, type=Path, help="teacher checkpoint to write (with --grid: a folder)")
    parser.add_argument("--grid", action="store_true", help="both teachers of every run of train.grid.runs, "
                        "side by side (teach.jobs)")


def teach_run(modality: str, protocol_name: str, fold_name: str | None, shard_dir: Path, out: Path, p: Any,
              transcripts_path: Path | None, copies: Sequence[tuple[str, str, Path]] = ()) -> str:
    """Train one teacher; -> its summary line (a module-level function: grid workers call it). ``copies``:
    (protocol, fold, checkpoint) of other runs with the same real training clips, written from this one."""
    from benchmark.train import split_fold
    from detectors.ecl.teachers import TeacherTrainParams, train_teacher_from_shards
    from detectors.teaching import relabel_teacher
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    clips = read_manifest(shard_dir / CLIPS_NAME)
    protocol, fold = split_fold(protocol_name, clips, fold_name)
    transcripts = json.loads(transcripts_path.read_text()) if transcripts_path else None
    result = train_teacher_from_shards(
        shard_dir, shard_dir / CLIPS_NAME, modality, out, num_frames=p.num_frames,
        params=TeacherTrainParams(p.epochs_of(modality), p.batch_size, p.lr, p.seed), width=p.width,
        whisper_weights=p.whisper_weights if modality == "audio" and p.audio_teacher == "whisper" else None,
        keys=fold.train, provenance={"protocol": protocol.identity(), "fold": fold.name}, transcripts=transcripts,
    )
    for other_protocol, other_fold, path in copies:
        other, its_fold = split_fold(other_protocol, clips, other_fold)
        relabel_teacher(out, path, {"protocol": other.identity(), "fold": its_fold.name})
    written = ", ".join(map(str, [out, *(path for _, _, path in copies)]))
    return (f"{result['examples']} segments of the {protocol.name} {fold.name} training split, "
            f"{len(result['ctc'])} epochs, CTC {result['ctc'][0]:.3f} -> {result['ctc'][-1]:.3f}; wrote {written}")


def teach_grid(shard_dir: Path, out: Path, p: Any, runs: list[Any], transcripts: Path | None) -> None:
    from benchmark.parallel_runs import plan_jobs, run_all
    from benchmark.train import split_fold
    from pipeline.errors import AvdfError, ConfigError
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    if not runs:
        raise ConfigError("train.grid.runs is empty: no run to teach for")
    clips = read_manifest(shard_dir / CLIPS_NAME)
    reals = {k for k, label in zip(clips.column("key").to_pylist(), clips.column("label").to_pylist()) if label == 0}
    # A teacher learns from the real clips of its run's training split, and from nothing else that
    # differs between runs: runs with the same ones share a teacher.
    def real_training_clips(i: int, run: Any) -> frozenset[str] | int:
        try:
            return frozenset(reals.intersection(split_fold(run.protocol, clips, run.fold)[1].train))
        except AvdfError:
            return i  # a job of its own, which fails naming its run as every failed run is named

    real_train = [real_training_clips(i, r) for i, r in enumerate(runs)]
    shared: dict[tuple[str, frozenset[str] | int], list[Any]] = {}
    # The visual teacher costs ~3x the audio one: its jobs go first, so the pool ends on short jobs.
    for m in ("video", "audio"):
        for r, clips_key in zip(runs, real_train):
            shared.setdefault((m, clips_key), []).append(r)
    jobs, names = [], []
    for (m, _), (r, *others) in shared.items():
        copies = [(o.protocol, o.fold, out / o.protocol / o.fold / f"{m}.pt") for o in others]
        jobs.append((m, r.protocol, r.fold, shard_dir, out / r.protocol / r.fold / f"{m}.pt", p, transcripts, copies))
        names.append(f"{r.protocol}/{r.fold} {m}")
    plan = plan_jobs(len(jobs), p.jobs)
    print(f"teach: {2 * len(runs)} teachers, {len(jobs)} to train, {plan.describe()}", flush=True)
    start = time.perf_counter()
    run_all(names, teach_run, jobs, plan, on_done=lambda name, line, _: print(f"teach {name}: {line}", flush=True))
    print(f"teach: {2 * len(runs)} teachers ({len(jobs)} trained) in {time.perf_counter() - start:.1f} s -> {out}")


def run(args: argparse.Namespace) -> int:
    from detectors.teaching import TeachParams
    from pipeline.errors import ConfigError

    params_path = args.params if Path(args.params).exists() else None
    p: TeachParams = load_section("teach", params_path)
    if args.grid:
        if args.modality or args.protocol or args.fold:
            raise ConfigError("--grid teaches for every run of train.grid.runs: drop --modality/--protocol/--fold")
        teach_grid(args.data, args.out, p, load_section("train", params_path).grid.runs, args.transcripts)
        return 0
    if not (args.modality and args.protocol):
        raise ConfigError("avdf teach needs --modality and --protocol (or --grid)")
    line = teach_run(args.modality, args.protocol, args.fold, args.data, args.out, p, args.transcripts)
    print(f"teach {args.modality}: {line}")
    return 0
