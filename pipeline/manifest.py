"""Parquet manifests of Clips, and the failures.parquet convention.

Every stage reads a manifest, writes a manifest of what it produced and a
``failures.parquet`` of what it could not, so that ``inputs = outputs + failures``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.atomic import atomic_path
from pipeline.clip import CATEGORIES, CLIP_SCHEMA, Clip, validate_key
from pipeline.errors import ManifestError

FAILURE_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("error_type", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
    ]
)
FAILURES_NAME = "failures.parquet"


def validate_table(table: pa.Table, where: str = "manifest") -> pa.Table:
    """Check a table against CLIP_SCHEMA; return it cast to the exact schema.

    Missing required columns, unknown columns, a column of the wrong type, a
    null in a required column, an invalid or duplicate key: each is a
    ManifestError that names the column (and the first offending row).
    """
    names = set(table.column_names)
    missing = [f.name for f in CLIP_SCHEMA if f.name not in names and not f.nullable]
    if missing:
        raise ManifestError(f"{where}: missing required column(s) {missing}")
    unknown = sorted(names - set(CLIP_SCHEMA.names))
    if unknown:
        raise ManifestError(f"{where}: unknown column(s) {unknown}; the Clip schema has {CLIP_SCHEMA.names}")
    columns = []
    for f in CLIP_SCHEMA:
        if f.name not in names:
            columns.append(pa.nulls(table.num_rows, f.type))
            continue
        col = table.column(f.name)
        if not col.type.equals(f.type):
            if not _castable(col.type, f.type):
                raise ManifestError(f"{where}: column '{f.name}' has type {col.type}, expected {f.type}")
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ManifestError(f"{where}: column '{f.name}' cannot be read as {f.type}: {exc}") from None
        if not f.nullable and col.null_count:
            row = next(i for i, v in enumerate(col.to_pylist()) if v is None)
            raise ManifestError(f"{where}: column '{f.name}' is required but row {row} is null")
        columns.append(col)
    table = pa.Table.from_arrays(columns, schema=CLIP_SCHEMA)
    _check_values(table, where)
    return table


def _castable(src: pa.DataType, dst: pa.DataType) -> bool:
    """Only widen/narrow within a family: ints to ints, floats from ints, etc."""
    if pa.types.is_null(src):
        return True
    families = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_string, pa.types.is_list)
    for fam in families:
        if fam(dst):
            return fam(src) or (pa.types.is_floating(dst) and pa.types.is_integer(src)) or (
                pa.types.is_string(dst) and pa.types.is_large_string(src)
            )
    return False


def _check_values(table: pa.Table, where: str) -> None:
    keys = table.column("key").to_pylist()
    for i, key in enumerate(keys):
        try:
            validate_key(key)
        except ValueError as exc:
            raise ManifestError(f"{where}: column 'key' row {i}: {exc}") from None
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        raise ManifestError(f"{where}: column 'key' has duplicate {dup!r}")
    for i, (label, cat) in enumerate(zip(table.column("label").to_pylist(), table.column("category").to_pylist())):
        if label not in (0, 1):
            raise ManifestError(f"{where}: column 'label' row {i} is {label!r}, expected 0 or 1")
        if cat not in CATEGORIES:
            raise ManifestError(f"{where}: column 'category' row {i} is {cat!r}, expected one of {CATEGORIES}")


def rows_to_table(rows: Iterable[dict]) -> pa.Table:
    """Clip rows (dicts with the schema's fields) as a table of the exact schema."""
    return pa.Table.from_pylist(list(rows), schema=CLIP_SCHEMA)


def clips_to_table(clips: Iterable[Clip]) -> pa.Table:
    return rows_to_table(c.to_row() for c in clips)


def write_manifest(clips: Iterable[Clip] | pa.Table, path: str | Path) -> pa.Table:
    """Validate and write a manifest atomically; return the written table."""
    table = clips if isinstance(clips, pa.Table) else clips_to_table(clips)
    table = validate_table(table, where=str(path))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return table


def read_manifest(path: str | Path) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: manifest does not exist")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestError(f"{path}: not a readable Parquet manifest ({exc})") from None
    return validate_table(table, where=str(path))


def read_clips(path: str | Path) -> list[Clip]:
    return [Clip.from_row(r) for r in read_manifest(path).to_pylist()]


@dataclass(frozen=True)
class Failure:
    key: str
    stage: str
    error_type: str
    message: str


def write_failures(failures: Sequence[Failure], path: str | Path) -> None:
    """Write ``failures.parquet`` (an empty table when nothing failed)."""
    table = pa.Table.from_pylist([f.__dict__ for f in failures], schema=FAILURE_SCHEMA)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_failures(path: str | Path) -> list[Failure]:
    path = Path(path)
    if not path.exists():
        return []
    return [Failure(**r) for r in pq.read_table(path, schema=FAILURE_SCHEMA).to_pylist()]


def check_accounting(input_keys: Iterable[str], output_keys: Iterable[str], failures: Sequence[Failure]) -> None:
    """Assert ``inputs = outputs + failures`` key by key; raise naming the lost keys."""
    inputs = set(input_keys)
    outputs = set(output_keys)
    failed = {f.key for f in failures}
    lost = inputs - outputs - failed
    both = outputs & failed
    extra = (outputs | failed) - inputs
    if lost or both or extra:
        raise ManifestError(
            f"stage accounting broken: {len(lost)} input(s) neither output nor failed {sorted(lost)[:5]}, "
            f"{len(both)} both output and failed {sorted(both)[:5]}, {len(extra)} unknown {sorted(extra)[:5]}"
        )
