"""Metrics against scikit-learn and hand-made cases; aggregation; bootstrap intervals."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from benchmark import metrics as M


def _data(seed, n, decimals=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    s = np.clip(rng.normal(0.4 + 0.25 * y, 0.2), 0, 1)
    return y, (np.round(s, decimals) if decimals is not None else s)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("decimals", [None, 1])  # 1 decimal: many tied scores
def test_matches_scikit_learn(seed, decimals):
    y, s = _data(seed, 300, decimals)
    report = M.binary_metrics(y, s)
    assert report["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert report["ap"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert report["acc"] == pytest.approx(accuracy_score(y, s >= 0.5), abs=1e-12)
    assert M.roc_auc(y, s) == report["auc"] and M.average_precision(y, s) == report["ap"]
    assert (report["n"], report["n_real"], report["n_fake"]) == (300, int((y == 0).sum()), int(y.sum()))
    json.dumps(report, allow_nan=False)


def test_eer_hand_made_cases():
    # Perfectly separated: no threshold errs.
    assert M.equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    # Perfectly inverted: every threshold errs on one side.
    assert M.equal_error_rate([0, 0, 1, 1], [0.8, 0.9, 0.1, 0.2]) == pytest.approx(1.0)
    # Threshold 0.6 mislabels one real of four (FPR 1/4) and one fake of four (FNR 1/4).
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    assert M.equal_error_rate(y, s) == pytest.approx(0.25)
    # FPR = FNR falls between ROC points (1/3, 1/2) and (1/3, 0): interpolated to 1/3.
    assert M.equal_error_rate([0, 0, 0, 1, 1], [0.2, 0.5, 0.8, 0.6, 0.9]) == pytest.approx(1 / 3)
    # All scores tied: the ROC is the diagonal, EER 0.5 (and AUC 0.5).
    assert M.equal_error_rate([0, 1, 0, 1], [0.5] * 4) == pytest.approx(0.5)
    assert M.roc_auc([0, 1, 0, 1], [0.5] * 4) == pytest.approx(0.5)


def test_eer_agrees_with_a_brute_force_scan():
    y, s = _data(7, 400)
    fpr = [((s >= t) & (y == 0)).sum() / (y == 0).sum() for t in np.sort(s)]
    fnr = [((s < t) & (y == 1)).sum() / (y == 1).sum() for t in np.sort(s)]
    i = int(np.argmin(np.abs(np.subtract(fpr, fnr))))
    eer = M.equal_error_rate(y, s)
    assert min(fpr[i], fnr[i]) - 1e-9 <= eer <= max(fpr[i], fnr[i]) + 1e-9


def test_single_class_gives_clear_error_or_none_with_reason():
    with pytest.raises(M.MetricUndefined, match=r"AUC is undefined: no fake videos"):
        M.roc_auc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(M.MetricUndefined, match=r"EER is undefined: no real videos"):
        M.equal_error_rate([1, 1], [0.1, 0.9])
    assert M.accuracy([1, 1], [0.1, 0.9]) == 0.5  # ACC needs no second class
    report = M.binary_metrics([0, 0], [0.1, 0.7])
    assert report["auc"] is None and report["ap"] is None and report["eer"] is None
    assert report["acc"] == 0.5
    assert report["undefined"]["auc"].startswith("no fake videos")
    json.dumps(report, allow_nan=False)


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 1], [0.1, float("nan")], r"not finite numbers in \[0, 1\]; first: row 1"),
        ([0, 1], [0.1, 1.5], r"not finite"),
        ([0, 2], [0.1, 0.5], r"labels must be 0 \(real\) or 1 \(fake\)"),
        ([0, 1, 1], [0.1, 0.5], r"equal length"),
        ([], [], r"no videos"),
    ],
)
def test_bad_inputs_are_named(labels, scores, message):
    with pytest.raises(M.ScoresError, match=message):
        M.binary_metrics(labels, scores)


def test_video_scores_average_segments():
    rows = [
        {"key": "c/b", "video_id": "vb", "score": 0.2, "label": 0},
        {"key": "c/a", "video_id": "va", "score": 0.9, "label": 1},
        {"key": "c/b", "video_id": "vb", "score": 0.4, "label": 0},
        {"key": "c/a", "video_id": "va", "score": 0.6, "label": 1},
        {"key": "c/a", "video_id": "va", "score": 0.3, "label": 1},
    ]
    for given in (rows, pa.Table.from_pylist(rows), {k: [r[k] for r in rows] for k in rows[0]}):
        videos = M.video_scores(given).to_pydict()
        assert videos["key"] == ["c/a", "c/b"]
        assert videos["score"] == pytest.approx([0.6, 0.3])
        assert videos["n_segments"] == [3, 2]
        assert videos["video_id"] == ["va", "vb"] and videos["label"] == [1, 0]
    with pytest.raises(M.ScoresError, match=r"video 'c/b': segments disagree on 'label'"):
        M.video_scores(rows + [{"key": "c/b", "video_id": "vb", "score": 0.1, "label": 1}])
    with pytest.raises(M.ScoresError, match=r"first: key 'c/a' = inf"):
        M.video_scores([{"key": "c/a", "score": float("inf")}])
    with pytest.raises(M.ScoresError, match=r"need a 'score' column"):
        M.video_scores([{"key": "c/a", "p": 0.5}])


def test_bootstrap_interval_contains_estimate_and_is_reproducible():
    y, s = _data(1, 500)
    point = M.binary_metrics(y, s)
    ci = M.bootstrap_ci(y, s, n_resamples=400, seed=5)
    for m in M.METRICS:
        assert ci[m]["low"] <= point[m] <= ci[m]["high"], m
        assert ci[m]["high"] - ci[m]["low"] < 0.2
        assert ci[m]["n_valid"] == 400
    assert M.bootstrap_ci(y, s, n_resamples=400, seed=5) == ci
    assert M.bootstrap_ci(y, s, n_resamples=400, seed=6) != ci
    # A wider level gives a wider interval.
    wide = M.bootstrap_ci(y, s, n_resamples=400, seed=5, level=0.99)
    assert wide["auc"]["low"] <= ci["auc"]["low"] and wide["auc"]["high"] >= ci["auc"]["high"]


def test_bootstrap_agrees_with_a_plain_resampling_loop():
    y, s = _data(2, 60, decimals=1)
    rng = np.random.default_rng(11)
    aucs = []
    for _ in range(200):
        idx = rng.integers(0, len(y), len(y))
        if len(set(y[idx])) == 2:
            aucs.append(roc_auc_score(y[idx], s[idx]))
    ci = M.bootstrap_ci(y, s, n_resamples=200, seed=11)
    assert ci["auc"]["n_valid"] == len(aucs)
    assert ci["auc"]["low"] == pytest.approx(np.quantile(aucs, 0.025))
    assert ci["auc"]["high"] == pytest.approx(np.quantile(aucs, 0.975))


def test_bootstrap_skips_single_class_resamples():
    ci = M.bootstrap_ci([0, 1, 0], [0.2, 0.8, 0.4], n_resamples=300, seed=0)
    assert 0 < ci["auc"]["n_valid"] < 300
    assert ci["acc"]["n_valid"] == 300


def test_per_category_metrics_use_all_reals():
    rng = np.random.default_rng(3)
    cats = ["real"] * 40 + ["A"] * 30 + ["B"] * 30
    y = np.array([0] * 40 + [1] * 60)
    s = np.clip(np.r_[rng.normal(0.3, 0.15, 40), rng.normal(0.7, 0.15, 30), rng.normal(0.45, 0.15, 30)], 0, 1)
    report = M.evaluate_scores(y, s, cats, n_bootstrap=100, seed=1)
    for cat in ("A", "B"):
        mask = np.isin(np.array(cats), ["real", cat])
        per = report["per_category"][cat]
        assert per["auc"] == pytest.approx(roc_auc_score(y[mask], s[mask]))
        assert per["ap"] == pytest.approx(average_precision_score(y[mask], s[mask]))
        assert (per["n_real"], per["n_fake"]) == (40, 30)
        assert per["ci"]["auc"]["low"] <= per["auc"] <= per["ci"]["auc"]["high"]
    mean = report["category_mean"]
    assert mean["auc"] == pytest.approx((report["per_category"]["A"]["auc"] + report["per_category"]["B"]["auc"]) / 2)
    assert report["overall"]["auc"] == pytest.approx(roc_auc_score(y, s))
    json.dumps(report, allow_nan=False)
    with pytest.raises(M.ScoresError, match=r"category 'A' disagrees with label 0"):
        M.evaluate_scores([0, 1], [0.1, 0.9], ["A", "A"], n_bootstrap=0)


def test_avg_fv_is_the_mean_of_the_four_fv_folds():
    folds = {
        "RVFA": {"acc": 0.1, "auc": 0.1, "ap": 0.1, "eer": 0.9},
        "FVRA-WL": {"acc": 0.9, "auc": 0.80, "ap": 0.70, "eer": 0.10},
        "FVFA-FS": {"acc": 0.8, "auc": 0.90, "ap": 0.80, "eer": 0.20},
        "FVFA-GAN": {"acc": 0.7, "auc": 1.00, "ap": 0.90, "eer": 0.30},
        "FVFA-WL": {"acc": 0.6, "auc": 0.70, "ap": 0.60, "eer": 0.40},
    }
    avg = M.avg_fv(folds)
    assert avg["members"] == ["FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL"]
    assert avg["auc"] == pytest.approx(0.85) and avg["ap"] == pytest.approx(0.75)
    assert avg["acc"] == pytest.approx(0.75) and avg["eer"] == pytest.approx(0.25)
    folds["FVFA-WL"]["auc"] = None
    avg = M.avg_fv(folds)
    assert avg["auc"] is None and "FVFA-WL" in avg["undefined"]["auc"]
    del folds["FVFA-GAN"]
    with pytest.raises(M.ScoresError, match=r"no results for \['FVFA-GAN'\]"):
        M.avg_fv(folds)


def test_evaluate_segments_checks_keys_against_the_test_set():
    segments = {"key": ["c/a", "c/a", "c/b", "c/c"], "score": [0.9, 0.7, 0.2, 0.6]}
    labels = {"c/a": 1, "c/b": 0, "c/c": 0}
    report = M.evaluate_segments(segments, labels, {"c/a": "X", "c/b": "real", "c/c": "real"}, n_bootstrap=50)
    assert report["overall"]["auc"] == 1.0 and report["n_segments"] == 4
    assert report["per_category"]["X"]["n_fake"] == 1
    assert not math.isnan(report["overall"]["eer"])
    with pytest.raises(M.ScoresError, match=r"1 test key\(s\) without scores \['c/d'\]"):
        M.evaluate_segments(segments, {**labels, "c/d": 1})
    with pytest.raises(M.ScoresError, match=r"1 scored key\(s\) not in the test set \['c/c'\]"):
        M.evaluate_segments(segments, {"c/a": 1, "c/b": 0})


def test_score_spread_matches_hand_worked_values():
    from benchmark.metrics import score_spread

    # mean 0.5; squared deviations 0.09, 0.01, 0.01, 0.09 -> variance 0.05; quartiles by linear
    # interpolation at positions 0.75 and 2.25: 0.35 and 0.65
    spread = score_spread([0.8, 0.2, 0.6, 0.4])
    assert spread["std"] == pytest.approx(0.05 ** 0.5)
    assert spread["iqr"] == pytest.approx(0.3)
    assert (spread["min"], spread["median"], spread["max"]) == pytest.approx((0.2, 0.5, 0.8))
    assert score_spread([0.3] * 5)["std"] == 0.0
