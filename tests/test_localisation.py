"""AV-Deepfake1M's temporal localisation metrics on hand-worked cases, its files, and ``avdf score-localisation``.

Every expected value below is worked out by hand from the scorer's definitions (see the
docstring of ``benchmark.localisation``); where the avdeepfake1m scorer is installed, random
cases are also compared with it.
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.localisation import AR_IOUS, average_precision, average_recall, score_localisation
from benchmark.localisation_io import (
    LocalisationError,
    read_av1m_metadata,
    read_ground_truth,
    read_lavdf_metadata,
    read_proposals,
    write_proposals,
)

# Two videos, four proposals. v1's fake segments g1 = [0, 1], g2 = [2, 3]; v2's g3 = [0, 4].
TRUTH = {"v1.mp4": [(0.0, 1.0), (2.0, 3.0)], "v2.mp4": [(0.0, 4.0)]}
PROPOSALS = {
    "v1.mp4": [(0.9, 0.0, 1.0),   # a: IoU 1 with g1
               (0.6, 2.0, 4.0),   # b: IoU 1/2 with g2, exactly the 0.5 threshold: no match
               (0.3, 2.0, 3.0)],  # d: IoU 1 with g2
    "v2.mp4": [(0.8, 0.0, 3.0)],  # c: IoU 3/4 with g3, exactly the 0.75 threshold
}


def test_ap_hand_worked_with_ious_on_both_sides_of_the_threshold():
    # At 0.5: a, c, d match (b's IoU equals the threshold). Ranked a TP, c TP, b FP, d TP:
    # precision 1, 1, 2/3, 3/4; recall 1/3, 2/3, 2/3, 1; AP = (2/3-1/3)*1 + 0 + (1-2/3)*3/4 = 7/12.
    # At 0.75, 0.9, 0.95: c no longer matches either. a TP, c FP, b FP, d TP: only d's step counts:
    # (2/3-1/3) * 1/2 = 1/6 (a's own step from recall 0 is not integrated by the scorer's curve).
    ap = average_precision(PROPOSALS, TRUTH)
    assert ap == pytest.approx({0.5: 7 / 12, 0.75: 1 / 6, 0.9: 1 / 6, 0.95: 1 / 6})


def test_ar_hand_worked_in_submission_order():
    # AR over the ten IoU thresholds 0.5..0.95, three fake segments each:
    # N=1: v1 -> a: g1 at all 10, g2 never; v2 -> c (IoU 0.75): 0.5, 0.55, 0.6, 0.65, 0.7 = 5 -> 15/30.
    # N=2: a, b: b's IoU 0.5 with g2 is above no threshold -> still 15/30.
    # N=3: a, b, d: g2 at all 10 -> 25/30.
    ar = average_recall(PROPOSALS, TRUTH, ns=(1, 2, 3, 50))
    assert ar == pytest.approx({1: 0.5, 2: 0.5, 3: 5 / 6, 50: 5 / 6})


def test_matching_takes_the_submission_order_not_the_confidence_order():
    # Both proposals fit the segment; the first listed takes it although it has the lower confidence.
    # Ranked by confidence: the unmatched 0.9 (FP), then the 0.2 (TP): AP = (1 - 0) * 1/2.
    truth = {"a.mp4": [(0.0, 1.0)]}
    assert average_precision({"a.mp4": [(0.2, 0.0, 1.0), (0.9, 0.0, 1.0)]}, truth, [0.5]) == {0.5: 0.5}
    # AR@1 looks at the first listed proposal only, although the second has the higher confidence.
    far_first = {"a.mp4": [(0.1, 5.0, 6.0), (0.9, 0.0, 1.0)]}
    assert average_recall(far_first, truth, ns=(1, 2)) == {1: 0.0, 2: 1.0}


def test_a_segment_matches_one_proposal_in_ap_but_a_proposal_recalls_many_in_ar():
    # v1: two proposals on its one segment: the second is a false positive. v2: one correct proposal.
    # Ranked p0 TP, p1 FP, q TP: precision 1, 1/2, 2/3; recall 1/2, 1/2, 1: AP = 0 + (1 - 1/2) * 2/3 = 1/3.
    truth = {"v1.mp4": [(0.0, 1.0)], "v2.mp4": [(0.0, 1.0)]}
    proposals = {"v1.mp4": [(0.9, 0.0, 1.0), (0.8, 0.0, 1.0)], "v2.mp4": [(0.7, 0.0, 1.0)]}
    assert average_precision(proposals, truth, [0.5]) == pytest.approx({0.5: 1 / 3})
    # p0 fits both segments, p1 only the second: the first segment takes p0, so the second must take p1
    # (p0 is taken): both are TPs, recall 1/2 then 1, AP = (1 - 1/2) * 1 (0 if p0 could serve both).
    overlapping = {"a.mp4": [(0.0, 1.0), (0.0, 1.2)]}
    assert average_precision({"a.mp4": [(0.9, 0.0, 1.1), (0.8, 0.0, 1.2)]}, overlapping, [0.5]) == pytest.approx(
        {0.5: 0.5})
    # One proposal over two identical segments recalls both.
    assert average_recall({"a.mp4": [(0.9, 0.0, 1.0)]}, {"a.mp4": [(0.0, 1.0), (0.0, 1.0)]}, ns=(1,)) == {1: 1.0}


def test_ties_are_ranked_in_the_ground_truths_video_order():
    # c (0.9) is a TP; a and b tie at 0.5: a's proposal is a TP, b (a real video) a FP.
    proposals = {"a.mp4": [(0.5, 0.0, 1.0)], "b.mp4": [(0.5, 5.0, 6.0)], "c.mp4": [(0.9, 9.0, 9.5)]}
    a_first = {"a.mp4": [(0.0, 1.0)], "b.mp4": [], "c.mp4": [(9.0, 9.5)]}
    b_first = {"b.mp4": [], "a.mp4": [(0.0, 1.0)], "c.mp4": [(9.0, 9.5)]}
    # c TP, a TP, b FP: recall 1/2, 1, 1; precision 1, 1, 2/3: AP = (1 - 1/2) * 1.
    assert average_precision(proposals, a_first, [0.5]) == pytest.approx({0.5: 0.5})
    # c TP, b FP, a TP: recall 1/2, 1/2, 1; precision 1, 1/2, 2/3: AP = (1 - 1/2) * 2/3.
    assert average_precision(proposals, b_first, [0.5]) == pytest.approx({0.5: 1 / 3})


def test_real_videos_add_false_positives_to_ap_and_nothing_to_ar():
    truth = {"real.mp4": [], "fake.mp4": [(0.0, 1.0)]}
    proposals = {"real.mp4": [(0.95, 0.0, 1.0)], "fake.mp4": [(0.9, 0.0, 1.0), (0.1, 5.0, 6.0)]}
    # real FP, fake TP, fake FP: precision 0, 1/2, 1/3; recall 0, 1, 1: AP = (1 - 0) * 1/2.
    assert average_precision(proposals, truth, [0.5]) == pytest.approx({0.5: 0.5})
    assert average_recall(proposals, truth, ns=(1,)) == {1: 1.0}


def test_a_lone_perfect_proposal_scores_ap_zero_as_in_the_scorer():
    """The scorer's precision-recall curve has no (recall 0, precision 1) end: the top-ranked proposal's
    recall step is not integrated. Matching it keeps published numbers comparable."""
    assert average_precision({"a.mp4": [(0.9, 0.0, 1.0)]}, {"a.mp4": [(0.0, 1.0)]}, [0.5]) == {0.5: 0.0}


def test_a_video_listed_without_proposals_misses_its_segments():
    truth = {"a.mp4": [(0.0, 1.0)], "b.mp4": [(0.0, 1.0)]}
    assert average_recall({"a.mp4": [], "b.mp4": [(0.9, 0.0, 1.0)]}, truth, ns=(5,)) == {5: 0.5}


# --------------------------------------------------------------------------- score_localisation

def test_score_localisation_reads_the_json_and_checks_the_videos(tmp_path):
    path = tmp_path / "preds.json"
    path.write_text(json.dumps({f: [list(p) for p in rows] for f, rows in PROPOSALS.items()}))
    result = score_localisation(path, TRUTH)
    assert result["ap"][0.5] == pytest.approx(7 / 12) and result["ar"][50] == pytest.approx(5 / 6)
    assert (result["videos"], result["fake_segments"], result["proposals"]) == (2, 3, 4)
    with pytest.raises(LocalisationError, match=r"1 of 3 ground-truth video\(s\) have no entry: \['v3.mp4'\]"):
        score_localisation(PROPOSALS, {**TRUTH, "v3.mp4": []})
    with pytest.raises(LocalisationError, match=r"1 video\(s\) are not in the ground truth: \['v2.mp4'\]"):
        score_localisation(PROPOSALS, {"v1.mp4": TRUTH["v1.mp4"]})
    with pytest.raises(LocalisationError, match="no fake segment"):
        score_localisation(PROPOSALS, {"v1.mp4": [], "v2.mp4": []})


@pytest.mark.parametrize("rows, fragment", [
    ([[0.9, -0.5, 1.0]], "'a.mp4' row 0: negative start time"),
    ([[0.9, 2.0, 2.0]], "'a.mp4' row 0: start is not before end"),
    ([[0.9, 3.0, 2.0]], "start is not before end"),
    ([[float("nan"), 0.0, 1.0]], "'a.mp4' row 0: confidence nan is not a finite number"),
    ([[0.5, 0.0, 1.0], [float("inf"), 0.0, 1.0]], "'a.mp4' row 1: confidence inf is not a finite number"),
    ([[0.9, 0.0, float("inf")]], "times must be finite"),
    ([[0.9, 0.0]], "'a.mp4' row 0: expected [confidence, start, end]"),
    ([[0.9, "0", 1.0]], "times must be numbers"),
    ([[True, 0.0, 1.0]], "confidence True is not a finite number"),
    ({"start": 0}, "'a.mp4': expected a list"),
])
def test_bad_proposals_are_named(tmp_path, rows, fragment):
    path = tmp_path / "preds.json"
    path.write_text(json.dumps({"a.mp4": rows}))  # NaN / Infinity: Python writes them, and reads them back
    with pytest.raises(LocalisationError) as err:
        read_proposals(path)
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_proposals_file_must_be_an_object(tmp_path):
    path = tmp_path / "preds.json"
    path.write_text("[[0.9, 0, 1]]")
    with pytest.raises(LocalisationError, match="expected a JSON object"):
        read_proposals(path)
    path.write_text("{not json")
    with pytest.raises(LocalisationError, match="not readable JSON"):
        read_proposals(path)


def test_writer_ranks_by_confidence_and_refuses_empty_videos(tmp_path):
    path = write_proposals(tmp_path / "p.json", {"a.mp4": [(0.2, 0.0, 0.64), (0.9, 0.64, 1.28), (0.2, 1.28, 1.92)]})
    assert json.loads(path.read_text()) == {"a.mp4": [[0.9, 0.64, 1.28], [0.2, 0.0, 0.64], [0.2, 1.28, 1.92]]}
    assert read_proposals(path) == {"a.mp4": [(0.9, 0.64, 1.28), (0.2, 0.0, 0.64), (0.2, 1.28, 1.92)]}
    with pytest.raises(LocalisationError, match="without proposals"):
        write_proposals(tmp_path / "q.json", {"a.mp4": []})
    with pytest.raises(LocalisationError, match="start is not before end"):
        write_proposals(tmp_path / "q.json", {"a.mp4": [(0.5, 1.0, 1.0)]})


# --------------------------------------------------------------------------- ground truth

AV1M_META = [
    {"file": "lrs3/x/00001/real.mp4", "original": None, "split": "val", "modify_type": "real",
     "fake_segments": [], "visual_fake_segments": [], "audio_fake_segments": [], "video_frames": 100},
    {"file": "lrs3/x/00001/fake_video_fake_audio.mp4", "original": "lrs3/x/00001/real.mp4", "split": "val",
     "modify_type": "both_modified", "fake_segments": [[1.2, 1.8], [3.0, 3.44]],
     "visual_fake_segments": [[1.2, 1.8]], "audio_fake_segments": [[1.2, 1.8], [3.0, 3.44]], "video_frames": 100},
]
LAVDF_META = [
    {"file": "train/000000.mp4", "n_fakes": 0, "fake_periods": [], "duration": 3.2, "split": "train"},
    {"file": "test/000001.mp4", "n_fakes": 1, "fake_periods": [[0.5, 1.1]], "duration": 4.0, "split": "test"},
    {"file": "test/000002.mp4", "n_fakes": 0, "fake_periods": [], "duration": 2.0, "split": "test"},
]


def test_av1m_and_lavdf_metadata(tmp_path):
    av1m = tmp_path / "val_metadata.json"
    av1m.write_text(json.dumps(AV1M_META))
    expected = {"lrs3/x/00001/real.mp4": [], "lrs3/x/00001/fake_video_fake_audio.mp4": [(1.2, 1.8), (3.0, 3.44)]}
    assert read_av1m_metadata(av1m) == expected == read_ground_truth(av1m)
    assert read_av1m_metadata(av1m, "visual_fake_segments")["lrs3/x/00001/fake_video_fake_audio.mp4"] == [(1.2, 1.8)]
    lavdf = tmp_path / "metadata.json"
    lavdf.write_text(json.dumps(LAVDF_META))
    assert read_lavdf_metadata(lavdf, split="test") == {"test/000001.mp4": [(0.5, 1.1)], "test/000002.mp4": []}
    assert list(read_ground_truth(lavdf)) == ["train/000000.mp4", "test/000001.mp4", "test/000002.mp4"]


@pytest.mark.parametrize("entries, fragment", [
    ([{"file": "a.mp4", "fake_segments": [[-1.0, 1.0]]}], "entry 0 ('a.mp4') segment 0: negative start time"),
    ([{"file": "a.mp4", "fake_segments": [[2.0, 1.0]]}], "start is not before end"),
    ([{"file": "a.mp4", "fake_segments": [[0.0, 1.0, 2.0]]}], "times must be numbers"),
    ([{"file": "a.mp4", "fake_segments": []}] * 2, "entry 1: 'a.mp4' appears twice"),
    ([{"fake_segments": []}], "entry 0: no 'file'"),
    ([{"file": "a.mp4", "segments": []}], "neither 'fake_segments'"),
])
def test_bad_ground_truth_is_named(tmp_path, entries, fragment):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(LocalisationError) as err:
        read_ground_truth(path)
    assert fragment in str(err.value)


def test_score_localisation_command(tmp_path, capsys):
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps(LAVDF_META))
    preds = tmp_path / "preds.json"
    # 000001: one proposal at IoU 0.6/0.6 = 1 (a lone TP: AP 0 by the scorer's curve) ahead of a real video's FP.
    preds.write_text(json.dumps({"test/000001.mp4": [[0.4, 0.5, 1.1]], "test/000002.mp4": [[0.8, 0.0, 1.0]]}))
    out = tmp_path / "m.json"
    assert main(["score-localisation", str(preds), "--metadata", str(meta), "--split", "test", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 videos, 1 fake segments, 2 proposals" in printed and "AP@0.5 0.5000" in printed
    got = json.loads(out.read_text())
    # Ranked FP (0.8) then TP (0.4): precision 0, 1/2; recall 0, 1: AP = 1 * 1/2 at every threshold.
    assert got["ap"] == {"0.5": 0.5, "0.75": 0.5, "0.9": 0.5, "0.95": 0.5}
    assert got["ar"] == {"50": 1.0, "30": 1.0, "20": 1.0, "10": 1.0, "5": 1.0}
    # Without --split the training video has no entry: one clear line, not a traceback.
    assert main(["score-localisation", str(preds), "--metadata", str(meta)]) == 2
    assert "ground-truth video(s) have no entry: ['train/000000.mp4']" in capsys.readouterr().err


# --------------------------------------------------------------------------- against avdeepfake1m

def official_scorer():
    """The scorer of the ``avdeepfake1m`` package (its Rust extension ``_evaluation``), loaded without
    the package's ``__init__``, which imports torch, torchmetrics and pandas for an AUC helper only
    (so ``pip install --no-deps avdeepfake1m`` is enough). Skips where it is not installed."""
    spec = importlib.util.find_spec("avdeepfake1m")
    found = [p for d in (spec.submodule_search_locations or []) for p in Path(d).glob("_evaluation*")] if spec else []
    if not found:
        pytest.skip("avdeepfake1m is not installed")
    ext = importlib.util.spec_from_file_location("avdeepfake1m._evaluation", found[0])
    module = importlib.util.module_from_spec(ext)
    ext.loader.exec_module(module)
    return module


def random_case(rng: np.random.Generator, tied: bool) -> tuple[list[dict], dict[str, list[list[float]]]]:
    """Times on a 0.25 s grid (exact in float32 and float64, so IoUs sit exactly on thresholds as often as
    not); confidences continuous or from five values (ties)."""
    meta, proposals = [], {}
    for v in range(int(rng.integers(1, 8))):
        file = f"{v:06d}.mp4"
        segments = []
        for _ in range(int(rng.integers(0, 4))):
            start = rng.integers(0, 40) / 4
            segments.append([float(start), float(start + rng.integers(1, 12) / 4)])
        meta.append({"file": file, "fake_segments": segments})
        rows = []
        for start in rng.integers(0, 40, int(rng.integers(1, 9))) / 4:  # the scorer cannot read [] rows
            confidence = float(rng.choice([0.1, 0.3, 0.5, 0.7, 0.9])) if tied else float(rng.random())
            rows.append([confidence, float(start), float(start + rng.integers(1, 12) / 4)])
        proposals[file] = rows
    return meta, proposals


def test_agrees_with_the_avdeepfake1m_scorer_on_random_cases(tmp_path):
    scorer = official_scorer()
    rng = np.random.default_rng(0)
    ns, checked = (50, 30, 20, 10, 5, 2, 1), 0
    for trial in range(60):
        meta, proposals = random_case(rng, tied=bool(trial % 2))
        if not any(m["fake_segments"] for m in meta):
            continue
        (tmp_path / "p.json").write_text(json.dumps(proposals))
        (tmp_path / "m.json").write_text(json.dumps(meta))
        theirs = scorer.ap_ar_1d(str(tmp_path / "p.json"), str(tmp_path / "m.json"), "file", "fake_segments", 1.0,
                                 [0.5, 0.75, 0.9, 0.95], list(ns), list(AR_IOUS))
        ours = score_localisation(proposals, {m["file"]: m["fake_segments"] for m in meta}, ar_ns=ns)
        for t, value in theirs["ap"].items():
            ours_t = next(v for k, v in ours["ap"].items() if math.isclose(k, t, rel_tol=1e-6))
            assert ours_t == pytest.approx(value, abs=1e-5), (trial, "ap", t)
        for n, value in theirs["ar"].items():
            assert ours["ar"][n] == pytest.approx(value, abs=1e-5), (trial, "ar", n)
        checked += 1
    assert checked > 40
