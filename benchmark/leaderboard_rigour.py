"""What the leaderboard adds beyond the papers' tables: shortcut audit, operating points and
calibration, and which rows a fold's best AUC is not significantly better than.

- **Shortcut audit.** Results of the shortcut probes (detectors named ``probe-*``,
  ``detectors.probes``) are kept out of the detector tables. Each table gets a
  "shortcut (best probe)" row holding, per fold, the highest probe AUC (and which
  probe); a fold where it reaches ``SHORTCUT_WARN_AUC`` is flagged: there, trivial facts
  of the files (silence, duration, codec, ...) separate real from fake. A "Shortcut
  audit" table lists every probe.
- **Operating points and calibration.** Per fold: ACC at the threshold each checkpoint
  chose on its validation split, that threshold, TPR at FPR 1 % and 5 %, ECE (equal-mass
  bins) and Brier score (``benchmark.operating_report``).
- **Significance.** In every AUC column of a fold, the best row is marked ``★`` and the
  rows whose AUC DeLong's test for correlated AUCs does not find lower at level
  ``SIGNIFICANCE_ALPHA`` are marked ``≈`` (same test videos required: rows scored on
  other test data are left unmarked). Averages over folds are not tested.
"""
from __future__ import annotations

import dataclasses
from typing import Any


from benchmark.leaderboard_tables import (
    FAMILY_LAYOUT,
    MARK_SYMBOLS,
    SHORTCUT_WARN_AUC,
    SIGNIFICANCE_ALPHA,
    Board,
    Cell,
    Column,
    Row,
    Table,
    _protocol_rank,
    is_probe,
)

SHORTCUT_ROW = "shortcut (best probe)"
SHORTCUT_KIND = "shortcut"
# metric key -> (header, lower is better)
OPERATING_METRICS = {
    "acc": ("ACC@0.5", False),
    "op.acc": ("ACC@val", False),
    "op.threshold": ("thr", False),
    "tpr.1%": ("TPR@1%", False),
    "tpr.5%": ("TPR@5%", False),
    "cal.ece": ("ECE", True),
    "cal.ece_scaled": ("ECE(T)", True),
    "cal.brier": ("Brier", True),
}


def _entry(board: Board, row: tuple[str, str, str], column: Column):
    return board.cells.get((row, (column.protocol, column.version)), {}).get(column.item)


# --------------------------------------------------------------------------- operating points & calibration

def operating_cell(board: Board, row: tuple[str, str, str], column: Column) -> Cell:
    entry = _entry(board, row, column)
    if entry is None:
        return Cell(note="no result")
    metrics = entry.result["metrics"]
    if column.metric == "acc":
        block = metrics["overall"]
        ci = (block.get("ci") or {}).get("acc") or {}
        return Cell(value=block.get("acc"), low=ci.get("low"), high=ci.get("high"))
    group, _, name = column.metric.partition(".")
    if group == "op":
        point = metrics.get("operating_point")
        if point is None or point.get("threshold") is None:
            return Cell(note=(point or {}).get("reason", "no operating point in this result"))
        if name == "threshold":
            return Cell(value=point["threshold"], note=point["rule"])
        ci = (point.get("ci") or {}).get("acc") or {}
        return Cell(value=point.get("acc"), low=ci.get("low"), high=ci.get("high"))
    if group == "tpr":
        values = metrics["overall"].get("tpr_at_fpr")
        return Cell(value=values.get(name)) if values else Cell(note="no TPR@FPR (one class, or an older result)")
    block = metrics.get("calibration")
    if block is None or block.get(name) is None:
        return Cell(note="no calibration in this result" if block is None else "no temperature fitted")
    return Cell(value=block[name])


def operating_table(board: Board, section: str, family: str, protocols: list[tuple[str, str]]) -> Table | None:
    columns = []
    for p in protocols:
        snap = board.snapshots[p]
        for fold in snap["folds"]:
            prefix = snap["name"] + ("" if fold == "main" else f" {fold}")
            columns += [Column(snap["name"], snap["version"], fold, key, f"{prefix} {header}", lower_is_better=lower)
                        for key, (header, lower) in OPERATING_METRICS.items()]
    rows = [row for row in board.rows() if not is_probe(row) and any((row, p) in board.cells for p in protocols)]
    if not rows:
        return None
    title = (f"Operating points and calibration, {family} (ACC at 0.5 and at the threshold chosen on each "
             "checkpoint's validation split; TPR at FPR 1 % / 5 %; ECE over 10 equal-mass bins, before and after "
             "temperature scaling fitted on validation; Brier score)")
    table = Table(section, f"{family}-operating", title, columns)
    table.rows = [Row(r[0], r[1], r[2], [operating_cell(board, r, c) for c in columns]) for r in rows]
    return table


# --------------------------------------------------------------------------- shortcut audit

def shortcut_row(board: Board, table: Table) -> Row | None:
    """Per AUC column of a fold: the best probe's AUC, flagged at SHORTCUT_WARN_AUC or above."""
    probes = [row for row in board.rows() if is_probe(row)]
    if not probes:
        return None
    cells = []
    for column in table.columns:
        best: tuple[float, str, Cell] | None = None
        if column.metric == "auc":
            for probe in probes:
                cell = board.cell(probe, column)
                if cell.value is not None and (best is None or cell.value > best[0]):
                    best = (cell.value, probe[0], cell)
        if best is None:
            cells.append(Cell(note="no probe result" if column.metric == "auc" else ""))
            continue
        value, name, cell = best
        warn = value >= SHORTCUT_WARN_AUC
        note = f"{name}" + (f": AUC >= {SHORTCUT_WARN_AUC:.2f}, a shortcut separates this fold" if warn else "")
        cells.append(dataclasses.replace(cell, note=note, mark="shortcut" if warn else ""))
    return Row(SHORTCUT_ROW, "", SHORTCUT_KIND, cells)


