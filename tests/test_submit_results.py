"""The results schema (benchmark/results.py): strict reading, atomic writing, scoring."""
from __future__ import annotations

import copy
import json

import numpy as np
import pyarrow as pa
import pytest

import leaderboard_data as data
from benchmark.protocols import load_protocol
from benchmark.results import (
    METRICS_NAME,
    SCHEMA,
    DetectorInfo,
    PredictionsError,
    ResultsError,
    average_with_ci,
    read_result,
    read_scores,
    score_predictions,
    video_level,
    write_result,
    write_scored,
)

PROTOCOL = "studio-cross-dataset"


@pytest.fixture(scope="module")
def scored():
    clips = data.studio_manifest(per_group=2)
    protocol = load_protocol(PROTOCOL)
    preds = data.predictions(PROTOCOL, clips, fold="W2L")
    preds = preds.append_column("video_score", pa.array([None] + preds.column("score").to_pylist()[1:]))
    return clips, score_predictions(protocol, "W2L", clips, preds, detector=DetectorInfo("cad", "full"),
                                    n_bootstrap=50)


@pytest.fixture
def written(tmp_path, scored):
    path = write_scored(tmp_path / "cad" / "W2L", scored[1])
    return path, json.loads(path.read_text())


def test_round_trip(written):
    path, raw = written
    result = read_result(path)
    assert result == raw
    assert result["schema"] == SCHEMA
    assert result["protocol"]["name"] == PROTOCOL and result["fold"] == "W2L"
    assert result["protocol"]["folds"][:3] == ["FAV", "W2L", "W2L_S"]
    assert len(result["data_hash"]) == 64 and result["created"].endswith("Z")
    scores = read_scores(path, result)
    assert scores.column_names == ["key", "video_id", "score", "video_score", "label", "video_fake",
                                   "audio_fake", "category"]
    assert scores.column("video_score")[0].as_py() is None
    # A null video score for one video: no per-modality block rather than a partial one.
    assert "modalities" not in result["metrics"]
    assert set(scores.column("category").to_pylist()) == {"real", "W2L"}


@pytest.mark.parametrize("mutate, fragment", [
    (lambda r: r.pop("fold"), "field 'fold' is missing"),
    (lambda r: r.update(schema="avdf-results/9"), "field 'schema' is 'avdf-results/9'"),
    (lambda r: r.update(colour="red"), "field 'colour' is not part of schema"),
    (lambda r: r["detector"].update(kind="oracle"), "field 'detector.kind' must be one of"),
    (lambda r: r["detector"].update(weights_sha256="abc"), "field 'detector.weights_sha256' does not match"),
    (lambda r: r["metrics"]["overall"].update(auc=1.7), "field 'metrics.overall.auc' must be in [0.0, 1.0]"),
    (lambda r: r["metrics"]["overall"].update(acc="high"), "field 'metrics.overall.acc' must be a finite number"),
    (lambda r: r["metrics"]["overall"].pop("n_fake"), "field 'metrics.overall.n_fake' is missing"),
    (lambda r: r["metrics"]["overall"]["ci"]["ap"].pop("low"), "field 'metrics.overall.ci.ap.low' is missing"),
    (lambda r: r["metrics"]["per_category"]["W2L"].update(eer=None, n=-1),
     "field 'metrics.per_category.W2L.n' must be in"),
    (lambda r: r.update(fold="KoDF2"), "field 'fold' 'KoDF2' is not one of the protocol's folds"),
    (lambda r: r["scores"].update(path="../elsewhere.parquet"), "field 'scores.path' must be relative"),
    (lambda r: r.update(created="yesterday"), "field 'created' must be an ISO-8601 time"),
    (lambda r: r["protocol"].update(folds="W2L"), "field 'protocol.folds' must be a list of strings"),
])
def test_read_result_names_the_bad_field(tmp_path, written, mutate, fragment):
    _, raw = written
    bad = copy.deepcopy(raw)
    mutate(bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ResultsError) as exc:
        read_result(path)
    assert str(exc.value).startswith(str(path))
    assert fragment in str(exc.value)


