"""``avdf evaluate``: scores and metrics of a detector on a protocol's test split (issue #8)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pipeline.errors import NotImplementedYet


@dataclass
class EvaluateParams:
    """``evaluate`` section."""

    threshold: float = 0.5
    bootstrap: int = 1000
    seed: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", required=True, help="registered detector name or module:Class")
    parser.add_argument("--protocol", required=True, help="protocol name")
    parser.add_argument("--checkpoint", help="trained checkpoint")
    parser.add_argument("--data", required=True, help="shard folder")
    parser.add_argument("--out", required=True, help="output folder (scores.parquet, metrics.json)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("avdf evaluate is not implemented yet (issue #8)")
