"""`avdf train`: a protocol fold read from real WebDataset shards, trained through the one loop."""
import json

import pytest

from benchmark.train import train
from detectors.training import TrainParams, build_detector, loop_params_for
from pipeline.errors import ConfigError
from studio_like import write_studio_shards


@pytest.fixture(scope="module")
def shards(studio_shards):
    return studio_shards


def test_train_on_a_protocol_fold_from_shards(shards, tmp_path):
    params = TrainParams(
        loop={"epochs": 4, "lr": 3e-3, "batch_size": 4},
        detector_config={"video-baseline": {"frame_size": 32, "width": 8, "depth": 2}},
    )
    metrics = train("video-baseline", "studio-intra-group", shards, tmp_path, params)
    assert metrics["best_val_auc"] == 1.0  # validation = group-d only
    info = json.loads((tmp_path / "train.json").read_text())
    assert info["protocol"]["name"] == "studio-intra-group" and info["train_clips"] == 12 and info["val_clips"] == 4
    assert (tmp_path / "best.pt").exists()


@pytest.mark.parametrize("protocol", ["studio-intra-random", "studio-intra-group"])
def test_training_reads_only_its_folds_train_and_val_keys(shards, tmp_path, protocol):
    """Split isolation judged by what the loaders yielded, not by what train.json says."""
    from benchmark.protocols import load_protocol
    from detectors.training import KEYS_READ_NAME
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    params = TrainParams(loop={"epochs": 2, "batch_size": 4}, segments_per_epoch=64,
                         detector_config={"video-baseline": {"frame_size": 32, "width": 8, "depth": 2}})
    train("video-baseline", protocol, shards, tmp_path, params)
    read = json.loads((tmp_path / KEYS_READ_NAME).read_text())
    fold = load_protocol(protocol).split(read_manifest(shards / CLIPS_NAME)).fold("main")
    assert read["train"] and set(read["train"]) <= set(fold.train)
    assert set(read["val"]) == set(fold.val)  # checkpoint selection saw the whole validation split
    assert not (set(read["train"]) | set(read["val"])) & set(fold.test)


def test_validation_is_decoded_once_and_may_score_a_fixed_spread_of_segments_per_clip(shards, tmp_path):
    """Validation batches replayed from memory give the run that decoding them every epoch gives; with
    val_segments_per_clip every validation clip is still scored, on that many of its segments."""
    from detectors.training import ReplayedBatches, ShardBatchSource, input_spec_to_segments

    config = {"video-baseline": {"frame_size": 32, "width": 8, "depth": 2}}
    common = dict(segments_per_epoch=16, detector_config=config)
    outputs = {}
    for name, params in {"replayed": TrainParams(loop={"epochs": 2, "batch_size": 4}, **common),
                         "decoded": TrainParams(loop={"epochs": 2, "batch_size": 4}, val_cache_mb=0, **common),
                         "one": TrainParams(loop={"epochs": 2, "batch_size": 4, "val_segments_per_clip": 1}, **common)
                         }.items():
        train("video-baseline", "studio-intra-group", shards, tmp_path / name, params)
        outputs[name] = {f: (tmp_path / name / f).read_bytes() for f in ("best.pt", "last.pt", "history.json")}
    assert outputs["replayed"] == outputs["decoded"]
    full, one = (json.loads(outputs[name]["history.json"]) for name in ("replayed", "one"))
    assert [r["val_clips"] for r in one] == [r["val_clips"] for r in full] == [4, 4]
    assert [r["val_segments"] for r in full] == [8, 8] and [r["val_segments"] for r in one] == [4, 4]

    # One decoding for every pass while the batches fit the budget; a pass each when they do not.
    model = build_detector("video-baseline", "tiny", config["video-baseline"])
    for budget_mb, decoded in ((1, 4), (0, 16)):  # 2 clips of 2 segments, 4 passes
        keys = ["studio/s30-u1", "studio/s31-u1"]
        source = ShardBatchSource(shards, input_spec_to_segments(model.inputs), keys, keys, 4,
                                  TrainParams(val_cache_mb=budget_mb), 0)
        passes = [[b["meta"]["start"].tolist() for b in source.validation()] for _ in range(4)]
        assert passes[0] == passes[3] and isinstance(source.validation_batches, ReplayedBatches)
        assert source.validation_batches.batches.stats.segments == decoded
        next(iter(source.validation()))["inputs"]["face"].zero_()  # a detector writing into its inputs
        assert next(iter(source.validation()))["inputs"]["face"].any()  # does not reach the next epoch


