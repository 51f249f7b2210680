"""``avdf probe VIDEO``: print a media file's container and streams as JSON."""
from __future__ import annotations

import argparse

from pipeline.media import probe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="media file")


def run(args: argparse.Namespace) -> int:
    print(probe(args.video).to_json())
    return 0
