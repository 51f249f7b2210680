"""The evaluation loader: every segment of every selected clip, in one fixed order.

Order = clips sorted by key, then segments by start frame, whatever ``num_workers``
is. That is why this loader is map-style over clips rather than a shard stream:
each worker reads one clip's needed members out of its shard (``ClipReader``:
the index's byte span, memory-mapped arrays) and returns all its segments; the DataLoader
hands clips back in index order and the main process re-batches the segments.

``segments_per_clip`` = k keeps k evenly spaced segments of each clip (``spread``), the
same ones every pass: a cheaper, fixed validation set for checkpoint selection.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from pipeline.loading.reader import ClipReader
from pipeline.loading.segments import CorruptSample, SegmentSpec, collate_segments, make_segment
from pipeline.loading.shardset import LoaderStats, ShardSet


def spread(count: int, k: int | None) -> list[int]:
    """Indices of ``k`` of ``count`` items spread evenly (each the middle of its ``count / k`` share):
    the middle one for k = 1; all of them when k is None or at least ``count``."""
    if k is None or k >= count:
        return list(range(count))
    return [(2 * i + 1) * count // (2 * k) for i in range(k)]


class EvalClips(Dataset):
    """Map-style: item ``i`` = the list of evaluation segments of the ``i``-th selected clip (``segments_per_clip``
    of them, spread over the clip, when given)."""

    def __init__(self, shardset: ShardSet, spec: SegmentSpec, rank: int = 0, world_size: int = 1,
                 stats: LoaderStats | None = None, segments_per_clip: int | None = None) -> None:
        super().__init__()
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        if segments_per_clip is not None and segments_per_clip < 1:
            raise ValueError(f"segments_per_clip must be >= 1 (or None: every segment), got {segments_per_clip}")
        self.segments_per_clip = segments_per_clip
        self.shardset = shardset
        self.spec = spec
        # DDP: rank r scores clips r, r + world_size, ...; gather and sort by (key, segment) to merge.
        self.rows = shardset.rows[rank::world_size]
        self.stats = stats or LoaderStats()
        self.reader = ClipReader(shardset.shard_dir)

    def __len__(self) -> int:
        return len(self.rows)

    def starts(self, num_frames: int) -> list[tuple[int, int]]:
        """(segment number, start frame) of the segments scored in a clip of ``num_frames``."""
        starts = self.spec.eval_starts(num_frames)
        return [(n, starts[n]) for n in spread(len(starts), self.segments_per_clip)]

    def num_segments(self) -> int:
        return sum(len(self.starts(r["num_frames"])) for r in self.rows)

    def __getitem__(self, i: int) -> list[dict[str, Any]]:
        row = self.rows[i]
        shard = self.shardset.shard_dir / row["shard"]
        try:
            clip = self.reader.clip(row, self.spec)
        except CorruptSample as exc:
            self.stats.skip_corrupt(f"{row['key']} in {shard}", exc)
            return []
        segments = [make_segment(clip, s, self.spec, n) for n, s in self.starts(clip.num_frames)]
        self.stats.add_segments(len(segments))
        return segments


def _as_is(item: Any) -> Any:
    return item


class EvalLoader:
    """Batches of evaluation segments in the fixed order; ``meta`` groups them back to clips and videos."""

    def __init__(
        self,
        shard_dir: str | Path | ShardSet,
        spec: SegmentSpec | None = None,
        *,
        keys: Any = None,
        batch_size: int = 8,
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
        allow_missing: bool = False,
        segments_per_clip: int | None = None,
    ) -> None:
        self.shardset = shard_dir if isinstance(shard_dir, ShardSet) else ShardSet(shard_dir, keys, allow_missing)
        self.spec = spec or SegmentSpec()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.stats = LoaderStats()
        self.dataset = EvalClips(self.shardset, self.spec, rank, world_size, self.stats, segments_per_clip)

    def __len__(self) -> int:
        """Batches, assuming no corrupt sample."""
        return -(-self.dataset.num_segments() // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from torch.utils.data import DataLoader

        clips = DataLoader(self.dataset, batch_size=None, shuffle=False, num_workers=self.num_workers, collate_fn=_as_is)
        pending: list[dict[str, Any]] = []
        for segments in clips:
            pending.extend(segments)
            while len(pending) >= self.batch_size:
                yield collate_segments(pending[: self.batch_size])
                del pending[: self.batch_size]
        if pending:
            yield collate_segments(pending)
