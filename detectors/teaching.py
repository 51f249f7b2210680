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
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError


@dataclass
class TeachParams:
    """``teach`` section."""

    epochs: int = 30
    # The visual (VSR) teacher's epochs (None: ``epochs``). Lip reading from a few hundred 16-frame mouth
    # clips plateaus within a few epochs where the audio teacher keeps learning, at ~3x its cost per epoch.
    video_epochs: int | None = None
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
        if self.video_epochs is not None and self.video_epochs < 1:
            raise ConfigError(f"teach.video_epochs: must be >= 1 (or null: teach.epochs), got {self.video_epochs}")

    def epochs_of(self, modality: str) -> int:
        """Epochs of the ``audio`` or ``video`` teacher."""
        return self.video_epochs if modality == "video" and self.video_epochs is not None else self.epochs


def relabel_teacher(src: Path, dst: Path, provenance: dict[str, Any]) -> Path:
    """Write ``src``'s avdf-trained teacher to ``dst`` as the teacher of another run that trains on the
    same clips (``provenance``: that run's protocol and fold, as ``avdf teach`` records them). Training
    is deterministic, so this is the teacher a training for that run gives (the same weights, saved by
    ``save_teacher`` as training saves them); ``trained_on`` keeps the clips it learned from."""
    from detectors.ecl.teachers import TeacherError, load_teacher, save_teacher

    teacher = load_teacher(src)
    if "keys" not in (teacher.trained_on or {}):
        raise TeacherError(f"{src}: not an avdf-trained teacher (no record of the clips it learned from)")
    # the order train_teacher_from_shards gives trained_on: the run's provenance, then the keys
    return save_teacher(teacher, dst, {**provenance, "keys": teacher.trained_on["keys"]})
