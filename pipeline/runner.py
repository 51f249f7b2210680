"""The Ray stage runner: one task per item, retries, timeouts, resume, progress, accounting.

A stage is a worker class whose constructor loads what it needs once per Ray
worker process (models, face detectors) and whose call maps one item to one
result row, writing its outputs under the stage's output folder. The runner

- skips items whose result is up to date (a sidecar records the hash of the
  item and the worker config that produced it), so a rerun after a kill only
  computes what is missing, and a rerun after failures retries only those;
- records where each computed item ran (the Ray node id, host and worker pid)
  under ``provenance/``, apart from the result row: the ids change with every
  Ray session, so they stay out of the rows, the manifests and the up-to-date
  check (``.dvcignore`` keeps them out of DVC's hash of the output folder);
- retries tasks whose worker process died (Ray's ``max_retries``);
- turns every exception, and every task over its time limit, into a
  failure row — the batch goes on;
- shows a progress bar, ends with a summary line, and checks
  ``inputs = outputs + failures``.
"""
from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.atomic import is_up_to_date, mark_done, sha256_json, write_json_atomic
from pipeline.errors import AvdfError, MediaError
from pipeline.manifest import Failure, check_accounting

log = logging.getLogger(__name__)

Item = Mapping[str, Any]  # JSON-able, with a unique "key"


def item_dir_name(key: str) -> str:
    """A file-system name for a clip key (keys hold slashes but never dots)."""
    return key.replace("/", "__")


@dataclass
class StageResult:
    stage: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    computed: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.stage}: {len(self.rows) + len(self.failures)} inputs -> {len(self.rows)} done "
            f"({self.computed} computed, {self.skipped} up to date), {len(self.failures)} failed "
            f"in {self.seconds:.1f} s"
        )


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(error_type, message) for a failure row."""
    if isinstance(exc, MediaError):
        return exc.error_type, str(exc)
    if isinstance(exc, AvdfError):
        return type(exc).__name__, str(exc)
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return type(exc).__name__, f"{exc}{where}"


# Workers are built once per Ray worker process and reused for every task that
# process runs (the model-loading constructor is the expensive part).
_WORKER_CACHE: dict[str, Any] = {}


def _get_worker(worker_spec: str, config: dict[str, Any]) -> Any:
    from pipeline.registry import load_object

    cache_key = worker_spec + sha256_json(config)
    if cache_key not in _WORKER_CACHE:
        _WORKER_CACHE[cache_key] = load_object(worker_spec)(**config)
    return _WORKER_CACHE[cache_key]


def run_item(worker_spec: str, config: dict[str, Any], item: dict[str, Any], out_dir: str, inputs_hash: str) -> dict:
    """Body of one Ray task: returns {"row": ...} or {"failure": (error_type, message)}."""
    try:
        worker = _get_worker(worker_spec, config)
        row = worker(item, Path(out_dir))
    except Exception as exc:  # every item-level error becomes a failure row
        return {"failure": describe_error(exc)}
    sidecar = _sidecar(Path(out_dir), item["key"])
    write_json_atomic(sidecar, row)
    # Before the done stamp: an item counted as done always says where it ran.
    write_json_atomic(provenance_path(Path(out_dir), item["key"]), _where_this_runs(item["key"], inputs_hash))
    mark_done(sidecar, inputs_hash)
    return {"row": row}


def _where_this_runs(key: str, inputs_hash: str) -> dict[str, Any]:
    import socket

    import ray

    return {"key": key, "ray_node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
            "pid": os.getpid(), "inputs_sha256": inputs_hash}


def _sidecar(out_dir: Path, key: str) -> Path:
    return out_dir / "done" / f"{item_dir_name(key)}.json"


def provenance_path(out_dir: Path, key: str) -> Path:
    """Where a stage records which Ray node (host, worker pid) computed ``key``."""
    return Path(out_dir) / "provenance" / f"{item_dir_name(key)}.json"


def run_stage(
    stage: str,
    items: Sequence[Item],
    worker_spec: str,
    config: Mapping[str, Any],
    out_dir: Path,
    *,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 2,
    timeout_s: float | None = None,
    address: str | None = None,
    ray_num_cpus: int | None = None,
    object_store_mb: int = 512,
    progress: bool = True,
) -> StageResult:
    """Run ``worker_spec`` (a ``module:Class``) over ``items`` on Ray.

    The worker class is built as ``Class(**config)`` and called as
    ``worker(item, out_dir) -> row`` (a JSON-able dict). ``config`` is part
    of every item's hash: changing it recomputes everything.
    """
    from tqdm import tqdm

    from pipeline.raycluster import init_ray

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = dict(config)
    keys = [item["key"] for item in items]
    if len(set(keys)) != len(keys):
        raise AvdfError(f"{stage}: duplicate item keys in the input")
    result = StageResult(stage)
    todo: list[tuple[dict[str, Any], str]] = []
    for item in items:
        inputs_hash = sha256_json({"item": item, "config": config, "worker": worker_spec})
        sidecar = _sidecar(out_dir, item["key"])
        if is_up_to_date(sidecar, inputs_hash):
            result.rows.append(json.loads(sidecar.read_text()))
            result.skipped += 1
        else:
            todo.append((dict(item), inputs_hash))

    if todo:
        ray = init_ray(address, ray_num_cpus, object_store_mb)
        task = ray.remote(run_item).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries, retry_exceptions=False
        )
        # Keep only as many tasks in flight as the cluster can run at once, so a
        # task's clock (for timeout_s) starts when it can actually start.
        resources = ray.cluster_resources()
        slots = resources.get("GPU", 0) / num_gpus if num_gpus else resources.get("CPU", 1) / max(num_cpus, 1e-3)
        capacity = max(1, int(slots))
        queue = list(reversed(todo))
        pending: dict[Any, tuple[str, float]] = {}
        bar = tqdm(total=len(items), initial=result.skipped, desc=stage, unit="item", disable=not progress)
        while queue or pending:
            while queue and len(pending) < capacity:
                item, inputs_hash = queue.pop()
                ref = task.remote(worker_spec, config, item, str(out_dir), inputs_hash)
                pending[ref] = (item["key"], time.monotonic())
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                key, _ = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as exc:  # the worker process died more often than max_retries
                    out = {"failure": ("worker_died", f"{type(exc).__name__}: {str(exc).splitlines()[0]}")}
                _collect(result, stage, key, out)
                bar.update(1)
            if timeout_s is not None:
                now = time.monotonic()
                for ref, (key, started) in list(pending.items()):
                    if now - started > timeout_s:
                        ray.cancel(ref, force=True)
                        pending.pop(ref)
                        result.failures.append(Failure(key, stage, "timeout", f"{key}: over {timeout_s:g} s"))
                        bar.update(1)
        bar.close()
    result.seconds = time.perf_counter() - t0
    check_accounting(keys, [r["key"] for r in result.rows], result.failures)
    order = {k: i for i, k in enumerate(keys)}
    result.rows.sort(key=lambda r: order[r["key"]])
    log.info(result.summary())
    return result


def _collect(result: StageResult, stage: str, key: str, out: dict) -> None:
    if "row" in out:
        result.rows.append(out["row"])
        result.computed += 1
    else:
        error_type, message = out["failure"]
        result.failures.append(Failure(key, stage, error_type, message))
