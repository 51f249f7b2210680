"""Independent runs (training one detector on several protocol folds, teaching several teachers)
side by side in a pool of worker processes, so that every core is busy.

Small models on a CPU use one or two cores badly (short kernels, a single-threaded loader), so
two runs of one thread each finish sooner than two runs one after the other with two threads.
Each worker gets ``threads`` torch threads, fixed for the run: a rerun with the same settings
computes in the same order and writes the same bytes. A run that fails does not stop the
others; the stage fails at the end, naming every failed run.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from pipeline.errors import AvdfError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """How many runs go side by side and how many torch threads each one gets."""

    jobs: int
    threads: int

    def describe(self) -> str:
        return f"{self.jobs} run(s) at a time, {self.threads} torch thread(s) each"


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def plan_jobs(runs: int, jobs: int | None, device: str = "auto") -> Plan:
    """``jobs`` None: one run per core on CPU, one at a time on a GPU (it has the whole device)."""
    cpus = available_cpus()
    if jobs is None:
        jobs = 1 if _uses_cuda(device) else cpus
    jobs = max(1, min(jobs, runs))
    return Plan(jobs, max(1, cpus // jobs))


def _uses_cuda(device: str) -> bool:
    if device == "cpu":
        return False
    if device.startswith("cuda"):
        return True
    import torch

    return torch.cuda.is_available()


# The log handler of a spawned worker process (None in a process that had its own, such as the CLI's
# when runs go one at a time): one worker trains several runs, so its prefix is set anew for each.
_worker_handler: logging.Handler | None = None


def label_logs(name: str, level: int) -> None:
    """Prefix this worker's log lines with ``[name]``, the run it works on now (not its first run's)."""
    global _worker_handler
    if _worker_handler is None:
        root = logging.getLogger()
        if root.handlers:
            return  # a process that logs its own way: runs go one at a time there, each announced
        _worker_handler = logging.StreamHandler()
        root.addHandler(_worker_handler)
        root.setLevel(level)
    _worker_handler.setFormatter(logging.Formatter(f"[{name.replace('%', '%%')}] %(message)s"))


def _call(name: str, threads: int, level: int, fn: Callable[..., Any], args: tuple) -> tuple[Any, float]:
    import torch

    label_logs(name, level)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


class RunsFailed(AvdfError):
    """One or more runs of a parallel stage failed (each is named)."""


def run_all(name_of: Sequence[str], fn: Callable[..., Any], args: Sequence[tuple], plan: Plan,
            on_done: Callable[[str, Any, float], None] | None = None,
            costs: Sequence[float] | None = None) -> dict[str, Any]:
    """``fn(*args[i])`` for every i, ``plan.jobs`` at a time; -> {name: result}. ``fn`` must be a
    module-level function (workers are spawned: nothing is inherited from this process).

    ``costs`` (e.g. each training run's epochs): the runs start longest first, so that no long run
    starts last while the other workers run out of work (longest-processing-time order). Each run
    computes what it computes whatever the order."""
    import multiprocessing

    if costs is not None:
        order = sorted(range(len(args)), key=lambda i: -costs[i])  # stable: equal costs keep their order
        name_of, args = [name_of[i] for i in order], [args[i] for i in order]
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    level = logging.getLogger().getEffectiveLevel()

    def done(name: str, outcome: Callable[[], tuple[Any, float]]) -> None:
        try:
            results[name], seconds = outcome()
        except Exception as exc:  # name the run and go on with the others
            log.debug("%s failed", name, exc_info=True)
            failures[name] = f"{type(exc).__name__}: {exc}"
            return
        if on_done:
            on_done(name, results[name], seconds)

    if plan.jobs == 1:
        for name, a in zip(name_of, args):
            done(name, lambda: _call(name, plan.threads, level, fn, a))
    else:
        with ProcessPoolExecutor(plan.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_call, name, plan.threads, level, fn, a): name for name, a in zip(name_of, args)}
            for future in as_completed(futures):
                done(futures[future], future.result)
    if failures:
        raise RunsFailed("; ".join(f"{name} failed: {why}" for name, why in sorted(failures.items())))
    return results
