"""The results schema (``metrics.json``) shared by evaluate, submit and leaderboard.

One result = one detector (or submission) scored on one fold of one protocol
version. Its folder holds ``metrics.json`` and the ``scores.parquet`` it
points to (one row per test video: key, video_id, score[, video_score,
audio_score], label, video_fake, audio_fake, category) from which curves are
drawn. Schema
``avdf-results/2``::

    schema      "avdf-results/2" (``avdf-results/1``, without the blocks marked v2, is still read)
    detector    {name, label (config/preset/ablation), weights_sha256, kind: detector|submission}
    protocol    {name, version, hash, family, corpora, twin_of, folds, averages}
    fold        a fold of the protocol ("main" for single-fold protocols)
    data_hash   hash of the test set (keys, labels, categories, media hashes) unless given
    git_hash    commit of the code that scored it (null outside a checkout)
    created     UTC ISO-8601 time (reproducible: the code's commit time, see ``build_time``)
    metrics     benchmark.metrics.evaluate_scores output (threshold, overall,
                per_category, category_mean, each with bootstrap CIs) plus
                ``averages``: the protocol's averages computable inside this fold
                (e.g. AVG-FV over intra categories), with CIs; and
                ``modalities``: {video, audio} -- the per-modality scores of a
                detector that has them, each scored against its own modality
                label (video_score vs video_fake, audio_score vs audio_fake:
                AVPrompt's Acc_v / AUC_v / Acc_a / AUC_a), with CIs.
                v2 (``benchmark.operating_report``): ``overall.tpr_at_fpr``
                {"1%", "5%"}; ``operating_point`` (ACC/TPR/FPR at the
                threshold chosen on validation, or threshold null + reason);
                ``calibration`` (ECE, Brier, reliability bins[, temperature])
    scores      {path (relative to metrics.json), sha256, rows} or null
    extra       free-form mapping for the producer (checkpoint, epoch, ...)

A change that is not an addition under ``extra`` bumps the schema version;
``read_result`` rejects unknown versions and unknown fields, naming them.

``score_predictions`` turns video-level predictions into a result; both
``avdf evaluate`` (after ``video_level`` over its segment scores) and
``avdf submit`` use it, so a submission is scored exactly like a detector.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmark.metrics import METRICS, average_over, bootstrap_samples, evaluate_scores, video_scores
from benchmark.operating_report import calibration_block, operating_point_report, tpr_at_fprs
from benchmark.protocols import REAL, Fold, Protocol
from benchmark.protocols.splitting import ClipsLike, rows_of
from pipeline.atomic import sha256_file, sha256_json, write_json_atomic
from pipeline.errors import AvdfError

SCHEMA = "avdf-results/2"
READABLE_SCHEMAS = ("avdf-results/1", SCHEMA)
METRICS_NAME = "metrics.json"
SCORES_NAME = "scores.parquet"
KINDS = ("detector", "submission")
MODALITY_SCORES = ("video_score", "audio_score")
# modality -> (its score column, the manifest label it is scored against)
MODALITIES = {"video": ("video_score", "video_fake"), "audio": ("audio_score", "audio_fake")}
# How many offending keys an error message lists.
SHOW = 5
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class ResultsError(AvdfError):
    """A results file that breaks the schema (the message names the file and field)."""


class PredictionsError(AvdfError):
    """Predictions that cannot be scored on a fold (missing/unknown/duplicate keys, bad scores)."""


@dataclass(frozen=True)
class DetectorInfo:
    """Who produced the scores: a leaderboard row is (name, label)."""

    name: str
    # Config / preset / ablation label ("full", "no-audio", "lora-r8"...).
    label: str | None = None
    weights_sha256: str | None = None
    kind: str = "detector"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "weights_sha256": self.weights_sha256, "kind": self.kind}


@dataclass
class Scored:
    """A result and the per-video scores it points to, not yet written."""

    result: dict[str, Any]
    scores: pa.Table
    extra_files: dict[str, bytes] = field(default_factory=dict)


# --------------------------------------------------------------------------- provenance

def git_commit(cwd: str | Path | None = None) -> str | None:
    """The checkout's HEAD commit, or None outside a git checkout."""
    where = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


