"""Loader throughput: 16-frame segments/s from shards vs decoding the source mp4s, 0/1/2 workers.

Builds its own data so it runs anywhere: short 224 px talking-size mp4s (H.264 +
AAC) written with ``write_mp4``, their preprocessed npz (the decoded frames as the
face crop, grey and mouth crops, audio) and shards of those. Then, for each worker
count, it times one pass of every non-overlapping segment:

- ``shards eval``: ``EvalLoader`` (byte-span reads + npy parse);
- ``shards train``: ``TrainLoader`` (streamed shards, random segments, shuffle buffer), same count;
- ``mp4``: the same segments cut from ``decode_video`` + ``decode_audio`` of the mp4s —
  the cost without shards (and without face detection, so a lower bound of it).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODALITIES = ("face", "audio")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clips", type=int, default=8, help="synthetic clips (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each clip (default: %(default)s)")
    parser.add_argument("--workers", default="0,1,2", help="DataLoader worker counts (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8, help="segments per batch (default: %(default)s)")
    parser.add_argument("--mel", choices=["whisper30", "truncated"], help="also compute Whisper log-mel per segment")


def _make_data(folder: Path, clips: int, seconds: float) -> tuple[list[Path], Path]:
    """mp4s + matching npz/manifest; returns (mp4 paths, shard folder)."""
    import cv2

    from pipeline.loading.synthetic import write_synthetic_corpus
    from pipeline.media import FPS, SAMPLE_RATE, decode_audio, decode_video, write_mp4
    from pipeline.shards import CropSizes, ShardParams, write_shards

    rng = np.random.default_rng(0)
    frames_n = int(seconds * FPS)
    mp4s, specs = [], []
    for i in range(clips):
        base = rng.integers(0, 255, (28, 28, 3), dtype=np.uint8)
        frames = np.stack([np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), 2 * t, axis=0) for t in range(frames_n)])
        t = np.arange(frames_n * 640) / SAMPLE_RATE
        audio = (0.2 * np.sin(2 * np.pi * (150 + 20 * i) * t)).astype(np.float32)
        mp4 = write_mp4(folder / "mp4" / f"clip{i:03d}.mp4", frames, audio)
        mp4s.append(mp4)
        face = decode_video(mp4, num_frames=frames_n)
        gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in face])
        arrays = {
            "face": face,
            "face_gray": np.stack([cv2.resize(g, (112, 112), interpolation=cv2.INTER_AREA) for g in gray]),
            "mouth": np.ascontiguousarray(gray[:, 120:216, 64:160]),
            "audio": decode_audio(mp4, num_samples=frames_n * 640),
            "landmarks": np.zeros((frames_n, 68, 2), np.float32),
            "boxes": np.tile(np.array([0, 0, 224, 224], np.float32), (frames_n, 1)),
            "face_found": np.ones(frames_n, bool),
        }
        specs.append({"key": f"bench/clip{i:03d}", "num_frames": frames_n, "video_fake": bool(i % 2), "arrays": arrays})
    manifest = write_synthetic_corpus(folder / "pre", specs)
    write_shards(manifest, folder / "shards", ShardParams(max_samples_per_shard=max(1, clips // 4)), CropSizes(),
                 progress=False)
    return mp4s, folder / "shards"


class _Mp4Clips:
    """Map-style dataset: item i = every evaluation segment of mp4 i, decoded from the mp4."""

    def __init__(self, mp4s: list[Path], spec: Any) -> None:
        self.mp4s = mp4s
        self.spec = spec

    def __len__(self) -> int:
        return len(self.mp4s)

    def __getitem__(self, i: int) -> list[dict[str, Any]]:
        from pipeline.loading.segments import DecodedClip, make_segment
        from pipeline.media import decode_audio, decode_video

        face = decode_video(self.mp4s[i])
        audio = decode_audio(self.mp4s[i], num_samples=len(face) * 640)
        row = {"video_id": self.mp4s[i].stem, "label": 0, "video_fake": False, "audio_fake": False}
        clip = DecodedClip(key=self.mp4s[i].stem, row=row, arrays={"face": face, "audio": audio}, num_frames=len(face))
        return [make_segment(clip, s, self.spec, n) for n, s in enumerate(self.spec.eval_starts(clip.num_frames))]


def _as_is(item: Any) -> Any:
    return item


def _rate(batches: Any) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = sum(len(b["meta"]["key"]) for b in batches)
    return n, n / (time.perf_counter() - t0)


def _mp4_batches(mp4s: list[Path], spec: Any, batch_size: int, workers: int) -> Any:
    from torch.utils.data import DataLoader

    from pipeline.loading.segments import collate_segments

    pending: list[dict[str, Any]] = []
    for segments in DataLoader(_Mp4Clips(mp4s, spec), batch_size=None, num_workers=workers, collate_fn=_as_is):
        pending += segments
        while len(pending) >= batch_size:
            yield collate_segments(pending[:batch_size])
            del pending[:batch_size]
    if pending:
        yield collate_segments(pending)


def run(args: argparse.Namespace) -> int:
    import torch

    from pipeline.loaders import EvalLoader, SegmentSpec, TrainLoader

    torch.set_num_threads(1)  # the loaders' cost, not intra-op threading, is measured
    spec = SegmentSpec(modalities=MODALITIES, mel=args.mel)
    workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="avdf-bench-loader-") as tmp:
        t0 = time.perf_counter()
        mp4s, shards = _make_data(Path(tmp), args.clips, args.seconds)
        size_mb = sum(p.stat().st_size for p in shards.glob("*.tar")) / 2**20
        print(f"data: {args.clips} clips x {args.seconds:g} s, 224 px face + 16 kHz audio, "
              f"{size_mb:.1f} MiB of shards, built in {time.perf_counter() - t0:.1f}s; "
              f"segments of {spec.num_frames} frames, modalities {'+'.join(MODALITIES)}"
              f"{' + mel ' + args.mel if args.mel else ''}, batch {args.batch_size}")
        print(f"{'workers':>7} {'segments':>8} {'shards eval/s':>14} {'shards train/s':>15} {'mp4 decode/s':>13} "
              f"{'eval/mp4':>9} {'train/mp4':>10}")
        for w in workers:
            n, eval_rate = _rate(EvalLoader(shards, spec, batch_size=args.batch_size, num_workers=w))
            _, train_rate = _rate(TrainLoader(shards, spec, batch_size=args.batch_size, num_workers=w,
                                              segments_per_epoch=n))
            n_mp4, mp4_rate = _rate(_mp4_batches(mp4s, spec, args.batch_size, w))
            assert n_mp4 == n, (n_mp4, n)
            print(f"{w:>7} {n:>8} {eval_rate:>14.1f} {train_rate:>15.1f} {mp4_rate:>13.1f} "
                  f"{eval_rate / mp4_rate:>9.2f} {train_rate / mp4_rate:>10.2f}")
    return 0
