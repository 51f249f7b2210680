"""The leaderboard beyond the papers' tables: significance marks (DeLong), the shortcut-probe row and
audit, operating points and calibration, and ``avdf leaderboard --compare``."""
from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pytest

import leaderboard_data as data
from benchmark.cli import main
from benchmark.leaderboard import write_leaderboard
from benchmark.protocols import load_protocol
from benchmark.results import DetectorInfo, score_predictions, write_scored

PROTOCOL = "studio-intra-random"
POINT = {"threshold": 0.3, "rule": "eer", "target_fpr": None, "fpr": 0.0, "tpr": 1.0, "n": 10, "n_real": 5,
         "n_fake": 5, "temperature": 2.0}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Rows with known orderings on one fold: alpha separates perfectly; beta is alpha with one
    real/fake pair swapped (not significantly worse); gamma ranks at random (significantly worse);
    probe-silence is a shortcut probe at AUC 0.9+, probe-duration one at chance."""
    root = tmp_path_factory.mktemp("rigour")
    clips = data.studio_manifest(per_group=4)
    protocol = load_protocol(PROTOCOL)
    fold = protocol.split(clips).fold("main")
    keys = sorted(fold.test)
    label = {c.key: c.label for c in clips}
    y = np.array([label[k] for k in keys])
    rng = np.random.default_rng(0)
    alpha = 0.6 * y + 0.3 * rng.random(len(y))  # reals in [0, 0.3), fakes in [0.6, 0.9)
    beta = alpha.copy()
    hi_real, lo_fake = np.argmax(np.where(y == 0, alpha, -1)), np.argmin(np.where(y == 1, alpha, 2))
    beta[hi_real], beta[lo_fake] = alpha[lo_fake], alpha[hi_real]
    gamma = rng.random(len(y))
    probe = np.clip(0.45 * y + 0.5 * rng.random(len(y)), 0, 1)
    chance = rng.random(len(y))
    rows = {"alpha": alpha, "beta": beta, "gamma": gamma, "probe-silence": probe, "probe-duration": chance}
    for name, scores in rows.items():
        point = POINT if name == "alpha" else None
        write_scored(root / name, score_predictions(
            protocol, fold, clips, pa.table({"key": keys, "score": scores}), detector=DetectorInfo(name, None),
            n_bootstrap=50, operating_point=point))
    out = write_leaderboard([root], tmp_path_factory.mktemp("board"), plots=True, n_bootstrap=50)
    return {"root": root, "out": out, "y": y,
            "scores": {"alpha": alpha, "beta": beta, "gamma": gamma, "probe": probe, "chance": chance}}


def _main_table(md: str) -> dict[str, list[str]]:
    lines = md.split("### Intra-dataset")[1].split("###")[0].splitlines()
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines if line.startswith("| ")]
    return {r[0]: r for r in rows[1:]}  # after the header (the |:--| line is not a "| " row)


def test_best_and_not_significantly_worse_rows_are_marked(scored):
    from sklearn.metrics import roc_auc_score

    y, s = scored["y"], scored["scores"]
    assert roc_auc_score(y, s["alpha"]) == 1.0 and roc_auc_score(y, s["beta"]) < 1.0
    rows = _main_table(scored["out"]["leaderboard.md"].read_text())
    auc = 3  # Detector | Label | ACC | AUC
    assert rows["alpha"][auc].endswith("★")
    assert rows["beta"][auc].endswith("≈")
    assert not rows["gamma"][auc].endswith(("★", "≈"))


def test_probes_stay_out_of_the_detector_tables_and_give_the_shortcut_row(scored):
    from sklearn.metrics import roc_auc_score

    md = scored["out"]["leaderboard.md"].read_text()
    rows = _main_table(md)
    assert "probe-silence" not in rows
    probe_auc = roc_auc_score(scored["y"], scored["scores"]["probe"])
    assert probe_auc >= 0.75
    shortcut = rows["shortcut (best probe)"][3]
    assert shortcut.startswith(f"{100 * probe_auc:.1f}") and shortcut.endswith("⚠")
    audit = {r[0]: r for r in ([c.strip() for c in line.strip().strip("|").split("|")]
                               for line in md.split("### Shortcut audit")[1].splitlines() if line.startswith("| probe-"))}
    # Detector | Label | AUC: the separating probe beats chance with both probes' tests in view (Holm);
    # the other does not.
    assert audit["probe-silence"][2].endswith("‼")
    assert not audit["probe-duration"][2].endswith(("‼", "⚠"))


def test_operating_point_and_calibration_columns(scored):
    from sklearn.metrics import brier_score_loss

    y, s = scored["y"], scored["scores"]["alpha"]
    with open(scored["out"]["leaderboard.csv"], newline="") as f:
        rows = {r["detector"]: r for r in csv.DictReader(f)}
    version = load_protocol(PROTOCOL).version
    col = f"{PROTOCOL}@{version}/main/"
    assert float(rows["alpha"][col + "OP.THRESHOLD"]) == 0.3
    assert float(rows["alpha"][col + "OP.ACC"]) == pytest.approx(np.mean((s >= 0.3) == y))
    assert float(rows["alpha"][col + "ACC"]) == pytest.approx(np.mean((s >= 0.5) == y))
    assert float(rows["alpha"][col + "CAL.BRIER"]) == pytest.approx(brier_score_loss(y, s))
    assert float(rows["alpha"][col + "TPR.1%"]) == 1.0  # perfectly separated
    assert rows["beta"][col + "OP.ACC"] == ""  # no operating point given: left empty, not 0.5
    assert "probe-silence" not in rows or rows["probe-silence"].get(col + "OP.ACC", "") == ""


def test_reliability_diagrams_are_drawn(scored):
    page = scored["out"]["leaderboard.html"].read_text()
    assert "Reliability (10 equal-mass bins)" in page


def test_compare_prints_delong_and_paired_bootstraps(scored, capsys):
    assert main(["leaderboard", str(scored["root"]), "--compare", "alpha", "gamma"]) == 0
    out = capsys.readouterr().out
    assert "alpha (A) vs gamma (B)" in out and "DeLong" in out
    auc_line = next(line for line in out.splitlines() if line.strip().startswith("AUC"))
    assert auc_line.rstrip().endswith("*")  # perfectly vs randomly ranked: significant
    assert main(["leaderboard", str(scored["root"]), "--compare", "alpha", "nobody"]) == 2
