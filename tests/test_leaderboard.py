"""``avdf leaderboard``: tables shaped like the papers', averages equal to hand-computed means,
studio results kept apart, and bad result sets refused."""
from __future__ import annotations

import csv
import html
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import leaderboard_data as data
from benchmark.cli import main
from benchmark.leaderboard import write_leaderboard
from benchmark.leaderboard_tables import STUDIO_SECTION
from benchmark.protocols import load_protocol
from benchmark.results import METRICS_NAME, ResultsError, read_result

FV = ["FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL"]
CMDFD = ["W2L", "W2L_S", "VRT", "VRT_S", "A2H", "A2H_S", "MIT", "MIT_S"]
# ECL's Table III: FakeAVCeleb's own test set beside the 8 CMDFD subsets, AVG over the 9.
XD = ["FAV", *CMDFD]
# (name, label, quality of the stand-in scores)
REAL_ROWS = [("cad", "full", 1.4), ("ecl", "full", 0.6)]
# The newest version of each protocol (what a plain name runs and the results record).
V = {p.name: p.version for p in map(load_protocol, [
    "intra-group", "cross-manipulation", "cross-dataset", "studio-cross-manipulation"])}
STUDIO_ROWS = [("cad", "full", 1.0), ("cad", "no-audio", 0.5), ("avprompt", "full", 2.0)]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    real = data.real_manifest()
    for p in ("intra-random", "intra-group", "cross-manipulation", "cross-dataset"):
        data.add_results(root / "real", real, p, REAL_ROWS)
    studio = data.studio_manifest()
    for p in ("studio-intra-random", "studio-cross-manipulation", "studio-cross-dataset"):
        data.add_results(root / "studio", studio, p, STUDIO_ROWS, seed=100)
    return root


