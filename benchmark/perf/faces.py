"""Face backends compared: detection rate, landmark jitter and speed on real talking clips, per clip.

By default every clip of ``../shared/media/real_talking`` and ``../shared/media/fake``
goes through two configurations of the default backend: ``before`` (the
whole-frame pass alone, as mediapipe ran until small and dark faces were
handled) and ``default`` (the backend as ``make_face_backend`` builds it now).
Each clip is decoded once at 25 fps and every frame goes through every
configuration's ``detect``. Figures per clip and configuration, then in total:

- detect: frames with at least one face / frames;
- main: frames in which the tracked main face was found / frames (what
  preprocessing's ``min_face_fraction`` is checked against);
- jitter: high-frequency landmark noise on the rigid points (brows, nose, eyes):
  the distance of each point from its own 5-frame centred moving average,
  normalised by the inter-ocular distance, averaged over points and frames
  (only windows where the face was found in all 5 frames, so a configuration that
  finds more frames is measured on more, and harder, windows). Smooth head motion
  cancels out; what is left is mostly detector noise (lower is better);
- jit common: the same, over the windows where every configuration found the face
  (the like-for-like comparison when detection rates differ);
- ms/frame and frames/s of ``detect`` alone (decoding excluded), after one warm-up frame.

A configuration is ``[label=]backend[option=value,...]`` (the brackets literal;
the backend a registered name or ``module:Class``), e.g.
``--configs "mediapipe;dlib;short=mediapipe[model_selection=0]"``; option values
are read as YAML (``true``, ``0.5``, ``auto``).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# ../shared/media beside the checkout (the project's real-media convention).
DEFAULT_MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
DEFAULT_FOLDERS = ("real_talking", "fake")
# The old default (whole frame only: no tiles, no contrast normalisation) against the new one.
DEFAULT_CONFIGS = "before=mediapipe[tiles=false,dark_luma=0];default=mediapipe"
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm"}
JITTER_WINDOW = 5
LABEL_WIDTH = 46


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clips", nargs="+", metavar="PATH",
                        help="videos or folders of videos (default: every clip of "
                             f"{', '.join(str(DEFAULT_MEDIA / f) for f in DEFAULT_FOLDERS)})")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                        help="';'-separated configurations [label=]backend[opt=value,...] (default: %(default)s)")
    parser.add_argument("--backends", help="shorthand: comma-separated backend names with default options "
                                           "(e.g. mediapipe,dlib,insightface); replaces --configs")
    parser.add_argument("--max-frames", type=int, default=0, help="frames per clip, 0 = all (default: %(default)s)")
    parser.add_argument("--totals-only", action="store_true", help="print the totals, not one row per clip")


@dataclass
class Config:
    label: str
    backend: str
    options: dict[str, Any]


def parse_configs(text: str) -> list[Config]:
    """``[label=]backend[opt=value,...]`` specs separated by ';'."""
    import yaml

    from pipeline.errors import ConfigError

    configs = []
    for spec in (s.strip() for s in text.split(";")):
        if not spec:
            continue
        head, bracket, opts = spec.partition("[")
        if bracket and not opts.endswith("]"):
            raise ConfigError(f"face bench: {spec!r} opens '[' without closing it at the end")
        opts = opts[:-1] if bracket else ""
        label, _, name = head.rpartition("=")
        options: dict[str, Any] = {}
        for item in (o.strip() for o in opts.split(",")):
            if not item:
                continue
            key, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"face bench: option {item!r} of {spec!r} is not key=value")
            options[key.strip()] = yaml.safe_load(value)
        configs.append(Config(label.strip() or name.strip(), name.strip(), options))
    if len({c.label for c in configs}) != len(configs):
        raise ConfigError(f"face bench: configuration labels must differ: {[c.label for c in configs]}")
    return configs


@dataclass
class Tally:
    clips: int = 0
    frames: int = 0
    with_face: int = 0
    main_found: int = 0
    detect_s: float = 0.0
    jitter: list[float] = field(default_factory=list)
    jitter_common: list[float] = field(default_factory=list)
    worst_clip: tuple[float, str] = (1.0, "")

    def add(self, other: Tally, name: str) -> None:
        self.clips += other.clips
        self.frames += other.frames
        self.with_face += other.with_face
        self.main_found += other.main_found
        self.detect_s += other.detect_s
        self.jitter += other.jitter
        self.jitter_common += other.jitter_common
        rate = other.main_found / max(other.frames, 1)
        if rate <= self.worst_clip[0]:
            self.worst_clip = (rate, name)

    @property
    def main_rate(self) -> float:
        return self.main_found / max(self.frames, 1)

    @property
    def mean_jitter(self) -> float | None:
        return float(np.mean(self.jitter)) if self.jitter else None

    def row(self, label: str) -> str:
        n = max(self.frames, 1)
        jit = f"{1000 * self.mean_jitter:8.1f}" if self.jitter else f"{'-':>8}"
        common = f"{1000 * np.mean(self.jitter_common):8.1f}" if self.jitter_common else f"{'-':>8}"
        ms = 1000 * self.detect_s / n
        fps = self.frames / self.detect_s if self.detect_s else 0.0
        return (f"{label:<{LABEL_WIDTH}} {self.clips:>5} {self.frames:>6} {self.with_face / n:>7.1%} "
                f"{self.main_rate:>7.1%} {jit} {common} {ms:>8.1f} {fps:>8.1f}")


HEADER = (f"{'clip / configuration':<{LABEL_WIDTH}} {'clips':>5} {'frames':>6} {'detect':>7} {'main':>7} "
          f"{'jit‰IOD':>8} {'common':>8} {'ms/frame':>8} {'frames/s':>8}")


def rigid_jitter(landmarks: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per-frame mean distance of rigid landmarks from their moving average, in inter-ocular
    distances; NaN where the 5-frame window around the frame is not all found."""
    from pipeline.faces.base import RIGID, interocular

    half = JITTER_WINDOW // 2
    out = np.full(len(landmarks), np.nan)
    for t in range(half, len(landmarks) - half):
        window = slice(t - half, t + half + 1)
        if not found[window].all():
            continue
        pts = landmarks[window][:, RIGID]
        resid = pts[half] - pts.mean(0)
        out[t] = float(np.linalg.norm(resid, axis=-1).mean() / max(interocular(landmarks[t]), 1e-6))
    return out


