"""The main job's wall time and core use: `dvc repro` of the default DAG in a clean copy of the checkout.

Copies the files git tracks into a fresh folder (as a fresh clone has them), runs `dvc repro`
there and prints each stage's wall time and CPU time (core use: CPU seconds / wall seconds),
the whole DAG's wall time beside its CPU time and beside issue 14's goal (10 min on 2 cores)
and beside the floor that CPU time sets (CPU seconds / cores: the wall time were every core busy
throughout), then a second `dvc repro` (nothing to do; goal 2 s). Takes as long as the DAG.

CPU time is the machine's busy time (Linux ``/proc/stat``), so that the Ray workers, which are
not children of ``dvc``, count too: run it on an otherwise idle machine. Elsewhere it falls back
to the CPU time of ``dvc``'s child processes, which misses the Ray workers.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark.perf.measure import machine_cpu_s

REPO = Path(__file__).resolve().parents[2]
GOAL_WALL_S = 600.0  # issue 14: the default DAG on 2 cores
GOAL_NOOP_S = 2.0
_STAGE = re.compile(r"Running stage '([^']+)'")


def copy_checkout(dest: Path, repo: Path = REPO) -> tuple[Path, dict[str, str]]:
    """Copy the files git tracks in ``repo`` into ``dest/avdf`` (a git repository of its own);
    return (that folder, the environment to run avdf and dvc in it)."""
    work = dest / "avdf"
    files = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, work / name)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(work), "DVC_NO_ANALYTICS": "1"}
    return work, env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to copy the checkout (default: a temporary folder, removed afterwards)")


def timed_repro(work: Path, env: dict[str, str]) -> tuple[float, float, list[tuple[str, float, float]]]:
    """(wall s, CPU s, [(stage, wall s, CPU s)]) of one `dvc repro`."""
    cpu0, t0 = machine_cpu_s(), time.perf_counter()
    proc = subprocess.Popen(["dvc", "repro"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    stages: list[tuple[str, float, float]] = []
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        found = _STAGE.search(line)
        if found:
            stages.append((found.group(1), time.perf_counter(), machine_cpu_s()))
    proc.wait()
    wall, cpu = time.perf_counter() - t0, machine_cpu_s() - cpu0
    if proc.returncode:
        raise SystemExit(f"bench dag: dvc repro failed ({proc.returncode}):\n{''.join(lines[-40:])}")
    ends = [(t, c) for _, t, c in stages[1:]] + [(t0 + wall, cpu0 + cpu)]
    return wall, cpu, [(name, end - start, c_end - c_start)
                       for (name, start, c_start), (end, c_end) in zip(stages, ends)]


def dag_summary(wall: float, cpu: float, cores: int) -> str:
    """The DAG's wall time against the goal, its CPU time, core use, and the floor: the wall time of
    the same CPU work with every core busy all the time, which no scheduling of the stages beats
    (only less work or faster work does)."""
    floor = cpu / cores
    return (f"DAG wall {wall:.0f} s ({wall / GOAL_WALL_S:.2f}x the {GOAL_WALL_S:.0f} s goal); CPU {cpu:.0f} s; "
            f"core use {cpu / wall:.2f} of {cores} cores ({cpu / wall / cores:.0%}); "
            f"floor with every core busy {floor:.0f} s ({floor / GOAL_WALL_S:.2f}x the goal)")


def run(args: argparse.Namespace) -> int:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="avdf-bench-dag-") as tmp:
        work, env = copy_checkout(args.workdir or Path(tmp))
        print(f"bench dag: dvc repro of the default DAG in {work} ({cores} cores)", flush=True)
        wall, cpu, stages = timed_repro(work, env)
        for name, seconds, stage_cpu in stages:
            print(f"  {name:32s} {seconds:7.1f} s   CPU {stage_cpu:7.1f} s   core use {stage_cpu / seconds:.2f}")
        print(dag_summary(wall, cpu, cores))
        noop, _, _ = timed_repro(work, env)
        print(f"no-op dvc repro {noop:.1f} s ({noop / GOAL_NOOP_S:.2f}x the {GOAL_NOOP_S:.0f} s goal)")
    return 0
