"""Decode throughput: our 25 fps RGB decode path vs `ffmpeg -f null` on the same clips.

"Ours" is what preprocessing does before any face work (``decode_clip``): one probe, then one
ffmpeg run streaming the frames and decoding the audio beside them.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmark.perf.measure import measure
from pipeline.ffmpeg_bin import ffmpeg_exe
from pipeline.media import FPS, AudioCapture, iter_frames, probe, write_mp4

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clips", nargs="*", help="videos or folders of videos (default: synthetic clips)")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the clips (default: %(default)s)")


def _synthetic_clips(folder: Path) -> list[Path]:
    """Textured moving clips at three sizes, 8 s each, with audio."""
    rng = np.random.default_rng(0)
    out = []
    for w, h in ((224, 224), (512, 512), (1280, 720)):
        t = 8 * FPS
        base = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
        frames = np.stack([np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), i * 3, axis=1) for i in range(t)])
        audio = (0.1 * np.sin(np.arange(t * 640) / 16000 * 2 * np.pi * 220)).astype(np.float32)
        out.append(write_mp4(folder / f"synthetic_{w}x{h}.mp4", frames, audio))
    return out


def _collect(paths: list[str]) -> list[Path]:
    clips: list[Path] = []
    for p in map(Path, paths):
        clips += sorted(q for q in p.rglob("*") if q.suffix.lower() in VIDEO_SUFFIXES) if p.is_dir() else [p]
    return clips


def decode_clip(path: Path) -> int:
    """Decode a clip as preprocessing does (frames streamed, none kept; audio from the same run);
    returns the frame count."""
    info = probe(path)
    audio = AudioCapture() if info.audio is not None else None
    return sum(1 for _ in iter_frames(path, info=info, audio=audio))


def _ffmpeg_null(path: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-vf", f"fps={FPS}", "-an", "-f", "null", "-"],
        check=True,
    )
    return time.perf_counter() - t0


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="avdf-bench-") as tmp:
        clips = _collect(args.clips) if args.clips else _synthetic_clips(Path(tmp))
        print(f"{'clip':<48} {'frames':>6} {'ours f/s':>9} {'null f/s':>9} {'ratio':>6} {'peak MiB':>9}")
        tot_frames = tot_ours = tot_null = 0.0
        peak = 0.0
        for clip in clips:
            ours = null = 0.0
            n = 0
            for _ in range(args.repeat):
                with measure() as m:
                    n = decode_clip(clip)
                ours += m.seconds
                peak = max(peak, m.peak_increase_mb)
                null += _ffmpeg_null(clip)
            frames = n * args.repeat
            tot_frames += frames
            tot_ours += ours
            tot_null += null
            print(
                f"{clip.name[:48]:<48} {n:>6} {frames / ours:>9.1f} {frames / null:>9.1f} "
                f"{null / ours:>6.2f} {m.peak_increase_mb:>9.1f}"
            )
        print(
            f"summary: {len(clips)} clips, {int(tot_frames)} frames, ours {tot_frames / tot_ours:.1f} f/s, "
            f"ffmpeg -f null {tot_frames / tot_null:.1f} f/s, ratio {tot_null / tot_ours:.2f}, "
            f"peak RSS increase {peak:.1f} MiB"
        )
    return 0
