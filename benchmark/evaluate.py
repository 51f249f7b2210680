"""``avdf evaluate``: a trained detector's scores and metrics on a protocol's test split.

    avdf evaluate --checkpoint RUN/best.pt --data SHARDS --out RESULTS [--detector D] [--protocol P] [--fold F]
    avdf evaluate --checkpoint models/cad --data SHARDS --out results/cad   # every RUN/best.pt below, one process

The checkpoint names its detector, config, protocol and fold (``avdf train``
wrote them); ``--detector``/``--protocol`` must agree when given. Every fold
that trains on the same data as the checkpoint's fold is scored (all
cross-dataset test sets share one training set). Detectors see the inputs of
each segment only: targets and metadata are kept out of ``predict``.
``--export-av1m DIR`` also writes each fold's video scores as AV-Deepfake1M's
``file;score`` lines, ``DIR/<fold>.txt`` (``DIR/<run>/<fold>.txt`` for a folder), with
the sidecar ``avdf submit`` checks: submitting one gives the same metrics
(``benchmark.av1m_scores``).
"""
from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.config import load_section

log = logging.getLogger(__name__)


@dataclass
class EvaluateParams:
    """``evaluate`` section."""

    threshold: float = 0.5
    bootstrap: int = 1000
    seed: int = 0
    batch_size: int = 16
    num_workers: int = 0
    device: str = "auto"
    jobs: int | None = None  # a detector's runs scored side by side; None: one per core (1 on a GPU)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="checkpoint from avdf train (best.pt), or a folder: every */best.pt below it, each "
                             "written to the same relative folder under --out")
    parser.add_argument("--data", required=True, type=Path, help="shard folder (avdf shard)")
    parser.add_argument("--out", required=True, type=Path, help="results folder: one sub-folder per fold")
    parser.add_argument("--detector", help="must match the checkpoint's detector (a check, not a choice)")
    parser.add_argument("--protocol", help="protocol[@version]; default: the checkpoint's")
    parser.add_argument("--fold", help="only this fold (default: every fold sharing the checkpoint's training data)")
    parser.add_argument("--split-from", type=Path,
                        help="the clean clips.parquet whose protocol split names the folds, when --data holds "
                             "perturbed test clips only (avdf perturb)")
    parser.add_argument("--robustness", type=Path,
                        help="also score every perturbed set under this folder (avdf perturb's --out: "
                             "<spec>/shards), into OUT/.../robustness/<spec>/<fold>")
    parser.add_argument("--summary", type=Path, help="also write {fold: {acc, auc, ap, eer}} here (DVC metrics); "
                                                     "for a folder: {run: {fold: ...}}")
    parser.add_argument("--export-av1m", type=Path, metavar="DIR",
                        help="also write each fold's video scores as AV-Deepfake1M file;score lines, DIR/<fold>.txt "
                             "(for a folder: DIR/<run>/<fold>.txt)")


