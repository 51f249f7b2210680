"""``avdf submit``: validate a predictions file and score it onto the leaderboard.

A predictions file is Parquet or CSV with one row per test video: ``key``
and ``score`` (P(fake) in [0, 1]), optionally ``video_score`` /
``audio_score``, and optionally which protocol it answers: constant
``protocol`` / ``protocol_version`` columns, a ``fold`` column (one file may
cover several folds), or a JSON sidecar (``PREDICTIONS.json`` or the same
stem with ``.json``) with any of ``protocol``, ``protocol_version``,
``protocol_hash``, ``fold``, ``name``, ``label``, ``weights_sha256``.
AV-Deepfake1M's classification format (``file;score`` lines, no header; a
``.txt`` file or ``--format av1m``) is read too: each line's file is mapped
to a test clip of the fold by the rule in ``benchmark.av1m_scores``.

Everything is validated and scored in memory first (every test key exactly
once, scores finite in [0, 1], protocol name/version/fold as claimed); only
then is one result folder per fold written (``metrics.json`` +
``scores.parquet``, see ``benchmark.results``), so a bad file writes nothing.
Labels come from the manifest; the scoring is the one ``avdf evaluate`` uses
(threshold, bootstrap and seed from the ``evaluate`` section of params.yaml).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from benchmark.av1m_scores import ScoreLine, looks_like_av1m, read_scores, resolve_lines
from benchmark.protocols import Protocol, load_protocol
from benchmark.results import DetectorInfo, PredictionsError, Scored, score_predictions, write_scored
from pipeline.atomic import sha256_file
from pipeline.clip import safe_id
from pipeline.config import load_section
from pipeline.errors import AvdfError

PARQUET_MAGIC = b"PAR1"
SIDECAR_KEYS = ("protocol", "protocol_version", "protocol_hash", "fold", "name", "label", "weights_sha256")
# Columns that say what the file answers, rather than scores.
CLAIM_COLUMNS = ("protocol", "protocol_version")
# --format: found from the content, a Parquet/CSV table keyed by clip key, or AV-Deepfake1M's file;score lines.
FORMATS = ("auto", "table", "av1m")


@dataclass
class SubmitParams:
    """``submit`` section."""

    # Leaderboard row name (default: --name, the sidecar's name, or the file's stem).
    name: str | None = None
    # The leaderboard's results folder: one <name>/<protocol>-v<version>/<fold>/ per fold.
    out: str = "results/submissions"


@dataclass
class Predictions:
    """A predictions file as read: the table and what it claims to answer."""

    path: Path
    table: pa.Table
    claims: dict[str, Any] = field(default_factory=dict)
    # AV-Deepfake1M lines: named by file, not key, so keyed only once the fold's test clips are known.
    lines: list[ScoreLine] | None = None


# --------------------------------------------------------------------------- reading

def _looks_like_text(head: bytes) -> bool:
    if not head.strip() or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(head) - 3 and len(head) == 1 << 16
    return True


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 16)
    except FileNotFoundError:
        raise PredictionsError(f"{path}: predictions file does not exist") from None
    except OSError as exc:
        raise PredictionsError(f"{path}: cannot read predictions file ({exc})") from None


def _read_table(path: Path, head: bytes) -> pa.Table:
    if head.startswith(PARQUET_MAGIC):
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise PredictionsError(f"{path}: not a readable Parquet file ({exc})") from None
    if path.suffix.lower() in (".parquet", ".pq"):
        raise PredictionsError(f"{path}: not a Parquet file (it does not start with the Parquet magic bytes)")
    if not _looks_like_text(head):
        raise PredictionsError(
            f"{path}: neither a Parquet file nor a CSV text file; predictions must be Parquet or CSV "
            "with columns key, score"
        )
    import pyarrow.csv as pcsv

    try:
        return pcsv.read_csv(
            path,
            convert_options=pcsv.ConvertOptions(
                column_types={"key": pa.string(), "fold": pa.string(), "protocol": pa.string(),
                              "protocol_version": pa.string()}
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise PredictionsError(f"{path}: not a readable CSV predictions file ({exc})") from None


def _sidecar(path: Path) -> dict[str, Any]:
    candidates = [path.with_name(path.name + ".json"), path.with_suffix(".json")]
    found = [p for p in dict.fromkeys(candidates) if p != path and p.exists()]
    if not found:
        return {}
    side = found[0]
    try:
        data = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PredictionsError(f"{side}: sidecar is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PredictionsError(f"{side}: sidecar must hold a JSON object")
    unknown = sorted(set(data) - set(SIDECAR_KEYS))
    if unknown:
        raise PredictionsError(f"{side}: unknown sidecar key(s) {unknown}; known: {list(SIDECAR_KEYS)}")
    for k, v in data.items():
        if v is not None and not isinstance(v, str):
            raise PredictionsError(f"{side}: sidecar key {k!r} must be a string, got {v!r}")
    return {k: v for k, v in data.items() if v is not None}


def read_predictions(path: str | Path, fmt: str = "auto") -> Predictions:
    """Read a predictions file and what it claims (protocol, version, fold, name...).

    ``fmt``: one of ``FORMATS``; ``auto`` takes Parquet by its magic bytes and text as
    AV-Deepfake1M lines when ``benchmark.av1m_scores.looks_like_av1m`` says so, else as CSV.
    """
    if fmt not in FORMATS:
        raise AvdfError(f"--format {fmt!r}: expected one of {list(FORMATS)}")
    path = Path(path)
    head = _head(path)
    if fmt == "av1m" or (fmt == "auto" and not head.startswith(PARQUET_MAGIC) and _looks_like_text(head)
                         and looks_like_av1m(path, head)):
        lines = read_scores(path)
        table = pa.table({"file": [e.file for e in lines], "score": [e.score for e in lines]})
        return Predictions(path=path, table=table, claims=_sidecar(path), lines=lines)
    table = _read_table(path, head)
    claims = _sidecar(path)
    for col in CLAIM_COLUMNS:
        if col not in table.column_names:
            continue
        values = sorted({str(v) for v in table.column(col).to_pylist() if v is not None})
        if len(values) != 1:
            raise PredictionsError(f"{path}: column {col!r} must hold one value for every row, found {values[:5]}")
        if col in claims and claims[col] != values[0]:
            raise PredictionsError(
                f"{path}: column {col!r} says {values[0]!r} but the sidecar says {claims[col]!r}"
            )
        claims[col] = values[0]
        table = table.drop_columns([col])
    return Predictions(path=path, table=table, claims=claims)


# --------------------------------------------------------------------------- resolving claims

def parse_protocol_arg(text: str) -> tuple[str, str | None]:
    """``name`` or ``name@version``."""
    name, sep, version = text.partition("@")
    if not name or (sep and not version):
        raise AvdfError(f"--protocol {text!r}: expected NAME or NAME@VERSION")
    return name, version or None


def resolve_protocol(arg: str, preds: Predictions) -> Protocol:
    """The protocol the command line names, checked against what the file claims."""
    name, version = parse_protocol_arg(arg)
    claimed_name = preds.claims.get("protocol")
    if claimed_name is not None and claimed_name != name:
        raise PredictionsError(
            f"{preds.path}: predictions are for protocol {claimed_name!r} but --protocol names {name!r}"
        )
    claimed_version = preds.claims.get("protocol_version")
    if version is not None and claimed_version is not None and version != claimed_version:
        raise PredictionsError(
            f"{preds.path}: predictions are for {name} version {claimed_version!r} but --protocol asks for "
            f"version {version!r}"
        )
    protocol = load_protocol(name, version or claimed_version)
    claimed_hash = preds.claims.get("protocol_hash")
    if claimed_hash is not None and claimed_hash != protocol.hash:
        raise PredictionsError(
            f"{preds.path}: predictions were made for a different definition of {name} v{protocol.version} "
            f"(protocol_hash {claimed_hash[:12]}... vs this avdf's {protocol.hash[:12]}...)"
        )
    return protocol


def resolve_folds(protocol: Protocol, preds: Predictions, fold_arg: str | None) -> dict[str, pa.Table]:
    """fold name -> its predictions (key, score...), checking --fold, the column and the sidecar agree."""
    where = f"{preds.path}"
    known = protocol.folds
    claimed = preds.claims.get("fold")
    if fold_arg is not None and claimed is not None and fold_arg != claimed:
        raise PredictionsError(f"{where}: the sidecar says fold {claimed!r} but --fold says {fold_arg!r}")
    wanted = fold_arg or claimed
    table = preds.table
    if "fold" in table.column_names:
        col = table.column("fold")
        if col.null_count:
            raise PredictionsError(f"{where}: column 'fold' has {col.null_count} empty value(s)")
        in_file = sorted(set(col.to_pylist()))
        unknown = [f for f in in_file if f not in known]
        if unknown:
            raise PredictionsError(
                f"{where}: fold(s) {unknown} are not folds of {protocol.name} v{protocol.version}; folds: {known}"
            )
        if wanted is not None and in_file != [wanted]:
            raise PredictionsError(f"{where}: the file has predictions for fold(s) {in_file} but fold {wanted!r} "
                                   "was asked for")
        return {f: table.filter(pc.equal(col, f)).drop_columns(["fold"]) for f in in_file}
    if wanted is None:
        if len(known) != 1:
            raise PredictionsError(
                f"{where}: protocol {protocol.name} has {len(known)} folds {known}; say which one with --fold "
                "or a 'fold' column"
            )
        wanted = known[0]
    if wanted not in known:
        raise PredictionsError(
            f"{where}: fold {wanted!r} is not a fold of {protocol.name} v{protocol.version}; folds: {known}"
        )
    return {wanted: table}


# --------------------------------------------------------------------------- the command

def submit(
    predictions: str | Path,
    protocol_arg: str,
    manifest: str | Path,
    out: str | Path,
    *,
    fold: str | None = None,
    name: str | None = None,
    label: str | None = None,
    threshold: float = 0.5,
    n_bootstrap: int = 1000,
    seed: int = 0,
    fmt: str = "auto",
) -> list[Path]:
    """Validate and score a predictions file; write one result per fold. Returns the metrics.json paths."""
    from pipeline.manifest import read_manifest

    preds = read_predictions(predictions, fmt)
    protocol = resolve_protocol(protocol_arg, preds)
    per_fold = resolve_folds(protocol, preds, fold)
    clips = read_manifest(manifest)
    splits = protocol.split(clips, folds=list(per_fold))
    row_name = name or preds.claims.get("name") or preds.path.stem
    try:
        row_name = safe_id(row_name)
    except ValueError as exc:
        raise AvdfError(f"submission name: {exc}") from None
    detector = DetectorInfo(
        name=row_name,
        label=label or preds.claims.get("label"),
        weights_sha256=preds.claims.get("weights_sha256"),
        kind="submission",
    )
    extra = {"predictions": preds.path.name, "predictions_sha256": sha256_file(preds.path)}
    scored: dict[str, Scored] = {}
    problems = []
    manifest_rows = clips.to_pylist() if preds.lines is not None else []
    for fold_name, table in per_fold.items():
        try:
            if preds.lines is not None:
                test = set(splits.fold(fold_name).test)
                where = f"{preds.path} (fold {fold_name})"
                table = resolve_lines(preds.lines, [r for r in manifest_rows if r["key"] in test], where,
                                      manifest_rows)
            scored[fold_name] = score_predictions(
                protocol, splits.fold(fold_name), clips, table, detector=detector, threshold=threshold,
                n_bootstrap=n_bootstrap, seed=seed, extra=extra, where=str(preds.path),
            )
        except PredictionsError as exc:
            problems.append(str(exc) + _other_fold_hint(protocol, clips, fold_name, table))
    if problems:
        raise PredictionsError(" | ".join(problems))
    folder = Path(out) / row_name / f"{protocol.name}-v{protocol.version}"
    return [write_scored(folder / fold_name, s) for fold_name, s in scored.items()]


def _other_fold_hint(protocol: Protocol, clips: pa.Table, fold: str, table: pa.Table) -> str:
    """When the keys are exactly another fold's test set, say so: the usual cause is a wrong --fold."""
    if len(protocol.folds) < 2 or "key" not in table.column_names:
        return ""
    keys = set(table.column("key").to_pylist())
    try:
        splits = protocol.split(clips)
    except AvdfError:
        return ""
    matches = [f for f in protocol.folds if f != fold and set(splits.fold(f).test) == keys]
    return f" (these keys are exactly the test set of fold {matches[0]!r}: wrong --fold?)" if matches else ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", help="predictions file (Parquet or CSV: key, score[, fold]; or "
                                            "AV-Deepfake1M's file;score lines, e.g. a .txt)")
    parser.add_argument("--format", choices=FORMATS, default="auto",
                        help="auto (default: Parquet by its magic bytes, .txt or ';'-separated text as av1m, "
                             "else CSV), table (Parquet/CSV keyed by clip key) or av1m (file;score lines)")
    parser.add_argument("--protocol", required=True, help="protocol name[@version] (avdf ls protocols)")
    parser.add_argument("--manifest", required=True, help="manifest whose labels score the test split")
    parser.add_argument("--fold", help="fold of a multi-fold protocol (or give a 'fold' column)")
    parser.add_argument("--name", help="leaderboard row name (default: params submit.name, sidecar, file stem)")
    parser.add_argument("--label", help="config / ablation label shown beside the name")
    parser.add_argument("--out", help="results folder of the leaderboard (default: params submit.out)")


def run(args: argparse.Namespace) -> int:
    params_path = args.params if Path(args.params).exists() else None
    params = load_section("submit", params_path)
    scoring = load_section("evaluate", params_path)
    written = submit(
        args.predictions,
        args.protocol,
        args.manifest,
        args.out or params.out,
        fold=args.fold,
        name=args.name or params.name,
        label=args.label,
        threshold=scoring.threshold,
        n_bootstrap=scoring.bootstrap,
        seed=scoring.seed,
        fmt=getattr(args, "format", "auto"),
    )
    from benchmark.results import read_result

    for path in written:
        result = read_result(path)
        overall = result["metrics"]["overall"]
        shown = " ".join(f"{m.upper()} {overall[m]:.4f}" for m in ("acc", "auc", "ap") if overall[m] is not None)
        print(f"{path}: {result['protocol']['name']} v{result['protocol']['version']} fold {result['fold']}: {shown}")
    return 0
