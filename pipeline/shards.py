"""``avdf shard``: WebDataset shards of preprocessed clips plus a Parquet index (issue #6).

Input: the manifest written by ``avdf preprocess`` (rows' ``path`` = one ``.npz`` per
clip, relative to the manifest's folder). Output, in ``--out``:

- ``shard-000000.tar`` …: one sample per clip (format in ``pipeline.loading.format``);
  clips sorted by key and packed until ``max_samples_per_shard`` or ``max_shard_mb``;
- ``index.parquet``: one row per clip (shard, key, labels, video id, byte span), written last;
- ``failures.parquet``: clips whose npz is missing, unreadable or inconsistent,
  so that ``inputs = outputs + failures``.

Atomic (temp name + rename), deterministic (sorted keys, tar headers with fixed
mtime/owner/mode, npy members copied byte for byte) and resumable: a shard whose
stamp matches the hash of its members (npz sha256 + Clip row) is not rewritten.
"""
from __future__ import annotations

import argparse
import io
import json
import tarfile
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import load_section
from pipeline.errors import AvdfError
from pipeline.loading.format import (
    ARRAY_NAMES,
    CLIPS_NAME,
    INDEX_NAME,
    INDEX_SCHEMA,
    JSON_MEMBER,
    REQUIRED_ARRAYS,
    SHARD_FORMAT_VERSION,
    SHARD_NAME_RE,
    SHARD_PATTERN,
    member_name,
)
from pipeline.manifest import FAILURES_NAME, Failure

STAGE = "shard"
SAMPLES_PER_FRAME = 640  # 16 kHz audio / 25 fps video: the preprocess contract
_TAR_BLOCK = 512


@dataclass
class ShardParams:
    """``shard`` section."""

    max_shard_mb: float = 256.0
    max_samples_per_shard: int = 1000
    threads: int = 2  # npz checks and shard writes are I/O + hashing: threads overlap them


@dataclass(frozen=True)
class CropSizes:
    """Expected square crop sizes (the ``preprocess`` section's); a clip that differs is a failure."""

    face: int = 224
    face_gray: int = 112
    mouth: int = 96


class ClipDataError(AvdfError):
    """A preprocessed clip's npz that cannot be sharded; ``error_type`` goes to failures.parquet."""

    def __init__(self, path: object, problem: str, error_type: str) -> None:
        self.error_type = error_type
        super().__init__(f"{path}: {problem}")


