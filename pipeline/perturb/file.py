"""Perturb one whole video file (picture and sound), write it as mp4, say what was done.

The file is decoded as every stage sees media (25 fps RGB, 16 kHz mono; see
``pipeline.media``), so the output is the normalised clip: whole frames, not
face crops, perturbed before any preprocessing, as DeeperForensics-1.0 does.

Every output is re-encoded, real and fake clips alike, so the re-encode cannot
tell the labels apart; the ``none`` spec is that re-encode alone, the control to
compare each perturbation with. Outside VC the encode is ``write_mp4``'s H.264 at
CRF 18 (visually lossless; ``crf`` changes it) with AAC 96 kbit/s audio, so it
perturbs as little as practical. VC follows DF's ``video_compression``
(``ffmpeg -i in -crf N out``: libx264's default preset, medium): the frames are
first written losslessly (CRF 0), then re-encoded at the level's CRF with the
audio stream copied, so the only lossy video step is the one VC names.

Memory: the whole clip is held decoded (T x H x W x 3 bytes, 250 frames of 1080p
is ~1.5 GB).
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import MediaError
from pipeline.ffmpeg_bin import ffmpeg_exe
from pipeline.media import FPS, SAMPLE_RATE, AudioCapture, decode_video, probe, write_mp4
from pipeline.perturb.audio import apply_audio
from pipeline.perturb.spec import MIXED, NONE, PerturbSpec, resolve
from pipeline.perturb.video import DF_FUNCTIONS, apply_video

CLEAN_CRF = 18
LOSSLESS_CRF = 0
# As pipeline.media.write_mp4 encodes; recorded in provenance.
WRITE_MP4_PRESET = "veryfast"
WRITE_MP4_AUDIO = "aac 96k"
VC_PRESET = "medium"  # libx264's default, which DF's plain `ffmpeg -crf` gets
TAG = "avdf_perturbation"  # container tag holding the provenance (JSON)



def perturb_file(src: Path, dst: Path, spec: PerturbSpec, seed: int, crf: int = CLEAN_CRF) -> dict[str, Any]:
    """Write ``src`` with ``spec`` applied to ``dst`` (mp4, atomically); return its provenance.

    The generator ``np.random.default_rng(seed)`` first draws a mixed spec's kind and level,
    then the perturbation's noise or block positions: one seed gives the same bytes.
    Raises MediaError for an unreadable ``src``, or an audio kind on a file without audio.
    """
    src, dst = Path(src), Path(dst)
    info = probe(src)
    rng = np.random.default_rng(seed)
    done = resolve(spec, rng)
    if info.audio is None and done.modality == "audio":
        raise MediaError(src, f"no audio stream to apply {done} to", "no_audio")
    # One probe and one ffmpeg run for picture and sound: process starts are most of a short clip's cost.
    capture = AudioCapture() if info.audio is not None else None
    frames = decode_video(src, info=info, audio=capture)
    audio = capture.samples if capture is not None else None
    if done.modality == "audio":
        audio = apply_audio(audio, done.kind, done.level, rng)  # type: ignore[arg-type]
    else:
        frames = apply_video(frames, done.kind, done.level, rng)

    provenance: dict[str, Any] = {
        "spec": str(spec),
        "kind": done.kind,
        "level": done.level,
        "value": done.value,
        "seed": seed,
        "drawn": {"kind": done.kind, "level": done.level} if spec.kind == MIXED else None,
        "definition": _definition(done),
        "num_frames": int(len(frames)),
        "num_samples": None if audio is None else int(len(audio)),
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "encoder": _encoder(done, crf, audio is not None),
    }
    tags = {TAG: json.dumps(provenance, sort_keys=True, separators=(",", ":"))}
    if done.kind == "VC":
        _write_vc(dst, frames, audio, int(done.value), tags)  # type: ignore[arg-type]
    else:
        write_mp4(dst, frames, audio, crf=crf, metadata=tags)
    return provenance


def _definition(done: PerturbSpec) -> str:
    if done.kind in DF_FUNCTIONS:
        return f"DeeperForensics-1.0 perturbation/distortions.py:{DF_FUNCTIONS[done.kind]}"
    return "re-encode only" if done.kind == NONE else f"pipeline.perturb.audio ({done.kind})"


def _encoder(done: PerturbSpec, crf: int, has_audio: bool) -> dict[str, Any]:
    vc = done.kind == "VC"
    return {
        "video": "libx264",
        "pix_fmt": "yuv420p",
        "crf": int(done.value) if vc else crf,  # type: ignore[arg-type]
        "preset": VC_PRESET if vc else WRITE_MP4_PRESET,
        "via_lossless": vc,
        "audio": None if not has_audio else WRITE_MP4_AUDIO + (" (copied at the VC re-encode)" if vc else ""),
    }


def _write_vc(dst: Path, frames: np.ndarray, audio: np.ndarray | None, crf: int, tags: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="avdf-vc-") as tmp, atomic_path(dst) as out:
        lossless = write_mp4(Path(tmp) / "lossless.mp4", frames, audio, crf=LOSSLESS_CRF)
        meta = [arg for k, v in tags.items() for arg in ("-metadata", f"{k}={v}")]
        cmd = [
            ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(lossless), "-map", "0",
            "-c:v", "libx264", "-preset", VC_PRESET, "-crf", str(crf), "-pix_fmt", "yuv420p",
            "-c:a", "copy", *meta, "-movflags", "+faststart+use_metadata_tags", "-f", "mp4", str(out),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            raise MediaError(dst, f"VC re-encode failed ({lines[-1] if lines else 'no message'})", "encode")
