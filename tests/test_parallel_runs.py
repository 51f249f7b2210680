"""`avdf train --grid` and `avdf teach --grid`: every run of train.grid.runs, side by side in worker
processes, each writing exactly what a run of its own writes; a failed run is named, the others finish."""
import json
import logging
import re

import pytest

from benchmark.parallel_runs import RunsFailed, plan_jobs
from benchmark.train import train_grid
from detectors.training import TrainGrid, TrainParams, TrainRun

RUNS = [TrainRun("studio-intra-random", "main"), TrainRun("studio-intra-group", "main")]


@pytest.fixture(scope="module")
def shards(studio_shards):
    return studio_shards


def _params(runs, jobs=2) -> TrainParams:
    return TrainParams(loop={"epochs": 1, "batch_size": 4}, segments_per_epoch=8, jobs=jobs,
                       detector_config={"video-baseline": {"frame_size": 32, "width": 8, "depth": 2}},
                       grid=TrainGrid(detectors=["video-baseline"], runs=runs))


def test_plan_uses_every_core_on_cpu_and_never_more_runs_than_there_are():
    assert plan_jobs(runs=8, jobs=2, device="cpu").jobs == 2
    assert plan_jobs(runs=1, jobs=4, device="cpu").jobs == 1
    assert plan_jobs(runs=8, jobs=None, device="cuda").jobs == 1  # a GPU run has the whole device
    plan = plan_jobs(runs=8, jobs=None, device="cpu")
    assert plan.jobs >= 1 and plan.threads >= 1


def test_grid_trains_every_run_in_worker_processes_and_logs_name_the_run(shards, tmp_path, capfd, caplog):
    # Three runs on two workers: one worker trains two of them, and its lines must follow the run.
    runs = RUNS + [TrainRun("studio-cross-manipulation", "FVRA-WL")]
    caplog.set_level(logging.INFO)  # the level the workers log at
    train_grid("video-baseline", shards, tmp_path / "models", _params(runs), history_dir=tmp_path / "logs")
    printed = capfd.readouterr()
    assert "2 run(s) at a time" in printed.out and "[3/3]" in printed.out
    labelled = re.findall(r"^\[(\S+)\] video-baseline epoch 1: ", printed.err, re.MULTILINE)
    assert sorted(labelled) == sorted(f"{r.protocol}/{r.fold}" for r in runs)
    for run in runs:
        folder = tmp_path / "models" / run.protocol / run.fold
        assert {"best.pt", "last.pt", "history.json", "metrics.json", "train.json", "keys_read.json"} <= \
            {p.name for p in folder.iterdir()}
        stored = json.loads((folder / "train.json").read_text())
        assert (stored["protocol"]["name"], stored["fold"]) == (run.protocol, run.fold)
        history = tmp_path / "logs" / run.protocol / f"{run.fold}.json"
        assert history.read_bytes() == (folder / "history.json").read_bytes()


def test_a_failed_run_is_named_and_the_others_finish(shards, tmp_path):
    runs = [RUNS[0], TrainRun("studio-cross-manipulation", "NO-SUCH-FOLD")]
    with pytest.raises(RunsFailed, match="studio-cross-manipulation/NO-SUCH-FOLD failed: .*NO-SUCH-FOLD"):
        train_grid("video-baseline", shards, tmp_path / "models", _params(runs))
    assert (tmp_path / "models" / "studio-intra-random" / "main" / "best.pt").exists()


@pytest.mark.slow  # 35 s; test_determinism keeps a rerun's bytes in the fast suite (make acceptance)
def test_a_grid_rerun_writes_the_same_bytes(shards, tmp_path):
    for out in ("a", "b"):
        train_grid("video-baseline", shards, tmp_path / out, _params(RUNS))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert [f for f in files if (tmp_path / "a" / f).read_bytes() != (tmp_path / "b" / f).read_bytes()] == []


def test_evaluate_scores_every_run_of_a_detector_side_by_side(shards, tmp_path, capsys):
    from benchmark.cli import main

    train_grid("video-baseline", shards, tmp_path / "models", _params(RUNS))
    (tmp_path / "params.yaml").write_text("evaluate:\n  bootstrap: 50\n  jobs: 2\n")
    assert main(["--params", str(tmp_path / "params.yaml"), "evaluate", "--checkpoint", str(tmp_path / "models"),
                 "--data", str(shards), "--out", str(tmp_path / "results"),
                 "--summary", str(tmp_path / "summary.json")]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"studio-intra-random/main", "studio-intra-group/main"}
    for run in RUNS:
        assert set(summary[f"{run.protocol}/{run.fold}"]["main"]) == {"acc", "auc", "ap", "eer"}
        assert (tmp_path / "results" / run.protocol / run.fold / "main" / "metrics.json").exists()
    assert capsys.readouterr().out.count("evaluate studio-intra") == 2


def test_a_grid_of_several_detectors_shares_one_pool_and_each_gets_its_folder(shards, tmp_path, capfd):
    """`avdf train 'probe-*' --grid` (the DAG's probes stage): a pattern names every matching registered
    detector; each trains every run, into OUT/<detector>/<protocol>/<fold>."""
    from benchmark.train import grid_detectors
    from detectors.registry import DETECTORS

    probes = grid_detectors("probe-*")
    assert probes == sorted(n for n in DETECTORS.names() if n.startswith("probe-")) and len(probes) == 6
    assert grid_detectors("cad, probe-silence,cad") == ["cad", "probe-silence"]
    with pytest.raises(Exception, match="no registered detector matches"):
        grid_detectors("nobody-*")

    params = _params([RUNS[0]])
    params.loop_per_detector = {name: {"batch_size": 8} for name in probes[:2]}
    train_grid(",".join(probes[:2]), shards, tmp_path / "models", params, history_dir=tmp_path / "logs")
    for name in probes[:2]:
        assert (tmp_path / "models" / name / "studio-intra-random" / "main" / "best.pt").exists()
        assert (tmp_path / "logs" / name / "studio-intra-random" / "main.json").exists()
    out = capfd.readouterr().out
    assert all(f"{name}/studio-intra-random/main: " in out for name in probes[:2])


def test_the_longest_runs_start_first(shards, tmp_path, capfd):
    """Longest first (by each run's own epochs): a long run started last would leave the other workers idle."""
    runs = [TrainRun("studio-intra-random", "main"), TrainRun("studio-intra-group", "main", loop={"epochs": 2})]
    train_grid("video-baseline", shards, tmp_path, _params(runs, jobs=1))
    out = capfd.readouterr().out
    assert "[1/2] studio-intra-group/main: 2 epochs" in out and "[2/2] studio-intra-random/main: 1 epochs" in out
