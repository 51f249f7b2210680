"""Generator throughput: clips/s (and s per second of output) per built-in generator on debug clips."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--generators", nargs="*", help="registered names (default: every built-in)")
    parser.add_argument("--seconds", type=float, default=2.0, help="clip length (default: %(default)s)")
    parser.add_argument("--size", type=int, default=224, help="frame size (default: %(default)s)")
    parser.add_argument("--clips", type=int, default=2, help="clips per generator (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from generators.builtin import BUILTINS
    from generators.registry import GENERATORS
    from generators.synthetic import make_talking_clip

    names = args.generators or sorted(BUILTINS)
    with tempfile.TemporaryDirectory(prefix="avdf-bench-gen-") as tmp:
        d = Path(tmp)
        target = make_talking_clip(d / "t.mp4", args.seconds, args.size, seed=0)
        driving = make_talking_clip(d / "a.mp4", args.seconds, args.size, seed=1, f0=200)
        print(f"{'generator':18s} {'clips/s':>8s} {'s/clip':>8s} {'x realtime':>10s}")
        for name in names:
            gen = GENERATORS.get(name)()
            kw = {"source_video": driving} if gen.kind == "faceswap" else {}
            gen(target, driving, d / f"{name}-warm", **kw)  # model/backend load not counted
            t0 = time.perf_counter()
            for i in range(args.clips):
                gen(target, driving, d / f"{name}-{i}", **kw)
            dt = (time.perf_counter() - t0) / args.clips
            print(f"{name:18s} {1 / dt:8.3f} {dt:8.2f} {args.seconds / dt:10.3f}")
    return 0
