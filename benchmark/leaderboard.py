"""``avdf leaderboard``: merge metrics into leaderboard.md / .csv / .html (issue #8)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pipeline.errors import NotImplementedYet


@dataclass
class LeaderboardParams:
    """``leaderboard`` section."""

    title: str = "avdf leaderboard"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("metrics", nargs="+", help="metrics.json files or folders holding them")
    parser.add_argument("--out", required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("avdf leaderboard is not implemented yet (issue #8)")