def load_trained(checkpoint: Path, detector: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Rebuild the detector a checkpoint was trained as and load its weights."""
    from detectors.loop import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    return build_trained(trained_class(ckpt, checkpoint, detector), ckpt, checkpoint), ckpt


def trained_class(ckpt: dict[str, Any], checkpoint: Path, detector: str | None = None) -> Any:
    """The registered detector class a loaded checkpoint was trained as (``detector``: must agree)."""
    from detectors.loop import CheckpointMismatch
    from detectors.registry import DETECTORS

    spec = ckpt.get("detector_spec") or ckpt.get("detector")
    if spec is None or "detector_config" not in ckpt:
        raise CheckpointMismatch(f"{checkpoint}: not an avdf detector checkpoint (no detector/config recorded)")
    cls = DETECTORS.get(spec)
    if detector is not None and DETECTORS.get(detector) is not cls:
        raise CheckpointMismatch(f"{checkpoint}: checkpoint is for detector {ckpt['detector']!r}, not {detector!r}")
    return cls


def build_trained(cls: Any, ckpt: dict[str, Any], checkpoint: Path) -> Any:
    from detectors.loop import CheckpointMismatch

    model = cls.from_config_dict(ckpt["detector_config"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointMismatch(f"{checkpoint}: weights do not fit {cls.name}: {str(exc).splitlines()[0]}") from None
    return model


def segment_scores(model: Any, batches: Iterable[dict[str, Any]], device: Any) -> list[dict[str, Any]]:
    """Score every segment. Only ``batch["inputs"]`` reaches the detector."""
    import torch

    model.eval()
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for batch in batches:
            keys = list(batch["meta"]["key"])
            inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
            scores = model.predict(inputs)
            columns = {name: scores[name].float().cpu().tolist() for name in scores}
            for i, key in enumerate(keys):
                rows.append({"key": key, **{name: values[i] for name, values in columns.items()}})
    return rows


def weights_sha256(checkpoint: Path) -> str:
    from pipeline.atomic import sha256_file

    return sha256_file(checkpoint)


def evaluate_checkpoint(checkpoint: Path, shard_dir: Path, out: Path, params: EvaluateParams,
                        detector: str | None = None, protocol_name: str | None = None,
                        fold_name: str | None = None, skipped: dict[str, str] | None = None,
                        split_from: Path | None = None) -> list[Path]:
    """Write ``out/<fold>/{scores.parquet,metrics.json}`` for each fold scored; return the metrics paths.

    A fold the data cannot fill (no fake or no real test clip) is skipped with a warning and,
    when ``skipped`` is given, recorded there with the reason; the trained or a named fold must work.

    ``split_from``: the clean manifest whose protocol split names the folds, when ``shard_dir`` holds
    only some test clips (perturbed copies, ``avdf perturb``: same keys and labels): folds are split
    as on the clean corpus, only those whose every test clip is in ``shard_dir`` are scored, and the
    results record the perturbation under ``extra.perturbation``.
    """
    from benchmark.protocols import ProtocolError, load_protocol
    from benchmark.results import DetectorInfo, score_predictions, video_level, write_scored
    from detectors.loop import CheckpointMismatch, load_checkpoint, resolve_device
    from detectors.training import input_spec_to_segments
    from pipeline.loaders import EvalLoader
    from pipeline.loading.format import CLIPS_NAME

    ckpt = load_checkpoint(checkpoint)
    cls = trained_class(ckpt, checkpoint, detector)
    trained = ckpt.get("protocol") or {}
    name, _, version = (protocol_name or f"{trained.get('name')}@{trained.get('version', '')}").partition("@")
    if trained and name != trained.get("name"):
        raise CheckpointMismatch(
            f"{checkpoint}: trained under protocol {trained.get('name')!r}, not {name!r}: evaluate it on its own protocol"
        )
    protocol = load_protocol(name, version or None)
    if trained.get("hash") and trained["hash"] != protocol.hash:
        raise CheckpointMismatch(
            f"{checkpoint}: trained under {name} v{trained.get('version')} (hash {trained['hash'][:12]}), "
            f"which differs from {name} v{protocol.version} ({protocol.hash[:12]})"
        )
    clip_rows = manifest_rows(shard_dir / CLIPS_NAME)
    split_clips = manifest_rows(split_from) if split_from is not None else clip_rows
    trained_fold = protocol.split(split_clips, folds=[ckpt["fold"]]).fold(ckpt["fold"]) if ckpt.get("fold") else None
    if fold_name is not None:
        folds = [protocol.split(split_clips, folds=[fold_name]).fold(fold_name)]
    else:
        folds = []
        for candidate in protocol.folds:
            if trained_fold is not None and candidate == trained_fold.name:
                folds.append(trained_fold)  # already split above
                continue
            try:
                fold = protocol.split(split_clips, folds=[candidate]).fold(candidate)
            except ProtocolError as exc:
                # e.g. a CMDFD subset without fakes on this corpus' test side: the other folds still count
                log.warning("evaluate: %s fold %s skipped: %s", protocol.name, candidate, exc)
                if skipped is not None:
                    skipped[candidate] = str(exc)
                continue
            if trained_fold is None or fold.training_id == trained_fold.training_id:
                folds.append(fold)
    perturbation = None
    if split_from is not None:
        present = {row["key"] for row in clip_rows}
        for fold in [f for f in folds if not set(f.test) <= present]:
            if skipped is not None:
                skipped[fold.name] = "its test clips are not in this (perturbed) set"
            folds.remove(fold)
        perturbation = perturbation_of(clip_rows)
    for fold in folds:
        if trained_fold is not None and fold.training_id != trained_fold.training_id:
            raise CheckpointMismatch(
                f"{checkpoint}: trained on fold {trained_fold.name}, whose training data differs from fold {fold.name}'s"
            )

    if not folds:  # before building the model: a perturbed set of other folds' clips costs nothing
        return []
    device = resolve_device(params.device)
    model = build_trained(cls, ckpt, checkpoint).to(device)
    label = ckpt.get("ablation") or ckpt.get("preset")
    info = DetectorInfo(name=model.name, label=label, weights_sha256=weights_sha256(checkpoint))
    spec = input_spec_to_segments(model.inputs)
    # Each clip is scored once, however many folds test it (cross-dataset folds share their real
    # clips): a clip's scores depend on the model and the clip only.
    loader = EvalLoader(shard_dir, spec, keys=sorted(set().union(*(fold.test for fold in folds))),
                        batch_size=params.batch_size, num_workers=params.num_workers)
    rows_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in segment_scores(model, loader, device):
        rows_of[row["key"]].append(row)
    written = []
    for fold in folds:
        keys = sorted(fold.test)
        per_video = video_level([row for key in keys for row in rows_of.get(key, [])])
        corrupt = sum(key not in rows_of for key in keys)  # a readable clip gives at least one segment
        scored = score_predictions(
            protocol, fold, clip_rows, per_video, detector=info, threshold=params.threshold,
            n_bootstrap=params.bootstrap, seed=params.seed,
            extra={"checkpoint": str(checkpoint), "train_data_hash": ckpt.get("data_hash"),
                   "best_epoch": ckpt.get("best_epoch"), "corrupt_segments_skipped": corrupt,
                   **({"perturbation": perturbation} if perturbation else {})},
            operating_point=ckpt.get("operating_point") or {
                "threshold": None, "reason": f"{checkpoint.name} carries no operating point (trained before avdf "
                                             "stored one): retrain to get one"},
        )
        written.append(write_scored(out / fold.name, scored))
    return written


SUMMARY_METRICS = ("acc", "auc", "ap", "eer")


def manifest_rows(path: Path) -> list[dict[str, Any]]:
    """A manifest's rows with their ``extra`` JSON parsed (``rows_of``), read once per file version.

    A run splits the same clean manifest once per fold and again for each perturbed set, and
    turning a table into rows and parsing every clip's ``extra`` each time was 28 % of the
    audio baseline's evaluation (profiled: 10.9 of 39.5 s; 3.1 s now). Callers get fresh row dicts (the parsed extras are shared)."""
    st = Path(path).stat()
    return [dict(row) for row in _parsed_rows(str(path), st.st_mtime_ns, st.st_size)]


@lru_cache(maxsize=8)
def _parsed_rows(path: str, mtime_ns: int, size: int) -> tuple[dict[str, Any], ...]:
    from benchmark.protocols.splitting import rows_of

    return tuple(rows_of(Path(path)))


def perturbation_of(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The one perturbation spec every clip of a perturbed set went through (its rows'
    ``extra.perturbation``; what a mixed mode drew, and each clip's seed, stay in the rows).
    ``rows``: manifest rows (``manifest_rows``), whose ``extra`` is parsed once."""
    from benchmark.protocols.selectors import parse_extra
    from pipeline.errors import ConfigError
    from pipeline.perturb import parse_spec

    specs, seeds = set(), set()
    for row in rows:
        p = parse_extra(row).get("perturbation")
        if p is None:
            raise ConfigError("evaluate: a perturbed set holds an unperturbed clip (no extra.perturbation)")
        specs.add(p["spec"])
        seeds.add(p.get("stage_seed"))
    if len(specs) != 1 or len(seeds) != 1:
        raise ConfigError(f"evaluate: a perturbed set mixes perturbations {sorted(specs)} (seeds {sorted(seeds)})")
    spec = parse_spec(specs.pop())
    return {"spec": str(spec), "kind": spec.kind, "level": spec.level, "stage_seed": seeds.pop()}


def checkpoints_under(folder: Path) -> list[Path]:
    """Every ``best.pt`` below ``folder`` (a detector's runs), sorted; none is an error."""
    from pipeline.errors import ConfigError

    found = sorted(folder.rglob("best.pt"))
    if not found:
        raise ConfigError(f"{folder}: no best.pt below this folder (run avdf train first)")
    return found


def perturbed_sets(folder: Path | None) -> dict[str, Path]:
    """{spec folder name: its shard folder} of ``avdf perturb``'s output (none for None)."""
    if folder is None:
        return {}
    return {d.name: d / "shards" for d in sorted(Path(folder).iterdir()) if (d / "shards" / "index.parquet").exists()}


def evaluate_run(checkpoint: Path, shard_dir: Path, out: Path, params: EvaluateParams, detector: str | None,
                 protocol: str | None, fold: str | None, split_from: Path | None = None,
                 robustness: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """Score one run (and, with ``robustness``, each perturbed set of its test clips): -> ({fold: summary
    metrics or {"skipped": why}}, printed lines). Module-level: parallel workers call it."""
    import json

    from pipeline.loading.format import CLIPS_NAME

    per_fold: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    lines = []
    for name, perturbed in perturbed_sets(robustness).items():
        # The perturbed sets first: their folds are split on the clean clips, as this run's are.
        for path in evaluate_checkpoint(checkpoint, perturbed, out / "robustness" / name, params, detector, protocol,
                                        fold, {}, shard_dir / CLIPS_NAME):
            result = json.loads(path.read_text())
            auc = result["metrics"]["overall"].get("auc")
            lines.append(f"evaluate {result['protocol']['name']} fold {result['fold']} under {name}: "
                         f"AUC {auc if auc is None else round(auc, 3)} -> {path}")
    for path in evaluate_checkpoint(checkpoint, shard_dir, out, params, detector, protocol, fold, skipped, split_from):
        result = json.loads(path.read_text())
        overall = result["metrics"].get("overall", {})
        per_fold[result["fold"]] = {k: overall.get(k) for k in SUMMARY_METRICS}
        shown = ", ".join(f"{k.upper()} {overall[k]:.3f}" if overall.get(k) is not None else f"{k.upper()} n/a"
                          for k in SUMMARY_METRICS)
        lines.append(f"evaluate {result['protocol']['name']} fold {result['fold']}: {shown} -> {path}")
    return per_fold | {f: {"skipped": reason} for f, reason in skipped.items()}, lines  # logged when skipped


def run(args: argparse.Namespace) -> int:
    from benchmark.parallel_runs import plan_jobs, run_all
    from pipeline.atomic import write_json_atomic

    params_path = args.params if Path(args.params).exists() else None
    params: EvaluateParams = load_section("evaluate", params_path)
    def report(name: str, outcome: tuple[dict[str, Any], list[str]], seconds: float = 0.0) -> None:
        print("\n".join(outcome[1]), flush=True)

    if args.checkpoint.is_dir():
        # One stage for all of a detector's runs, scored side by side (evaluate.jobs).
        runs = {ckpt.parent.relative_to(args.checkpoint).as_posix(): ckpt for ckpt in checkpoints_under(args.checkpoint)}
        jobs = [(ckpt, args.data, args.out / name, params, args.detector, args.protocol, args.fold, args.split_from,
                 args.robustness) for name, ckpt in runs.items()]
        results = run_all(list(runs), evaluate_run, jobs, plan_jobs(len(jobs), params.jobs, params.device),
                          on_done=report)
        summary: dict[str, Any] = {name: results[name][0] for name in runs}
    else:  # one checkpoint: its errors reach the user as they are
        outcome = evaluate_run(args.checkpoint, args.data, args.out, params, args.detector, args.protocol, args.fold,
                               args.split_from, args.robustness)
        report("", outcome)
        summary = outcome[0]
    if args.summary:
        write_json_atomic(args.summary, summary)
    if getattr(args, "export_av1m", None) is not None:
        per_run = summary if args.checkpoint.is_dir() else {"": summary}
        export_av1m(args.out, args.data, per_run, args.export_av1m)
    return 0


def export_av1m(out: Path, shard_dir: Path, per_run: dict[str, dict[str, Any]], dest: Path) -> list[Path]:
    """Each scored fold's result under ``out/<run>/<fold>/`` as ``dest/<run>/<fold>.txt`` (skipped folds have none)."""
    from benchmark.av1m_scores import export_result
    from benchmark.results import METRICS_NAME
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    clips = read_manifest(shard_dir / CLIPS_NAME)
    return [export_result(out / run / fold / METRICS_NAME, clips, dest / run / f"{fold}.txt")
            for run, folds in per_run.items() for fold, metrics in folds.items() if "skipped" not in metrics]
