"""Random access to one clip's arrays inside a shard, without reading what is not needed.

A shard is an uncompressed tar, so each ``.npy`` member is a contiguous run of
bytes: the index gives the clip's byte span, a walk over the span's tar headers
(seeking over member data) gives each member's data offset, and the array is
memory-mapped from there. A training segment then touches only its 16 frames of
the modalities a detector asked for, instead of the clip's whole sample (tens of
MB of 224 px RGB faces) or, worse, a stream through the whole shard.

What a clip's span holds (the member table, its Clip row, its arrays' memory maps) is
kept per process, for every reader: the epochs and runs of one training process visit
the same clips again and again, and walking tar headers, parsing ``.npy`` headers and
mapping arrays was most of a visit. An entry is keyed by the shard file's identity
(inode, size, modification time) and the clip's byte span, so a rewritten shard is read anew.
"""
from __future__ import annotations

import json
import os
import tarfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.loading.format import JSON_MEMBER
from pipeline.loading.segments import SAMPLES_PER_FRAME, CorruptSample, DecodedClip, SegmentSpec

_MAX_JSON_BYTES = 16 << 20
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
# Clips whose parts a process keeps (a few KB each: their arrays are views of the shard's memory map,
# which holds no memory of its own, the page cache does).
MAX_CACHED_CLIPS = 4096


@dataclass
class _ClipParts:
    """What one clip's span holds, read once: member table, Clip row, arrays memory-mapped (read-only)."""

    members: dict[str, tuple[int, int]]
    shard_ident: tuple  # (path, inode, size, mtime) of the shard file read
    row: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict)  # DecodedClip.derived: whole-clip values (facts)


_parts: OrderedDict[tuple, _ClipParts] = OrderedDict()  # least recently used first
# One read-only map per shard file (by identity): a map holds a file descriptor, so arrays are views of
# their shard's map rather than maps of their own (thousands of clips would exhaust a 1024-descriptor limit).
_shard_maps: dict[tuple, np.ndarray] = {}


def _shard_map(path: Path, ident: tuple) -> np.ndarray:
    whole = _shard_maps.get(ident)
    if whole is None:
        for stale in [k for k in _shard_maps if k[0] == ident[0]]:  # the file was rewritten
            del _shard_maps[stale]
        whole = _shard_maps[ident] = np.memmap(path, dtype=np.uint8, mode="r")
    return whole


