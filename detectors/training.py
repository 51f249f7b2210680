"""``avdf train``: the one training loop for every detector (issue #6)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pipeline.errors import NotImplementedYet


@dataclass
class TrainParams:
    """``train`` section."""

    epochs: int = 15
    batch_size: int = 8
    seed: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("detector", help="registered detector name or module:Class")
    parser.add_argument("--protocol", required=True, help="protocol name")
    parser.add_argument("--data", required=True, help="shard folder")
    parser.add_argument("--out", required=True, help="output folder (checkpoints, metrics)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("avdf train is not implemented yet (issue #6)")
