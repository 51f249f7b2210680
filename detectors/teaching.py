"""``avdf teach``: train ECL's ASR (audio) or VSR (mouth) teacher on the real clips of a sharded corpus.

    avdf teach --modality audio|video --data SHARDS --out models/teachers/audio.pt

A small CTC model over phones (or, for audio with ``teach.audio_teacher:
whisper``, a CTC head on a frozen pretrained Whisper encoder), trained on
clips whose ``extra`` JSON carries a phone alignment (the studio corpus
does), so ECL's correlation distillation runs offline. Users with pretrained ASR/VSR models pass their
checkpoints to ECL instead (see ``detectors.ecl.teachers``).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import load_section
from pipeline.errors import ConfigError


@dataclass
class TeachParams:
    """``teach`` section."""

    epochs: int = 30
    batch_size: int = 16
    lr: float = 3e-3
    width: int = 64
    num_frames: int = 16  # segment length, as the detector reads it
    seed: int = 0
    # ASR teacher: "ctc" (a small CTC model trained from scratch) or "whisper" (a CTC head on a
    # frozen pretrained Whisper encoder from whisper_weights: a local path or "packaged-base")
    audio_teacher: str = "ctc"
    whisper_weights: str = "packaged-base"

    def __post_init__(self) -> None:
        if self.audio_teacher not in ("ctc", "whisper"):
            raise ConfigError(f"teach.audio_teacher: must be 'ctc' or 'whisper', got {self.audio_teacher!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modality", choices=("audio", "video"), required=True, help="ASR (audio) or VSR (video)")
    parser.add_argument("--data", required=True, type=Path, help="shard folder (avdf shard)")
    parser.add_argument("--out", required=True, type=Path, help="teacher checkpoint to write")


def run(args: argparse.Namespace) -> int:
    from detectors.ecl.teachers import TeacherTrainParams, train_teacher_from_shards
    from pipeline.loading.format import CLIPS_NAME

    params_path = args.params if Path(args.params).exists() else None
    p: TeachParams = load_section("teach", params_path)
    result = train_teacher_from_shards(
        args.data, args.data / CLIPS_NAME, args.modality, args.out, num_frames=p.num_frames,
        params=TeacherTrainParams(p.epochs, p.batch_size, p.lr, p.seed), width=p.width,
        whisper_weights=p.whisper_weights if args.modality == "audio" and p.audio_teacher == "whisper" else None,
    )
    print(f"teach {args.modality}: {result['examples']} segments, {p.epochs} epochs, "
          f"CTC {result['ctc'][0]:.3f} -> {result['ctc'][-1]:.3f}; wrote {args.out}")
    return 0
