"""Atomic outputs and content hashes: the basis of idempotent, resumable stages.

A stage writes every output to a temporary name in the destination folder and
renames it into place, so a killed run never leaves a half-written file under
the final name. Work is skipped when its output exists and a sidecar records
the hash of the inputs that produced it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-able object, independent of dict ordering."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` on success.

    The temporary name keeps ``dest``'s suffix (or ``suffix``) so tools that
    infer a format from the extension (ffmpeg, pyarrow) still work.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or dest.suffix or ".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(dest: str | Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(dest: str | Path, obj: Any) -> None:
    write_bytes_atomic(dest, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def _stamp_path(output: Path) -> Path:
    return output.with_name(output.name + ".inputs-sha256")


def is_up_to_date(output: str | Path, inputs_hash: str) -> bool:
    """True when ``output`` exists and was produced from inputs hashing to ``inputs_hash``."""
    output = Path(output)
    stamp = _stamp_path(output)
    return output.exists() and stamp.exists() and stamp.read_text().strip() == inputs_hash


def mark_done(output: str | Path, inputs_hash: str) -> None:
    """Record which inputs produced ``output`` (call after the output is in place)."""
    write_bytes_atomic(_stamp_path(Path(output)), (inputs_hash + "\n").encode())
