"""The training loader: shuffled, multi-worker, resampled epochs of random segments.

Each worker (and DDP rank) plans its share of the epoch from the index alone:
it draws clips (uniformly, or class-balanced), ``segments_per_clip`` random
start frames per drawn clip, and shuffles the plan; then it reads exactly those
windows through ``ClipReader`` (memory-mapped members, only the modalities the
spec asks for). An epoch is a fixed number of segments, split over ranks ×
workers; its randomness is a function of (seed, epoch, rank, worker), so a
resumed run replays the same epochs. A corrupt clip is skipped, counted, and
not drawn again in that epoch.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset

from pipeline.loading.format import ShardError
from pipeline.loading.reader import ClipReader
from pipeline.loading.segments import CorruptSample, SegmentSpec, collate_segments, make_segment
from pipeline.loading.shardset import LoaderStats, ShardSet


class TrainSegments(IterableDataset):
    """IterableDataset of training segments (see module docstring). ``epoch`` selects the randomness."""

    def __init__(
        self,
        shardset: ShardSet,
        spec: SegmentSpec,
        segments_per_epoch: int,
        *,
        seed: int = 0,
        balanced: bool = False,
        segments_per_clip: int = 1,
        rank: int = 0,
        world_size: int = 1,
        stats: LoaderStats | None = None,
    ) -> None:
        super().__init__()
        if segments_per_epoch < 1 or segments_per_clip < 1:
            raise ValueError("segments_per_epoch and segments_per_clip must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.shardset = shardset
        self.spec = spec
        self.segments_per_epoch = segments_per_epoch
        self.seed = seed
        self.segments_per_clip = segments_per_clip
        self.rank = rank
        self.world_size = world_size
        self.stats = stats or LoaderStats()
        self.epoch = 0
        counts = shardset.label_counts()
        # Class-balanced: each class is drawn equally often, whatever its number of clips.
        self.weights = [
            1.0 / counts[shardset.label_of[r["key"]]] if balanced else 1.0 for r in shardset.rows
        ]

    def _stream(self) -> tuple[int, int]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        return self.rank * workers + worker, self.world_size * workers

    def quota(self, stream: int, streams: int) -> int:
        n = self.segments_per_epoch
        return n // streams + (stream < n % streams)

    def _plan(self, rng: random.Random, wanted: int, bad: set[int]) -> list[tuple[int, int]]:
        """(clip index, start frame) pairs for ``wanted`` segments, shuffled; bad clips are never drawn."""
        weights = [0.0 if i in bad else w for i, w in enumerate(self.weights)]
        visits = -(-wanted // self.segments_per_clip)
        drawn = rng.choices(range(len(weights)), cum_weights=list(accumulate(weights)), k=visits)
        rows = self.shardset.rows
        plan = [(i, rng.randint(0, self.spec.max_start(rows[i]["num_frames"])))
                for i in drawn for _ in range(self.segments_per_clip)][:wanted]
        rng.shuffle(plan)
        return plan

    def __iter__(self) -> Iterator[dict[str, Any]]:
        stream, streams = self._stream()
        rng = random.Random(f"avdf-train/{self.seed}/{self.epoch}/{stream}/{streams}")
        reader = ClipReader(self.shardset.shard_dir)
        rows = self.shardset.rows
        quota = self.quota(stream, streams)
        produced, bad = 0, set()
        while produced < quota:
            if len(bad) == len(rows):
                raise ShardError(
                    f"{self.shardset.shard_dir}: every selected clip gave no usable sample "
                    f"({len(bad)} corrupt); the selected shards look unreadable"
                )
            for i, start in self._plan(rng, quota - produced, bad):
                if i in bad:
                    continue  # found corrupt earlier in this plan: replanned below
                try:
                    clip = reader.clip(rows[i], self.spec)
                except CorruptSample as exc:
                    bad.add(i)
                    self.stats.skip_corrupt(f"{rows[i]['key']} in {self.shardset.shard_dir / rows[i]['shard']}", exc)
                    continue
                produced += 1
                self.stats.add_segments(1)
                yield make_segment(clip, start, self.spec, segment=-1)


class TrainLoader:
    """Batches of training segments; each ``iter()`` is the next epoch (``set_epoch`` to resume).

    ``segments_per_epoch`` defaults to the number of non-overlapping segments of
    the selected clips (one pass over their content, resampled).
    """

    def __init__(
        self,
        shard_dir: str | Path | ShardSet,
        spec: SegmentSpec | None = None,
        *,
        keys: Any = None,
        batch_size: int = 8,
        segments_per_epoch: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        balanced: bool = False,
        segments_per_clip: int = 1,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        allow_missing: bool = False,
    ) -> None:
        self.shardset = shard_dir if isinstance(shard_dir, ShardSet) else ShardSet(shard_dir, keys, allow_missing)
        self.spec = spec or SegmentSpec()
        if segments_per_epoch is None:
            segments_per_epoch = sum(len(self.spec.eval_starts(r["num_frames"])) for r in self.shardset.rows)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.drop_last = drop_last
        self.stats = LoaderStats()
        self.dataset = TrainSegments(
            self.shardset, self.spec, segments_per_epoch, seed=seed, balanced=balanced,
            segments_per_clip=segments_per_clip, rank=rank,
            world_size=world_size, stats=self.stats,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from torch.utils.data import DataLoader

        self.dataset.epoch = self.epoch
        self.epoch += 1
        loader = DataLoader(
            self.dataset, batch_size=self.batch_size, num_workers=self.num_workers,
            collate_fn=collate_segments, drop_last=self.drop_last,
        )
        return iter(loader)

    def __len__(self) -> int:
        """Batches per epoch (batches are formed inside each worker, so each worker's last may be short)."""
        d = self.dataset
        workers = max(1, self.num_workers)
        quotas = [d.quota(d.rank * workers + w, d.world_size * workers) for w in range(workers)]
        per = (lambda q: q // self.batch_size) if self.drop_last else (lambda q: -(-q // self.batch_size))
        return sum(per(q) for q in quotas)
