"""Studio corpus generation: clips/s, CPU-seconds per clip and per minute of video, peak memory
(workers included), then where a clip's CPU time goes (speech, face renderer, frames, mp4 write),
measured on a few clips rendered in this process."""
from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

from benchmark.perf.measure import measure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--identities", type=int, default=20, help="(default: %(default)s)")
    parser.add_argument("--utterances", type=int, default=3, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="keep the corpus here (default: a temporary folder)")
    parser.add_argument("--sample", type=int, default=6,
                        help="clips rendered again in this process for the per-phase figures; 0: none "
                             "(default: %(default)s)")


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (worker processes, ffmpeg)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def phases(identities: int, utterances: int, seed: int, sample: int, tmp: Path) -> dict[str, float]:
    """CPU seconds per phase of the first ``sample`` clips (whole identity-sessions, as a worker gets
    them), rendered in this process after one warm-up clip (the TTS model's loading not counted)."""
    from pipeline.studio import build
    from pipeline.studio.plan import plan_clips

    specs = plan_clips(identities, utterances, seed)
    build.render_clip(specs[-1], str(tmp / "warm"), "bench")
    build._renderers.clear()
    timings = {"speech": 0.0, "renderer": 0.0, "frames": 0.0, "write": 0.0, "num_frames": 0}
    last = [cpu_seconds()]

    def lap(phase: str) -> None:
        now = cpu_seconds()
        timings[phase] += now - last[0]
        last[0] = now

    picked = specs[:sample]
    for spec in picked:
        last[0] = cpu_seconds()
        timings["num_frames"] += build.render_clip(spec, str(tmp / "sample"), "bench", lap=lap)["num_frames"]
    timings["clips"] = len(picked)
    timings["renderers"] = len({(s.identity.index, s.session) for s in picked})
    return timings


def run(args: argparse.Namespace) -> int:
    from pipeline.studio import build_studio

    with tempfile.TemporaryDirectory(prefix="avdf-bench-studio-") as tmp:
        out = args.out or Path(tmp) / "studio"
        cpu0 = cpu_seconds()
        with measure() as m:
            table = build_studio(out, args.identities, args.utterances, args.seed, workers=args.workers)
        cpu = cpu_seconds() - cpu0
        # ru_maxrss of children is the largest single worker (or ffmpeg) process, in KiB.
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        t = phases(args.identities, args.utterances, args.seed, args.sample, Path(tmp)) if args.sample > 0 else None
    minutes = sum(table.column("duration_s").to_pylist()) / 60
    frames = sum(table.column("num_frames").to_pylist())
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(
        f"summary: {table.num_rows} clips, {minutes:.2f} min of video, {args.workers} workers: "
        f"{m.seconds:.1f} s wall, {table.num_rows / m.seconds:.2f} clips/s, "
        f"{m.seconds / max(minutes, 1e-9):.1f} s per minute of video, {cpu:.1f} CPU-s "
        f"({cpu / max(table.num_rows, 1):.2f} CPU-s per clip of {frames / max(table.num_rows, 1):.0f} frames, "
        f"{cpu / max(minutes, 1e-9):.1f} per minute of video; workers' start-up included), "
        f"peak RSS main {m.peak_rss_mb:.0f} MiB, largest worker {child_peak:.0f} MiB, load avg {load}"
    )
    if t is not None:
        n = t["clips"]
        total = sum(t[k] for k in ("speech", "renderer", "frames", "write"))
        print(
            f"per clip ({n} clips in this process, {t['num_frames'] / n:.0f} frames each): {total / n:.2f} CPU-s = "
            f"speech {t['speech'] / n:.2f} (TTS, voice, mouth track) + "
            f"face renderer {t['renderer'] / n:.2f} ({t['renderer'] / t['renderers']:.2f} per identity-session) + "
            f"frames {t['frames'] / n:.2f} ({1e3 * t['frames'] / t['num_frames']:.2f} ms/frame) + "
            f"mp4 write {t['write'] / n:.2f} (ffmpeg included)"
        )
    return 0
