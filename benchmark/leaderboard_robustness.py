"""The leaderboard's robustness table: AUC on perturbed test videos (``avdf perturb``).

A result on perturbed test videos carries ``extra.perturbation`` ({spec, kind, level, ...});
the leaderboard keeps it out of the papers' tables. Per protocol fold that was perturbed, the
table gives each detector's clean AUC, its AUC per perturbation type averaged over the levels
scored, and the mean over the types (DeeperForensics-1.0's way of reporting its 7 x 5
perturbations, extended with the audio ones). ``severity_curves`` gives the AUC-vs-level
points that leaderboard.html draws.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from benchmark.leaderboard_tables import (
    REAL_SECTION,
    STUDIO_SECTION,
    Board,
    Cell,
    Column,
    Row,
    Table,
    _protocol_rank,
    is_probe,
    is_studio,
)

ROBUSTNESS_TITLE = ("Robustness (AUC on perturbed test videos, reals and fakes perturbed alike: clean; per type, "
                    "the mean over the levels scored; none: re-encoded only, the control; the mean over the types)")

Curves = dict[tuple[str, str, str], dict[str, dict[tuple[str, str, str], list[tuple[int, float]]]]]


def _kinds() -> list[str]:
    from pipeline.perturb import AUDIO_LEVELS, VIDEO_LEVELS

    return [*VIDEO_LEVELS, *AUDIO_LEVELS, "mixed", "none"]


def _kind_order(kind: str) -> tuple[int, str]:
    kinds = _kinds()
    return (kinds.index(kind) if kind in kinds else len(kinds), kind)


def severity(kind: str, level: int | None) -> int:
    """1 (mildest) .. n: a video kind's DeeperForensics level; an audio kind's place in its level table
    (snr 30 dB -> 1 ... 0 dB -> 5; mp3 64 kbit/s -> 1 ... 16 -> 3); 0 for none and mixed."""
    from pipeline.perturb import AUDIO_LEVELS

    if level is None:
        return 0
    if kind in AUDIO_LEVELS:
        return AUDIO_LEVELS[kind].index(level) + 1
    return int(level)


def severity_curves(board: Board) -> Curves:
    """(protocol, version, fold) -> kind -> row -> [(severity, AUC)] sorted by severity."""
    curves: Curves = defaultdict(lambda: defaultdict(dict))
    for e in board.perturbed:
        if is_probe(e.row):
            continue
        auc = e.result["metrics"]["overall"].get("auc")
        if auc is None:
            continue
        p = e.result["extra"]["perturbation"]
        points = curves[(*e.protocol, e.result["fold"])][p["kind"]].setdefault(e.row, [])
        points.append((severity(p["kind"], p["level"]), float(auc)))
    for kinds in curves.values():
        for rows in kinds.values():
            for points in rows.values():
                points.sort()
    return curves


def robustness_tables(board: Board) -> list[Table]:
    curves = severity_curves(board)
    if not curves:
        return []
    tables: dict[str, Table] = {}
    order = sorted(curves, key=lambda k: (_protocol_rank(board.snapshots[k[:2]]), k[2]))
    for protocol, version, fold in order:
        section = STUDIO_SECTION if is_studio(board.snapshots[(protocol, version)]) else REAL_SECTION
        table = tables.setdefault(section, Table(section, "robustness", ROBUSTNESS_TITLE, []))
        prefix = protocol + ("" if fold == "main" else f" {fold}")
        kinds = sorted(curves[(protocol, version, fold)], key=_kind_order)
        table.columns += [Column(protocol, version, fold, "rob.clean", f"{prefix} clean AUC")]
        table.columns += [Column(protocol, version, fold, f"rob.{k}", f"{prefix} {k}") for k in kinds]
        table.columns += [Column(protocol, version, fold, "rob.mean", f"{prefix} mean")]
    for table in tables.values():
        rows = sorted({row for key in curves for kinds in curves[key].values() for row in kinds})
        table.rows = [Row(r[0], r[1], r[2], [_cell(board, curves, r, c) for c in table.columns]) for r in rows]
    return [tables[s] for s in (REAL_SECTION, STUDIO_SECTION) if s in tables]


def _cell(board: Board, curves: Curves, row: tuple[str, str, str], column: Column) -> Cell:
    kinds = curves[(column.protocol, column.version, column.item)]
    name = column.metric.removeprefix("rob.")
    if name == "clean":
        return board.cell(row, Column(column.protocol, column.version, column.item, "auc", column.header))
    if name == "mean":  # over the perturbation types: `none`, the re-encode control, is not one
        types = [k for k in kinds if k != "none"]
        means = [np.mean([a for _, a in kinds[k][row]]) for k in types if row in kinds[k]]
        if not types or len(means) < len(types):
            return Cell(note="not scored under every perturbation type")
        return Cell(value=float(np.mean(means)))
    points = kinds.get(name, {}).get(row)
    if not points:
        return Cell(note="no result")
    return Cell(value=float(np.mean([a for _, a in points])),
                note="severities " + ", ".join(str(level) for level, _ in points))