def test_loop_params_merge_order():
    class Detector:
        name = "d"
        TRAIN = {"lr": 1e-4, "epochs": 15, "schedule": {"kind": "step", "milestones": [12]}}

    params = TrainParams(loop={"epochs": 3}, per_detector={"d": {"schedule": {"gamma": 0.5}}})
    loop = loop_params_for(Detector, params)
    assert loop.lr == 1e-4 and loop.epochs == 3
    assert loop.schedule.kind == "step" and loop.schedule.milestones == [12] and loop.schedule.gamma == 0.5
    with pytest.raises(ConfigError, match="unknown key"):
        loop_params_for(Detector, TrainParams(loop={"epoch": 3}))


def test_folds_that_train_on_different_data_need_a_fold(shards, tmp_path):
    with pytest.raises(Exception, match="fold"):
        train("video-baseline", "studio-cross-manipulation", shards, tmp_path, TrainParams())


def test_unknown_detector_and_ablation():
    with pytest.raises(Exception, match="did you mean 'video-baseline'"):
        build_detector("video-baselin", "tiny", {})
    with pytest.raises(ConfigError, match="unknown ablation"):
        build_detector("video-baseline", "tiny", {}, ablation="w/o everything")


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    params = TrainParams(
        loop={"epochs": 3, "lr": 3e-3, "batch_size": 4},
        detector_config={"plugin_detectors:SpyDetector": {"frame_size": 32, "width": 8, "depth": 2}},
    )
    train("plugin_detectors:SpyDetector", "studio-intra-group", shards, out, params)
    return out


def test_evaluate_writes_scores_and_metrics_and_labels_never_reach_the_detector(shards, trained, tmp_path):
    import pyarrow.parquet as pq

    from benchmark.evaluate import EvaluateParams, evaluate_checkpoint
    from benchmark.results import read_result
    from plugin_detectors import SEEN_INPUTS

    SEEN_INPUTS.clear()
    paths = evaluate_checkpoint(trained / "best.pt", shards, tmp_path, EvaluateParams(bootstrap=50))
    assert [p.parent.name for p in paths] == ["main"]  # the protocol's only fold
    result = read_result(paths[0])
    assert result["protocol"]["name"] == "studio-intra-group" and result["detector"]["name"] == "spy"
    assert result["metrics"]["overall"]["auc"] == 1.0
    scores = pq.read_table(paths[0].parent / "scores.parquet").to_pylist()
    assert len(scores) == 4 and {s["key"].split("/")[1][:2] for s in scores} == {"s4"}  # group-e only
    # Label isolation: the detector was only ever handed the modalities it asked for.
    assert SEEN_INPUTS and all(seen == {"face"} for seen in SEEN_INPUTS)


def _clip_scores(model, shards, keys):
    """Mean segment P(fake) per clip, scored here through the evaluation loader (not the training loop)."""
    import numpy as np
    import torch

    from benchmark.evaluate import segment_scores
    from detectors.training import input_spec_to_segments
    from pipeline.loaders import EvalLoader

    rows = segment_scores(model, EvalLoader(shards, input_spec_to_segments(model.inputs), keys=sorted(keys),
                                            batch_size=16, num_workers=0), torch.device("cpu"))
    return {k: float(np.mean([r["score"] for r in rows if r["key"] == k])) for k in sorted(keys)}


