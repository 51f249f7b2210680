"""deep_avsr's audio-only (ASR) and video-only (VSR) models as ECL teachers (the paper's teachers).

ECL (seeds/003, Sec. V-A) takes its ASR and VSR teachers from deep_avsr
(github.com/smeetrs/deep_avsr, a reproduction of "Deep Audio-Visual Speech
Recognition"), pretrained on LRS2, both CTC over 40 characters. avdf rebuilds
their architectures with the same module names, so the state dicts deep_avsr
saves (``torch.save(model.state_dict(), ...)``) load strictly, key by key:

- **audio-only** (``audio_only/models/audio_net.py``; weights usually
  ``audio-only.pt``): 321-dim STFT magnitudes at 100 Hz (16 kHz, Hamming window
  of 40 ms, hop 10 ms) -> ``audioConv`` (Conv1d 321 -> 512, kernel 4, stride 4:
  25 Hz) -> sinusoidal ``positionalEncoding`` (buffer ``pe``, (2500, 1, 512)) ->
  ``audioEncoder`` and ``audioDecoder`` (6 post-norm transformer encoder layers
  each: d 512, 8 heads, MLP 2048, ReLU) -> ``outputConv`` (Conv1d 512 -> 40,
  kernel 1) -> log-softmax.
- **video-only** (``video_only/models/video_net.py``; usually ``video-only.pt``):
  the same stack without ``audioConv`` (``videoEncoder``/``videoDecoder``), on
  512-d visual features at 25 fps from the **visual frontend**, a separate file
  (``visual_frontend.pt``, ``video_only/models/visual_frontend.py``):
  ``frontend3D`` (Conv3d 1 -> 64, 5x7x7, stride 1x2x2, BN, ReLU, max-pool 1x3x3
  stride 1x2x2) and a ResNet-18 ``resnet.layer1..4`` (64-128-256-512; blocks
  ``conv1``, ``bn1``, ``conv2``, ``outbn``, 1x1 ``downsample`` conv without BN)
  with a 4x4 average pool, on 112 x 112 grayscale frames normalised with mean
  0.4161 and std 0.1688.

Characters: index 0 is the CTC blank, then deep_avsr's ``CHAR_TO_INDEX``
(space 1, E 2, T 3, ..., apostrophe 22, ..., digits 29-38, ``<EOS>`` 39). avdf's
``CHARACTERS`` set is that alphabet without the digits and ``<EOS>``: the teacher
folds ``<EOS>`` (the end-of-utterance symbol its CTC targets append, not a
spoken character) into the blank and drops the digits (posteriors are
renormalised over the rest), so a deep_avsr teacher pairs with an avdf teacher
trained on transcripts, and with its own other half.

Inputs in avdf: the ASR teacher reads the batch's ``audio`` (16 kHz); each
segment is scaled to unit power (deep_avsr scales each utterance) and padded by
15 ms on both sides so its 40 ms windows are centred on the 10 ms hops: 4
STFT frames per video frame, one posterior per frame. The VSR teacher reads the
``mouth`` ROI (deep_avsr's "lip region patch"; resized to 112 px) or, with
``video_input="face_gray"``, the face crop's central half resized to 112 px —
deep_avsr's own cut of LRS2's face-centred frames (resize to 224, central 112).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detectors.ecl.teacher_base import CHARACTERS, Teacher, TeacherError
from detectors.features import unit_frames

SAMPLE_RATE = 16000
STFT_WINDOW = 640  # 40 ms
STFT_HOP = 160  # 10 ms: 100 feature vectors per second
STFT_BINS = STFT_WINDOW // 2 + 1  # 321
ROI_SIZE = 112
NORM_MEAN, NORM_STD = 0.4161, 0.1688
VIDEO_INPUTS = ("mouth", "face_gray")
FRONTEND_FILE = "visual_frontend.pt"

# deep_avsr's config.py CHAR_TO_INDEX, as an index -> symbol table (0 = the CTC blank)
DEEP_AVSR_SYMBOLS: tuple[str, ...] = (
    "<blank>", " ", "E", "T", "O", "A", "I", "N", "S", "H", "R", "L", "D", "U", "Y", "W", "G", "C", "M", "F", "B",
    "P", "'", "V", "K", "J", "X", "Q", "Z", "0", "1", "9", "2", "8", "5", "6", "7", "3", "4", "<EOS>",
)
NUM_CLASSES = len(DEEP_AVSR_SYMBOLS)  # 40


@dataclass(frozen=True)
class TransformerSize:
    """deep_avsr's transformer hyper-parameters (its config.py; the released models use these)."""

    d_model: int = 512
    heads: int = 8
    layers: int = 6
    ffn: int = 2048
    max_len: int = 2500  # PE_MAX_LENGTH: frames the positional-encoding buffer covers
    dropout: float = 0.1


