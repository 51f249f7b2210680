"""``avdf leaderboard RESULTS --compare A B``: is row A different from row B, fold by fold?

For every protocol fold both rows were scored on (the same test videos, read from each
result's scores.parquet): DeLong's test for the two correlated AUCs, and a paired
bootstrap (the same resampled videos for both rows) for ACC at 0.5, AP, EER, ECE and
Brier (``benchmark.significance.compare_rows``). A row is ``name`` or ``name[label]``
(the leaderboard's Detector and Label columns).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


from benchmark.leaderboard_tables import Board
from benchmark.results import ResultsError

METRIC_ORDER = ("auc", "acc", "ap", "eer", "ece", "brier")


def _parse(spec: str) -> tuple[str, str | None]:
    name, _, label = spec.partition("[")
    return name, (label.rstrip("]") if label else None)


def find_row(board: Board, spec: str) -> tuple[str, str, str]:
    name, label = _parse(spec)
    rows = [r for r in board.rows() if r[0] == name and (label is None or r[1] == label)]
    if not rows:
        known = sorted({f"{r[0]}[{r[1]}]" if r[1] else r[0] for r in board.rows()})
        raise ResultsError(f"no results for row {spec!r}; rows: {known}")
    if len(rows) > 1:
        raise ResultsError(f"row {spec!r} is ambiguous: {[f'{r[0]}[{r[1]}]' for r in rows]}; name one with [label]")
    return rows[0]


def compare(board: Board, spec_a: str, spec_b: str, *, n_resamples: int = 1000, seed: int = 0,
            alpha: float = 0.05) -> list[dict[str, Any]]:
    """One record per protocol fold both rows have: the tests, or why the fold could not be compared."""
    from benchmark.metrics import MetricUndefined
    from benchmark.significance import compare_rows

    row_a, row_b = find_row(board, spec_a), find_row(board, spec_b)
    out = []
    for protocol in sorted(board.snapshots):
        folds_a = board.cells.get((row_a, protocol), {})
        folds_b = board.cells.get((row_b, protocol), {})
        for fold in board.snapshots[protocol]["folds"]:
            if fold not in folds_a or fold not in folds_b:
                continue
            record: dict[str, Any] = {"protocol": protocol[0], "version": protocol[1], "fold": fold}
            data = board.paired_scores(folds_a[fold], folds_b[fold])
            if isinstance(data, str):
                out.append({**record, "skipped": data})
                continue
            y, sa, sb = data
            try:
                tests = compare_rows(y, sa, sb, n_resamples=n_resamples, seed=seed, alpha=alpha)
            except MetricUndefined as exc:  # e.g. fewer than 2 videos of a class
                out.append({**record, "skipped": str(exc)})
                continue
            record.update(n=len(y), n_real=int((y == 0).sum()), n_fake=int((y == 1).sum()), tests=tests)
            out.append(record)
    if not out:
        raise ResultsError(f"{spec_a} and {spec_b} share no protocol fold")
    return out


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def _p(t: dict[str, Any], alpha: float) -> str:
    """``p = ...`` and the significance star; p is None where no bootstrap resample defined the metric."""
    if t["p_value"] is None:
        return "p = n/a  "
    return f"p = {t['p_value']:.4f} {'*' if t['p_value'] < alpha else ' '}"


def format_comparison(spec_a: str, spec_b: str, records: Sequence[dict[str, Any]], alpha: float = 0.05) -> str:
    lines = [f"{spec_a} (A) vs {spec_b} (B); * = significant at level {alpha}"]
    for r in records:
        head = f"{r['protocol']} v{r['version']}" + ("" if r["fold"] == "main" else f" fold {r['fold']}")
        if "skipped" in r:
            lines += ["", f"{head}: not compared, {r['skipped']}"]
            continue
        lines += ["", f"{head} ({r['n']} videos: {r['n_real']} real, {r['n_fake']} fake)"]
        auc = r["tests"]["auc"]
        # z is None where the two rows' AUCs differ with zero variance (e.g. perfect vs constant): p is 0
        z = "inf" if auc["z"] is None else f"{auc['z']:.2f}"
        lines.append(f"  AUC    A {_pct(auc['auc_a']):>5}  B {_pct(auc['auc_b']):>5}  A-B {_pct(auc['diff']):>6}  "
                     f"DeLong z = {z}, {_p(auc, alpha)}")
        for metric in METRIC_ORDER[1:]:
            t = r["tests"][metric]
            lines.append(f"  {metric.upper():<5}  A-B {_pct(t['diff']):>6}  paired bootstrap "
                         f"[{_pct(t['low'])}, {_pct(t['high'])}], {_p(t, alpha)}  "
                         f"({t['n_valid']}/{t['n_resamples']} resamples)")
    return "\n".join(lines)