def test_the_threshold_is_chosen_on_validation_and_evaluate_applies_it_to_test(shards, trained, tmp_path):
    """best.pt carries the EER threshold of its own validation clips; evaluate reports ACC at that very
    threshold on the test clips instead of choosing one there."""
    import numpy as np
    import pyarrow.parquet as pq

    from benchmark.evaluate import EvaluateParams, evaluate_checkpoint, load_trained
    from benchmark.protocols import load_protocol
    from benchmark.results import read_result
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest

    model, ckpt = load_trained(trained / "best.pt")
    point = ckpt["operating_point"]
    assert point["rule"] == "eer" and point["threshold"] is not None
    clips = read_manifest(shards / CLIPS_NAME)
    label = dict(zip(clips.column("key").to_pylist(), clips.column("label").to_pylist()))
    fold = load_protocol("studio-intra-group").split(clips).fold("main")
    val = _clip_scores(model, shards, fold.val)
    y, s = np.array([label[k] for k in val]), np.array(list(val.values()))
    t = point["threshold"]
    assert not np.isclose(s, t, rtol=0, atol=1e-9).any()  # between validation scores, never on one
    fpr, fnr = np.mean(s[y == 0] >= t), np.mean(s[y == 1] < t)
    assert (point["fpr"], 1 - point["tpr"]) == pytest.approx((fpr, fnr))
    # No other cut of the validation scores brings FPR and FNR closer (the EER point).
    cuts = np.concatenate([[-1.0], np.sort(s) + 1e-12, [2.0]])
    assert abs(fpr - fnr) <= min(abs(np.mean(s[y == 0] >= c) - np.mean(s[y == 1] < c)) for c in cuts) + 1e-12

    result = read_result(evaluate_checkpoint(trained / "best.pt", shards, tmp_path, EvaluateParams(bootstrap=20))[0])
    op = result["metrics"]["operating_point"]
    assert op["threshold"] == t and op["chosen_on"] == "validation"
    scores = pq.read_table(tmp_path / "main" / "scores.parquet")
    ty, ts = scores.column("label").to_numpy(), scores.column("score").to_numpy()
    assert op["acc"] == pytest.approx(np.mean((ts >= t) == ty))
    assert result["metrics"]["calibration"]["brier"] == pytest.approx(np.mean((ts - ty) ** 2))


def test_detect_uses_the_checkpoint_threshold_unless_told_otherwise():
    from benchmark.detect import verdict_threshold

    point = {"threshold": 0.37, "rule": "eer"}
    assert verdict_threshold(None, point) == (0.37, "checkpoint (eer on its validation split)")
    assert verdict_threshold(0.8, point)[0] == 0.8
    assert verdict_threshold(None, None)[0] == 0.5
    assert verdict_threshold(None, {"threshold": None, "reason": "one class"})[0] == 0.5


def test_evaluate_a_folder_scores_every_run_below_it(shards, trained, tmp_path):
    import shutil

    from benchmark.cli import main

    models = tmp_path / "models" / "spy"
    for run in ("studio-intra-group/main", "studio-intra-group/again"):
        shutil.copytree(trained, models / run)
    (tmp_path / "params.yaml").write_text("evaluate: {bootstrap: 20}\n")
    summary = tmp_path / "metrics.json"
    assert main(["--params", str(tmp_path / "params.yaml"), "evaluate", "--checkpoint", str(models), "--data",
                 str(shards), "--out", str(tmp_path / "results"), "--summary", str(summary)]) == 0
    got = json.loads(summary.read_text())
    assert sorted(got) == ["studio-intra-group/again", "studio-intra-group/main"]
    assert all(set(runs) == {"main"} and runs["main"]["auc"] == 1.0 for runs in got.values())
    for run in got:
        assert (tmp_path / "results" / run / "main" / "metrics.json").exists()
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "empty"), "--data", str(shards), "--out",
                 str(tmp_path / "r2")]) == 2


def test_evaluate_exports_av1m_lines_that_submit_back_to_the_same_metrics(shards, trained, tmp_path):
    """``--export-av1m``: each fold's video scores as AV-Deepfake1M ``file;score`` lines (+ the sidecar naming
    protocol, fold and detector); ``avdf submit`` of that file reproduces the evaluation's metrics."""
    from benchmark.cli import main
    from benchmark.results import read_result, read_scores

    params = tmp_path / "params.yaml"
    params.write_text("evaluate: {bootstrap: 20}\n")
    assert main(["--params", str(params), "evaluate", "--checkpoint", str(trained / "best.pt"), "--data", str(shards),
                 "--out", str(tmp_path / "results"), "--export-av1m", str(tmp_path / "av1m")]) == 0
    exported = tmp_path / "av1m" / "main.txt"
    assert len(exported.read_text().splitlines()) == 4  # the fold's four test videos
    assert main(["--params", str(params), "submit", str(exported), "--protocol", "studio-intra-group",
                 "--manifest", str(shards / "clips.parquet"), "--out", str(tmp_path / "subs")]) == 0
    before_path = tmp_path / "results" / "main" / "metrics.json"
    after_path = next((tmp_path / "subs" / "spy").rglob("metrics.json"))
    before, after = read_result(before_path), read_result(after_path)
    assert after["fold"] == "main" and after["detector"]["weights_sha256"] == before["detector"]["weights_sha256"]
    assert after["metrics"]["overall"] == before["metrics"]["overall"]
    assert read_scores(after_path, after).select(["key", "score"]) == read_scores(before_path, before).select(
        ["key", "score"])


