"""Running an external generator's own CLI safely: checks first, an isolated cwd, normalised output.

The real tools write fixed scratch paths relative to their working directory
(Wav2Lip's ``temp/``, Audio2Head's ``results/temp.wav``, MakeItTalk's
``examples/``), so two tasks sharing a checkout would overwrite each other.
Each call therefore runs in a private folder that mirrors the checkout with
symlinks (code and checkpoints are shared read-only, never copied) except
for the folders the tool writes into, which are private and fresh. The
output is then normalised to 25 fps / 16 kHz mono, its length checked
against the driving audio, and re-written with our synthetic-media labels.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from generators.base import Generator, synthetic_metadata
from pipeline.errors import AvdfError, ConfigError, MediaError
from pipeline.media import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME, decode_audio, decode_video, probe, write_mp4

STDERR_TAIL = 2000


class ExternalToolError(AvdfError):
    """The external tool crashed, timed out or wrote an unusable output (message ends with its stderr)."""


def tail(text: str | bytes | None, limit: int = STDERR_TAIL) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class ExternalTool(Generator):
    """Base adapter. Subclasses give the tool's script, required files, writable folders and command."""

    version: ClassVar[str] = "external"
    num_gpus: ClassVar[float] = 1
    script: ClassVar[str] = "inference.py"
    required: ClassVar[tuple[str, ...]] = ()  # files the checkout must hold (besides the checkpoint)
    writable: ClassVar[tuple[str, ...]] = ()  # folders the tool writes into (private per call)
    checkpoint_default: ClassVar[str | None] = None  # relative to the checkout

    def __init__(self, checkout: str | Path | None = None, checkpoint: str | Path | None = None,
                 python: str | None = None, timeout_s: float = 3600.0, extra_args: Sequence[str] = (),
                 tolerance_frames: int = 3, face_backend: str = "mediapipe") -> None:
        if not checkout:
            raise ConfigError(f"generator {self.name}: set generate.generator_options.{self.name}.checkout "
                              f"to a checkout of the tool in params.yaml")
        self.checkout = Path(checkout).expanduser().resolve()
        if not self.checkout.is_dir():
            raise ConfigError(f"generator {self.name}: checkout {self.checkout} does not exist")
        if not (self.checkout / self.script).is_file():
            raise ConfigError(f"generator {self.name}: {self.checkout} has no {self.script} (not a checkout of the tool?)")
        ckpt = checkpoint or self.checkpoint_default
        self.checkpoint = None
        if ckpt is not None:
            path = Path(ckpt).expanduser()
            self.checkpoint = (path if path.is_absolute() else self.checkout / path).resolve()
            if not self.checkpoint.is_file():
                raise ConfigError(f"generator {self.name}: checkpoint {self.checkpoint} does not exist")
        missing = [r for r in self.required if not (self.checkout / r).exists()]
        if missing:
            raise ConfigError(f"generator {self.name}: missing in {self.checkout}: {', '.join(missing)} "
                              "(download the tool's checkpoints as its README says)")
        self.python = python or sys.executable
        self.timeout_s = timeout_s
        self.extra_args = list(extra_args)
        self.tolerance_frames = tolerance_frames
        self.face_backend_name = face_backend

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "checkout": str(self.checkout), "checkpoint": str(self.checkpoint),
                "extra_args": self.extra_args}

    # -- isolation -----------------------------------------------------------------
    def isolated_cwd(self, workdir: Path) -> Path:
        """A fresh private mirror of the checkout: symlinks, except the writable folders."""
        run = Path(workdir) / "run"
        if run.exists():
            shutil.rmtree(run)
        run.mkdir(parents=True)
        for entry in self.checkout.iterdir():
            if entry.name in self.writable:
                continue
            (run / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        for name in self.writable:
            private = run / name
            private.mkdir(parents=True, exist_ok=True)
            self.populate_writable(self.checkout / name, private)
        return run

    def populate_writable(self, original: Path, private: Path) -> None:
        """What a private writable folder starts with (default: empty)."""

    # -- the call ------------------------------------------------------------------
    def command(self, run: Path, target_video: Path, driving_audio: Path, out_dir: Path) -> tuple[list[str], Path]:
        """(argv, where the tool's output will be) for one call."""
        raise NotImplementedError

    def find_output(self, expected: Path) -> Path:
        return expected

    def execute(self, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=self.timeout_s, env=env)
        except subprocess.TimeoutExpired as exc:
            raise ExternalToolError(f"{self.name}: timed out after {self.timeout_s:g} s: {' '.join(argv)}\n"
                                    f"stderr tail:\n{tail(exc.stderr)}") from None
        if proc.returncode != 0:
            raise ExternalToolError(f"{self.name}: exited with code {proc.returncode}: {' '.join(argv)}\n"
                                    f"stderr tail:\n{tail(proc.stderr) or tail(proc.stdout)}")
        return proc

    def __call__(self, target_video: Path, driving_audio: Path | None, workdir: Path, *,
                 source_keys: Sequence[str] = (), source_video: Path | None = None, **kw: Any) -> Path:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        target_video = Path(target_video).resolve()
        audio_src = Path(driving_audio if driving_audio is not None else target_video).resolve()
        run = self.isolated_cwd(workdir)
        # The tools want a 16 kHz wav; a unique basename defeats VideoReTalking's cache.
        wav = workdir / f"{workdir.name}_audio.wav"
        audio = decode_audio(audio_src, SAMPLE_RATE)
        _write_wav(wav, audio)
        out_dir = workdir / "tool_out"
        out_dir.mkdir(exist_ok=True)
        argv, expected = self.command(run, target_video, wav, out_dir)
        proc = self.execute(argv, run)
        try:
            produced = self.find_output(expected)
            return self.normalise(produced, audio, workdir, source_keys)
        except (MediaError, ExternalToolError) as exc:
            raise ExternalToolError(f"{self.name}: unusable output ({exc})\nstderr tail:\n"
                                    f"{tail(proc.stderr) or tail(proc.stdout)}") from None

    def crop_output(self, frames: np.ndarray) -> np.ndarray:
        return frames

    def normalise(self, produced: Path, audio: np.ndarray, workdir: Path, source_keys: Sequence[str]) -> Path:
        """25 fps frames + the driving audio at 16 kHz; lengths must agree within tolerance."""
        if not produced.is_file():
            raise ExternalToolError(f"no output file {produced}")
        info = probe(produced)
        frames = self.crop_output(decode_video(produced, FPS))
        want = len(audio) / SAMPLE_RATE
        got = len(frames) / FPS
        if info.audio is not None:
            tool_audio = decode_audio(produced, SAMPLE_RATE)
            if abs(len(tool_audio) - len(audio)) > self.tolerance_frames * SAMPLES_PER_FRAME:
                raise ExternalToolError(f"output audio lasts {len(tool_audio) / SAMPLE_RATE:.2f} s, "
                                        f"the driving audio {want:.2f} s")
        if abs(got - want) > self.tolerance_frames / FPS:
            raise ExternalToolError(f"output video lasts {got:.2f} s ({len(frames)} frames at {FPS} fps, "
                                    f"source {info.video.fps if info.video else '?'} fps), "
                                    f"the driving audio {want:.2f} s")
        n = max(1, int(round(len(audio) / SAMPLES_PER_FRAME)))
        from pipeline.media import fit_length

        frames = fit_length(frames, n)
        return write_mp4(workdir / f"{self.name}.mp4", frames, audio[: n * SAMPLES_PER_FRAME],
                         metadata=synthetic_metadata(self, source_keys, tool_checkout=str(self.checkout)))


def _write_wav(path: Path, audio: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    import wave

    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