class PositionalEncoding(nn.Module):
    """Sinusoidal positions, stored as deep_avsr stores them: a (max_len, 1, d) buffer ``pe``."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        inverse = torch.exp(-torch.arange(0, d_model, 2, dtype=torch.float32) * (math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * inverse)
        pe[:, 1::2] = torch.cos(position * inverse)
        self.register_buffer("pe", pe[:, None, :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d)
        if x.shape[1] > self.pe.shape[0]:
            raise TeacherError(f"deep_avsr: {x.shape[1]} frames exceed the positional encoding's {self.pe.shape[0]}")
        return x + self.pe[: x.shape[1], 0][None]


def _encoder(size: TransformerSize) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(size.d_model, size.heads, size.ffn, size.dropout, batch_first=True)
    return nn.TransformerEncoder(layer, size.layers, enable_nested_tensor=False)


class _CTCTransformer(nn.Module):
    """Positional encoding, two stacks of encoder layers, a 1x1 conv to the 40 characters (log-softmax)."""

    stack = "video"  # the module-name prefix deep_avsr uses: audioEncoder/audioDecoder or videoEncoder/videoDecoder

    def __init__(self, size: TransformerSize = TransformerSize()) -> None:
        super().__init__()
        self.positionalEncoding = PositionalEncoding(size.d_model, size.max_len)
        setattr(self, f"{self.stack}Encoder", _encoder(size))
        setattr(self, f"{self.stack}Decoder", _encoder(size))
        self.outputConv = nn.Conv1d(size.d_model, NUM_CLASSES, 1)

    def transcribe(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d_model) -> (B, T, 40) log-probabilities."""
        x = self.positionalEncoding(x)
        x = getattr(self, f"{self.stack}Decoder")(getattr(self, f"{self.stack}Encoder")(x))
        return torch.log_softmax(self.outputConv(x.transpose(1, 2)).transpose(1, 2), dim=-1)


class AudioNet(_CTCTransformer):
    """deep_avsr's audio-only model: (B, 4T, 321) STFT magnitudes -> (B, T, 40) log-probabilities."""

    stack = "audio"

    def __init__(self, size: TransformerSize = TransformerSize()) -> None:
        super().__init__(size)
        self.audioConv = nn.Conv1d(STFT_BINS, size.d_model, 4, stride=4)

    def forward(self, stft: torch.Tensor) -> torch.Tensor:
        return self.transcribe(self.audioConv(stft.transpose(1, 2)).transpose(1, 2))


class VideoNet(_CTCTransformer):
    """deep_avsr's video-only model: (B, T, 512) frontend features -> (B, T, 40) log-probabilities."""

    stack = "video"

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.transcribe(features)


