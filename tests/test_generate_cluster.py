"""``avdf generate`` on a real two-node Ray cluster (loopback), with a worker killed mid-run.

Two ``ray start`` nodes of one CPU each share this machine; the driver is a
separate ``avdf generate --address`` process (so its ``ray.init`` never meets
the session's local Ray of the other tests). While it runs, one Ray worker
process executing a generate task is SIGKILLed: Ray retries the task, and the
result must lose and duplicate nothing. Nodes are told apart by Ray's node id,
which the runner records for every output it computes (a process tree would
not do: Ray workers are not always children of their node's raylet).

The cluster is stopped by killing exactly its own processes (those whose
command line names its private temp dir, and their children): ``ray stop``
would stop every Ray on the machine, including other test sessions'.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from generators.synthetic import talking_corpus
from pipeline.manifest import read_clips, read_failures, write_manifest
from pipeline.media import decode_audio, decode_video, read_tags

pytestmark = pytest.mark.slow

RAY = Path(sys.executable).parent / "ray"
RAY_ENV = {
    # A worker node refuses to join (it aborts, or hangs when the head has it at 0) unless
    # multi-node clusters are enabled; --node-ip-address keeps every node on loopback.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> dict[int, tuple[str, int]]:
    """pid -> (command line, parent pid) of every process we can read."""
    procs = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        procs[int(d.name)] = (cmd, ppid)
    return procs


def _cluster_pids(temp_dir: str) -> set[int]:
    """The cluster's own processes: command line names its temp dir, or parent does (workers, agents)."""
    procs = _processes()
    own = {pid for pid, (cmd, _) in procs.items() if temp_dir in cmd and pid != os.getpid()}
    return own | {pid for pid, (_, ppid) in procs.items() if ppid in own}


def _stop_cluster(temp_dir: str) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        pids = _cluster_pids(temp_dir)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = _cluster_pids(temp_dir)
        if not pids:
            return


def _ray_start(args: list[str]) -> None:
    proc = subprocess.run([str(RAY), "start", *args], env={**os.environ, **RAY_ENV}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"ray start {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


@pytest.fixture(scope="module")
def cluster():
    """(address, temp dir) of a head node and a second node, one CPU each, on 127.0.0.1."""
    # Short path: Ray's unix sockets live under it (108-byte limit).
    temp_dir = tempfile.mkdtemp(prefix="avdf-ray-", dir="/tmp")
    port = _free_port()
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--object-store-memory=200000000",
              f"--dashboard-agent-listen-port={_free_port()}"]
    try:
        _ray_start(["--head", f"--port={port}", "--include-dashboard=false", f"--dashboard-port={_free_port()}",
                    f"--temp-dir={temp_dir}", "--disable-usage-stats", *common])
        _ray_start([f"--address=127.0.0.1:{port}", *common])
        yield f"127.0.0.1:{port}", temp_dir
    finally:
        _stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _corpus(root: Path) -> Path:
    write_manifest(talking_corpus(root, seconds=0.8), root / "manifest.parquet")
    return root / "manifest.parquet"


def _generate(params: Path, manifest: Path, out: Path, address: str, cwd: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "benchmark.cli", "--params", str(params), "generate", "--recipe", "cmdfd",
            "--manifest", str(manifest), "--out", str(out), "--address", address]
    return subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _task_workers(temp_dir: str) -> list[int]:
    """Pids of this cluster's Ray workers busy with a generate task (titled ``ray::run_item``)."""
    own = _cluster_pids(temp_dir)
    return sorted(pid for pid, (cmd, ppid) in _processes().items() if ppid in own and cmd.startswith("ray::run_item"))


