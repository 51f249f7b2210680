"""Face backends compared: detection rate, landmark jitter and speed on real talking clips.

For each backend that can be built here, every clip is decoded at 25 fps and
every frame goes through ``detect``. Figures per backend:

- detect rate: frames with at least one face / frames;
- main track: frames in which the tracked main face was found / frames;
- jitter: high-frequency landmark noise on the rigid points (brows, nose, eyes):
  the distance of each point from its own 5-frame centred moving average,
  normalised by the inter-ocular distance, averaged over points and frames
  (only windows where the face was found in all 5 frames). Smooth head motion
  cancels out; what is left is mostly detector noise (lower is better);
- ms/frame and frames/s of ``detect`` alone (decoding excluded), after one warm-up frame.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# ../shared/media/real_talking beside the checkout (the project's real-media convention).
DEFAULT_CLIPS = Path(__file__).resolve().parents[2].parent / "shared" / "media" / "real_talking"
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm"}
JITTER_WINDOW = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clips", help=f"folder of talking-face videos (default: {DEFAULT_CLIPS} when present)")
    parser.add_argument("--backends", default="mediapipe,dlib,insightface",
                        help="comma-separated backend names (default: %(default)s)")
    parser.add_argument("--max-frames", type=int, default=0, help="frames per clip, 0 = all (default: %(default)s)")
    parser.add_argument("--per-clip", action="store_true", help="also print one row per clip and backend")


@dataclass
class Tally:
    clips: int = 0
    frames: int = 0
    with_face: int = 0
    main_found: int = 0
    detect_s: float = 0.0
    jitter: list[float] = field(default_factory=list)
    worst_clip: tuple[float, str] = (1.0, "")

    def add(self, other: Tally, name: str) -> None:
        self.clips += other.clips
        self.frames += other.frames
        self.with_face += other.with_face
        self.main_found += other.main_found
        self.detect_s += other.detect_s
        self.jitter += other.jitter
        rate = other.main_found / max(other.frames, 1)
        if rate <= self.worst_clip[0]:
            self.worst_clip = (rate, name)

    def row(self, label: str) -> str:
        n = max(self.frames, 1)
        jit = f"{1000 * np.mean(self.jitter):8.1f}" if self.jitter else f"{'-':>8}"
        ms = 1000 * self.detect_s / n
        fps = self.frames / self.detect_s if self.detect_s else 0.0
        return (f"{label:<44} {self.clips:>5} {self.frames:>6} {self.with_face / n:>7.1%} {self.main_found / n:>7.1%} "
                f"{jit} {ms:>8.1f} {fps:>7.1f}")


def rigid_jitter(landmarks: np.ndarray, found: np.ndarray) -> list[float]:
    """Per-frame mean distance of rigid landmarks from their moving average, in inter-ocular distances."""
    from pipeline.faces.base import RIGID, interocular

    half = JITTER_WINDOW // 2
    out = []
    for t in range(half, len(landmarks) - half):
        window = slice(t - half, t + half + 1)
        if not found[window].all():
            continue
        pts = landmarks[window][:, RIGID]
        resid = pts[half] - pts.mean(0)
        out.append(float(np.linalg.norm(resid, axis=-1).mean() / max(interocular(landmarks[t]), 1e-6)))
    return out


def bench_clip(backend: object, clip: Path, max_frames: int) -> Tally:
    from pipeline.faces.track import track_faces
    from pipeline.media import iter_frames, probe

    info = probe(clip)
    detections = []
    tally = Tally(clips=1)
    for i, frame in enumerate(iter_frames(clip, info=info)):
        if max_frames and i >= max_frames:
            break
        if i == 0:
            backend.detect(frame)  # warm-up: first-call graph setup is not per-frame cost
        t0 = time.perf_counter()
        faces = backend.detect(frame)
        tally.detect_s += time.perf_counter() - t0
        detections.append(faces)
        tally.with_face += bool(faces)
    tally.frames = len(detections)
    track = track_faces(detections, (info.video.width, info.video.height))
    tally.main_found = int(track.found.sum())
    if track.main_track is not None:
        tally.jitter = rigid_jitter(track.landmarks, track.found)
    return tally


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import AvdfError
    from pipeline.faces import make_face_backend

    folder = Path(args.clips) if args.clips else DEFAULT_CLIPS
    if not folder.is_dir():
        raise AvdfError(f"clip folder {folder} does not exist; pass --clips DIR")
    clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise AvdfError(f"no videos in {folder}")
    header = (f"{'backend':<44} {'clips':>5} {'frames':>6} {'detect':>7} {'main':>7} "
              f"{'jit‰IOD':>8} {'ms/frame':>8} {'frames/s':>7}")
    print(f"{len(clips)} clips from {folder}" + (f", first {args.max_frames} frames each" if args.max_frames else ""))
    print(header)
    results: dict[str, Tally] = {}
    t_all = time.perf_counter()
    for name in [n.strip() for n in args.backends.split(",") if n.strip()]:
        try:
            t0 = time.perf_counter()
            backend = make_face_backend(name)
            load_s = time.perf_counter() - t0
        except AvdfError as exc:
            print(f"{name:<44} unavailable: {exc}")
            continue
        total = Tally()
        for clip in clips:
            tally = bench_clip(backend, clip, args.max_frames)
            total.add(tally, clip.name)
            if args.per_clip:
                print(tally.row(f"  {name}:{clip.stem[-38:]}"))
        backend.close()
        results[name] = total
        print(total.row(f"{name} (load {load_s:.1f} s)"))
        print(f"{'':<44} worst clip: {total.worst_clip[1]} main-track {total.worst_clip[0]:.1%}")
    if results:
        frames = sum(t.frames for t in results.values())
        print(f"total: {len(results)} backends, {frames} frames, {time.perf_counter() - t_all:.1f} s wall")
        best = max(results, key=lambda n: (round(results[n].main_found / max(results[n].frames, 1), 2),
                                          -np.mean(results[n].jitter or [1.0])))
        print(f"best by main-track detection rate, then jitter: {best}")
    return 0