class _ResBlock(nn.Module):
    """deep_avsr's frontend block: BN after the residual sum (``outbn``), a bare 1x1 conv as shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.downsample = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False) if stride != 1 or in_ch != out_ch else None
        self.outbn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.bn1(self.conv1(x))))
        return F.relu(self.outbn(out + (x if self.downsample is None else self.downsample(x))))


class _ResNet18(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        widths, ch = (64, 128, 256, 512), 64
        for i, (out, stride) in enumerate(zip(widths, (1, 2, 2, 2)), start=1):
            setattr(self, f"layer{i}", nn.Sequential(_ResBlock(ch, out, stride), _ResBlock(out, out)))
            ch = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.avg_pool2d(x, 4, stride=1)  # 112 px in -> 4 x 4 here -> 1 x 1


class VisualFrontend(nn.Module):
    """deep_avsr's (and TalkNet's) visual frontend: (B, T, 112, 112) normalised grayscale -> (B, T, 512)."""

    def __init__(self) -> None:
        super().__init__()
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, 64, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.resnet = _ResNet18()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, h, w = frames.shape
        if (h, w) != (ROI_SIZE, ROI_SIZE):
            raise TeacherError(f"deep_avsr frontend: frames must be {ROI_SIZE} x {ROI_SIZE}, got {h} x {w}")
        x = self.frontend3D(frames[:, None])  # (B, 64, T, 28, 28)
        x = self.resnet(x.transpose(1, 2).flatten(0, 1))  # (B*T, 512, 1, 1)
        return x.view(b, t, -1)


def stft_features(audio: torch.Tensor, centre: bool = True) -> torch.Tensor:
    """(B, N) 16 kHz audio -> (B, frames, 321) STFT magnitudes as deep_avsr computes them.

    Unit power per row, a periodic Hamming window of 640 samples, hop 160, scaled by
    the window's sum (scipy.signal.stft's default). ``centre`` pads 240 samples (half
    of window - hop) on each side: N // 160 frames, four per video frame; without it
    the windows start at sample 0 as in deep_avsr (``boundary=None, padded=False``).
    """
    if audio.dim() != 2:
        raise TeacherError(f"deep_avsr audio teacher: audio must be (B, samples), got {tuple(audio.shape)}")
    x = audio.float()
    x = x / x.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-8)
    if centre:
        pad = (STFT_WINDOW - STFT_HOP) // 2
        x = F.pad(x, (pad, pad))
    window = torch.hamming_window(STFT_WINDOW, periodic=True, device=x.device)
    spec = torch.stft(x, STFT_WINDOW, STFT_HOP, window=window, center=False, return_complex=True)
    return (spec.abs() / window.sum()).transpose(1, 2)


def to_characters(log_probs: torch.Tensor) -> torch.Tensor:
    """(B, T, 40) deep_avsr log-probabilities -> (B, T, len(CHARACTERS)) log-scores over avdf's characters.

    ``<EOS>`` joins the blank; digits are left out (``softmax`` of the result renormalises).
    """
    index = {s: i for i, s in enumerate(DEEP_AVSR_SYMBOLS)}
    blank = torch.logsumexp(log_probs[..., [index["<blank>"], index["<EOS>"]]], dim=-1, keepdim=True)
    rest = log_probs[..., [index[s] for s in CHARACTERS.symbols[1:]]]
    return torch.cat([blank, rest], dim=-1)


class DeepAVSRAudioTeacher(Teacher):
    """ASR teacher: deep_avsr's audio-only model on the batch's ``audio``."""

    modality = "audio"
    input_key = "audio"

    def __init__(self, net: AudioNet | None = None) -> None:
        super().__init__(CHARACTERS)
        self.net = net or AudioNet()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return to_characters(self.net(stft_features(x)))


class DeepAVSRVideoTeacher(Teacher):
    """VSR teacher: deep_avsr's visual frontend + video-only model on ``mouth`` (or ``face_gray``)."""

    modality = "video"

    def __init__(self, video_input: str = "mouth", frontend: VisualFrontend | None = None,
                 net: VideoNet | None = None) -> None:
        if video_input not in VIDEO_INPUTS:
            raise TeacherError(f"deep_avsr video teacher: video_input must be one of {VIDEO_INPUTS}, got {video_input!r}")
        super().__init__(CHARACTERS)
        self.input_key = video_input
        self.frontend = frontend or VisualFrontend()
        self.net = net or VideoNet()

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 1, H, W) uint8 (or [0, 1] float) crops -> (B, T, 112, 112) normalised as deep_avsr does."""
        if x.dim() != 5 or x.shape[2] != 1:
            raise TeacherError(f"deep_avsr video teacher: {self.input_key} must be (B, T, 1, H, W), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        frames = unit_frames(x)
        if self.input_key == "face_gray":
            # deep_avsr resizes LRS2's face-centred frame to 224 and keeps the central 112: the central half
            h, w = frames.shape[-2:]
            frames = frames[..., h // 4 : h - h // 4, w // 4 : w - w // 4]
        if frames.shape[-2:] != (ROI_SIZE, ROI_SIZE):
            frames = F.interpolate(frames, size=(ROI_SIZE, ROI_SIZE), mode="bilinear", align_corners=False, antialias=True)
        return ((frames - NORM_MEAN) / NORM_STD).view(b, t, ROI_SIZE, ROI_SIZE)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return to_characters(self.net(self.frontend(self.frames(x))))


# --- loading deep_avsr's files -------------------------------------------------------------------

def released_kind(state: Mapping[str, Any]) -> str | None:
    """'audio', 'video' or 'frontend' for a deep_avsr state dict (by its module names); None otherwise."""
    keys = set(state)
    if any(k.startswith("audioConv.") for k in keys):
        return "audio"
    if any(k.startswith("videoEncoder.") for k in keys):
        return "video"
    if any(k.startswith("frontend3D.") for k in keys):
        return "frontend"
    return None


def _load(module: nn.Module, state: Mapping[str, Any], source: Path) -> None:
    from detectors.backbones.weights import load_strict

    # files saved by older PyTorch may lack BatchNorm's step counter; it plays no part in eval
    optional = tuple(n for n in module.state_dict() if n.endswith("num_batches_tracked"))
    load_strict(module, state, source, optional=optional)


def _read_state(path: Path) -> Mapping[str, Any]:
    from detectors.backbones.weights import read_torch_pickle

    state = read_torch_pickle(path, "deep_avsr weights file", TeacherError)
    if not isinstance(state, Mapping):
        raise TeacherError(f"{path}: expected a state dict (torch.save(model.state_dict())), got {type(state).__name__}")
    return state


def load_deep_avsr(path: str | Path, state: Mapping[str, Any] | None = None, *, frontend: str | Path | None = None,
                   video_input: str = "mouth") -> Teacher:
    """A deep_avsr teacher from its released ``.pt`` state dict (``state``: already read from ``path``).

    A video-only model needs the visual frontend: ``frontend``, else ``visual_frontend.pt``
    next to ``path``. Tensors missing, unexpected or of another shape are named.
    """
    path = Path(path)
    state = _read_state(path) if state is None else state
    kind = released_kind(state)
    if kind == "audio":
        teacher: Teacher = DeepAVSRAudioTeacher()
        _load(teacher.net, state, path)
    elif kind == "video":
        frontend_path = Path(frontend) if frontend else path.with_name(FRONTEND_FILE)
        if not frontend_path.exists():
            raise TeacherError(f"{path}: a deep_avsr video-only model needs its visual frontend; {frontend_path} "
                               f"does not exist (put {FRONTEND_FILE} next to it or name it: teacher_video_frontend)")
        teacher = DeepAVSRVideoTeacher(video_input)
        _load(teacher.net, state, path)
        _load(teacher.frontend, _read_state(frontend_path), frontend_path)
    elif kind == "frontend":
        raise TeacherError(f"{path}: is deep_avsr's visual frontend alone; give the video-only model's file "
                           f"(the frontend is read from {FRONTEND_FILE} next to it)")
    else:
        raise TeacherError(f"{path}: not a deep_avsr audio-only or video-only state dict "
                           "(no 'audioConv.*' or 'videoEncoder.*' tensors)")
    return teacher
