"""Which training settings a run uses: a paper's schedule under its `paper` preset, the studio's
`train.loop` under `tiny`, a user's override by detector name over both; printed and stored."""
import json
import logging
from pathlib import Path

import pytest

from benchmark.train import train
from detectors.avprompt import AVPrompt
from detectors.cad import CAD
from detectors.ecl import ECL
from detectors.loop import LoopParams, ScheduleParams, fit, lr_factor
from detectors.training import TrainParams, effective_loop
from loop_data import SyntheticSource
from pipeline.config import load_section

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def _lrs(loop: LoopParams) -> list[float]:
    return [loop.lr * lr_factor(epoch, loop) for epoch in range(loop.epochs)]


def test_the_paper_preset_runs_each_papers_schedule_with_the_repositorys_params():
    params = load_section("train", REPO_PARAMS)
    assert params.loop.get("lr") not in (None, 1e-4)  # the studio profile's loop differs from the papers'
    # AVPrompt: "15 training epochs with the Adam optimizer. The initial learning rate is set to 0.0001,
    # with a reduction by a factor of 10 occurring at the 12th epoch."
    avprompt = effective_loop(AVPrompt, params, "paper").params
    assert avprompt.optimizer == "adam" and avprompt.epochs == 15
    assert _lrs(avprompt) == pytest.approx([1e-4] * 12 + [1e-5] * 3)
    # ECL: "The initial learning rate is set to 10^-4, and it is decreased by 5% for every epoch."
    ecl = effective_loop(ECL, params, "paper")
    assert _lrs(ecl.params) == pytest.approx([1e-4 * 0.95**e for e in range(ecl.params.epochs)])
    assert ecl.sources["lr"] == ecl.sources["schedule.gamma"] == "ecl's paper"
    assert ecl.sources["epochs"] == "ecl.TRAIN (avdf's choice; the paper is silent)"
    assert effective_loop(AVPrompt, params, "paper").sources["batch_size"] == "avprompt.TRAIN (avdf's choice; the paper is silent)"
    # CAD states no training settings: its own choices run, not the studio's train.loop
    cad = effective_loop(CAD, params, "paper")
    for key in ("optimizer", "lr", "epochs", "batch_size"):
        assert cad.sources[key] == "cad.TRAIN (avdf's choice; the paper is silent)", key


def test_a_papers_setting_wins_over_train_loop_and_says_so():
    from plugin_detectors import ScheduledDetector

    params = TrainParams(loop={"lr": 1e-3, "epochs": 4, "schedule": {"warmup_epochs": 2}, "grad_clip": 1.0})
    paper = effective_loop(ScheduledDetector, params, "paper")
    assert (paper.params.optimizer, paper.params.lr) == ("sgd", 0.05)
    assert paper.params.schedule == ScheduleParams(kind="step", milestones=[2], gamma=0.1, warmup_epochs=0)
    assert paper.params.epochs == 3  # the detector's own choice under its paper preset
    assert paper.params.grad_clip == 1.0  # a setting neither the paper nor the detector gives
    assert paper.sources["lr"] == "scheduled's paper" and paper.sources["grad_clip"] == "train.loop"
    assert paper.shadowed == {"lr": 1e-3, "epochs": 4, "schedule.warmup_epochs": 2}
    text = paper.describe("scheduled", "paper")
    assert "train.loop lr = 0.001 not applied" in text and "train.per_detector.scheduled.lr" in text
    # the studio profile (tiny) is not the paper: train.loop applies
    tiny = effective_loop(ScheduledDetector, params, "tiny")
    assert (tiny.params.lr, tiny.params.epochs, tiny.params.schedule.warmup_epochs) == (1e-3, 4, 2)
    assert not tiny.shadowed


def test_a_detectors_own_train_loop_follows_train_loops_precedence():
    from plugin_detectors import ScheduledDetector

    params = TrainParams(loop={"lr": 1e-3, "epochs": 4}, loop_per_detector={"scheduled": {"lr": 3e-4}})
    tiny = effective_loop(ScheduledDetector, params, "tiny")
    assert (tiny.params.lr, tiny.params.epochs) == (3e-4, 4)
    assert tiny.sources["lr"] == "train.loop_per_detector.scheduled" and tiny.sources["epochs"] == "train.loop"
    paper = effective_loop(ScheduledDetector, params, "paper")
    assert paper.params.lr == 0.05 and paper.shadowed["lr"] == 3e-4
    assert "train.loop_per_detector.scheduled lr = 0.0003 not applied" in paper.describe("scheduled", "paper")


