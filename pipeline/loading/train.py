"""The training loader: shuffled, multi-worker, resampled epochs of random segments.

Each worker (and DDP rank) streams shards drawn uniformly at random (a visit
yields every wanted clip of the shard, so every clip is equally likely), reads only the wanted
keys' members, cuts random segments and passes them through a shuffle buffer.
An epoch is a fixed number of segments, split over ranks × workers; its
randomness is a function of (seed, epoch, rank, worker), so a resumed run
replays the same epochs.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset

from pipeline.loading.format import ShardError
from pipeline.loading.segments import CorruptSample, SegmentSpec, collate_segments, decode_clip, make_segment
from pipeline.loading.shardset import LoaderStats, ShardSet

class _SelectMembers:
    """WebDataset ``select_files``: only wanted keys' needed members are read from a tar."""

    def __init__(self, keys: frozenset[str], suffixes: set[str]) -> None:
        self.keys = keys
        self.suffixes = suffixes

    def __call__(self, fname: str) -> bool:
        from webdataset.tariterators import base_plus_ext

        key, suffix = base_plus_ext(fname)
        return key in self.keys and suffix in self.suffixes


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
        shuffle_buffer: int = 64,
        rank: int = 0,
        world_size: int = 1,
        stats: LoaderStats | None = None,
    ) -> None:
        super().__init__()
        if segments_per_epoch < 1 or segments_per_clip < 1 or shuffle_buffer < 1:
            raise ValueError("segments_per_epoch, segments_per_clip and shuffle_buffer must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.shardset = shardset
        self.spec = spec
        self.segments_per_epoch = segments_per_epoch
        self.seed = seed
        self.segments_per_clip = segments_per_clip
        self.shuffle_buffer = shuffle_buffer
        self.rank = rank
        self.world_size = world_size
        self.stats = stats or LoaderStats()
        self.epoch = 0
        counts = shardset.label_counts()
        # Class-balanced: each class contributes the same expected number of segments.
        self.class_weight = (
            {label: len(shardset) / (len(counts) * n) for label, n in counts.items()} if balanced else None
        )

    def _stream(self) -> tuple[int, int]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        return self.rank * workers + worker, self.world_size * workers

    def quota(self, stream: int, streams: int) -> int:
        n = self.segments_per_epoch
        return n // streams + (stream < n % streams)

    def _shard_urls(self, rng: random.Random, guard: dict[str, int]) -> Iterator[dict[str, str]]:
        urls = self.shardset.urls()
        # Every draw that produces no segment counts; many in a row means nothing is readable.
        limit = 3 * len(urls) + 10
        while True:
            guard["draws_without_segment"] += 1
            if guard["draws_without_segment"] > limit:
                raise ShardError(
                    f"{self.shardset.shard_dir}: {limit} shard reads in a row gave no usable sample "
                    f"({self.stats.corrupt} corrupt so far); the selected shards look unreadable"
                )
            yield {"url": rng.choice(urls)}

    def _handler(self, exn: Exception) -> bool:
        self.stats.skip_corrupt("(tar stream)", exn)
        return True

    def _segments(self, samples: Iterator[dict[str, Any]], rng: random.Random, guard: dict[str, int]) -> Iterator[dict]:
        for sample in samples:
            key = sample["__key__"]
            count = self.segments_per_clip
            if self.class_weight is not None:
                expected = count * self.class_weight[self.shardset.label_of[key]]
                count = int(expected) + (rng.random() < expected - int(expected))
            if count == 0:
                continue  # decided before decoding: skipped majority-class clips cost no decode
            try:
                clip = decode_clip(sample, self.spec)
            except CorruptSample as exc:
                self.stats.skip_corrupt(f"{key} in {sample.get('__url__')}", exc)
                continue
            for _ in range(count):
                start = rng.randint(0, self.spec.max_start(clip.num_frames))
                guard["draws_without_segment"] = 0
                yield make_segment(clip, start, self.spec, segment=-1)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import webdataset as wds

        stream, streams = self._stream()
        rng = random.Random(f"avdf-train/{self.seed}/{self.epoch}/{stream}/{streams}")
        guard = {"draws_without_segment": 0}
        suffixes = {"json"} | {f"{n}.npy" for n in self.spec.arrays()}
        samples = wds.tarfile_to_samples(handler=self._handler, select_files=_SelectMembers(self.shardset.keys, suffixes))(
            self._shard_urls(rng, guard)
        )
        segments = self._segments(samples, rng, guard)
        quota = self.quota(stream, streams)
        # Never fill the buffer beyond the epoch: those segments would be read and thrown away.
        bufsize = max(1, min(self.shuffle_buffer, quota))
        shuffled = wds.shuffle(bufsize, initial=bufsize, rng=rng)(segments)
        for segment in islice(shuffled, quota):
            self.stats.add_segments(1)
            yield segment


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
        shuffle_buffer: int = 64,
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
            segments_per_clip=segments_per_clip, shuffle_buffer=shuffle_buffer, rank=rank,
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
