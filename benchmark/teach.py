"""``avdf teach``: ECL's ASR (audio) or VSR (video) teacher on the training split of one protocol fold.

    avdf teach --modality audio|video --data SHARDS --protocol P[@V] [--fold F] --out T.pt

Settings are the ``teach`` section (``detectors.teaching.TeachParams``); the
teacher reads only the real clips of the fold's training split, and records them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.config import load_section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modality", choices=("audio", "video"), required=True, help="ASR (audio) or VSR (video)")
    parser.add_argument("--data", required=True, type=Path, help="shard folder (avdf shard)")
    parser.add_argument("--protocol", required=True, help="protocol name[@version] of the runs this teacher serves")
    parser.add_argument("--fold", help="its fold (required when folds train on different data)")
    parser.add_argument("--transcripts", type=Path, help="words with times of the real clips (avdf transcribe): "
                        "targets are their characters; default: each clip's phone alignment (studio)")
    parser.add_argument("--out", required=True, type=Path, help="teacher checkpoint to write")


def run(args: argparse.Namespace) -> int:
    from benchmark.train import split_fold
    from detectors.ecl.teachers import TeacherTrainParams, train_teacher_from_shards
    from detectors.teaching import TeachParams
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    params_path = args.params if Path(args.params).exists() else None
    p: TeachParams = load_section("teach", params_path)
    protocol, fold = split_fold(args.protocol, read_manifest(args.data / CLIPS_NAME), args.fold)
    transcripts = json.loads(args.transcripts.read_text()) if args.transcripts else None
    result = train_teacher_from_shards(
        args.data, args.data / CLIPS_NAME, args.modality, args.out, num_frames=p.num_frames,
        params=TeacherTrainParams(p.epochs, p.batch_size, p.lr, p.seed), width=p.width,
        whisper_weights=p.whisper_weights if args.modality == "audio" and p.audio_teacher == "whisper" else None,
        keys=fold.train, provenance={"protocol": protocol.identity(), "fold": fold.name}, transcripts=transcripts,
    )
    print(f"teach {args.modality}: {result['examples']} segments of the {protocol.name} {fold.name} training split, "
          f"{p.epochs} epochs, CTC {result['ctc'][0]:.3f} -> {result['ctc'][-1]:.3f}; wrote {args.out}")
    return 0
