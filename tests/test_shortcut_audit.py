"""The shortcut audit's statistics against hand-worked values, and its family-wise control on probe
scores laid out as `avdf evaluate` writes them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark.shortcut_audit import auc_p_value, findings, holm, probe_tests


def test_holm_matches_a_hand_worked_family():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_auc_and_mann_whitney_p_value_by_hand():
    # Fake 0.9 beats both reals, fake 0.4 beats 0.1 only: AUC 3/4. U = 3, mean 2, variance
    # 2 * 2 * 5 / 12; with the continuity correction z = 0.5 / 1.2910 = 0.3873, p = 2 (1 - Phi(z)) = 0.6985.
    auc, p = auc_p_value([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1])
    assert auc == 0.75
    assert p == pytest.approx(0.6985, abs=5e-4)
    with pytest.raises(ValueError, match="need fake and real"):
        auc_p_value([1, 1], [0.2, 0.3])


def _write(root: Path, probe: str, fold: str, labels: np.ndarray, scores: np.ndarray) -> None:
    folder = root / probe / "studio-intra-group" / "main" / fold
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"key": [f"k{i}" for i in range(len(labels))], "score": scores, "label": labels}),
                   folder / "scores.parquet")


def test_a_planted_shortcut_is_found_and_chance_is_not(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 30)
    for i in range(24):  # no shortcut: scores independent of the label
        _write(tmp_path, f"probe-{i % 6}", f"fold{i}", labels, rng.random(60))
    planted = rng.random(60) + 0.6 * labels  # fakes score higher
    _write(tmp_path, "probe-silence", "planted", labels, planted)

    tests = probe_tests(tmp_path)
    assert len(tests) == 25
    null = [t for t in tests if t.fold != "planted"]
    # One chance fold's own test is "significant" (what a per-fold 95 % interval would flag) ...
    assert min(t.p for t in null) < 0.05
    # ... but not with the family of 25 tests in view; the planted shortcut is.
    (found,) = findings(tmp_path)
    assert (found.probe, found.fold, found.n_fake, found.n_real) == ("probe-silence", "planted", 30, 30)
    assert found.auc > 0.8 and found.p_holm < 0.05


def test_no_probe_scores_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no probe scores"):
        probe_tests(tmp_path)
