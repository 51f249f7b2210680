"""``avdf bench NAME``: speed and memory figures, printed (never asserted in tests)."""
from __future__ import annotations

import argparse
import importlib

# benchmark name -> module exposing add_arguments(parser) and run(args) -> int
BENCHES: dict[str, str] = {
    "decode": "benchmark.perf.decode",
    "studio": "benchmark.perf.studio",
    "backbones": "benchmark.perf.backbones",
    "faces": "benchmark.perf.faces",
    "detectors": "benchmark.perf.detectors",
    "generators": "benchmark.perf.generators",
    "loader": "benchmark.perf.loader",
    "preprocess": "benchmark.perf.preprocess",
    "detect": "benchmark.perf.detect",
    "train": "benchmark.perf.train",
    "dag": "benchmark.perf.dag",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name, module in BENCHES.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=mod.__doc__.splitlines()[0] if mod.__doc__ else name)
        p.set_defaults(_bench_module=module)
        mod.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._bench_module).run(args) or 0)
