"""``avdf ingest``: one adapter per corpus turns its native layout into Clips (issue #4)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pipeline.errors import NotImplementedYet


@dataclass
class IngestParams:
    """``ingest`` section."""

    corpus: str = "studio"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="adapter name (voxceleb2, fakeavceleb, cmdfd, kodf, studio, folder)")
    parser.add_argument("--root", required=True, help="the corpus folder in its native layout")
    parser.add_argument("--out", required=True, help="manifest to write (.parquet)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("avdf ingest is not implemented yet (issue #4)")
