"""Generators: CPU-seconds per clip of each built-in generator, per fake of each recipe, and 1 -> N Ray
worker scaling of the generate stage.

Three parts (each can be skipped):

- **throughput**: each generator, in this process, forging debug talking
  clips (``generators.synthetic``) of ``--size`` px and ``--seconds``; the
  first call (face backend start-up) is not counted. Per clip: seconds, CPU
  seconds (ffmpeg's included) and milliseconds per output frame.
- **recipes**: each recipe of ``params.yaml``'s ``generate`` section planned over
  ``--manifest`` (e.g. ``data/studio/manifest.parquet``; default: a debug corpus)
  and run task by task in this process through the stage's own worker, with the
  cache a run shares (``generators.cache``): the start-up before the first task
  (the plan's clear-speech check) and CPU seconds per fake, per recipe and per
  generator chain. No Ray, so the figures are the work itself.
- **scaling**: the ``cmdfd`` recipe over a small debug corpus
  (``--identities`` x 2 utterances -> identities x 4 methods x 2 fakes), run
  by the real Ray stage in a fresh subprocess per worker count (a local Ray
  with ``num_cpus`` = 1, then 2, ...), so each run pays its own Ray and worker
  start-up, as ``avdf generate`` does.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmark.perf.studio import cpu_seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--generators", nargs="*", help="registered names (default: every built-in)")
    parser.add_argument("--seconds", type=float, default=2.0, help="clip length (default: %(default)s)")
    parser.add_argument("--size", type=int, default=224, help="frame size (default: %(default)s)")
    parser.add_argument("--clips", type=int, default=2, help="clips per generator (default: %(default)s)")
    parser.add_argument("--manifest", type=Path,
                        help="real clips for the recipes part (default: a debug corpus of --identities)")
    parser.add_argument("--max-fakes", type=int, default=None,
                        help="recipes part: at most this many fakes per recipe, whole targets first "
                             "(default: all)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="Ray worker counts for the scaling run (default: %(default)s)")
    parser.add_argument("--identities", type=int, default=3,
                        help="identities of the debug corpus (default: %(default)s)")
    parser.add_argument("--skip-throughput", action="store_true", help="skip the per-generator part")
    parser.add_argument("--skip-recipes", action="store_true", help="skip the per-recipe part")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the Ray scaling part")


def _load() -> str:
    p = Path("/proc/loadavg")
    return p.read_text().split()[0] if p.exists() else "?"


def throughput(names: list[str], seconds: float, size: int, clips: int, tmp: Path) -> list[dict]:
    from generators.registry import GENERATORS
    from generators.synthetic import make_talking_clip

    target = make_talking_clip(tmp / "t.mp4", seconds, size, seed=0)
    driving = make_talking_clip(tmp / "a.mp4", seconds, size, seed=1, f0=200)
    frames = round(seconds * 25)
    rows = []
    print(f"{'generator':18s} {'clips/s':>8s} {'s/clip':>8s} {'CPU-s/clip':>10s} {'ms/frame':>8s} {'x realtime':>10s}")
    for name in names:
        gen = GENERATORS.get(name)()
        kw = {"source_video": driving} if gen.kind == "faceswap" else {}
        gen(target, driving, tmp / f"{name}-warm", **kw)  # backend start-up not counted
        t0, c0 = time.perf_counter(), cpu_seconds()
        for i in range(clips):
            gen(target, driving, tmp / f"{name}-{i}", **kw)
        dt = (time.perf_counter() - t0) / clips
        cpu = (cpu_seconds() - c0) / clips
        rows.append({"generator": name, "clips_per_s": 1 / dt, "s_per_clip": dt, "cpu_s_per_clip": cpu,
                     "ms_per_frame": 1e3 * cpu / frames, "x_realtime": seconds / dt})
        print(f"{name:18s} {1 / dt:8.3f} {dt:8.2f} {cpu:10.2f} {1e3 * cpu / frames:8.1f} {seconds / dt:10.3f}",
              flush=True)
    return rows


def recipes(manifest: Path, max_fakes: int | None, tmp: Path) -> list[dict]:
    """CPU seconds per fake of each recipe in params.yaml, through the stage's worker and cache."""
    from generators.cache import StageCache, cache_dir
    from generators.stage import GenerateParams, plan
    from generators.worker import GenerateWorker
    from pipeline.config import load_section
    from pipeline.manifest import read_clips

    params: GenerateParams = load_section("generate", "params.yaml" if Path("params.yaml").exists() else None)
    clips = read_clips(manifest)
    out = tmp / "recipes"
    t0, c0 = time.perf_counter(), cpu_seconds()
    planned = {r: plan(r, clips, manifest.resolve().parent, params, StageCache(cache_dir(out))) for r in params.recipes}
    print(f"\nrecipes over {manifest} ({len(clips)} clips), in this process with the run's cache")
    print(f"start-up: planning (clear-speech check of every real clip) {time.perf_counter() - t0:.1f} s, "
          f"{cpu_seconds() - c0:.1f} CPU-s")
    worker = GenerateWorker(params.generator_options, params.face_backend, params.seed)
    rows = []
    for recipe, tasks in planned.items():
        per_chain: dict[str, list[float]] = defaultdict(list)
        for task in tasks[:max_fakes]:
            c0 = cpu_seconds()
            worker(task.to_item(), out / recipe)
            per_chain["+".join(s.generator for s in task.steps)].append(cpu_seconds() - c0)
        spent = [c for v in per_chain.values() for c in v]
        rows.append({"recipe": recipe, "fakes": len(spent), "cpu_s_per_fake": sum(spent) / max(len(spent), 1),
                     "per_chain": {k: sum(v) / len(v) for k, v in per_chain.items()}})
        chains = ", ".join(f"{k} {sum(v) / len(v):.2f} (x{len(v)})" for k, v in per_chain.items())
        print(f"{recipe}: {len(spent)} fakes, {rows[-1]['cpu_s_per_fake']:.2f} CPU-s per fake "
              f"(ffmpeg's CPU included; the first tasks also load the face backend and the TTS model): {chains}",
              flush=True)
    return rows