def test_a_runs_own_loop_sets_the_budget_of_that_run_only():
    """train.grid.runs[i].loop (e.g. fewer epochs for the cross-manipulation folds) sits above
    train.loop_per_detector for every detector under `tiny`; a paper's schedule still wins under `paper`."""
    from detectors.training import TrainGrid, TrainRun
    from plugin_detectors import ScheduledDetector

    runs = [TrainRun("studio-cross-manipulation", "RVFA", {"epochs": 2}), TrainRun("studio-intra-group", "main")]
    params = TrainParams(loop={"epochs": 4}, loop_per_detector={"scheduled": {"epochs": 6}},
                         grid=TrainGrid(["scheduled"], runs))
    rvfa = effective_loop(ScheduledDetector, params, "tiny", ("studio-cross-manipulation@1.2.0", "RVFA"))
    assert rvfa.params.epochs == 2 and rvfa.sources["epochs"] == "train.grid.runs[studio-cross-manipulation@1.2.0/RVFA].loop"
    assert effective_loop(ScheduledDetector, params, "tiny", ("studio-cross-manipulation", "FVRA-WL")).params.epochs == 6
    assert effective_loop(ScheduledDetector, params, "tiny", ("studio-intra-group", "main")).params.epochs == 6
    paper = effective_loop(ScheduledDetector, params, "paper", ("studio-cross-manipulation", "RVFA"))
    assert paper.params.epochs == 3 and paper.shadowed["epochs"] == 2  # the detector's own TRAIN
    chosen = TrainParams(grid=params.grid, per_detector={"scheduled": {"epochs": 1}})
    assert effective_loop(ScheduledDetector, chosen, "tiny", ("studio-cross-manipulation", "RVFA")).params.epochs == 1


def test_a_single_avdf_train_of_a_grid_run_uses_that_runs_loop(studio_shards, tmp_path):
    from detectors.training import TrainGrid, TrainRun

    runs = [TrainRun("studio-intra-random", "main", {"epochs": 1})]
    params = TrainParams(loop={"epochs": 2}, segments_per_epoch=16, grid=TrainGrid(["video-baseline"], runs),
                         detector_config={"video-baseline": {"frame_size": 32, "width": 8, "depth": 2}})
    train("video-baseline", "studio-intra-random", studio_shards, tmp_path / "run", params)
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 1
    stored = json.loads((tmp_path / "run" / "train.json").read_text())
    assert stored["loop_sources"]["epochs"] == "train.grid.runs[studio-intra-random/main].loop"


def test_an_override_by_detector_name_wins_everywhere():
    from plugin_detectors import ScheduledDetector

    params = TrainParams(loop={"lr": 1e-3}, per_detector={"scheduled": {"lr": 0.2, "schedule": {"gamma": 0.5}}})
    for preset in ("paper", "tiny"):
        loop = effective_loop(ScheduledDetector, params, preset)
        assert loop.params.lr == 0.2 and loop.params.schedule.gamma == 0.5
        assert loop.sources["lr"] == loop.sources["schedule.gamma"] == "train.per_detector.scheduled"
        assert loop.params.schedule.milestones == [2]


def test_paper_presets_validate_on_every_segment_whatever_train_loop_says():
    """train.loop's validation subset is the studio profile's: a paper preset scores every segment of its
    validation clips, as the papers do, unless the detector's own settings or train.per_detector say so."""
    from plugin_detectors import ScheduledDetector

    params = TrainParams(loop={"val_segments_per_clip": 1})
    tiny = effective_loop(ScheduledDetector, params, "tiny")
    assert tiny.params.val_segments_per_clip == 1 and tiny.sources["val_segments_per_clip"] == "train.loop"
    paper = effective_loop(ScheduledDetector, params, "paper")
    assert paper.params.val_segments_per_clip is None and paper.shadowed == {"val_segments_per_clip": 1}
    assert "train.loop val_segments_per_clip = 1 not applied" in paper.describe("scheduled", "paper")
    chosen = TrainParams(loop={"val_segments_per_clip": 1}, per_detector={"scheduled": {"val_segments_per_clip": 2}})
    assert effective_loop(ScheduledDetector, chosen, "paper").params.val_segments_per_clip == 2


def test_effective_settings_are_printed_and_stored_with_the_run(studio_shards, tmp_path, caplog):
    params = TrainParams(loop={"lr": 1e-3, "epochs": 9}, segments_per_epoch=16)
    with caplog.at_level(logging.INFO, logger="detectors.training"):
        train("plugin_detectors:ScheduledDetector", "studio-intra-random", studio_shards, tmp_path / "run",
              params, preset="paper")
    assert "train.loop lr = 0.001 not applied" in caplog.text
    stored = json.loads((tmp_path / "run" / "train.json").read_text())
    assert stored["loop"]["lr"] == 0.05 and stored["loop"]["epochs"] == 3
    assert stored["loop_sources"]["lr"] == "scheduled's paper"
    assert stored["loop_not_applied"] == {"lr": 1e-3, "epochs": 9}
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [round(h["lr"], 10) for h in history] == [0.05, 0.05, 0.005]


def test_fit_applies_the_schedule_epoch_by_epoch_also_after_a_kill_and_resume(tmp_path):
    from test_loop import _video

    params = LoopParams(epochs=5, lr=0.01, schedule=ScheduleParams(kind="exponential", gamma=0.5))

    class Killed(Exception):
        pass

    def kill_after_third_epoch(epoch):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        fit(_video(), SyntheticSource(), tmp_path, params, progress=False, on_epoch_end=kill_after_third_epoch)
    assert [h["lr"] for h in json.loads((tmp_path / "history.json").read_text())] == pytest.approx([0.01, 0.005, 0.0025])
    fit(_video(), SyntheticSource(), tmp_path, params, progress=False)
    lrs = [h["lr"] for h in json.loads((tmp_path / "history.json").read_text())]
    assert lrs == pytest.approx([0.01, 0.005, 0.0025, 0.00125, 0.000625])
