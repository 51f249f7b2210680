"""Whether any shortcut probe beats chance on any fold, with the whole family of tests in view.

The probes (``detectors.probes``) are scored on every fold: 6 probes x 16 folds on the studio
DAG, 96 tests. Asking each 95 % interval to contain 50 fails a corpus with no shortcut at all
about 99 times in 100 (1 - 0.95^96 for independent folds), so one fold's interval is not
evidence. Each (probe, fold) gets the two-sided Mann-Whitney p-value of its test AUC against
0.5 (the U statistic is AUC x n_fake x n_real; ties count half, with scipy's tie and continuity
corrections), and Holm's step-down adjustment over the family keeps the chance of any false
finding under ``alpha``. A finding is a probe that separates a fold's real and fake test videos
by facts that say nothing about a forgery.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCORES = "scores.parquet"


@dataclass(frozen=True)
class ProbeTest:
    probe: str
    run: str  # <protocol>/<trained fold>
    fold: str  # the fold scored
    n_fake: int
    n_real: int
    auc: float
    p: float
    p_holm: float = float("nan")

    def significant(self, alpha: float) -> bool:
        return self.p_holm < alpha


def auc_p_value(labels: Any, scores: Any) -> tuple[float, float]:
    """(AUC, two-sided Mann-Whitney p-value of AUC = 0.5) of fake (label 1) against real scores."""
    from scipy.stats import mannwhitneyu

    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    fake, real = scores[labels == 1], scores[labels == 0]
    if len(fake) == 0 or len(real) == 0:
        raise ValueError(f"need fake and real scores, got {len(fake)} fake and {len(real)} real")
    test = mannwhitneyu(fake, real, alternative="two-sided", method="asymptotic")
    return float(test.statistic) / (len(fake) * len(real)), float(test.pvalue)


def holm(p_values: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order (each: the smallest family-wise
    level at which its hypothesis is rejected)."""
    p = np.asarray(p_values, np.float64)
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def probe_tests(probe_results: Path) -> list[ProbeTest]:
    """Every (probe, run, fold) under ``probe_results`` (``avdf evaluate``'s layout:
    ``<probe>/<protocol>/<trained fold>/<fold>/scores.parquet``), Holm-adjusted as one family."""
    import pyarrow.parquet as pq

    tests = []
    for path in sorted(Path(probe_results).glob(f"*/*/*/*/{SCORES}")):
        fold_dir = path.parent
        table = pq.read_table(path, columns=["label", "score"]).to_pydict()
        labels = np.asarray(table["label"])
        auc, p = auc_p_value(labels, table["score"])
        tests.append(ProbeTest(probe=fold_dir.parents[2].name, run=f"{fold_dir.parents[1].name}/{fold_dir.parent.name}",
                               fold=fold_dir.name, n_fake=int((labels == 1).sum()), n_real=int((labels == 0).sum()),
                               auc=auc, p=p))
    if not tests:
        raise FileNotFoundError(f"{probe_results}: no probe scores (<probe>/<protocol>/<fold>/<fold>/{SCORES})")
    adjusted = holm([t.p for t in tests])
    return [dataclasses.replace(t, p_holm=float(a)) for t, a in zip(tests, adjusted)]


def findings(probe_results: Path, alpha: float = 0.05) -> list[ProbeTest]:
    """The probe tests significant at family-wise level ``alpha``, most significant first."""
    return sorted((t for t in probe_tests(probe_results) if t.significant(alpha)), key=lambda t: t.p)
