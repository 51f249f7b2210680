"""``avdf generate``: run a recipe's generators over (target, driving audio) pairs on Ray (issue #5)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from pipeline.errors import NotImplementedYet


@dataclass
class GenerateParams:
    """``generate`` section."""

    recipes: list[str] = field(default_factory=lambda: ["cmdfd", "fakeavceleb"])
    seed: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", choices=["cmdfd", "fakeavceleb"], help="default: every recipe in params.yaml")
    parser.add_argument("--manifest", required=True, help="manifest of real clips")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("avdf generate is not implemented yet (issue #5)")
