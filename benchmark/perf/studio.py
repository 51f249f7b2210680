"""Studio corpus generation: clips/s, seconds per minute of video, peak memory (workers included)."""
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


def _cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(args: argparse.Namespace) -> int:
    from pipeline.studio import build_studio

    with tempfile.TemporaryDirectory(prefix="avdf-bench-studio-") as tmp:
        out = args.out or Path(tmp) / "studio"
        cpu0 = _cpu_seconds()
        with measure() as m:
            table = build_studio(out, args.identities, args.utterances, args.seed, workers=args.workers)
        cpu = _cpu_seconds() - cpu0
        # ru_maxrss of children is the largest single worker (or ffmpeg) process, in KiB.
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    minutes = sum(table.column("duration_s").to_pylist()) / 60
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(
        f"summary: {table.num_rows} clips, {minutes:.2f} min of video, {args.workers} workers: "
        f"{m.seconds:.1f} s wall, {table.num_rows / m.seconds:.2f} clips/s, "
        f"{m.seconds / max(minutes, 1e-9):.1f} s per minute of video, {cpu:.1f} CPU-s "
        f"({cpu / max(minutes, 1e-9):.1f} CPU-s per minute of video), "
        f"peak RSS main {m.peak_rss_mb:.0f} MiB, largest worker {child_peak:.0f} MiB, load avg {load}"
    )
    return 0
