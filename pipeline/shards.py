"""``avdf shard``: WebDataset shards of preprocessed clips plus a Parquet index (issue #6)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pipeline.errors import NotImplementedYet


@dataclass
class ShardParams:
    """``shard`` section."""

    max_shard_mb: int = 256
    max_samples_per_shard: int = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="preprocessed clip manifest")
    parser.add_argument("--out", required=True, help="shard folder")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("avdf shard is not implemented yet (issue #6)")