@pytest.fixture(scope="module")
def board(results, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("board")
    return write_leaderboard([results], out, plots=True, n_bootstrap=50)


def md_tables(text: str) -> dict[tuple[str, str], list[list[str]]]:
    """(section, table title) -> rows of cells (header first, then the data rows) of leaderboard.md."""
    tables: dict[tuple[str, str], list[list[str]]] = {}
    section = title = None
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("### "):
            title = line[4:]
        elif line.startswith("| ") and title:
            tables.setdefault((section, title), []).append([c.strip() for c in line.strip("|").split(" | ")])
    return tables


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fold_metric(results: Path, row: str, protocol: str, fold: str, metric: str) -> float:
    return read_result(results / row / protocol / fold / METRICS_NAME)["metrics"]["overall"][metric]


def test_writes_three_files(board):
    assert sorted(board) == ["leaderboard.csv", "leaderboard.html", "leaderboard.md"]
    for path in board.values():
        assert path.stat().st_size > 0 and oct(path.stat().st_mode & 0o777) == "0o644"


def test_columns_follow_the_papers(board):
    tables = md_tables(board["leaderboard.md"].read_text())
    real = "Real corpora"
    assert tables[(real, "Intra-dataset (ACC / AUC)")][0] == [
        "Detector", "Label", "intra-random ACC", "intra-random AUC", "intra-random AVG-FV ACC",
        "intra-random AVG-FV AUC", "intra-group ACC", "intra-group AUC", "intra-group AVG-FV ACC",
        "intra-group AVG-FV AUC",
        "intra-group KoDF ACC", "intra-group KoDF AUC"]  # AVPrompt's KoDF column: its ethnic-split model
    xm = tables[(real, "Cross-manipulation (AP / AUC per held-out category)")][0]
    assert xm[2:] == [f"{c} {m}" for c in ["RVFA", *FV, "AVG-FV"] for m in ("AP", "AUC")]
    xd = tables[(real, "Cross-dataset (AUC per test set)")][0]
    assert xd[2:] == [f"{c} AUC" for c in [*XD, "AVG", "KoDF"]]
    # Rows are detectors and ablations.
    studio_xm = tables[(STUDIO_SECTION, "Cross-manipulation (AP / AUC per held-out category)")]
    assert sorted((r[0], r[1]) for r in studio_xm[1:]) == sorted((n, lab) for n, lab, _ in STUDIO_ROWS)
    assert sorted((r[0], r[1]) for r in tables[(real, "Cross-dataset (AUC per test set)")][1:]) == [
        ("cad", "full"), ("ecl", "full")]


def test_studio_results_are_a_separate_labelled_table(board):
    text = board["leaderboard.md"].read_text()
    assert text.index("## Real corpora") < text.index(f"## {STUDIO_SECTION}")
    assert "proxy; not comparable to real-corpus numbers" in STUDIO_SECTION
    tables = md_tables(text)
    studio_xd = tables[(STUDIO_SECTION, "Cross-dataset (AUC per test set)")][0]
    assert studio_xd[2:] == [f"{c} AUC" for c in [*XD, "AVG"]]  # the studio twin has no KoDF
    real_rows = {r[1] for (sec, _), rows in tables.items() if sec == "Real corpora" for r in rows[1:]}
    assert "no-audio" not in real_rows  # the studio-only ablation never enters a real-corpus table
    rows = read_csv(board["leaderboard.csv"])
    studio = [r for r in rows if r["corpus"] == "studio"]
    assert len(studio) == len(STUDIO_ROWS)
    assert all(r[f"cross-manipulation@{V['cross-manipulation']}/RVFA/AUC"] == "" for r in studio)
    assert all(r[f"studio-cross-manipulation@{V['studio-cross-manipulation']}/RVFA/AUC"] != "" for r in studio)


@pytest.mark.parametrize("metric", ["auc", "ap"])
def test_avg_fv_is_the_mean_of_the_four_fv_folds(board, results, metric):
    rows = {(r["corpus"], r["detector"], r["label"]): r for r in read_csv(board["leaderboard.csv"])}
    for corpus, protocol, base, table_rows in [("real", "cross-manipulation", results / "real", REAL_ROWS),
                                               ("studio", "studio-cross-manipulation", results / "studio",
                                                STUDIO_ROWS)]:
        for name, label, _ in table_rows:
            by_hand = np.mean([fold_metric(base, f"{name}-{label}", protocol, f, metric) for f in FV])
            row = rows[(corpus, name, label)]
            column = f"{protocol}@{V[protocol]}/AVG-FV/{metric.upper()}"
            assert float(row[column]) == pytest.approx(by_hand, abs=1e-12)
            assert float(row[column + "_ci_low"]) <= by_hand <= float(row[column + "_ci_high"])


def test_cross_dataset_avg_is_the_mean_of_the_nine_test_sets(board, results):
    rows = {(r["corpus"], r["detector"], r["label"]): r for r in read_csv(board["leaderboard.csv"])}
    tables = md_tables(board["leaderboard.md"].read_text())
    xd = tables[("Real corpora", "Cross-dataset (AUC per test set)")]
    for name, label, _ in REAL_ROWS:
        aucs = [fold_metric(results / "real", f"{name}-{label}", "cross-dataset", f, "auc") for f in XD]
        kodf = fold_metric(results / "real", f"{name}-{label}", "cross-dataset", "KoDF", "auc")
        row = rows[("real", name, label)]
        assert len(aucs) == 9
        assert float(row[f"cross-dataset@{V['cross-dataset']}/AVG/AUC"]) == pytest.approx(np.mean(aucs), abs=1e-12)
        assert float(row[f"cross-dataset@{V['cross-dataset']}/KoDF/AUC"]) == kodf
        md_row = next(r for r in xd[1:] if r[0] == name and r[1] == label)
        assert md_row[2 + len(XD)].startswith(f"{100 * np.mean(aucs):.1f} [")


def test_intra_columns_are_the_overall_metrics(board, results):
    rows = {(r["corpus"], r["detector"], r["label"]): r for r in read_csv(board["leaderboard.csv"])}
    for name, label, _ in REAL_ROWS:
        result = read_result(results / "real" / f"{name}-{label}" / "intra-group" / "main" / METRICS_NAME)
        overall = result["metrics"]["overall"]
        column = f"intra-group@{V['intra-group']}/main"
        assert float(rows[("real", name, label)][f"{column}/ACC"]) == overall["acc"]
        assert float(rows[("real", name, label)][f"{column}/AUC_ci_low"]) == overall["ci"]["auc"]["low"]
        # An average over categories is read from inside the fold's own result.
        avg = result["metrics"]["averages"]["AVG-FV"]
        assert float(rows[("real", name, label)][f"intra-group@{V['intra-group']}/AVG-FV/AUC"]) == avg["auc"]


def test_missing_folds_leave_the_average_empty(results, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(results / "real" / "cad-full" / "cross-manipulation", partial / "cross-manipulation")
    shutil.rmtree(partial / "cross-manipulation" / "FVFA-GAN")
    out = write_leaderboard([partial], tmp_path / "board", plots=False, n_bootstrap=20)
    xm = md_tables(out["leaderboard.md"].read_text())[
        ("Real corpora", "Cross-manipulation (AP / AUC per held-out category)")]
    header, row = xm[0], xm[1]
    assert row[header.index("AVG-FV AUC")] == "—" and row[header.index("FVFA-GAN AUC")] == "—"
    assert row[header.index("RVFA AUC")] != "—"
    assert "missing folds ['FVFA-GAN']" in html.unescape(out["leaderboard.html"].read_text())


def test_two_results_for_one_cell_are_refused(results, tmp_path):
    src = results / "real" / "cad-full" / "intra-random" / "main"
    for copy in ("a", "b"):
        shutil.copytree(src, tmp_path / copy)
    with pytest.raises(ResultsError, match="two results for cad full on intra-random v1.1.0 fold main"):
        write_leaderboard([tmp_path / "a", tmp_path / "b"], tmp_path / "board")
    assert not (tmp_path / "board").exists()


def test_two_definitions_of_one_protocol_version_are_refused(results, tmp_path):
    shutil.copytree(results / "real" / "cad-full" / "intra-random" / "main", tmp_path / "a")
    shutil.copytree(results / "real" / "ecl-full" / "intra-random" / "main", tmp_path / "b")
    metrics = tmp_path / "b" / METRICS_NAME
    result = json.loads(metrics.read_text())
    result["protocol"]["hash"] = "f" * 64
    metrics.write_text(json.dumps(result))
    with pytest.raises(ResultsError, match="disagree on the definition of intra-random v1.1.0"):
        write_leaderboard([tmp_path], tmp_path / "board")


def test_a_broken_result_names_the_file(results, tmp_path):
    shutil.copytree(results / "real" / "cad-full" / "intra-random" / "main", tmp_path / "a")
    metrics = tmp_path / "a" / METRICS_NAME
    result = json.loads(metrics.read_text())
    del result["metrics"]["overall"]["auc"]
    metrics.write_text(json.dumps(result))
    with pytest.raises(ResultsError, match=r"a/metrics.json: field 'metrics.overall.auc' is missing"):
        write_leaderboard([tmp_path], tmp_path / "board")


def test_cli(results, tmp_path, capsys):
    assert main(["leaderboard", str(results / "studio"), "--out", str(tmp_path / "lb"), "--no-plots"]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == ["leaderboard.csv", "leaderboard.html", "leaderboard.md"]
    assert STUDIO_SECTION in (tmp_path / "lb" / "leaderboard.md").read_text()
    assert main(["leaderboard", str(tmp_path / "empty-nothing"), "--out", str(tmp_path / "lb2")]) == 2
    assert "no such results file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["leaderboard", str(tmp_path / "empty"), "--out", str(tmp_path / "lb2")]) == 2
    assert "no metrics.json files" in capsys.readouterr().err


def test_a_submission_named_like_a_detector_is_its_own_row(results, tmp_path):
    for copy in ("detector", "submission"):
        shutil.copytree(results / "real" / "cad-full" / "intra-random" / "main", tmp_path / copy)
    metrics = tmp_path / "submission" / METRICS_NAME
    result = json.loads(metrics.read_text())
    result["detector"]["kind"] = "submission"
    metrics.write_text(json.dumps(result))
    out = write_leaderboard([tmp_path / "detector", tmp_path / "submission"], tmp_path / "board", plots=False)
    rows = md_tables(out["leaderboard.md"].read_text())[("Real corpora", "Intra-dataset (ACC / AUC)")][1:]
    assert [r[0] for r in rows] == ["cad", "cad (submission)"]
    assert [r["kind"] for r in read_csv(out["leaderboard.csv"])] == ["detector", "submission"]


def test_the_spread_table_shows_a_constant_detector(tmp_path):
    """A collapsed model that outputs one score for every video gets SD 0; another row's SD is the
    standard deviation of its own scores.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmark.results import DetectorInfo, score_predictions, write_scored

    studio = data.studio_manifest(per_group=2)
    protocol = load_protocol("studio-intra-random")
    fold = protocol.split(studio).fold("main")
    preds = data.predictions("studio-intra-random", studio, fold="main")
    flat = preds.set_column(preds.schema.get_field_index("score"), "score", pa.array([0.57] * len(preds)))
    write_scored(tmp_path / "r" / "flat", score_predictions(protocol, fold, studio, flat,
                                                            detector=DetectorInfo("flat", None), n_bootstrap=20))
    write_scored(tmp_path / "r" / "good", score_predictions(protocol, fold, studio, preds,
                                                            detector=DetectorInfo("good", None), n_bootstrap=20))
    out = write_leaderboard([tmp_path / "r"], tmp_path / "board", plots=False, n_bootstrap=20)
    rows = {r["detector"]: r for r in csv.DictReader(open(out["leaderboard.csv"]))}
    column = f"studio-intra-random@{protocol.version}/main/SPREAD"
    assert float(rows["flat"][column]) == 0.0
    good_scores = pq.read_table(tmp_path / "r" / "good" / "scores.parquet").column("score").to_numpy()
    assert float(rows["good"][column]) == pytest.approx(float(np.std(good_scores)))
    assert float(rows["good"][column]) > 0.05
    assert "Score spread" in out["leaderboard.md"].read_text()