def utc_now() -> str:
    return _iso(_dt.datetime.now(_dt.timezone.utc))


def _iso(when: _dt.datetime) -> str:
    return when.astimezone(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_time(cwd: str | Path | None = None) -> str:
    """When an output was made, reproducibly: ``SOURCE_DATE_EPOCH`` (the reproducible-builds
    convention) when set, else the commit time of the code that made it, else now. A rerun of a
    stage on the same commit writes the same bytes, so DVC sees no change where there is none."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return _iso(_dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc))
    where = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=where, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return utc_now()
    stamp = out.stdout.strip()
    return _iso(_dt.datetime.fromtimestamp(int(stamp), _dt.timezone.utc)) if out.returncode == 0 and stamp.isdigit() else utc_now()


def protocol_snapshot(protocol: Protocol) -> dict[str, Any]:
    """What a result records about its protocol: identity + what the leaderboard lays out by."""
    return {
        **protocol.identity(),
        "family": protocol.family,
        "corpora": list(protocol.spec.corpora),
        "twin_of": protocol.spec.twin_of,
        "folds": list(protocol.folds),
        "averages": {k: list(v) for k, v in protocol.averages.items()},
    }


# --------------------------------------------------------------------------- predictions

def _first(items: Sequence[Any]) -> list[Any]:
    return list(items[:SHOW])


def as_table(rows: Any) -> pa.Table:
    """A pyarrow table from a table, a pandas frame, a mapping of columns or a list of row dicts."""
    if isinstance(rows, pa.Table):
        return rows
    if hasattr(rows, "columns") and hasattr(rows, "to_dict"):
        return pa.Table.from_pandas(rows, preserve_index=False)
    if isinstance(rows, Mapping):
        return pa.table(dict(rows))
    return pa.Table.from_pylist(list(rows))


def check_predictions(table: pa.Table, test_keys: Sequence[str], where: str) -> pa.Table:
    """Validate video-level predictions against a fold's test keys.

    ``table`` needs ``key`` and ``score`` (optionally ``video_score`` and
    ``audio_score``). Every test key must appear exactly once and every score
    must be a finite number in [0, 1]; all problems found are reported in one
    ``PredictionsError`` with counts and the first few keys. Returns a table
    (key, score[, video_score, audio_score]) sorted by key.
    """
    missing_cols = [c for c in ("key", "score") if c not in table.column_names]
    if missing_cols:
        raise PredictionsError(f"{where}: missing column(s) {missing_cols}; found columns {table.column_names}")
    keys_col = table.column("key")
    if not (pa.types.is_string(keys_col.type) or pa.types.is_large_string(keys_col.type)):
        raise PredictionsError(f"{where}: column 'key' must hold strings, got {keys_col.type}")
    keys = keys_col.to_pylist()
    problems = []
    if None in keys:
        problems.append(f"{keys.count(None)} row(s) have an empty key (first at row {keys.index(None)})")
    present = [k for k in keys if k is not None]
    counts: dict[str, int] = {}
    for k in present:
        counts[k] = counts.get(k, 0) + 1
    dups = sorted(k for k, n in counts.items() if n > 1)
    if dups:
        problems.append(
            f"{len(dups)} key(s) appear more than once (each test key must appear exactly once): {_first(dups)}"
        )
    wanted = set(test_keys)
    missing = sorted(wanted - counts.keys())
    unknown = sorted(counts.keys() - wanted)
    if missing:
        problems.append(f"{len(missing)} of {len(wanted)} test key(s) have no prediction: {_first(missing)}")
    if unknown:
        problems.append(f"{len(unknown)} key(s) are not in the test set: {_first(unknown)}")
    columns = {"key": pa.array(keys, pa.string())}
    for name in ("score", *MODALITY_SCORES):
        if name not in table.column_names:
            continue
        col = table.column(name)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_null(col.type)):
            problems.append(f"column {name!r} must hold numbers, got {col.type}")
            continue
        values = np.asarray(col.cast(pa.float64()).to_pylist(), dtype=object)
        # The overall score is required; per-modality scores may be null (a uni-modal detector).
        nulls = np.array([v is None for v in values], dtype=bool)
        numbers = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        bad = ~np.isfinite(numbers) | (numbers < 0) | (numbers > 1)
        if name != "score":
            bad &= ~nulls
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            shown = "null/NaN" if nulls[i] or math.isnan(numbers[i]) else repr(float(numbers[i]))
            problems.append(
                f"{int(bad.sum())} {name}(s) are not finite numbers in [0, 1]; first: key {keys[i]!r} = {shown}"
            )
        columns[name] = pa.array([None if n else float(v) for n, v in zip(nulls, numbers)], pa.float64())
    if problems:
        raise PredictionsError(f"{where}: " + "; ".join(problems))
    out = pa.table(columns)
    return out.take(pc.sort_indices(out, [("key", "ascending")]))


def video_level(segment_rows: Any) -> pa.Table:
    """Segment scores -> one row per video (mean of each score column).

    ``segment_rows``: key, score and optionally video_score / audio_score
    (see ``benchmark.metrics.video_scores``). The result is what
    ``score_predictions`` takes.
    """
    source = as_table(segment_rows)
    table = video_scores(source)
    out = {"key": table.column("key"), "score": table.column("score"), "n_segments": table.column("n_segments")}
    for name in MODALITY_SCORES:
        if name in source.column_names:
            per = video_scores(source.select(["key", name]), score=name)
            out[name] = per.column(name)
    return pa.table(out)


# --------------------------------------------------------------------------- averages with CIs

def average_with_ci(
    summaries: Mapping[str, Mapping[str, Any]],
    members: Sequence[str],
    data: Mapping[str, tuple[Any, Any]] | None = None,
    *,
    threshold: float = 0.5,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Unweighted mean of each metric over ``members`` with a bootstrap interval.

    ``summaries``: member -> its metrics (``binary_metrics`` shape); the point
    value is ``benchmark.metrics.average_over``. ``data``: member -> (labels,
    scores) it was computed from; each member's videos are resampled
    independently and the interval is the percentile interval of the mean
    (members sharing real videos are treated as independent). Without
    ``data`` (or with ``n_bootstrap=0``) no interval is given.
    """
    out = average_over(summaries, members)
    if not data or not n_bootstrap or any(m not in data for m in members):
        return out
    draws = {}
    for m in members:
        y, s = data[m]
        draws[m] = bootstrap_samples(np.asarray(y), np.asarray(s), n_bootstrap, seed + sum(map(ord, m)), threshold)
    alpha = (1 - level) / 2
    ci: dict[str, Any] = {}
    for metric in METRICS:
        mean = np.mean(np.stack([draws[m][metric] for m in members]), axis=0)
        valid = mean[~np.isnan(mean)]
        if out.get(metric) is None or len(valid) == 0:
            ci[metric] = {"low": None, "high": None, "n_valid": int(len(valid))}
            continue
        low, high = np.quantile(valid, [alpha, 1 - alpha])
        ci[metric] = {"low": float(low), "high": float(high), "n_valid": int(len(valid))}
    ci["level"] = level
    ci["n_resamples"] = n_bootstrap
    out["ci"] = ci
    return out


# --------------------------------------------------------------------------- scoring

def _test_rows(protocol: Protocol, fold: str | Fold, clips: ClipsLike) -> tuple[Fold, dict[str, dict[str, Any]]]:
    rows = rows_of(clips)
    if isinstance(fold, str):
        fold = protocol.split(rows, folds=[fold]).fold(fold)
    if fold.name not in protocol.folds:
        raise PredictionsError(f"protocol {protocol.name} v{protocol.version} has no fold {fold.name!r}; "
                               f"folds: {protocol.folds}")
    by_key = {r["key"]: r for r in rows}
    absent = [k for k in fold.test if k not in by_key]
    if absent:
        raise PredictionsError(f"{len(absent)} test key(s) of fold {fold.name} are not in the manifest: {_first(absent)}")
    return fold, {k: by_key[k] for k in fold.test}


def test_data_hash(test_rows: Mapping[str, Mapping[str, Any]], categories: Mapping[str, str]) -> str:
    """Identifies a test set: its keys, labels, categories and media hashes."""
    return sha256_json(
        [[k, int(r["label"]), categories[k], r.get("sha256")] for k, r in sorted(test_rows.items())]
    )


def score_predictions(
    protocol: Protocol,
    fold: str | Fold,
    clips: ClipsLike,
    predictions: Any,
    *,
    detector: DetectorInfo,
    threshold: float = 0.5,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    data_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
    where: str = "predictions",
    operating_point: Mapping[str, Any] | None = None,
) -> Scored:
    """Score video-level predictions on one fold's test set with the manifest's labels.

    ``fold``: a fold name (the manifest is split with the protocol) or a
    ``Fold`` already split. ``predictions``: key, score[, video_score,
    audio_score] (pyarrow table, pandas frame, mapping of columns or rows),
    checked by ``check_predictions``. Labels and categories come from the
    manifest and the fold, never from the predictions. ``operating_point``: the
    threshold (and temperature) a checkpoint chose on its validation split
    (``benchmark.operating_report``); None for a submission.
    """
    predictions = as_table(predictions)
    fold_obj, test_rows = _test_rows(protocol, fold, clips)
    where = f"{where} (protocol {protocol.name} v{protocol.version}, fold {fold_obj.name})"
    preds = check_predictions(predictions, fold_obj.test, where)
    keys = preds.column("key").to_pylist()
    labels = [int(test_rows[k]["label"]) for k in keys]
    categories = [fold_obj.test_categories[k] for k in keys]
    scores = preds.column("score").to_numpy()
    metrics = evaluate_scores(
        labels, scores, categories, threshold=threshold, n_bootstrap=n_bootstrap, seed=seed, level=level
    )
    metrics["averages"] = _fold_averages(protocol, metrics, labels, scores, categories, threshold, n_bootstrap,
                                         seed, level)
    y = np.asarray(labels)
    metrics["overall"]["tpr_at_fpr"] = tpr_at_fprs(y, scores)
    metrics["operating_point"] = operating_point_report(y, scores, operating_point, n_bootstrap=n_bootstrap,
                                                        seed=seed, level=level)
    metrics["calibration"] = calibration_block(y, scores, operating_point)
    modality_labels = {label: [int(bool(test_rows[k].get(label))) for k in keys] for _, label in MODALITIES.values()}
    modalities = _modality_metrics(preds, modality_labels, threshold, n_bootstrap, seed, level)
    if modalities:
        metrics["modalities"] = modalities
    table = {
        "key": pa.array(keys, pa.string()),
        "video_id": pa.array([test_rows[k].get("video_id") for k in keys], pa.string()),
        "score": preds.column("score"),
    }
    for name in MODALITY_SCORES:
        if name in preds.column_names:
            table[name] = preds.column(name)
    table["label"] = pa.array(labels, pa.int8())
    for _, label in MODALITIES.values():
        table[label] = pa.array(modality_labels[label], pa.int8())
    table["category"] = pa.array(categories, pa.string())
    result = make_result(
        detector=detector,
        protocol=protocol,
        fold=fold_obj.name,
        metrics=metrics,
        data_hash=data_hash or test_data_hash(test_rows, fold_obj.test_categories),
        extra=extra,
    )
    return Scored(result=result, scores=pa.table(table))


def _modality_metrics(preds: pa.Table, labels: Mapping[str, list[int]], threshold: float, n_bootstrap: int,
                      seed: int, level: float) -> dict[str, Any]:
    """Each modality score a detector gave for every test video, against that modality's label
    (a clip forged in the other modality only is a negative here). Undefined metrics (e.g. no
    fake audio on CMDFD) are None with the reason, as for the overall block."""
    out = {}
    for modality, (column, label) in MODALITIES.items():
        if column not in preds.column_names or preds.column(column).null_count:
            continue
        scores = preds.column(column).to_numpy(zero_copy_only=False)
        out[modality] = evaluate_scores(labels[label], scores, threshold=threshold, n_bootstrap=n_bootstrap,
                                        seed=seed + sum(map(ord, modality)), level=level)["overall"]
    return out


def _fold_averages(protocol, metrics, labels, scores, categories, threshold, n_bootstrap, seed, level):
    """The protocol averages whose members are all categories scored in this fold."""
    per = metrics.get("per_category", {})
    y, s, cats = np.asarray(labels), np.asarray(scores), np.asarray(categories, dtype=object)
    out = {}
    for name, members in protocol.averages.items():
        if not all(m in per for m in members):
            continue
        data = {m: (y[(cats == REAL) | (cats == m)], s[(cats == REAL) | (cats == m)]) for m in members}
        out[name] = average_with_ci(per, members, data, threshold=threshold, n_bootstrap=n_bootstrap,
                                    seed=seed, level=level)
    return out


# --------------------------------------------------------------------------- the result record

def make_result(
    *,
    detector: DetectorInfo,
    protocol: Protocol | Mapping[str, Any],
    fold: str,
    metrics: Mapping[str, Any],
    data_hash: str,
    git_hash: str | None | bool = True,
    created: str | None = None,
    scores: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble and validate a result. ``git_hash=True`` looks up the checkout's commit."""
    result = {
        "schema": SCHEMA,
        "detector": detector.to_dict(),
        "protocol": protocol_snapshot(protocol) if isinstance(protocol, Protocol) else dict(protocol),
        "fold": fold,
        "data_hash": data_hash,
        "git_hash": git_commit() if git_hash is True else (git_hash or None),
        "created": created or build_time(),
        "metrics": dict(metrics),
        "scores": dict(scores) if scores is not None else None,
        "extra": dict(extra or {}),
    }
    validate_result(result, "result")
    return result


def write_result(path: str | Path, result: Mapping[str, Any]) -> Path:
    """Validate and write ``metrics.json`` atomically."""
    validate_result(result, str(path))
    write_json_atomic(path, result)
    return Path(path)


def write_scored(directory: str | Path, scored: Scored) -> Path:
    """Write ``scores.parquet`` and ``metrics.json`` into ``directory`` as one unit.

    Both are written into a temporary sibling folder which then replaces
    ``directory``: a reader sees the old pair or the new pair, never a mix,
    and a failure leaves nothing behind. Returns the metrics.json path.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    old = None
    try:
        pq.write_table(scored.scores, tmp / SCORES_NAME)
        for name, data in scored.extra_files.items():
            (tmp / name).write_bytes(data)
        result = dict(scored.result)
        result["scores"] = {
            "path": SCORES_NAME,
            "sha256": sha256_file(tmp / SCORES_NAME),
            "rows": scored.scores.num_rows,
        }
        write_result(tmp / METRICS_NAME, result)
        # mkdtemp/mkstemp make private entries; results are shared like any other output.
        tmp.chmod(0o755)
        for entry in tmp.iterdir():
            entry.chmod(0o644)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        if old is not None and old.exists():
            shutil.rmtree(old)
    return directory / METRICS_NAME


def read_result(path: str | Path) -> dict[str, Any]:
    """Read and strictly validate a results file (errors name the file and the field)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultsError(f"{path}: results file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read results file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    validate_result(data, str(path))
    return data


def read_scores(result_path: str | Path, result: Mapping[str, Any]) -> pa.Table | None:
    """The per-video scores a result points to (None when it points to none)."""
    pointer = result.get("scores")
    if pointer is None:
        return None
    path = Path(result_path).parent / pointer["path"]
    if not path.exists():
        raise ResultsError(f"{result_path}: scores file {path} does not exist")
    if sha256_file(path) != pointer["sha256"]:
        raise ResultsError(f"{result_path}: scores file {path} changed since the result was written (sha256 differs)")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ResultsError(f"{path}: not a readable Parquet scores file ({exc})") from None


# --------------------------------------------------------------------------- validation

def _fail(where: str, field_name: str, problem: str) -> None:
    raise ResultsError(f"{where}: field {field_name!r} {problem}")


def _check_keys(obj: Any, where: str, name: str, required: Mapping[str, Any], optional: Mapping[str, Any] | None = None):
    optional = optional or {}
    if not isinstance(obj, dict):
        _fail(where, name, f"must be an object, got {type(obj).__name__}")
    for key in required:
        if key not in obj:
            _fail(where, f"{name}.{key}" if name else key, "is missing")
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        _fail(where, f"{name}.{unknown[0]}" if name else unknown[0],
              f"is not part of schema {SCHEMA} (known: {sorted({**required, **optional})})")
    for key, check in {**required, **optional}.items():
        if key in obj:
            check(obj[key], where, f"{name}.{key}" if name else key)


def _str(nullable: bool = False, pattern: re.Pattern | None = None):
    def check(value, where, name):
        if value is None and nullable:
            return
        if not isinstance(value, str) or not value:
            _fail(where, name, f"must be a non-empty string{' or null' if nullable else ''}, got {value!r}")
        if pattern is not None and not pattern.match(value):
            _fail(where, name, f"does not match {pattern.pattern!r}: {value!r}")
    return check


def _number(lo: float | None = None, hi: float | None = None, nullable: bool = False, integer: bool = False):
    def check(value, where, name):
        if value is None and nullable:
            return
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or (not integer and not math.isfinite(value)):
            kind = "an integer" if integer else "a finite number"
            _fail(where, name, f"must be {kind}{' or null' if nullable else ''}, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            _fail(where, name, f"must be in [{lo}, {hi}], got {value!r}")
    return check


def _list_of_str(value, where, name):
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        _fail(where, name, f"must be a list of strings, got {value!r}")


def _mapping_of(check_item):
    def check(value, where, name):
        if not isinstance(value, dict):
            _fail(where, name, f"must be an object, got {type(value).__name__}")
        for k, v in value.items():
            check_item(v, where, f"{name}.{k}")
    return check


def _any_mapping(value, where, name):
    if not isinstance(value, dict):
        _fail(where, name, f"must be an object, got {type(value).__name__}")


def _one_of(*choices):
    def check(value, where, name):
        if value not in choices:
            _fail(where, name, f"must be one of {list(choices)}, got {value!r}")
    return check


_UNIT = _number(0.0, 1.0, nullable=True)
_COUNT = _number(0, None, integer=True)
_INTERVAL = {"low": _UNIT, "high": _UNIT, "n_valid": _COUNT}


def _ci(value, where, name):
    _check_keys(value, where, name,
                {m: lambda v, w, n: _check_keys(v, w, n, _INTERVAL) for m in METRICS},
                {"level": _number(0.0, 1.0), "n_resamples": _COUNT})


_METRIC_FIELDS = {m: _UNIT for m in METRICS}


def _spread(value, where, name):
    _check_keys(value, where, name, {k: _number(0.0, 1.0) for k in ("std", "iqr", "min", "median", "max")})


def _block(value, where, name):
    """Metrics of one set of videos (``binary_metrics`` + optional ``ci``, ``score_spread``, ``tpr_at_fpr``)."""
    _check_keys(value, where, name, {**_METRIC_FIELDS, "n": _COUNT, "n_real": _COUNT, "n_fake": _COUNT},
                {"ci": _ci, "undefined": _any_mapping, "score_spread": _spread,
                 "tpr_at_fpr": _nullable_mapping_of(_UNIT)})


def _nullable_mapping_of(check_item):
    def check(value, where, name):
        if value is not None:
            _mapping_of(check_item)(value, where, name)
    return check


def _operating_point(value, where, name):
    if not isinstance(value, dict):
        _fail(where, name, f"must be an object, got {type(value).__name__}")
    if value.get("threshold") is None:
        _check_keys(value, where, name, {"threshold": _UNIT, "reason": _str()})
        return
    _check_keys(value, where, name,
                {"threshold": _number(), "rule": _str(), "target_fpr": _UNIT, "chosen_on": _one_of("validation"),
                 "validation": _any_mapping, "acc": _UNIT, "tpr": _UNIT, "fpr": _UNIT},
                {"ci": _any_mapping})


def _calibration(value, where, name):
    _check_keys(value, where, name, {"ece": _UNIT, "brier": _UNIT, "n_bins": _COUNT, "bins": _list_of_mappings},
                {"temperature": _number(0.0, None), "ece_scaled": _UNIT, "brier_scaled": _UNIT})


def _list_of_mappings(value, where, name):
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        _fail(where, name, "must be a list of objects")


def _average(value, where, name):
    _check_keys(value, where, name, {**_METRIC_FIELDS, "members": _list_of_str},
                {"ci": _ci, "undefined": _any_mapping})


def _metrics(value, where, name):
    _check_keys(value, where, name, {"threshold": _number(0.0, 1.0), "overall": _block},
                {"per_category": _mapping_of(_block), "category_mean": _average,
                 "averages": _mapping_of(_average), "n_segments": _COUNT,
                 "modalities": lambda v, w, n: _check_keys(v, w, n, {}, {m: _block for m in MODALITIES}),
                 "operating_point": _operating_point, "calibration": _calibration})


def _averages_def(value, where, name):
    if not isinstance(value, dict):
        _fail(where, name, f"must be an object, got {type(value).__name__}")
    for k, v in value.items():
        _list_of_str(v, where, f"{name}.{k}")


_PROTOCOL = {
    "name": _str(), "version": _str(), "hash": _str(), "family": _str(), "corpora": _list_of_str,
    "twin_of": _str(nullable=True), "folds": _list_of_str, "averages": _averages_def,
}
_DETECTOR = {"name": _str(), "label": _str(nullable=True), "weights_sha256": _str(nullable=True, pattern=_SHA256_RE),
             "kind": _one_of(*KINDS)}


def _scores_pointer(value, where, name):
    if value is None:
        return
    _check_keys(value, where, name, {"path": _str(), "sha256": _str(pattern=_SHA256_RE), "rows": _COUNT})
    rel = Path(value["path"])
    if rel.is_absolute() or ".." in rel.parts:
        _fail(where, f"{name}.path", f"must be relative to the results file, got {value['path']!r}")


def _schema(value, where, name):
    if value not in READABLE_SCHEMAS:
        _fail(where, name, f"is {value!r}; this avdf reads {' and '.join(map(repr, READABLE_SCHEMAS))}")


def validate_result(result: Any, where: str) -> None:
    """Raise ``ResultsError`` naming the file and the first bad field."""
    if not isinstance(result, dict):
        raise ResultsError(f"{where}: a results file must hold a JSON object, got {type(result).__name__}")
    if "schema" not in result:
        _fail(where, "schema", f"is missing (expected {SCHEMA!r})")
    _schema(result["schema"], where, "schema")
    _check_keys(result, where, "", {
        "schema": _schema,
        "detector": lambda v, w, n: _check_keys(v, w, n, _DETECTOR),
        "protocol": lambda v, w, n: _check_keys(v, w, n, _PROTOCOL),
        "fold": _str(),
        "data_hash": _str(),
        "git_hash": _str(nullable=True),
        "created": _str(),
        "metrics": _metrics,
        "scores": _scores_pointer,
        "extra": _any_mapping,
    })
    if result["fold"] not in result["protocol"]["folds"]:
        _fail(where, "fold", f"{result['fold']!r} is not one of the protocol's folds {result['protocol']['folds']}")
    try:
        _dt.datetime.fromisoformat(result["created"].replace("Z", "+00:00"))
    except ValueError:
        _fail(where, "created", f"must be an ISO-8601 time, got {result['created']!r}")