def test_read_result_bad_json_and_missing(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        read_result(path)
    with pytest.raises(ResultsError, match="does not exist"):
        read_result(tmp_path / "none.json")


def test_write_result_refuses_invalid_and_leaves_nothing(tmp_path, written):
    _, raw = written
    bad = copy.deepcopy(raw)
    bad["metrics"]["overall"]["auc"] = float("nan")
    with pytest.raises(ResultsError, match="metrics.overall.auc"):
        write_result(tmp_path / "out" / METRICS_NAME, bad)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_changed_scores_are_detected(written):
    path, raw = written
    scores = path.parent / raw["scores"]["path"]
    scores.write_bytes(scores.read_bytes() + b"x")
    with pytest.raises(ResultsError, match="changed since the result was written"):
        read_scores(path, read_result(path))


def test_labels_come_from_the_manifest(scored):
    clips, s = scored
    label_of = {c.key: c.label for c in clips}
    keys = s.scores.column("key").to_pylist()
    assert s.scores.column("label").to_pylist() == [label_of[k] for k in keys]
    m = s.result["metrics"]["overall"]
    assert m["n_real"] == sum(1 for k in keys if label_of[k] == 0) and m["n_fake"] == len(keys) - m["n_real"]


def test_score_predictions_checks_keys(scored):
    clips, _ = scored
    protocol = load_protocol(PROTOCOL)
    preds = data.predictions(PROTOCOL, clips, fold="VRT")
    with pytest.raises(PredictionsError, match=r"fold W2L\): .* have no prediction"):
        score_predictions(protocol, "W2L", clips, preds, detector=DetectorInfo("x"), n_bootstrap=0)


def test_video_level_means_segments():
    rows = pa.table({"key": ["a/1", "a/1", "a/2"], "score": [0.2, 0.4, 0.9], "audio_score": [0.1, 0.3, 0.5]})
    videos = video_level(rows)
    assert videos.column("key").to_pylist() == ["a/1", "a/2"]
    assert videos.column("score").to_pylist() == pytest.approx([0.3, 0.9])
    assert videos.column("audio_score").to_pylist() == pytest.approx([0.2, 0.5])
    assert videos.column("n_segments").to_pylist() == [2, 1]


def test_average_with_ci_is_the_plain_mean():
    rng = np.random.default_rng(1)
    data_ = {}
    summaries = {}
    for name in ("A", "B", "C"):
        y = np.r_[np.zeros(30), np.ones(30)].astype(int)
        s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
        data_[name] = (y, s)
        from benchmark.metrics import binary_metrics

        summaries[name] = binary_metrics(y, s)
    avg = average_with_ci(summaries, ["A", "B", "C"], data_, n_bootstrap=200, seed=3)
    for metric in ("acc", "auc", "ap", "eer"):
        assert avg[metric] == pytest.approx(np.mean([summaries[n][metric] for n in "ABC"]))
        assert avg["ci"][metric]["low"] <= avg[metric] <= avg["ci"][metric]["high"]
    again = average_with_ci(summaries, ["A", "B", "C"], data_, n_bootstrap=200, seed=3)
    assert again == avg
    assert "ci" not in average_with_ci(summaries, ["A", "B"])


# ----------------------------------------------------------------------------- per-modality results

def _one_modality_fakes():
    """Reals, video-only fakes (FVRA) and audio-only fakes (RVFA): a score aimed at the wrong
    modality's label cannot pass as right."""
    from pipeline.clip import Clip, category_of

    clips = []
    for g, group in enumerate(data.STUDIO_GROUPS):
        for i in range(4):
            ident = f"m{g}{i}"
            for kind, vf, af in (("real", False, False), ("fv", True, False), ("fa", False, True)):
                clips.append(Clip(
                    key=f"studio/{ident}-{kind}", corpus="studio", identity=ident, video_id=f"{ident}-{kind}",
                    path="x.mp4", label=int(vf or af), video_fake=vf, audio_fake=af,
                    category=category_of(vf, af), method={"real": "real", "fv": "wav2lip", "fa": "rtvc"}[kind],
                    ethnicity=group, extra=None if kind == "real" else json.dumps({"recipe": "fakeavceleb"})))
    return clips


def test_each_modality_is_scored_against_its_own_label():
    from sklearn.metrics import roc_auc_score

    clips = _one_modality_fakes()
    protocol = load_protocol("studio-intra-random")
    fold = protocol.split(clips).fold("main")
    by_key = {c.key: c for c in clips}
    rng = np.random.default_rng(0)
    keys = list(fold.test)
    vf = np.array([by_key[k].video_fake for k in keys], float)
    af = np.array([by_key[k].audio_fake for k in keys], float)
    # A video branch that sees video forgeries (noisily) and an audio branch that sees audio ones.
    video = np.clip(0.3 + 0.4 * vf + rng.normal(0, 0.15, len(keys)), 0, 1)
    audio = np.clip(0.3 + 0.4 * af + rng.normal(0, 0.15, len(keys)), 0, 1)
    preds = pa.table({"key": keys, "score": np.maximum(video, audio), "video_score": video, "audio_score": audio})
    scored = score_predictions(protocol, fold, clips, preds, detector=DetectorInfo("x", None), n_bootstrap=50)
    mods = scored.result["metrics"]["modalities"]
    assert set(mods) == {"video", "audio"}
    # Independent reference: scikit-learn on the manifest's modality labels.
    assert mods["video"]["auc"] == pytest.approx(roc_auc_score(vf, video), abs=1e-12)
    assert mods["audio"]["auc"] == pytest.approx(roc_auc_score(af, audio), abs=1e-12)
    assert mods["video"]["acc"] == pytest.approx(np.mean((video >= 0.5) == vf), abs=1e-12)
    assert mods["video"]["n_fake"] == int(vf.sum()) and mods["audio"]["n_fake"] == int(af.sum())
    # Scored against the other modality's label, each branch would look far worse.
    assert roc_auc_score(af, video) < 0.7 < mods["video"]["auc"]
    assert roc_auc_score(vf, audio) < 0.7 < mods["audio"]["auc"]
    table = scored.scores
    assert table.column("video_fake").to_pylist() == vf.astype(int).tolist()
    assert table.column("audio_fake").to_pylist() == af.astype(int).tolist()


def test_leaderboard_shows_per_modality_columns(tmp_path):
    import csv

    from benchmark.leaderboard import write_leaderboard
    from benchmark.leaderboard_tables import MODALITY_TITLE

    clips = _one_modality_fakes()
    protocol = load_protocol("studio-intra-random")
    fold = protocol.split(clips).fold("main")
    keys = list(fold.test)
    by_key = {c.key: c for c in clips}
    video = np.array([0.9 if by_key[k].video_fake else 0.1 for k in keys])
    audio = np.array([0.8 if by_key[k].audio_fake else 0.2 for k in keys])
    preds = pa.table({"key": keys, "score": np.maximum(video, audio), "video_score": video, "audio_score": audio})
    scored = score_predictions(protocol, fold, clips, preds, detector=DetectorInfo("avprompt", "full"),
                               n_bootstrap=20)
    write_scored(tmp_path / "results" / "avprompt" / "main", scored)
    board = write_leaderboard([tmp_path / "results"], tmp_path / "board", plots=False, n_bootstrap=20)
    md = board["leaderboard.md"].read_text()
    assert MODALITY_TITLE in md and "studio-intra-random ACC_v" in md and "studio-intra-random AUC_a" in md
    row = next(csv.DictReader(open(board["leaderboard.csv"])))
    column = f"studio-intra-random@{protocol.version}/main"
    assert float(row[f"{column}/VIDEO.AUC"]) == 1.0 and float(row[f"{column}/AUDIO.AUC"]) == 1.0
    assert float(row[f"{column}/VIDEO.ACC"]) == 1.0
