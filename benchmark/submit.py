"""``avdf submit``: validate a predictions file and score it onto the leaderboard (issue #8)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pipeline.errors import NotImplementedYet


@dataclass
class SubmitParams:
    """``submit`` section."""

    name: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", help="predictions file (Parquet or CSV: key, score)")
    parser.add_argument("--protocol", required=True, help="protocol name[@version]")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("avdf submit is not implemented yet (issue #8)")
