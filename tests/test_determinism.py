"""Same seed, same bytes: rerunning `avdf train` on the same machine writes identical checkpoints,
metrics and histories, so DVC never reports noise as a change."""
import os
import subprocess
import sys
import time

import pytest

from benchmark.train import train
from detectors.training import TrainParams

OUTPUTS = ("best.pt", "last.pt", "metrics.json", "history.json", "train.json", "keys_read.json")


@pytest.fixture(scope="module")
def shards(studio_shards):
    return studio_shards


@pytest.mark.parametrize("detector,config", [
    ("video-baseline", {"frame_size": 32, "width": 8, "depth": 2}),
    ("cad", {"image_size": 32}),
])
def test_a_rerun_with_the_same_seed_writes_the_same_bytes(shards, tmp_path, detector, config):
    params = TrainParams(loop={"epochs": 2, "batch_size": 4, "lr": 1e-3}, segments_per_epoch=16,
                         detector_config={detector: config})
    for run in ("a", "b"):
        train(detector, "studio-intra-random", shards, tmp_path / run, params)
    differ = [name for name in OUTPUTS if (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()]
    assert not differ, f"a rerun with the same seed changed {differ}"


def test_evaluating_twice_writes_the_same_bytes(shards, tmp_path):
    """No wall-clock time in a result: ``created`` is the code's commit time (or SOURCE_DATE_EPOCH)."""
    from benchmark.evaluate import EvaluateParams, evaluate_checkpoint

    params = TrainParams(loop={"epochs": 1, "batch_size": 4}, segments_per_epoch=8,
                         detector_config={"video-baseline": {"frame_size": 32, "width": 8, "depth": 2}})
    train("video-baseline", "studio-intra-random", shards, tmp_path / "run", params)
    for out in ("a", "b"):
        evaluate_checkpoint(tmp_path / "run" / "best.pt", shards, tmp_path / out, EvaluateParams(bootstrap=50))
        time.sleep(1.1)  # a result stamped with the clock (to the second) would now differ
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files
    differ = [str(f) for f in files if (tmp_path / "a" / f).read_bytes() != (tmp_path / "b" / f).read_bytes()]
    assert not differ, f"evaluating the same checkpoint again changed {differ}"


def test_seeding_asks_torch_for_deterministic_kernels_without_loading_inductor():
    # In a fresh interpreter: Inductor's config must come out deterministic when something loads it later.
    code = (
        "import sys, torch\n"
        "from detectors.loop import seed_everything\n"
        "seed_everything(0)\n"
        "assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()\n"
        "assert 'torch._inductor' not in sys.modules, 'seeding imported TorchInductor'\n"
        "import torch._inductor.config as inductor\n"
        "assert inductor.deterministic, 'Inductor loaded later is not deterministic'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_DETERMINISTIC"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
