"""The one training loop: overfits, resumes exactly, refuses foreign checkpoints, DDP == single process."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detectors.baselines import AudioBaseline, VideoBaseline
from detectors.loop import CheckpointMismatch, LoopParams, ScheduleParams, fit, lr_factor
from loop_data import SyntheticSource


def _video(**kw):
    torch.manual_seed(0)
    return VideoBaseline.from_preset("tiny", frame_size=32, width=8, depth=2, num_frames=4, **kw)


def test_overfits_a_tiny_set(tmp_path):
    model = _video()
    metrics = fit(model, SyntheticSource(), tmp_path, LoopParams(epochs=8, lr=3e-3), progress=False)
    history = metrics["last"]
    assert history["val_acc"] == 1.0 and history["val_auc"] == 1.0
    assert metrics["best_val_auc"] == 1.0
    for name in ("last.pt", "best.pt", "history.json", "metrics.json"):
        assert (tmp_path / name).exists()


def test_audio_baseline_learns_the_tone(tmp_path):
    torch.manual_seed(0)
    model = AudioBaseline.from_preset("tiny", width=8, depth=2, num_frames=4)
    metrics = fit(model, SyntheticSource(), tmp_path, LoopParams(epochs=6, lr=3e-3), progress=False)
    assert metrics["best_val_auc"] == 1.0


def test_resume_after_a_kill_is_exact(tmp_path):
    params = LoopParams(epochs=4, lr=1e-3)
    straight = _video()
    fit(straight, SyntheticSource(), tmp_path / "a", params, progress=False)

    class Killed(Exception):
        pass

    def kill_after_second_epoch(epoch):
        if epoch == 1:
            raise Killed

    first = _video()
    with pytest.raises(Killed):
        fit(first, SyntheticSource(), tmp_path / "b", params, progress=False, on_epoch_end=kill_after_second_epoch)
    resumed = _video()
    metrics = fit(resumed, SyntheticSource(), tmp_path / "b", params, progress=False)
    assert metrics["epochs_run"] == 4
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_foreign_checkpoints_are_refused(tmp_path):
    fit(_video(), SyntheticSource(), tmp_path, LoopParams(epochs=1), progress=False)
    with pytest.raises(CheckpointMismatch, match="differs in \\['width'\\]"):
        torch.manual_seed(0)
        other = VideoBaseline.from_preset("tiny", frame_size=32, width=4, depth=2, num_frames=4)
        fit(other, SyntheticSource(), tmp_path, LoopParams(epochs=1), progress=False)
    with pytest.raises(CheckpointMismatch, match="not 'audio-baseline'"):
        audio = AudioBaseline.from_preset("tiny", num_frames=4)
        fit(audio, SyntheticSource(), tmp_path, LoopParams(epochs=1), progress=False)
    with pytest.raises(CheckpointMismatch, match="other training params"):
        fit(_video(), SyntheticSource(), tmp_path, LoopParams(epochs=1, lr=0.5), progress=False)


def test_schedules():
    p = LoopParams(epochs=15, schedule=ScheduleParams(kind="step", milestones=[12], gamma=0.1))
    assert [lr_factor(e, p) for e in (0, 11, 12, 14)] == [1.0, 1.0, pytest.approx(0.1), pytest.approx(0.1)]
    c = LoopParams(epochs=10, schedule=ScheduleParams(kind="cosine"))
    assert lr_factor(0, c) == 1.0 and lr_factor(5, c) == pytest.approx(0.5)


@pytest.mark.slow  # 35 s; the CAD DDP test in test_cad_fidelity stays in the fast suite (make acceptance)
def test_ddp_with_two_gloo_processes_matches_single_process(tmp_path):
    tests_dir = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests_dir), os.environ.get("PYTHONPATH", "")])}
    env.pop("WORLD_SIZE", None)
    subprocess.run([sys.executable, str(tests_dir / "ddp_train.py"), str(tmp_path / "single")], check=True, env=env)
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         str(tests_dir / "ddp_train.py"), str(tmp_path / "ddp")],
        check=True, env=env, capture_output=True,
    )
    single = torch.load(tmp_path / "single" / "final.pt")
    ddp = torch.load(tmp_path / "ddp" / "final.pt")
    for name, value in single.items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_one_class_validation_selects_on_loss(tmp_path):
    class RealOnlyValidation(SyntheticSource):
        def validation(self):
            for batch in super().validation():
                keep = batch["targets"]["label"] == 0
                yield {
                    "inputs": {k: v[keep] for k, v in batch["inputs"].items()},
                    "targets": {k: v[keep] for k, v in batch["targets"].items()},
                    "meta": {k: [x for x, m in zip(v, keep) if m] for k, v in batch["meta"].items()},
                }

    metrics = fit(_video(), RealOnlyValidation(), tmp_path, LoopParams(epochs=2, lr=1e-3), progress=False)
    assert "best_val_loss" in metrics and (tmp_path / "best.pt").exists()