def shortcut_table(board: Board, section: str, protocols: list[tuple[str, str]]) -> Table | None:
    probes = [row for row in board.rows() if is_probe(row) and any((row, p) in board.cells for p in protocols)]
    if not probes:
        return None
    columns = []
    for p in sorted(protocols, key=lambda p: _protocol_rank(board.snapshots[p])):
        snap = board.snapshots[p]
        columns += [Column(snap["name"], snap["version"], fold, "auc",
                           snap["name"] + ("" if fold == "main" else f" {fold}") + " AUC") for fold in snap["folds"]]
    title = (f"Shortcut audit (AUC of trivial probes: silence, duration, loudness, container, A/V sync, face box; "
             f"{MARK_SYMBOLS['shortcut']} = AUC >= {100 * SHORTCUT_WARN_AUC:.0f}, the fold can be solved without looking at "
             f"the forgery; {MARK_SYMBOLS['finding']} = the probe beats chance with every probe and fold of this table in "
             f"view: Mann-Whitney p of AUC = 50, Holm-adjusted, < {SIGNIFICANCE_ALPHA})")
    table = Table(section, "shortcut", title, columns)
    family = _holm_family(board, probes, columns)
    for probe in probes:
        cells = []
        for column in columns:
            cell = board.cell(probe, column)
            p_holm = family.get((probe, column))
            if p_holm is not None and p_holm < SIGNIFICANCE_ALPHA:
                mark = "finding"
            else:
                mark = "shortcut" if cell.value is not None and cell.value >= SHORTCUT_WARN_AUC else ""
            note = "; ".join(n for n in (cell.note, f"Holm p {p_holm:.2g}" if p_holm is not None else "") if n)
            cells.append(dataclasses.replace(cell, mark=mark, note=note))
        table.rows.append(Row(probe[0], probe[1], probe[2], cells))
    return table


def _holm_family(board: Board, probes: list[tuple[str, str, str]], columns: list[Column]) -> dict[tuple, float]:
    """(probe, column) -> Holm-adjusted p-value of its AUC against 50, over every probe result of the
    table that has scores (benchmark.shortcut_audit)."""
    from benchmark.shortcut_audit import auc_p_value, holm

    keys, p_values = [], []
    for probe in probes:
        for column in columns:
            entry = _entry(board, probe, column)
            table = board.scores(entry) if entry is not None else None
            if table is None:
                continue
            labels = table.column("label").to_numpy()
            if 0 < labels.sum() < len(labels):
                keys.append((probe, column))
                p_values.append(auc_p_value(labels, table.column("score").to_numpy())[1])
    return dict(zip(keys, holm(p_values))) if keys else {}


# --------------------------------------------------------------------------- significance

def mark_significance(board: Board, table: Table, alpha: float = SIGNIFICANCE_ALPHA) -> None:
    """Mark, in place, each fold AUC column's best row and the rows not significantly below it."""
    from benchmark.metrics import MetricUndefined
    from benchmark.significance import delong_test

    for j, column in enumerate(table.columns):
        snapshot = board.snapshots[(column.protocol, column.version)]
        if column.metric != "auc" or column.item not in snapshot["folds"]:
            continue
        scored = []
        for i, row in enumerate(table.rows):
            if row.kind == SHORTCUT_KIND or row.cells[j].value is None:
                continue
            entry = _entry(board, (row.name, row.label, row.kind), column)
            if entry is not None and board.scores(entry) is not None:
                scored.append((row.cells[j].value, i, entry))
        if len(scored) < 2:
            continue
        _, best_i, best = max(scored, key=lambda t: (t[0], -t[1]))
        table.rows[best_i].cells[j] = dataclasses.replace(table.rows[best_i].cells[j], mark="best")
        for _, i, entry in scored:
            paired = board.paired_scores(best, entry) if i != best_i else "the best row itself"
            if isinstance(paired, str):  # other test videos: no paired test, no mark
                continue
            try:
                test = delong_test(*paired)
            except MetricUndefined:  # fewer than 2 videos of a class: no test, no mark
                continue
            if test["p_value"] >= alpha:
                note = f"DeLong vs {table.rows[best_i].name}: p = {test['p_value']:.3f}"
                table.rows[i].cells[j] = dataclasses.replace(table.rows[i].cells[j], mark="tie", note=note)


def add_rigour(board: Board, tables: list[Table]) -> list[Table]:
    """The tables with significance marks and a shortcut row in each family table, each followed by
    its operating-point and calibration table, and each section ending with its shortcut audit."""
    out: list[Table] = []
    for i, table in enumerate(tables):
        out.append(table)
        if table.family in FAMILY_LAYOUT:
            mark_significance(board, table)
            row = shortcut_row(board, table)
            if row is not None:
                table.rows.append(row)
            protocols = list(dict.fromkeys((c.protocol, c.version) for c in table.columns))
            extra = operating_table(board, table.section, table.family, protocols)
            if extra is not None:
                out.append(extra)
        if i + 1 == len(tables) or tables[i + 1].section != table.section:
            protocols = [p for p, snap in board.snapshots.items() if _section_of(tables, snap, table.section)]
            audit = shortcut_table(board, table.section, protocols)
            if audit is not None:
                out.append(audit)
    return out


def _section_of(tables: list[Table], snapshot: dict[str, Any], section: str) -> bool:
    return any(t.section == section and any(c.protocol == snapshot["name"] and c.version == snapshot["version"]
                                            for c in t.columns) for t in tables)
