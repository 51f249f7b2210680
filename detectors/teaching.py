"""The ``teach`` section: settings of ECL's ASR (audio) / VSR (mouth) teachers (``avdf teach``,
``benchmark.teach``), trained on the real clips of a sharded corpus.

    avdf teach --modality audio|video --data SHARDS --protocol P[@V] --fold F --out T.pt

A teacher serves the ECL runs of one protocol fold and learns only from that fold's
training split (never from its validation or test clips, nor from another fold's
test clips); the checkpoint records the clips it read, and ``avdf train`` refuses an
ECL run whose teachers read a clip outside the run's own training split.

A small CTC model over phones (or, for audio with ``teach.audio_teacher:
whisper``, a CTC head on a frozen pretrained Whisper encoder), trained on
clips whose ``extra`` JSON carries a phone alignment (the studio corpus
does), so ECL's correlation distillation runs offline. Users with pretrained ASR/VSR models pass their
checkpoints to ECL instead (see ``detectors.ecl.teachers``).
"""
from __future__ import annotations

from dataclasses import dataclass

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
    jobs: int | None = None  # teachers trained side by side (avdf teach --grid); None: one per core

    def __post_init__(self) -> None:
        if self.audio_teacher not in ("ctc", "whisper"):
            raise ConfigError(f"teach.audio_teacher: must be 'ctc' or 'whisper', got {self.audio_teacher!r}")
