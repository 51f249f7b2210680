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
from studio_like import SIZES, studio_clips, write_studio_shards

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


def test_avdf_perturb_output_goes_through_preprocess_shard_and_evaluate(ray_session, tmp_path):
    """The seam as the DAG runs it: real mp4 clips -> preprocess -> shards -> a trained detector;
    `perturb_corpus` perturbs, preprocesses and shards the test clips of its fold; `evaluate --robustness`
    scores each set on the clean split: the same keys, labels and categories as the clean test set,
    the `none` control within re-encoding noise of the clean scores, and the provenance carried through."""
    from benchmark.evaluate import EvaluateParams, evaluate_run
    from benchmark.perturb import PerturbParams, PerturbRun, perturb_corpus
    from benchmark.results import read_result
    from benchmark.train import train
    from detectors.training import TrainParams
    from generators.synthetic import make_talking_clip
    from pipeline.loading.synthetic import clip_row
    from pipeline.manifest import write_manifest
    from pipeline.preprocess import PreprocessParams, preprocess_manifest
    from pipeline.shards import CropSizes, ShardParams, write_shards

    corpus = tmp_path / "corpus"
    rows = []
    for i, clip in enumerate(studio_clips()):
        fields = {k: v for k, v in clip.items() if k not in ("key", "num_frames", "arrays")}
        rel = f"media/{clip['key'].replace('/', '__')}.mp4"
        # Fakes are drawn with another skin tone: something for the detector to learn.
        make_talking_clip(corpus / rel, seconds=0.8, size=96, seed=i,
                          skin=(150, 110, 80) if clip.get("video_fake") else (200, 160, 130))
        rows.append(clip_row(clip["key"], rel, 20, **fields))
    write_manifest(rows, corpus / "manifest.parquet")
    preprocess = PreprocessParams(face_size=SIZES[0], gray_face_size=SIZES[1], mouth_size=SIZES[2], detect_every=3)
    pre = preprocess_manifest(corpus / "manifest.parquet", tmp_path / "preprocessed", preprocess)
    assert len(pre.rows) == len(rows) and not pre.failures
    shards = tmp_path / "shards"
    write_shards(tmp_path / "preprocessed" / "manifest.parquet", shards, ShardParams(), CropSizes(*SIZES), progress=False)
    params = TrainParams(loop={"epochs": 1, "lr": 3e-3, "batch_size": 4}, segments_per_epoch=16,
                         detector_config={"video-baseline": {"frame_size": 32, "width": 8, "depth": 2}})
    train("video-baseline", PROTOCOL, shards, tmp_path / "model", params)

    counts = perturb_corpus([corpus / "manifest.parquet"], shards, tmp_path / "perturbed",
                            PerturbParams(specs=["none", "GB:3"], runs=[PerturbRun(PROTOCOL)], seed=5),
                            preprocess, ShardParams())
    test = set(load_protocol(PROTOCOL).split(read_manifest(shards / CLIPS_NAME)).fold("main").test)
    assert counts == {spec: {"clips": len(test), "perturbed": len(test), "preprocessed": len(test), "sharded": len(test)}
                      for spec in ("none", "GB:3")}
    # Once sharded, a spec keeps its shards and its tables, not its perturbed videos and .npz (keep_media false).
    kept = {p.relative_to(tmp_path / "perturbed").parts[1:] for p in (tmp_path / "perturbed").rglob("*") if p.is_file()}
    assert {"videos", "preprocessed"} <= {parts[0] for parts in kept if parts[-1].endswith(".parquet")}
    assert {parts[0] for parts in kept if not parts[-1].endswith(".parquet")} == {"shards"}, sorted(kept)

    results = tmp_path / "results"
    evaluate_run(tmp_path / "model" / "best.pt", shards, results, EvaluateParams(bootstrap=20), None, None, None,
                 robustness=tmp_path / "perturbed")
    clean = pq.read_table(results / "main" / "scores.parquet").to_pydict()
    assert set(clean["key"]) == test
    for folder, spec in (("none", "none"), ("GB_3", "GB:3")):
        run = results / "robustness" / folder / "main"
        scores = pq.read_table(run / "scores.parquet").to_pydict()
        for column in ("key", "label", "category"):
            assert scores[column] == clean[column], (spec, column)
        provenance = read_result(run / "metrics.json")["extra"]["perturbation"]
        assert provenance["spec"] == spec and provenance["stage_seed"] == 5
    none = pq.read_table(results / "robustness" / "none" / "main" / "scores.parquet").column("score").to_numpy()
    assert np.abs(none - np.asarray(clean["score"])).max() < 0.05


def test_a_given_face_track_must_fit_the_frames_and_its_setting_is_checked(make_clip, tmp_path):
    from benchmark.perturb import PerturbParams
    from pipeline.errors import ConfigError, MediaError
    from pipeline.preprocess_clip import PreprocessOptions, preprocess_clip

    clip = make_clip("talk.mp4", duration=1)  # 25 frames, no face: only the given track places the crops
    track = {"landmarks": np.full((25, 68, 2), 60, np.float32), "boxes": np.tile([40, 30, 100, 90], (25, 1)),
             "face_found": np.ones(25, bool)}
    summary = preprocess_clip(clip, tmp_path / "ok.npz", PreprocessOptions(face_size=32), face_track=track)
    assert summary["num_frames"] == 25 and summary["backend"] == {"name": "given face track"}
    with np.load(tmp_path / "ok.npz") as arrays:
        assert np.array_equal(arrays["boxes"], track["boxes"]) and arrays["face"].shape == (25, 32, 32, 3)
    short = {name: a[:20] for name, a in track.items()}
    with pytest.raises(MediaError, match="25 frames, but the given face track has 20") as err:
        preprocess_clip(clip, tmp_path / "bad.npz", PreprocessOptions(face_size=32), face_track=short)
    assert err.value.error_type == "track_mismatch"
    with pytest.raises(ConfigError, match="face_track"):
        PerturbParams(face_track="nearest")
