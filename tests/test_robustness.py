"""The robustness axis end to end: `avdf perturb`'s worker on Ray, perturbed test sets scored by
`avdf evaluate --robustness` on the clean split, and the leaderboard's robustness table."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from benchmark.protocols import load_protocol
from pipeline.loading.format import CLIPS_NAME
from pipeline.manifest import read_manifest
from studio_like import studio_clips, write_studio_shards

PROTOCOL = "studio-intra-group"


@pytest.fixture(scope="module")
def setup(studio_shards, tmp_path_factory):
    """A detector trained on the clean studio-like shards, and two perturbed copies of its test clips
    (faces darkened, as colour contrast does; and untouched, the `none` control) in avdf perturb's layout."""
    from benchmark.train import train
    from detectors.training import TrainParams

    root = tmp_path_factory.mktemp("robustness")
    params = TrainParams(loop={"epochs": 2, "lr": 3e-3, "batch_size": 4}, segments_per_epoch=32,
                         detector_config={"video-baseline": {"frame_size": 32, "width": 8, "depth": 2}})
    train("video-baseline", PROTOCOL, studio_shards, root / "model", params)
    test = set(load_protocol(PROTOCOL).split(read_manifest(studio_shards / CLIPS_NAME)).fold("main").test)
    for spec, folder in (("CC:5", "CC_5"), ("none", "none")):
        clips = []
        for clip in studio_clips():
            if clip["key"] not in test:
                continue
            clip = dict(clip, arrays=dict(clip["arrays"]))
            if spec == "CC:5":
                clip["arrays"]["face"] = (clip["arrays"]["face"] * 0.35).astype(np.uint8)
            extra = json.loads(clip.get("extra") or "{}")
            extra["perturbation"] = {"spec": spec, "kind": spec.split(":")[0], "level": 5 if ":" in spec else None,
                                     "seed": 7, "stage_seed": 0}
            clips.append(dict(clip, extra=json.dumps(extra)))
        write_studio_shards(root / "perturbed" / folder, clips=clips)
    return {"root": root, "clean": studio_shards, "test": test}


def test_perturbed_sets_are_scored_on_the_clean_split_with_the_same_keys_and_labels(setup, tmp_path):
    from benchmark.evaluate import EvaluateParams, evaluate_run
    from benchmark.results import read_result

    per_fold, lines = evaluate_run(setup["root"] / "model" / "best.pt", setup["clean"], tmp_path, EvaluateParams(
        bootstrap=20), None, None, None, robustness=setup["root"] / "perturbed")
    clean = pq.read_table(tmp_path / "main" / "scores.parquet")
    assert set(clean.column("key").to_pylist()) == setup["test"]
    for folder, spec in (("CC_5", "CC:5"), ("none", "none")):
        result = read_result(tmp_path / "robustness" / folder / "main" / "metrics.json")
        assert result["extra"]["perturbation"]["spec"] == spec
        scores = pq.read_table(tmp_path / "robustness" / folder / "main" / "scores.parquet")
        assert scores.column("key").to_pylist() == clean.column("key").to_pylist()
        assert scores.column("label").to_pylist() == clean.column("label").to_pylist()
        assert scores.column("category").to_pylist() == clean.column("category").to_pylist()
    none = pq.read_table(tmp_path / "robustness" / "none" / "main" / "scores.parquet")
    darker = pq.read_table(tmp_path / "robustness" / "CC_5" / "main" / "scores.parquet")
    # The `none` control holds the clean arrays: the same scores; the darkened faces change them.
    assert none.column("score").to_pylist() == pytest.approx(clean.column("score").to_pylist())
    assert darker.column("score").to_pylist() != pytest.approx(clean.column("score").to_pylist())
    assert any("under CC_5" in line for line in lines)


def test_the_leaderboard_gets_a_robustness_table_and_curves(setup, tmp_path):
    import shutil

    from benchmark.evaluate import EvaluateParams, evaluate_run
    from benchmark.leaderboard import write_leaderboard

    results = tmp_path / "results" / "video-baseline"
    evaluate_run(setup["root"] / "model" / "best.pt", setup["clean"], results, EvaluateParams(bootstrap=20),
                 None, None, None, robustness=setup["root"] / "perturbed")
    out = write_leaderboard([tmp_path / "results"], tmp_path / "board", plots=True, n_bootstrap=20)
    md = out["leaderboard.md"].read_text()
    robustness = md.split("### Robustness")[1]
    header, _, row = [line for line in robustness.splitlines() if line.startswith("|")][:3]
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))
    auc_cc = read_auc(results / "robustness" / "CC_5" / "main")
    auc_none = read_auc(results / "robustness" / "none" / "main")
    assert cells[f"{PROTOCOL} CC"].startswith(f"{100 * auc_cc:.1f}")
    assert cells[f"{PROTOCOL} none"].startswith(f"{100 * auc_none:.1f}")
    assert cells[f"{PROTOCOL} mean"].startswith(f"{100 * auc_cc:.1f}")  # the control is not a perturbation type
    assert cells[f"{PROTOCOL} clean AUC"].startswith(f"{100 * read_auc(results / 'main'):.1f}")
    # The papers' tables keep the clean result only (two results per cell would be refused).
    assert md.count("| video-baseline |") >= 2
    assert "Robustness: AUC against perturbation severity" in out["leaderboard.html"].read_text()
    shutil.rmtree(tmp_path / "board")


def read_auc(folder) -> float:
    from benchmark.results import read_result

    return read_result(folder / "metrics.json")["metrics"]["overall"]["auc"]


def test_perturb_worker_keeps_key_and_labels_and_records_provenance(ray_session, make_clip, tmp_path):
    """The Ray stage of `avdf perturb` on a real mp4: the row is the clip's own, pointing at the
    perturbed file; every clip gets its own seed, stable across runs."""
    from pipeline.clip import Clip
    from pipeline.manifest import write_manifest
    from pipeline.media import probe
    from pipeline.perturb.worker import clip_seed
    from pipeline.preprocess import collect_items
    from pipeline.runner import run_stage

    src = make_clip("talk.mp4", duration=1)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.mp4").write_bytes(src.read_bytes())
    write_manifest([Clip(key="t/a", corpus="t", identity="a", video_id="a", path="a.mp4", label=1, video_fake=True,
                         category="FVRA", method="wav2lip")], corpus / "manifest.parquet")
    items = collect_items([corpus / "manifest.parquet"])
    result = run_stage("perturb snr:10", items, "pipeline.perturb.worker:PerturbWorker", {"spec": "snr:10", "seed": 3},
                       tmp_path / "out", progress=False)
    (row,) = result.rows
    assert (row["key"], row["label"], row["category"], row["method"]) == ("t/a", 1, "FVRA", "wav2lip")
    provenance = json.loads(row["extra"])["perturbation"]
    assert provenance["spec"] == "snr:10" and provenance["seed"] == clip_seed(3, "t/a") and provenance["stage_seed"] == 3
    assert probe(tmp_path / "out" / row["path"]).video.num_frames == provenance["num_frames"] == 25
    assert clip_seed(3, "t/a") != clip_seed(3, "t/b") and clip_seed(3, "t/a") != clip_seed(4, "t/a")