def bench_clip(backends: dict[str, Any], clip: Path, max_frames: int) -> dict[str, Tally]:
    """Decode ``clip`` once; every frame goes through every backend. One Tally per backend label."""
    from pipeline.faces.track import track_faces
    from pipeline.media import iter_frames, probe

    info = probe(clip)
    detections: dict[str, list] = {label: [] for label in backends}
    tallies = {label: Tally(clips=1) for label in backends}
    for i, frame in enumerate(iter_frames(clip, info=info)):
        if max_frames and i >= max_frames:
            break
        for label, backend in backends.items():
            if i == 0:
                backend.detect(frame)  # warm-up: first-call graph setup is not per-frame cost
            t0 = time.perf_counter()
            faces = backend.detect(frame)
            tallies[label].detect_s += time.perf_counter() - t0
            detections[label].append(faces)
            tallies[label].with_face += bool(faces)
    jitters = {}
    for label, tally in tallies.items():
        tally.frames = len(detections[label])
        track = track_faces(detections[label], (info.video.width, info.video.height))
        tally.main_found = int(track.found.sum())
        jitters[label] = rigid_jitter(track.landmarks, track.found)
    common = np.logical_and.reduce([~np.isnan(j) for j in jitters.values()])
    for label, tally in tallies.items():
        tally.jitter = jitters[label][~np.isnan(jitters[label])].tolist()
        tally.jitter_common = jitters[label][common].tolist()
    return tallies


def find_clips(paths: list[str] | None) -> list[Path]:
    from pipeline.errors import AvdfError

    roots = [Path(p) for p in paths] if paths else [DEFAULT_MEDIA / f for f in DEFAULT_FOLDERS]
    clips: list[Path] = []
    for root in roots:
        if root.is_file():
            clips.append(root)
        elif root.is_dir():
            clips += sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        else:
            raise AvdfError(f"{root} does not exist; pass --clips PATH ...")
    if not clips:
        raise AvdfError(f"no videos in {', '.join(map(str, roots))}")
    return clips


def build_backends(configs: list[Config]) -> dict[str, Any]:
    from pipeline.errors import AvdfError
    from pipeline.faces import make_face_backend

    backends = {}
    for config in configs:
        try:
            t0 = time.perf_counter()
            backends[config.label] = make_face_backend(config.backend, **config.options)
            print(f"{config.label}: {config.backend} {config.options or ''} loaded in {time.perf_counter() - t0:.1f} s")
        except AvdfError as exc:
            print(f"{config.label}: unavailable: {exc}")
    return backends


def run(args: argparse.Namespace) -> int:
    clips = find_clips(args.clips)
    configs = parse_configs(args.configs if not args.backends else ";".join(args.backends.split(",")))
    backends = build_backends(configs)
    if not backends:
        return 1
    print(f"{len(clips)} clips" + (f", first {args.max_frames} frames each" if args.max_frames else ""))
    print(HEADER)
    totals = {label: Tally() for label in backends}
    t_all = time.perf_counter()
    for clip in clips:
        tallies = bench_clip(backends, clip, args.max_frames)
        if not args.totals_only:
            print(f"{clip.parent.name}/{clip.name}")
        for label, tally in tallies.items():
            totals[label].add(tally, clip.name)
            if not args.totals_only:
                print(tally.row(f"  {label}"))
    for backend in backends.values():
        backend.close()
    print("total")
    for label, total in totals.items():
        print(total.row(f"  {label}"))
    for label, total in totals.items():
        print(f"  {label}: worst clip {total.worst_clip[1]} (main track in {total.worst_clip[0]:.1%} of frames)")
    frames = sum(t.frames for t in totals.values())
    print(f"{len(totals)} configurations, {frames} frames, {time.perf_counter() - t_all:.1f} s wall")
    best = max(totals, key=lambda n: (round(totals[n].main_rate, 2), -(totals[n].mean_jitter or 1.0)))
    print(f"best by main-track detection rate, then jitter: {best}")
    return 0
