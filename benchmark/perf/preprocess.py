"""Preprocessing throughput: the Ray stage with 1 vs 2 workers, and its cost over decoding alone."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmark.perf.decode import _collect, decode_clip
from pipeline.clip import Clip, safe_id
from pipeline.manifest import write_manifest

DEFAULT_CLIPS = Path(__file__).resolve().parents[2].parent / "shared" / "media" / "real_talking"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clips", nargs="*", help=f"videos or folders (default: {DEFAULT_CLIPS} when present)")
    parser.add_argument("--limit", type=int, default=8, help="at most this many clips (default: %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray CPU counts to compare")


def _manifest(clips: list[Path], folder: Path) -> Path:
    """A manifest of the clips, linked into ``folder`` (manifest paths are relative to it)."""
    rows = []
    for clip in clips:
        cid = safe_id(clip.stem)
        (folder / f"{cid}{clip.suffix}").symlink_to(clip.resolve())
        rows.append(Clip(key=f"bench/{cid}", corpus="bench", identity=cid, video_id=cid, path=f"{cid}{clip.suffix}"))
    write_manifest(rows, folder / "manifest.parquet")
    return folder / "manifest.parquet"


def _run_stage(manifest: Path, out: Path, workers: int, params_path: Path) -> float:
    """`avdf preprocess` in a fresh process (a fresh local Ray with ``workers`` CPUs)."""
    params = yaml.safe_load(params_path.read_text()) if params_path.exists() else {}
    params.setdefault("ray", {})["num_cpus"] = workers
    tmp_params = out.parent / f"params-{workers}.yaml"
    tmp_params.write_text(yaml.safe_dump(params))
    avdf = Path(sys.executable).parent / "avdf"
    t0 = time.perf_counter()
    subprocess.run([str(avdf), "--params", str(tmp_params), "preprocess", "--manifest", str(manifest), "--out",
                    str(out)], check=True, env={**os.environ, "RAY_DEDUP_LOGS": "1"}, capture_output=True)
    return time.perf_counter() - t0


def run(args: argparse.Namespace) -> int:
    sources = args.clips or ([str(DEFAULT_CLIPS)] if DEFAULT_CLIPS.is_dir() else [])
    if not sources:
        print("bench preprocess: no clips given and the default real clips are absent", file=sys.stderr)
        return 2
    clips = _collect(sources)[: args.limit]
    frames = 0
    t0 = time.perf_counter()
    for clip in clips:
        frames += decode_clip(clip)
    decode_s = time.perf_counter() - t0
    print(f"decode only: {len(clips)} clips, {frames} frames in {decode_s:.1f} s ({frames / decode_s:.1f} frames/s)")
    with tempfile.TemporaryDirectory(prefix="avdf-bench-pre-") as tmp:
        manifest = _manifest(clips, Path(tmp))
        seconds = {}
        for workers in args.workers:
            s = _run_stage(manifest, Path(tmp) / f"out-{workers}", workers, Path(args.params))
            seconds[workers] = s
            print(f"preprocess, {workers} Ray worker(s): {s:.1f} s wall (incl. start-up), "
                  f"{len(clips) / s:.2f} clips/s, {frames / s:.1f} frames/s, {s / decode_s:.1f}x decode-only")
    first, last = args.workers[0], args.workers[-1]
    print(f"summary: {len(clips)} clips, {frames} frames; scaling {first} -> {last} workers: "
          f"{seconds[first] / seconds[last]:.2f}x; preprocess / decode-only: {seconds[last] / decode_s:.1f}x")
    return 0