@dataclass
class ClipEntry:
    """A checked clip: its Clip row, npz, content hash and member sizes."""

    row: dict[str, Any]
    npz: Path
    sha256: str
    npy_sizes: dict[str, int]
    num_frames: int
    num_samples: int

    @property
    def key(self) -> str:
        return self.row["key"]

    def json_bytes(self) -> bytes:
        return (json.dumps(self.row, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode()

    def tar_bytes(self) -> int:
        """Bytes this sample takes in a tar (headers, GNU long-name records, padding)."""
        sizes = {JSON_MEMBER: len(self.json_bytes()), **self.npy_sizes}
        return sum(_member_tar_bytes(member_name(self.key, n), s) for n, s in sizes.items())


def _member_tar_bytes(name: str, size: int) -> int:
    def padded(n: int) -> int:
        return -(-n // _TAR_BLOCK) * _TAR_BLOCK

    long_name = padded(len(name.encode()) + 1) + _TAR_BLOCK if len(name.encode()) > 100 else 0
    return long_name + _TAR_BLOCK + padded(size)


@dataclass
class ShardResult:
    shards: list[str] = field(default_factory=list)
    written: int = 0
    up_to_date: int = 0
    clips: int = 0
    failures: list[Failure] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"shard: {self.clips + len(self.failures)} clips -> {self.clips} in {len(self.shards)} shard(s) "
            f"({self.written} written, {self.up_to_date} up to date, {self.bytes / 2**20:.1f} MiB), "
            f"{len(self.failures)} failure(s), {self.seconds:.1f}s"
        )


# --- checking one clip --------------------------------------------------------------------------

def _npy_header(data: bytes, where: str) -> tuple[tuple[int, ...], np.dtype]:
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as exc:  # numpy raises ValueError/OSError/SyntaxError for broken headers
        raise ClipDataError(where, f"not a .npy array ({exc})", "corrupt") from None
    if fortran:
        raise ClipDataError(where, "array is Fortran-ordered; the loaders slice frames of C-ordered arrays", "bad_array")
    expected = buf.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ClipDataError(where, f"array data has {len(data) - buf.tell()} bytes, header says {expected - buf.tell()}", "corrupt")
    return tuple(shape), dtype


def _check_arrays(path: Path, arrays: dict[str, tuple[tuple[int, ...], np.dtype]], sizes: CropSizes | None) -> int:
    """Shapes and dtypes of the preprocess contract; return the frame count T."""
    face_shape = arrays["face"][0]
    if len(face_shape) != 4 or face_shape[3] != 3:
        raise ClipDataError(path, f"face has shape {face_shape}, expected (T, H, W, 3)", "bad_array")
    t = face_shape[0]
    expected = {
        "face": (t, sizes.face, sizes.face, 3) if sizes else None,
        "face_gray": (t, sizes.face_gray, sizes.face_gray) if sizes else None,
        "mouth": (t, sizes.mouth, sizes.mouth) if sizes else None,
        "audio": (t * SAMPLES_PER_FRAME,),
        "landmarks": (t, 68, 2),
        "face_found": (t,),
        "boxes": (t, 4),
    }
    dtypes = {"face": "uint8", "face_gray": "uint8", "mouth": "uint8", "audio": "float32",
              "landmarks": "float32", "face_found": "bool", "boxes": "float32"}
    for name, (shape, dtype) in arrays.items():
        want = expected[name]
        if want is None:  # no size contract given: still one frame axis and the right rank
            rank = {"face": 4, "face_gray": 3, "mouth": 3}[name]
            ok = len(shape) == rank and shape[0] == t
        else:
            ok = shape == want
        if not ok:
            raise ClipDataError(path, f"array '{name}' has shape {shape}, expected {want or f'(T={t}, ...)'}", "bad_array")
        if dtype != np.dtype(dtypes[name]):
            raise ClipDataError(path, f"array '{name}' has dtype {dtype}, expected {dtypes[name]}", "bad_array")
    return t


def inspect_clip(row: dict[str, Any], npz: Path, sizes: CropSizes | None = None) -> ClipEntry:
    """Hash and fully read one clip's npz (CRCs checked); raise ClipDataError when unusable."""
    from pipeline.atomic import sha256_file

    if row["key"].startswith("__"):
        # WebDataset drops members whose name starts with "__...__" (its metadata convention).
        raise ClipDataError(row["key"], "keys starting with '__' are reserved by WebDataset", "bad_key")
    if not npz.is_file():
        raise ClipDataError(npz, "preprocessed npz does not exist", "missing")
    digest = sha256_file(npz)
    arrays: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    npy_sizes: dict[str, int] = {}
    try:
        with zipfile.ZipFile(npz) as zf:
            names = set(zf.namelist())
            lacking = [n for n in REQUIRED_ARRAYS if f"{n}.npy" not in names]
            if lacking:
                raise ClipDataError(npz, f"lacks array(s) {lacking}", "missing_array")
            for name in ARRAY_NAMES:
                if f"{name}.npy" in names:
                    data = zf.read(f"{name}.npy")  # reads every byte: CRC errors surface here
                    arrays[name] = _npy_header(data, f"{npz}:{name}")
                    npy_sizes[name] = len(data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ClipDataError(npz, f"not a readable npz ({exc})", "corrupt") from None
    t = _check_arrays(npz, arrays, sizes)
    if row.get("num_frames") is not None and int(row["num_frames"]) != t:
        raise ClipDataError(npz, f"has {t} frames but the manifest row says {row['num_frames']}", "manifest_mismatch")
    return ClipEntry(row=row, npz=npz, sha256=digest, npy_sizes=npy_sizes, num_frames=t, num_samples=t * SAMPLES_PER_FRAME)


# --- planning and writing shards -----------------------------------------------------------------

def plan_shards(entries: Sequence[ClipEntry], params: ShardParams) -> list[list[ClipEntry]]:
    """Pack clips (in key order) into shards; a clip bigger than the size limit gets a shard of its own."""
    limit = params.max_shard_mb * 2**20
    shards: list[list[ClipEntry]] = []
    current: list[ClipEntry] = []
    size = 0
    for entry in sorted(entries, key=lambda e: e.key):
        need = entry.tar_bytes()
        if current and (len(current) >= params.max_samples_per_shard or size + need > limit):
            shards.append(current)
            current, size = [], 0
        current.append(entry)
        size += need
    if current:
        shards.append(current)
    return shards


def shard_hash(entries: Sequence[ClipEntry]) -> str:
    from pipeline.atomic import sha256_json

    return sha256_json({
        "format": SHARD_FORMAT_VERSION,
        "members": [[e.key, e.sha256, e.json_bytes().decode()] for e in entries],
    })


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0  # fixed metadata: the same clips give byte-identical shards
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_shard(path: Path, entries: Sequence[ClipEntry]) -> None:
    """Write one shard atomically; npy members are the npz's bytes, unchanged."""
    from pipeline.atomic import atomic_path

    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            data = entry.json_bytes()
            tar.addfile(_tarinfo(member_name(entry.key, JSON_MEMBER), len(data)), io.BytesIO(data))
            with zipfile.ZipFile(entry.npz) as zf:
                for name in ARRAY_NAMES:
                    if name in entry.npy_sizes:
                        data = zf.read(f"{name}.npy")
                        tar.addfile(_tarinfo(member_name(entry.key, name), len(data)), io.BytesIO(data))


def scan_shard(path: Path) -> dict[str, dict[str, Any]]:
    """Key → {offset, size, members} of every sample in a shard, keyed the way WebDataset groups them."""
    from webdataset.tariterators import base_plus_ext

    samples: dict[str, dict[str, Any]] = {}
    with tarfile.open(path, "r:") as tar:
        for info in tar:
            key, suffix = base_plus_ext(info.name)
            end = info.offset_data + -(-info.size // _TAR_BLOCK) * _TAR_BLOCK
            s = samples.setdefault(key, {"offset": info.offset, "size": 0, "members": []})
            s["size"] = end - s["offset"]
            s["members"].append(suffix)
    return samples


def _expected_members(entry: ClipEntry) -> list[str]:
    return [JSON_MEMBER] + [f"{n}.npy" for n in ARRAY_NAMES if n in entry.npy_sizes]


def _shard_is_current(path: Path, entries: Sequence[ClipEntry], digest: str) -> dict[str, dict[str, Any]] | None:
    from pipeline.atomic import is_up_to_date

    if not is_up_to_date(path, digest):
        return None
    try:
        scanned = scan_shard(path)
    except (tarfile.TarError, OSError):
        return None
    if list(scanned) != [e.key for e in entries] or any(scanned[e.key]["members"] != _expected_members(e) for e in entries):
        return None
    return scanned


def _index_row(shard: str, entry: ClipEntry, span: dict[str, Any]) -> dict[str, Any]:
    row = entry.row
    return {
        "shard": shard, "key": entry.key, "label": row["label"], "video_fake": row["video_fake"],
        "audio_fake": row["audio_fake"], "category": row["category"], "method": row["method"],
        "video_id": row["video_id"], "identity": row["identity"], "ethnicity": row.get("ethnicity"),
        "gender": row.get("gender"), "num_frames": entry.num_frames, "num_samples": entry.num_samples,
        "offset": span["offset"], "size": span["size"], "npz_sha256": entry.sha256,
    }


def _remove_stale_shards(out: Path, keep: set[str]) -> None:
    """Shards of an earlier, larger run that the new index no longer names."""
    for p in out.iterdir():
        if SHARD_NAME_RE.match(p.name) and p.name not in keep:
            p.unlink()
            stamp = p.with_name(p.name + ".inputs-sha256")
            if stamp.exists():
                stamp.unlink()


def write_shards(
    manifest: str | Path,
    out: str | Path,
    params: ShardParams | None = None,
    sizes: CropSizes | None = None,
    progress: bool = True,
) -> ShardResult:
    """Run the stage: shards, ``index.parquet`` (last) and ``failures.parquet`` in ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from pipeline.atomic import atomic_path, mark_done
    from pipeline.manifest import check_accounting, read_manifest, rows_to_table, write_failures, write_manifest

    params = params or ShardParams()
    if params.max_samples_per_shard < 1 or params.max_shard_mb <= 0:
        raise AvdfError(f"shard: max_samples_per_shard must be >= 1 and max_shard_mb > 0, got {params}")
    t0 = time.perf_counter()
    manifest = Path(manifest)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(manifest).to_pylist()
    root = manifest.resolve().parent
    result = ShardResult()

    def check(row: dict[str, Any]) -> ClipEntry | Failure:
        try:
            return inspect_clip(row, root / row["path"], sizes)
        except ClipDataError as exc:
            return Failure(row["key"], STAGE, exc.error_type, str(exc))

    threads = max(1, params.threads)
    with ThreadPoolExecutor(threads) as pool:
        checked = list(tqdm(pool.map(check, rows), total=len(rows), desc="shard: check", unit="clip", disable=not progress))
        entries = [c for c in checked if isinstance(c, ClipEntry)]
        result.failures = [c for c in checked if isinstance(c, Failure)]
        plan = plan_shards(entries, params)
        names = [SHARD_PATTERN.format(i) for i in range(len(plan))]

        def build(i: int) -> tuple[bool, dict[str, dict[str, Any]]]:
            path = out / names[i]
            digest = shard_hash(plan[i])
            current = _shard_is_current(path, plan[i], digest)
            if current is not None:
                return False, current
            write_shard(path, plan[i])
            mark_done(path, digest)
            return True, scan_shard(path)

        built = list(tqdm(pool.map(build, range(len(plan))), total=len(plan), desc="shard: write", unit="shard",
                          disable=not progress))
    index_rows = []
    for name, group, (written, spans) in zip(names, plan, built):
        result.written += written
        result.up_to_date += not written
        result.bytes += (out / name).stat().st_size
        index_rows += [_index_row(name, e, spans[e.key]) for e in group]
    _remove_stale_shards(out, set(names))
    check_accounting([r["key"] for r in rows], [r["key"] for r in index_rows], result.failures)
    write_failures(result.failures, out / FAILURES_NAME)
    # The sharded clips' full rows: protocols split on any Clip field (extra included).
    sharded = {r["key"] for r in index_rows}
    write_manifest(rows_to_table(r for r in rows if r["key"] in sharded), out / CLIPS_NAME)
    with atomic_path(out / INDEX_NAME) as tmp:
        pq.write_table(pa.Table.from_pylist(index_rows, schema=INDEX_SCHEMA), tmp)
    result.shards = names
    result.clips = len(index_rows)
    result.seconds = time.perf_counter() - t0
    return result


# --- CLI -------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, type=Path, help="preprocessed clip manifest (from avdf preprocess)")
    parser.add_argument("--out", required=True, type=Path, help="shard folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    params_path = args.params if Path(args.params).exists() else None
    params = load_section("shard", params_path)
    pre = load_section("preprocess", params_path)
    # One source of truth for the crop sizes: the preprocess section that made the clips.
    sizes = CropSizes(face=pre.face_size, face_gray=pre.gray_face_size, mouth=pre.mouth_size)
    result = write_shards(args.manifest, args.out, params, sizes, progress=not args.no_progress)
    print(result.summary())
    return 0
