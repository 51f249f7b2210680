"""``avdf submit``: each malformed predictions file gets its own clear error and writes nothing;
a valid one is scored with the manifest's labels into the leaderboard's results folder."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import leaderboard_data as data
from benchmark.cli import main
from benchmark.metrics import evaluate_scores
from benchmark.protocols import load_protocol
from benchmark.results import METRICS_NAME, SCORES_NAME, read_result, read_scores

PROTOCOL = "studio-intra-random"
VERSION = load_protocol(PROTOCOL).version  # the newest, which a plain protocol name means


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio")
    clips = data.studio_manifest()
    manifest = data.write(clips, folder / "manifest.parquet")
    params = folder / "params.yaml"
    params.write_text("evaluate:\n  bootstrap: 100\n  seed: 0\n")
    return clips, manifest, params


@pytest.fixture
def good(studio) -> pa.Table:
    clips, _, _ = studio
    return data.predictions(PROTOCOL, clips, quality=1.0)


def submit(studio, tmp_path: Path, predictions: pa.Table | bytes | str, *extra: str,
           protocol: str = PROTOCOL, name: str = "preds.parquet") -> tuple[int, Path]:
    """Write the predictions and run ``avdf submit``; returns (exit code, results folder)."""
    _, manifest, params = studio
    path = tmp_path / name
    if isinstance(predictions, pa.Table):
        if name.endswith(".csv"):
            pacsv.write_csv(predictions, path)
        else:
            pq.write_table(predictions, path)
    elif isinstance(predictions, bytes):
        path.write_bytes(predictions)
    else:
        path.write_text(predictions)
    out = tmp_path / "results"
    rc = main(["--params", str(params), "submit", str(path), "--protocol", protocol, "--manifest", str(manifest),
               "--out", str(out), *extra])
    return rc, out


def assert_rejected(rc: int, out: Path, capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("avdf submit: error: ")
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert not out.exists() or not any(out.rglob("*")), "a rejected submission wrote files"
    return err


def with_column(table: pa.Table, name: str, values) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, pa.array(values))
    return table.append_column(name, pa.array(values))


# --------------------------------------------------------------------------- malformed files

def test_missing_score_column(studio, tmp_path, good, capsys):
    bad = good.rename_columns(["key", "prob"])
    rc, out = submit(studio, tmp_path, bad, name="preds.csv")
    assert_rejected(rc, out, capsys, "missing column(s) ['score']", "found columns ['key', 'prob']")


def test_duplicate_key(studio, tmp_path, good, capsys):
    dup = pa.concat_tables([good, good.slice(0, 2)])
    rc, out = submit(studio, tmp_path, dup)
    first = good.column("key")[0].as_py()
    assert_rejected(rc, out, capsys, "2 key(s) appear more than once", first, "exactly once")


def test_missing_test_keys(studio, tmp_path, good, capsys):
    rc, out = submit(studio, tmp_path, good.slice(3))
    dropped = good.column("key").to_pylist()[:3]
    assert_rejected(rc, out, capsys, f"3 of {good.num_rows} test key(s) have no prediction", dropped[0])


def test_unknown_keys(studio, tmp_path, good, capsys):
    extra = pa.table({"key": ["studio/not-a-clip", "studio/zz-9"], "score": [0.5, 0.5]})
    rc, out = submit(studio, tmp_path, pa.concat_tables([good, extra]))
    assert_rejected(rc, out, capsys, "2 key(s) are not in the test set", "studio/not-a-clip")


def test_all_key_problems_reported_together(studio, tmp_path, good, capsys):
    bad = pa.concat_tables([good.slice(1), pa.table({"key": ["studio/nope"], "score": [0.1]})])
    rc, out = submit(studio, tmp_path, bad)
    assert_rejected(rc, out, capsys, "1 of", "have no prediction", "1 key(s) are not in the test set")


@pytest.mark.parametrize("value, shown", [(float("nan"), "null/NaN"), (float("inf"), "inf"),
                                          (-0.25, "-0.25"), (1.5, "1.5")])
def test_bad_score_values(studio, tmp_path, good, capsys, value, shown):
    scores = good.column("score").to_pylist()
    scores[4] = value
    rc, out = submit(studio, tmp_path, with_column(good, "score", scores))
    key = good.column("key")[4].as_py()
    assert_rejected(rc, out, capsys, "1 score(s) are not finite numbers in [0, 1]", f"{key!r} = {shown}")


def test_nan_in_csv(studio, tmp_path, good, capsys):
    text = "key,score\n" + "".join(
        f"{k},{'nan' if i == 0 else s}\n" for i, (k, s) in enumerate(zip(good.column("key").to_pylist(),
                                                                         good.column("score").to_pylist()))
    )
    rc, out = submit(studio, tmp_path, text, name="preds.csv")
    assert_rejected(rc, out, capsys, "not finite numbers in [0, 1]")


def test_text_scores(studio, tmp_path, good, capsys):
    text = "key,score\n" + "".join(f"{k},high\n" for k in good.column("key").to_pylist())
    rc, out = submit(studio, tmp_path, text, name="preds.csv")
    assert_rejected(rc, out, capsys, "column 'score' must hold numbers, got string")


def test_wrong_protocol_in_column(studio, tmp_path, good, capsys):
    claimed = with_column(good, "protocol", ["studio-intra-group"] * good.num_rows)
    rc, out = submit(studio, tmp_path, claimed)
    assert_rejected(rc, out, capsys, "predictions are for protocol 'studio-intra-group'",
                    f"--protocol names '{PROTOCOL}'")


def test_wrong_protocol_in_sidecar(studio, tmp_path, good, capsys):
    (tmp_path / "preds.parquet.json").write_text(json.dumps({"protocol": "studio-cross-dataset"}))
    rc, out = submit(studio, tmp_path, good)
    assert_rejected(rc, out, capsys, "'studio-cross-dataset'", f"'{PROTOCOL}'")


def test_wrong_version_claimed(studio, tmp_path, good, capsys):
    claimed = with_column(good, "protocol_version", ["0.9.0"] * good.num_rows)
    rc, out = submit(studio, tmp_path, claimed, protocol=f"{PROTOCOL}@{VERSION}")
    assert_rejected(rc, out, capsys, "version '0.9.0'", f"version '{VERSION}'")


def test_unknown_version(studio, tmp_path, good, capsys):
    rc, out = submit(studio, tmp_path, good, protocol=f"{PROTOCOL}@2.0.0")
    assert_rejected(rc, out, capsys, "has no version '2.0.0'", "available: ['1.0.0', '1.1.0', '1.2.0']")


def test_protocol_hash_mismatch(studio, tmp_path, good, capsys):
    (tmp_path / "preds.json").write_text(json.dumps({"protocol_hash": "0" * 64}))
    rc, out = submit(studio, tmp_path, good)
    assert_rejected(rc, out, capsys, "different definition", PROTOCOL)


def test_unknown_sidecar_key(studio, tmp_path, good, capsys):
    (tmp_path / "preds.json").write_text(json.dumps({"protocl": PROTOCOL}))
    rc, out = submit(studio, tmp_path, good)
    assert_rejected(rc, out, capsys, "unknown sidecar key(s) ['protocl']")


def test_unknown_fold(studio, tmp_path, good, capsys):
    rc, out = submit(studio, tmp_path, good, "--fold", "FVFA-XX")
    assert_rejected(rc, out, capsys, "fold 'FVFA-XX' is not a fold of", "['main']")


def test_fold_column_disagrees_with_option(studio, tmp_path, capsys):
    clips = studio[0]
    preds = data.predictions("studio-cross-manipulation", clips, all_folds=True)
    rc, out = submit(studio, tmp_path, preds, "--fold", "RVFA", protocol="studio-cross-manipulation")
    assert_rejected(rc, out, capsys, "predictions for fold(s) ['FVFA-FS', 'FVFA-GAN', 'FVFA-WL', 'FVRA-WL', 'RVFA']",
                    "fold 'RVFA' was asked for")


def test_multi_fold_protocol_needs_a_fold(studio, tmp_path, capsys):
    clips = studio[0]
    preds = data.predictions("studio-cross-manipulation", clips, fold="RVFA")
    rc, out = submit(studio, tmp_path, preds, protocol="studio-cross-manipulation")
    assert_rejected(rc, out, capsys, "has 5 folds", "--fold")


def test_predictions_for_another_fold(studio, tmp_path, capsys):
    """RVFA predictions submitted as the FVRA-WL fold: the held-out fakes differ."""
    clips = studio[0]
    preds = data.predictions("studio-cross-manipulation", clips, fold="RVFA")
    rc, out = submit(studio, tmp_path, preds, "--fold", "FVRA-WL", protocol="studio-cross-manipulation")
    assert_rejected(rc, out, capsys, "fold FVRA-WL", "have no prediction", "are not in the test set",
                    "exactly the test set of fold 'RVFA': wrong --fold?")


@pytest.mark.parametrize("name, content, fragment", [
    ("preds.parquet", bytes(range(256)) * 8, "not a Parquet file"),
    ("preds.parquet", b"PAR1" + b"\x00garbage" * 50, "not a readable Parquet file"),
    ("preds.csv", b"\x89PNG\r\n\x1a\n" + bytes(200), "neither a Parquet file nor a CSV"),
    ("preds.csv", b"", "neither a Parquet file nor a CSV"),
    ("preds.bin", b"\x00\x01\x02" * 100, "neither a Parquet file nor a CSV"),
])
def test_garbage_files(studio, tmp_path, capsys, name, content, fragment):
    rc, out = submit(studio, tmp_path, content, name=name)
    assert_rejected(rc, out, capsys, fragment, name)


def test_missing_file(studio, tmp_path, capsys):
    _, manifest, params = studio
    out = tmp_path / "results"
    rc = main(["--params", str(params), "submit", str(tmp_path / "none.csv"), "--protocol", PROTOCOL,
               "--manifest", str(manifest), "--out", str(out)])
    assert_rejected(rc, out, capsys, "none.csv: predictions file does not exist")


# --------------------------------------------------------------------------- valid submissions

def test_valid_csv_is_scored_with_manifest_labels(studio, tmp_path, good, capsys):
    clips, _, _ = studio
    rc, out = submit(studio, tmp_path, good, "--name", "my-model", "--label", "r8", name="preds.csv")
    assert rc == 0, capsys.readouterr().err
    folder = out / "my-model" / f"{PROTOCOL}-v{VERSION}" / "main"
    assert sorted(p.name for p in folder.iterdir()) == [METRICS_NAME, SCORES_NAME]
    assert not [p for p in out.rglob(".*")], "temporary files left behind"
    result = read_result(folder / METRICS_NAME)
    protocol = load_protocol(PROTOCOL)
    assert result["detector"] == {"name": "my-model", "label": "r8", "weights_sha256": None, "kind": "submission"}
    assert result["protocol"]["hash"] == protocol.hash and result["fold"] == "main"
    assert result["extra"]["predictions"] == "preds.csv"
    scores = read_scores(folder / METRICS_NAME, result)
    assert scores.column_names == ["key", "video_id", "score", "label", "video_fake", "audio_fake", "category"]
    fold = protocol.split(clips).fold("main")
    assert scores.column("key").to_pylist() == list(fold.test)
    label_of = {c.key: c.label for c in clips}
    assert scores.column("label").to_pylist() == [label_of[k] for k in fold.test]
    # Exactly the metrics module's numbers on the same videos (same bootstrap settings).
    expected = evaluate_scores(scores.column("label").to_numpy(), scores.column("score").to_numpy(),
                               scores.column("category").to_pylist(), n_bootstrap=100, seed=0)
    overall = dict(result["metrics"]["overall"])
    assert set(overall.pop("tpr_at_fpr")) == {"1%", "5%"}  # beside the papers' metrics (benchmark.operating_report)
    assert overall == expected["overall"]
    # A submission carries no validation-chosen threshold: nothing is made up in its place.
    assert result["metrics"]["operating_point"]["threshold"] is None
    assert result["metrics"]["per_category"] == expected["per_category"]
    # AVG-FV inside the fold = mean of the four FV categories.
    avg = result["metrics"]["averages"]["AVG-FV"]
    members = ["FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL"]
    assert avg["members"] == members
    assert avg["auc"] == pytest.approx(np.mean([expected["per_category"][m]["auc"] for m in members]))
    assert avg["ci"]["auc"]["low"] <= avg["auc"] <= avg["ci"]["auc"]["high"]
    assert "my-model" in capsys.readouterr().out


def test_multi_fold_file_writes_every_fold_and_resubmission_replaces(studio, tmp_path, capsys):
    clips = studio[0]
    protocol = "studio-cross-manipulation"
    preds = data.predictions(protocol, clips, all_folds=True)
    rc, out = submit(studio, tmp_path, preds, "--name", "xm", protocol=protocol)
    assert rc == 0, capsys.readouterr().err
    folder = out / "xm" / f"{protocol}-v{load_protocol(protocol).version}"
    assert sorted(p.name for p in folder.iterdir()) == sorted(load_protocol(protocol).folds)
    before = read_result(folder / "RVFA" / METRICS_NAME)
    better = with_column(preds, "score", [float(v) for v in np.clip(
        np.asarray(preds.column("score").to_pylist()) * 0 + 0.5, 0, 1)])
    rc, _ = submit(studio, tmp_path, better, "--name", "xm", protocol=protocol)
    assert rc == 0
    after = read_result(folder / "RVFA" / METRICS_NAME)
    assert after["metrics"]["overall"]["auc"] == 0.5 != before["metrics"]["overall"]["auc"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(load_protocol(protocol).folds)
    assert not [p for p in out.rglob(".*")], "temporary files left behind"


def test_claims_that_match_are_accepted(studio, tmp_path, good, capsys):
    claimed = with_column(with_column(good, "protocol", [PROTOCOL] * good.num_rows),
                          "protocol_version", [VERSION] * good.num_rows)
    (tmp_path / "preds.json").write_text(json.dumps({"name": "side-name", "fold": "main",
                                                     "weights_sha256": "a" * 64}))
    rc, out = submit(studio, tmp_path, claimed)
    assert rc == 0, capsys.readouterr().err
    result = read_result(out / "side-name" / f"{PROTOCOL}-v{VERSION}" / "main" / METRICS_NAME)
    assert result["detector"]["weights_sha256"] == "a" * 64
