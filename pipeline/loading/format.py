"""The shard format shared by the writer (``avdf shard``) and the loaders.

A shard is a plain POSIX tar read by WebDataset: one sample per clip, members
``<key>.<name>.npy`` (the clip's arrays, byte for byte as ``numpy.save`` wrote them
in the preprocessed ``.npz``) and ``<key>.json`` (the Clip row). Keys keep their
slashes: WebDataset 1.0.2 takes everything before the first dot of the *basename*
as the key (``base_plus_ext``), so ``studio/id01/utt1.face.npy`` groups under
``studio/id01/utt1`` and no encoding is needed (tested). The Parquet index beside
the shards maps every key to its shard, labels, video id and byte span.
"""
from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import AvdfError

# Bumped when the bytes a shard holds for the same inputs change: old shards are then rewritten.
SHARD_FORMAT_VERSION = 1
SHARD_PATTERN = "shard-{:06d}.tar"
SHARD_NAME_RE = re.compile(r"^shard-\d{6}\.tar$")
INDEX_NAME = "index.parquet"
CLIPS_NAME = "clips.parquet"  # the sharded clips' full Clip rows (what protocols split on)

# Arrays every preprocessed clip has (the loaders' modalities come from these) and the
# optional ones copied when present. Fixed order = fixed member order in the tar.
REQUIRED_ARRAYS = ("face", "face_gray", "mouth", "audio", "landmarks", "face_found")
OPTIONAL_ARRAYS = ("boxes",)
ARRAY_NAMES = REQUIRED_ARRAYS + OPTIONAL_ARRAYS
JSON_MEMBER = "json"

INDEX_SCHEMA = pa.schema(
    [
        pa.field("shard", pa.string(), nullable=False),  # file name relative to the index's folder
        pa.field("key", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("video_fake", pa.bool_(), nullable=False),
        pa.field("audio_fake", pa.bool_(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("identity", pa.string(), nullable=False),
        pa.field("ethnicity", pa.string()),
        pa.field("gender", pa.string()),
        pa.field("num_frames", pa.int64(), nullable=False),
        pa.field("num_samples", pa.int64(), nullable=False),
        # Byte span of the sample's members (headers included) inside the shard: lets
        # the evaluation loader read one clip without streaming the whole shard.
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("npz_sha256", pa.string(), nullable=False),
    ]
)


class ShardError(AvdfError):
    """A shard folder, index or shard file that cannot be used as asked."""


def member_name(key: str, name: str) -> str:
    return f"{key}.{name}.npy" if name != JSON_MEMBER else f"{key}.json"


def read_index(shard_dir: str | Path) -> pa.Table:
    """The index of a shard folder (``shard_dir/index.parquet``), checked against INDEX_SCHEMA."""
    path = Path(shard_dir) / INDEX_NAME
    if not path.exists():
        raise ShardError(f"{path}: shard index does not exist (run `avdf shard` first, or point at its --out folder)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ShardError(f"{path}: not a readable Parquet index ({exc})") from None
    missing = [f.name for f in INDEX_SCHEMA if f.name not in table.column_names]
    if missing:
        raise ShardError(f"{path}: index lacks column(s) {missing}")
    return table.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