def test_evaluate_refuses_a_checkpoint_for_another_detector_or_protocol(shards, trained, tmp_path):
    from benchmark.evaluate import EvaluateParams, evaluate_checkpoint
    from detectors.loop import CheckpointMismatch

    with pytest.raises(CheckpointMismatch, match="not 'audio-baseline'"):
        evaluate_checkpoint(trained / "best.pt", shards, tmp_path, EvaluateParams(), detector="audio-baseline")
    with pytest.raises(CheckpointMismatch, match="trained under protocol"):
        evaluate_checkpoint(trained / "best.pt", shards, tmp_path, EvaluateParams(), protocol_name="studio-intra-random")
    assert not any(tmp_path.iterdir())


@pytest.mark.realmedia
def test_detect_scores_a_real_mp4(trained, shared_media, tmp_path):
    from benchmark.detect import DetectParams, detect_video
    from pipeline.media import SAMPLES_PER_FRAME, decode_audio, decode_video, write_mp4
    from pipeline.preprocess import PreprocessParams

    src = shared_media / "real_talking" / "Hangz-nju-cuhk_Talking-Face_PC-AVS__misc_Audio_Source_00086.mp4"
    clip = write_mp4(tmp_path / "clip.mp4", decode_video(src, num_frames=40),
                     decode_audio(src, num_samples=40 * SAMPLES_PER_FRAME))
    result = detect_video(clip, trained / "best.pt", DetectParams(), PreprocessParams())
    assert 0.0 <= result["scores"]["score"] <= 1.0 and result["segments"] == 2
    from detectors.loop import load_checkpoint

    assert result["threshold"] == load_checkpoint(trained / "best.pt")["operating_point"]["threshold"]
    assert result["verdict"] == ("fake" if result["scores"]["score"] >= result["threshold"] else "real")
    assert result["verdict"] in ("real", "fake") and result["scores"]["video_score"] == result["scores"]["score"]


def test_detect_cli_bad_video_is_one_line(trained, make_clip):
    import subprocess
    import sys
    from pathlib import Path

    avdf = Path(sys.executable).parent / "avdf"
    out = subprocess.run([str(avdf), "detect", str(make_clip("pattern.mp4", duration=1)), "--checkpoint",
                          str(trained / "best.pt")], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parent)})
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "pattern.mp4" in out.stderr and "face" in out.stderr


