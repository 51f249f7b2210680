"""Same seed, same bytes: rerunning `avdf train` on the same machine writes identical checkpoints,
metrics and histories, so DVC never reports noise as a change."""
import pytest

from benchmark.train import train
from detectors.training import TrainParams
from pipeline.loading.synthetic import write_synthetic_corpus
from pipeline.shards import CropSizes, write_shards
from test_train_evaluate import SIZES, studio_clips

OUTPUTS = ("best.pt", "last.pt", "metrics.json", "history.json", "train.json", "keys_read.json")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_shards(write_synthetic_corpus(root, studio_clips(), SIZES), root / "shards", sizes=CropSizes(*SIZES),
                 progress=False)
    return root / "shards"


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
