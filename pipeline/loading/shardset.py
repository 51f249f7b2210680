"""A subset of a shard folder selected by keys, and the loaders' shared skip counters.

Selecting a protocol's split never rewrites shards: the index says which shards
hold wanted keys (only those are opened) and samples are filtered by key.
"""
from __future__ import annotations

import logging
import multiprocessing
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.loading.format import ShardError, read_index

log = logging.getLogger(__name__)


class LoaderStats:
    """Counts shared with DataLoader worker processes (process-shared integers)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context()
        self._corrupt = ctx.Value("q", 0)
        self._segments = ctx.Value("q", 0)

    @property
    def corrupt(self) -> int:
        """Skips of a sample whose member (``.npy``, ``.json``) or tar data was unreadable, since the
        loader was made (resampled training may meet one bad sample several times; ``reset()`` restarts)."""
        return int(self._corrupt.value)

    @property
    def segments(self) -> int:
        """Segments produced so far (all workers)."""
        return int(self._segments.value)

    def skip_corrupt(self, what: str, error: object) -> None:
        with self._corrupt.get_lock():
            self._corrupt.value += 1
        log.warning("skipping corrupt shard sample %s: %s", what, error)

    def add_segments(self, n: int) -> None:
        with self._segments.get_lock():
            self._segments.value += n

    def reset(self) -> None:
        for v in (self._corrupt, self._segments):
            with v.get_lock():
                v.value = 0

    def __repr__(self) -> str:
        return f"LoaderStats(corrupt={self.corrupt}, segments={self.segments})"


class ShardSet:
    """The index rows of ``shard_dir`` whose key is in ``keys`` (all when None), sorted by key.

    Keys missing from the index are an error (a protocol naming clips the shards lack
    would silently change a test set) unless ``allow_missing``; then they are logged
    and listed in ``missing_keys``. Every shard that holds a wanted key must exist.
    """

    def __init__(self, shard_dir: str | Path, keys: Iterable[str] | None = None, allow_missing: bool = False) -> None:
        self.shard_dir = Path(shard_dir)
        table = read_index(self.shard_dir)
        rows = table.to_pylist()
        self.missing_keys: list[str] = []
        if keys is not None:
            wanted = set(keys)
            rows = [r for r in rows if r["key"] in wanted]
            self.missing_keys = sorted(wanted - {r["key"] for r in rows})
            if self.missing_keys:
                msg = (f"{len(self.missing_keys)} of {len(wanted)} requested key(s) are not in "
                       f"{self.shard_dir / 'index.parquet'}, e.g. {self.missing_keys[:3]}")
                if not allow_missing:
                    raise ShardError(msg + " (failed in preprocessing or sharding? see failures.parquet)")
                log.warning("%s; loading the others", msg)
        if not rows:
            raise ShardError(f"{self.shard_dir}: no clip selected (the index is empty or no requested key is in it)")
        self.rows: list[dict[str, Any]] = sorted(rows, key=lambda r: r["key"])
        self.keys = frozenset(r["key"] for r in self.rows)
        self.label_of = {r["key"]: int(r["label"]) for r in self.rows}
        per_shard = Counter(r["shard"] for r in self.rows)
        self.shards = sorted(per_shard)
        self.clips_per_shard = [per_shard[s] for s in self.shards]
        for name in self.shards:
            if not (self.shard_dir / name).is_file():
                raise ShardError(f"{self.shard_dir / name}: shard file named by the index is missing")

    def __len__(self) -> int:
        return len(self.rows)

    def urls(self) -> list[str]:
        return [str(self.shard_dir / s) for s in self.shards]

    def label_counts(self) -> dict[int, int]:
        return dict(sorted(Counter(self.label_of.values()).items()))