@pytest.mark.realmedia
def test_detect_cli_stderr_is_clean_and_debug_shows_native_logs(trained, shared_media, tmp_path):
    """A user sees the JSON and nothing else: the face detector's native (TensorFlow Lite, absl)
    log lines never reach stderr, unless ``--debug`` asks for everything."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pipeline.media import SAMPLES_PER_FRAME, decode_audio, decode_video, write_mp4

    src = shared_media / "real_talking" / "Hangz-nju-cuhk_Talking-Face_PC-AVS__misc_Audio_Source_00086.mp4"
    clip = write_mp4(tmp_path / "clip.mp4", decode_video(src, num_frames=40),
                     decode_audio(src, num_samples=40 * SAMPLES_PER_FRAME))
    avdf = Path(sys.executable).parent / "avdf"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}

    def detect(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(avdf), *flags, "detect", str(clip), "--checkpoint", str(trained / "best.pt"),
                               "--json"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)

    out = detect()
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["segments"] == 2
    assert out.stderr == "", f"third-party lines on stderr:\n{out.stderr}"
    debug = detect("--debug")
    assert debug.returncode == 0 and json.loads(debug.stdout)["segments"] == 2
    assert "TensorFlow Lite" in debug.stderr  # mediapipe's own start-up line, shown again


def test_readme_plugin_detector_is_ranked_end_to_end(shards, tmp_path):
    """The README's worked example, as a user would run it: a temporary package, the CLI, the leaderboard."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "class MyDetector" in block)
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "mydetector.py").write_text(code)
    (tmp_path / "params.yaml").write_text("train:\n  loop: {epochs: 2, batch_size: 4, lr: 3.0e-3}\nevaluate:\n  bootstrap: 20\n")
    avdf = str(Path(sys.executable).parent / "avdf")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def run(*args):
        out = subprocess.run([avdf, "--params", str(tmp_path / "params.yaml"), *args], capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    run("train", "mypkg.mydetector:MyDetector", "--protocol", "studio-intra-group", "--fold", "main",
        "--data", str(shards), "--out", "models/mine")
    run("evaluate", "--checkpoint", "models/mine/best.pt", "--data", str(shards), "--out", "results/mine")
    run("leaderboard", "results", "--out", "board")
    board = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "my-detector" in board and "studio" in board


def test_evaluate_skips_a_fold_the_data_cannot_fill_and_scores_each_clip_once(tmp_path):
    """Cross-dataset with only W2L-style fakes forged (cross and self-driven): FAV, W2L and W2L_S are scored,
    every other subset is skipped and recorded; a clip two test sets hold (W2L's and W2L_S's real clips)
    is scored once."""
    from benchmark.cli import main
    from benchmark.protocols import load_protocol
    from pipeline.loading.format import CLIPS_NAME
    from pipeline.manifest import read_manifest
    from plugin_detectors import SEEN_INPUTS
    from studio_like import studio_clips

    clips = studio_clips(cmdfd_w2l=True)
    clips += [{**c, "key": f"{c['key']}-self", "self_audio": True,
               "extra": json.dumps({"recipe": "cmdfd", "subset": "W2L_S"})}
              for c in clips if json.loads(c.get("extra", "{}")).get("subset") == "W2L"]
    write_studio_shards(tmp_path, clips)
    params = TrainParams(loop={"epochs": 1, "batch_size": 4},
                         detector_config={"plugin_detectors:SpyDetector": {"frame_size": 32, "width": 8, "depth": 2}})
    train("plugin_detectors:SpyDetector", "studio-cross-dataset", tmp_path / "shards", tmp_path / "run", params, "W2L")
    (tmp_path / "params.yaml").write_text("evaluate: {bootstrap: 10, batch_size: 1}\n")  # a forward per segment
    summary = tmp_path / "metrics.json"
    SEEN_INPUTS.clear()
    assert main(["--params", str(tmp_path / "params.yaml"), "evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt"),
                 "--data", str(tmp_path / "shards"), "--out", str(tmp_path / "results"), "--summary", str(summary)]) == 0
    protocol, clips = load_protocol("studio-cross-dataset"), read_manifest(tmp_path / "shards" / CLIPS_NAME)
    tests = [set(protocol.split(clips, folds=[f]).fold(f).test) for f in ("FAV", "W2L", "W2L_S")]
    assert tests[1] & tests[2]
    assert len(SEEN_INPUTS) == 2 * len(set().union(*tests))  # 2 segments per 32-frame clip
    got = json.loads(summary.read_text())
    assert "auc" in got["W2L"] and (tmp_path / "results" / "W2L" / "metrics.json").exists()
    assert "auc" in got["W2L_S"]
    skipped = {fold for fold, m in got.items() if "skipped" in m}
    assert skipped == {"VRT", "VRT_S", "A2H", "A2H_S", "MIT", "MIT_S"}
    assert "auc" in got["FAV"]  # the FakeAVCeleb-style test set of the same model
    assert "no fake clips" in got["MIT"]["skipped"] and not (tmp_path / "results" / "MIT").exists()


def test_manifest_rows_follow_the_file_and_give_each_caller_its_own_rows(shards, tmp_path):
    import shutil

    from benchmark.evaluate import manifest_rows
    from pipeline.manifest import read_manifest, write_manifest

    path = tmp_path / "clips.parquet"
    shutil.copy(shards / "clips.parquet", path)
    rows = manifest_rows(path)
    assert [r["key"] for r in rows] == read_manifest(path).column("key").to_pylist()
    rows[0]["label"] = "changed by a caller"
    assert manifest_rows(path)[0]["label"] != "changed by a caller"  # each call gets its own rows
    write_manifest(read_manifest(path).slice(0, 3), path)  # the file changes: read again
    assert len(manifest_rows(path)) == 3
