"""Acceptance: the whole DAG under `dvc repro` on a small studio profile (slow: minutes)."""
import subprocess

import pytest
import yaml
from dvc_workspace import copy_checkout

pytestmark = pytest.mark.slow

# A small profile of the default DAG: same stages, protocols and detectors, fewer clips and epochs.
SMALL = {
    ("fetch", "studio", "identities"): 10,
    ("fetch", "studio", "utterances"): 2,
    # every identity forged in every FakeAVCeleb category: with 10 identities, fewer leave some
    # held-out category without a fake in its 30 % test videos
    ("generate", "max_targets"): None,
    ("generate", "methods_per_target", "fakeavceleb"): None,
    ("teach", "epochs"): 3,
    ("train", "loop", "epochs"): 2,
    ("evaluate", "bootstrap"): 100,
}


def _set(params: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        params = params[key]
    params[path[-1]] = value


def test_dvc_repro_runs_the_whole_dag(tmp_path):
    work, env = copy_checkout(tmp_path)
    params = yaml.safe_load((work / "params.yaml").read_text())
    for path, value in SMALL.items():
        _set(params, path, value)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = subprocess.run(["dvc", "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    board = (work / "leaderboard" / "leaderboard.md").read_text()
    for detector in params["train"]["grid"]["detectors"]:
        assert detector in board
    assert (work / "leaderboard" / "leaderboard.html").stat().st_size > 10_000
    # A second repro has nothing to do.
    again = subprocess.run(["dvc", "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "didn't change, skipping" in again.stdout + again.stderr