def _node_ids(address: str) -> set[str]:
    """Ids of the cluster's live nodes, read by a driver of its own (this process may hold another local Ray)."""
    code = ("import json, ray; ray.init(address=%r, include_dashboard=False, log_to_driver=False); "
            "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))" % address)
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **RAY_ENV}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_cmdfd_on_two_nodes_survives_a_killed_worker(cluster, tmp_path):
    from generators.stage import GenerateParams, plan
    from pipeline.config import load_section

    address, temp_dir = cluster
    manifest = _corpus(tmp_path / "corpus")
    params_file = tmp_path / "params.yaml"
    params_file.write_text("generate:\n  recipes: [cmdfd]\n  min_voiced_fraction: 0.0\n  timeout_s: 600\n"
                           "ray:\n  max_retries: 3\n")
    params: GenerateParams = load_section("generate", params_file)
    expected = [t.key for t in plan("cmdfd", read_clips(manifest), manifest.parent, params)]
    assert len(expected) == 3 * 4 * 2  # 3 targets x 4 methods x (cross, self)
    out = tmp_path / "out"

    driver = _generate(params_file, manifest, out, address, tmp_path)
    killed = None
    try:
        deadline = time.monotonic() + 400
        while driver.poll() is None and time.monotonic() < deadline:
            workers = _task_workers(temp_dir)
            done = list((out / "cmdfd" / "done").glob("*.json")) if (out / "cmdfd" / "done").exists() else []
            if killed is None and done and workers:  # mid-run: some outputs written, more to come
                pid = workers[0]
                os.kill(pid, signal.SIGKILL)
                killed = (pid, len(done))
            time.sleep(0.1)
        log = driver.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, log[-3000:]
    assert killed is not None, f"no generate task was running to kill; driver log:\n{log[-2000:]}"
    assert killed[1] < len(expected)
    print(f"killed Ray worker {killed[0]} after {killed[1]} of {len(expected)} outputs\n{log[-600:]}")

    # The build carries its origin reals beside the fakes; the tasks made the fakes.
    fakes = [c for c in read_clips(out / "cmdfd" / "manifest.parquet") if c.label == 1]
    failures = read_failures(out / "cmdfd" / "failures.parquet")
    keys = [c.key for c in fakes] + [f.key for f in failures]
    assert sorted(keys) == sorted(expected), "inputs != outputs + failures"  # each key exactly once
    # Only a worker death past the retries may fail a task; it must not fail anything else.
    assert all(f.error_type == "worker_died" for f in failures), failures
    # Every output says which node computed it, and the work was spread over exactly the cluster's two nodes.
    from pipeline.runner import provenance_path

    ran_on = {c.key: json.loads(provenance_path(out / "cmdfd", c.key).read_text())["ray_node_id"] for c in fakes}
    nodes = _node_ids(address)
    assert len(nodes) == 2
    assert set(ran_on.values()) == nodes, f"outputs came from nodes {sorted(set(ran_on.values()))}, cluster has {nodes}"
    media = sorted(p.relative_to(out / "cmdfd").as_posix() for p in (out / "cmdfd" / "media").rglob("*")
                   if p.is_file())
    assert media == sorted(c.path for c in fakes)  # no duplicate, partial or stray file
    for c in fakes:
        path = out / "cmdfd" / c.path
        video, audio = decode_video(path), decode_audio(path)
        assert abs(len(video) - c.num_frames) <= 1 and len(audio) > 0
        assert read_tags(path)["avdf_synthetic"] == "1"

    # A rerun completes whatever is missing and leaves the rest alone.
    before = {c.key: c.sha256 for c in fakes}
    rerun = _generate(params_file, manifest, out, address, tmp_path)
    log2 = rerun.communicate(timeout=400)[0]
    assert rerun.returncode == 0, log2[-3000:]
    again = [c for c in read_clips(out / "cmdfd" / "manifest.parquet") if c.label == 1]
    assert sorted(c.key for c in again) == sorted(expected)
    assert not read_failures(out / "cmdfd" / "failures.parquet")
    assert all(before[c.key] == c.sha256 for c in again if c.key in before)
    assert f"{len(before)} up to date" in log2
