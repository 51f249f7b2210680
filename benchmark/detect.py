"""``avdf detect``: P(fake) of one video with a trained detector (issue #8)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pipeline.errors import NotImplementedYet


@dataclass
class DetectParams:
    """``detect`` section."""

    threshold: float = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="an mp4 (or any file ffmpeg reads)")
    parser.add_argument("--detector", required=True, help="registered detector name or module:Class")
    parser.add_argument("--checkpoint", required=True, help="trained checkpoint")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("avdf detect is not implemented yet (issue #8)")
