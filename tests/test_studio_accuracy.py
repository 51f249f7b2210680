"""Every registered detector learns studio fakes: trained on some identities, clearly above chance
on held-out ones (slow: builds a studio corpus, forges, preprocesses and shards it with the CLI).

The split is the studio-intra-group protocol (identity-disjoint: one ethnicity group for
validation, one for test). "Clearly" = the bootstrap 95 % interval of the test AUC lies
above 0.5, not just its point estimate.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from detectors.registry import DETECTORS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROTOCOL, FOLD = "studio-intra-group", "main"


def avdf(work: Path, *args: str, timeout: float = 1800) -> str:
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=work, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"avdf {' '.join(args)}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default studio profile's data (only the FakeAVCeleb-style recipe: the one the protocol reads)."""
    work = tmp_path_factory.mktemp("accuracy")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"]["recipes"] = ["fakeavceleb"]
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    avdf(work, "fetch", "studio", "--out", "studio")
    avdf(work, "generate", "--manifest", "studio/manifest.parquet", "--out", "generated")
    avdf(work, "preprocess", "--manifest", "studio/manifest.parquet",
         "--manifest", "generated/fakeavceleb/manifest.parquet", "--out", "preprocessed")
    avdf(work, "shard", "--manifest", "preprocessed/manifest.parquet", "--out", "shards")
    for modality in ("audio", "video"):
        avdf(work, "teach", "--modality", modality, "--data", "shards", "--out", f"models/teachers/{modality}.pt")
    return work


@pytest.mark.parametrize("detector", DETECTORS.names())
def test_detector_beats_chance_on_held_out_identities(studio: Path, detector: str) -> None:
    models, results = studio / "models" / detector, studio / "results" / detector
    avdf(studio, "train", detector, "--protocol", PROTOCOL, "--fold", FOLD, "--data", "shards", "--out", str(models))
    avdf(studio, "evaluate", "--checkpoint", str(models / "best.pt"), "--data", "shards", "--out", str(results))
    metrics = json.loads((results / FOLD / "metrics.json").read_text())
    overall = metrics["overall"]
    low, high = overall["ci"]["auc"]["low"], overall["ci"]["auc"]["high"]
    assert low > 0.5, f"{detector}: test AUC {overall['auc']:.3f} [{low:.3f}, {high:.3f}] on held-out identities"