def scaling_corpus(root: Path, identities: int, seconds: float, size: int) -> Path:
    from generators.synthetic import make_talking_clip
    from pipeline.clip import Clip
    from pipeline.manifest import write_manifest

    clips = []
    for i in range(identities):
        for u in range(2):
            rel = f"id{i}/u{u}.mp4"
            (root / f"id{i}").mkdir(parents=True, exist_ok=True)
            make_talking_clip(root / rel, seconds=seconds, size=size, seed=10 * i + u, f0=100 + 30 * i)
            clips.append(Clip(key=f"bench/id{i}/u{u}", corpus="bench", identity=f"id{i}", video_id=f"id{i}/v{u}",
                              path=rel))
    write_manifest(clips, root / "manifest.parquet")
    return root / "manifest.parquet"


def _one_scaling_run(manifest: Path, out: Path, workers: int) -> dict:
    """Body of the fresh subprocess: a local Ray with ``workers`` CPUs runs the cmdfd stage."""
    from generators.stage import GenerateParams, generate_recipe
    from pipeline.raycluster import RayParams, init_ray

    t0 = time.perf_counter()
    init_ray(num_cpus=workers, object_store_mb=256)
    ray_s = time.perf_counter() - t0
    params = GenerateParams(recipes=["cmdfd"], min_voiced_fraction=0.0)
    t1 = time.perf_counter()
    fakes, failures, computed, _ = generate_recipe("cmdfd", manifest, out, params,
                                                    RayParams(num_cpus=workers, object_store_mb=256), progress=False)
    stage_s = time.perf_counter() - t1
    return {"workers": workers, "ray_init_s": ray_s, "stage_s": stage_s, "fakes": len(fakes),
            "failures": len(failures), "computed": computed}


def scaling(worker_counts: list[int], manifest: Path, identities: int, seconds: float, size: int,
            tmp: Path) -> list[dict]:
    rows = []
    print(f"\ncmdfd stage, {identities} identities x 2 utterances, {seconds:g} s clips at {size} px "
          f"(each run in a fresh process with its own local Ray)")
    print(f"{'workers':>7s} {'fakes':>5s} {'stage s':>8s} {'clips/s':>8s} {'speed-up':>8s} {'ray init s':>10s}")
    for n in worker_counts:
        out = tmp / f"out-{n}"  # fresh: nothing up to date
        proc = subprocess.run([sys.executable, "-m", "benchmark.perf.generators", "--scaling-run", str(manifest),
                               str(out), str(n)], capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            print(f"{n:7d} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
            return rows
        row = json.loads(lines[-1])
        row["clips_per_s"] = row["computed"] / row["stage_s"]
        rows.append(row)
        speedup = rows[0]["stage_s"] / row["stage_s"]
        print(f"{n:7d} {row['fakes']:5d} {row['stage_s']:8.1f} {row['clips_per_s']:8.3f} {speedup:8.2f} "
              f"{row['ray_init_s']:10.1f}", flush=True)
    return rows


def run(args: argparse.Namespace) -> int:
    from generators.builtin import BUILTINS

    print(f"load average at start: {_load()}")
    with tempfile.TemporaryDirectory(prefix="avdf-bench-gen-") as tmp:
        d = Path(tmp)
        if not args.skip_throughput:
            throughput(args.generators or sorted(BUILTINS), args.seconds, args.size, args.clips, d)
        debug = None if args.skip_recipes and args.skip_scaling else (
            scaling_corpus(d / "corpus", args.identities, args.seconds, args.size))
        if not args.skip_recipes:
            recipes(args.manifest or debug, args.max_fakes, d)
        if not args.skip_scaling:
            scaling(args.workers, debug, args.identities, args.seconds, args.size, d)
    print(f"load average at end: {_load()}")
    return 0


if __name__ == "__main__":
    # Internal entry of the scaling part: python -m benchmark.perf.generators --scaling-run MANIFEST OUT WORKERS
    if len(sys.argv) == 5 and sys.argv[1] == "--scaling-run":
        print(json.dumps(_one_scaling_run(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))))
    else:
        sys.exit("usage: avdf bench generators [options]")
