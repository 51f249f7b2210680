"""Data loaders over ``avdf shard`` output (WebDataset tars read at random + ``torch.utils.data``).

    from pipeline.loaders import SegmentSpec, TrainLoader, EvalLoader
    spec = SegmentSpec(num_frames=16, modalities=("face", "audio"), mel="truncated")
    train = TrainLoader("data/shards", spec, keys=protocol_train_keys, batch_size=8, num_workers=2)
    for batch in train:            # one resampled epoch per iter(); train.set_epoch(k) to resume
        out = detector(batch["inputs"]); loss = detector.loss(batch, out)
    test = EvalLoader("data/shards", spec, keys=protocol_test_keys, num_workers=2)
    for batch in test:             # every non-overlapping segment, fixed order
        scores = detector.predict(batch["inputs"])   # targets stay out of the detector
        group by batch["meta"]["video_id"] / ["key"] / ["segment"]

Batches: ``inputs`` — ``face`` (B,T,3,H,W) uint8 (float32 in [0,1] with
``face_float``), ``face_gray`` / ``mouth`` (B,T,1,H,W) uint8, ``audio`` (B,T*640)
float32, ``landmarks`` (B,T,68,2), ``face_found`` (B,T), ``mel`` (B,n_mels,F) float32;
``targets`` — ``label``, ``video_fake``, ``audio_fake`` (B,) long; ``meta`` — ``key``,
``video_id`` (lists), ``segment`` (B,) long (evaluation index; -1 in training),
``start`` (B,) long (first frame). Corrupt samples are skipped, logged and counted
in ``loader.stats.corrupt``; a missing shard file is a ``ShardError``.
"""
from __future__ import annotations

from pipeline.loading.evaluate import EvalLoader
from pipeline.loading.format import INDEX_NAME, ShardError, read_index
from pipeline.loading.segments import MODALITIES, SegmentSpec, collate_segments, log_mel
from pipeline.loading.shardset import LoaderStats, ShardSet
from pipeline.loading.train import TrainLoader

__all__ = [
    "EvalLoader", "INDEX_NAME", "LoaderStats", "MODALITIES", "SegmentSpec", "ShardError", "ShardSet",
    "TrainLoader", "collate_segments", "log_mel", "read_index",
]