class ClipReader:
    """Reads clips of one shard folder by their index rows (what a clip holds is cached per process)."""

    def __init__(self, shard_dir: Path) -> None:
        self.shard_dir = Path(shard_dir)

    def _clip_parts(self, row: dict[str, Any]) -> _ClipParts:
        shard = self.shard_dir / row["shard"]
        try:
            stat = os.stat(shard)
        except OSError as exc:
            raise CorruptSample(f"{shard}: span of {row['key']} is not readable tar data ({exc})") from None
        ident = (str(shard), stat.st_ino, stat.st_size, stat.st_mtime_ns,
                 row["key"], int(row["offset"]), int(row["size"]))
        parts = _parts.get(ident)
        if parts is None:
            parts = _parts[ident] = _ClipParts(self._walk(row), shard_ident=ident[:4])
            if len(_parts) > MAX_CACHED_CLIPS:
                _parts.popitem(last=False)
        else:
            _parts.move_to_end(ident)
        return parts

    def members(self, row: dict[str, Any]) -> dict[str, tuple[int, int]]:
        """Member suffix (``face.npy``, ``json``, ...) -> (data offset, size) within the shard file."""
        return self._clip_parts(row).members

    def _walk(self, row: dict[str, Any]) -> dict[str, tuple[int, int]]:
        from webdataset.tariterators import base_plus_ext

        shard, key = self.shard_dir / row["shard"], row["key"]
        start, end = int(row["offset"]), int(row["offset"]) + int(row["size"])
        found: dict[str, tuple[int, int]] = {}
        try:
            with open(shard, "rb") as f:
                if f.seek(0, 2) < end:
                    raise CorruptSample(f"{shard}: ends before the span of {key}")
                f.seek(start)
                # Seekable mode ("r:"): tarfile jumps over member data instead of reading it.
                with tarfile.open(fileobj=f, mode="r:") as tar:
                    for info in tar:
                        if info.offset >= end:
                            break
                        prefix, suffix = base_plus_ext(info.name)
                        if prefix != key:
                            raise CorruptSample(f"{shard}: member {info.name} inside the span of {key}")
                        if info.offset_data + info.size > end:
                            raise CorruptSample(f"{shard}: member {info.name} runs past the span of {key}")
                        found[suffix] = (info.offset_data, info.size)
        except CorruptSample:
            raise
        except (tarfile.TarError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise CorruptSample(f"{shard}: span of {key} is not readable tar data ({exc})") from None
        if not found:
            raise CorruptSample(f"{shard}: span of {key} holds no member")
        return found

    def read_json(self, row: dict[str, Any]) -> dict[str, Any]:
        """The sample's Clip row (one dict per clip and process: read it, do not modify it)."""
        parts = self._clip_parts(row)
        if parts.row is None:
            parts.row = self._read_json(row)
        return parts.row

    def _read_json(self, row: dict[str, Any]) -> dict[str, Any]:
        key = row["key"]
        offset, size = self._member(row, JSON_MEMBER)
        if size > _MAX_JSON_BYTES:
            raise CorruptSample(f"{key}.json: {size} bytes is not a Clip row")
        with open(self.shard_dir / row["shard"], "rb") as f:
            f.seek(offset)
            data = f.read(size)
        try:
            clip_row = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptSample(f"{key}.json: not valid JSON ({exc})") from None
        if not isinstance(clip_row, dict) or clip_row.get("key") != key:
            raise CorruptSample(f"{key}.json: is not this sample's Clip row")
        return clip_row

    def array(self, row: dict[str, Any], name: str) -> np.ndarray:
        """The member ``<name>.npy`` memory-mapped read-only (slicing reads only the pages it touches)."""
        parts = self._clip_parts(row)
        if name not in parts.arrays:
            parts.arrays[name] = self._map_array(row, name, parts.shard_ident)
        return parts.arrays[name]

    def _map_array(self, row: dict[str, Any], name: str, shard_ident: tuple) -> np.ndarray:
        key, member = row["key"], f"{name}.npy"
        offset, size = self._member(row, member)
        path = self.shard_dir / row["shard"]
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                version = np.lib.format.read_magic(f)
                read_header = _HEADER_READERS.get(version)
                if read_header is None:
                    raise ValueError(f".npy format version {version} is not supported")
                shape, fortran, dtype = read_header(f)
                header = f.tell() - offset
        except Exception as exc:  # garbled header: numpy raises ValueError / EOFError / OSError
            raise CorruptSample(f"{key}.{member}: not a readable .npy ({type(exc).__name__}: {exc})") from None
        if dtype.hasobject or fortran:
            raise CorruptSample(f"{key}.{member}: holds objects or Fortran order, not a frame array")
        need = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if need != size:
            raise CorruptSample(f"{key}.{member}: header promises {need} bytes, the member has {size}")
        if 0 in shape:
            return np.empty(shape, dtype)
        whole = _shard_map(path, shard_ident)
        if offset + need > whole.shape[0]:
            raise CorruptSample(f"{key}.{member}: runs past the end of {path}")
        return np.ndarray(shape, dtype=dtype, buffer=whole, offset=offset + header)

    def clip(self, row: dict[str, Any], spec: SegmentSpec) -> DecodedClip:
        """The clip's Clip row and the arrays ``spec`` needs (memory-mapped); CorruptSample when any is bad."""
        key = row["key"]
        clip_row = self.read_json(row)
        arrays = {name: self.array(row, name) for name in spec.arrays()}
        lengths = {n: (a.shape[0] // SAMPLES_PER_FRAME if n == "audio" else a.shape[0]) for n, a in arrays.items()}
        if len(set(lengths.values())) > 1 or ("audio" in arrays and arrays["audio"].shape[0] % SAMPLES_PER_FRAME):
            raise CorruptSample(f"{key}: arrays disagree on the number of frames {lengths}")
        num_frames = next(iter(lengths.values()))
        if num_frames < 1:
            raise CorruptSample(f"{key}: clip has no frames")
        return DecodedClip(key=key, row=clip_row, arrays=arrays, num_frames=num_frames,
                           derived=self._clip_parts(row).derived)

    def _member(self, row: dict[str, Any], suffix: str) -> tuple[int, int]:
        members = self.members(row)
        if suffix not in members:
            raise CorruptSample(f"{row['key']}: sample has no {'.json' if suffix == JSON_MEMBER else suffix} member")
        return members[suffix]
