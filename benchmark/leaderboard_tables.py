"""The leaderboard's tables: results collected into rows (detectors and their ablations) and
columns (protocol folds and averages, laid out as in the papers), rendered as Markdown and CSV.

``benchmark.leaderboard`` (the command) writes them with ``benchmark.leaderboard_page`` (the
HTML page); both read this module, which imports neither.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.results import METRICS_NAME, ResultsError, average_with_ci, read_result, read_scores

REAL_SECTION = "Real corpora"
STUDIO_SECTION = "Studio corpus (proxy; not comparable to real-corpus numbers)"
STUDIO_NOTE = (
    "Studio-twin protocols run on the built-in synthetic studio corpus: they check that the pipeline "
    "works end to end and rank detectors on a proxy task. Do not compare these numbers with the "
    "real-corpus tables or with the papers."
)
# family -> (title, metrics per column item)
FAMILY_LAYOUT: dict[str, tuple[str, tuple[str, ...]]] = {
    "intra": ("Intra-dataset (ACC / AUC)", ("acc", "auc")),
    "cross-manipulation": ("Cross-manipulation (AP / AUC per held-out category)", ("ap", "auc")),
    "cross-dataset": ("Cross-dataset (AUC per test set)", ("auc",)),
}
OTHER_METRICS = ("auc", "ap")
MODALITY_TITLE = "Per modality (ACC / AUC of each modality's score against its own label)"
# (metric key, header suffix) of the per-modality table; the key reads metrics.modalities.<m>.<metric>
MODALITY_METRICS = (("video.acc", "ACC_v"), ("video.auc", "AUC_v"), ("audio.acc", "ACC_a"), ("audio.auc", "AUC_a"))
SPREAD_TITLE = ("Score spread (standard deviation of P(fake) over each fold's test videos; near 0 = a "
                "constant-output detector, whatever its AUC)")
FAMILY_ORDER = ["intra", "cross-manipulation", "cross-dataset"]
# Shortcut probes (detectors.probes) are scored like detectors but are not detectors: their results go
# to the shortcut audit (benchmark.leaderboard_rigour), not to the detector tables.
PROBE_PREFIX = "probe-"
SHORTCUT_WARN_AUC = 0.75  # a probe AUC from which a fold is flagged
SIGNIFICANCE_ALPHA = 0.05  # DeLong level of the "not significantly lower" marks
MARK_SYMBOLS = {"best": "★", "tie": "≈", "shortcut": "⚠", "finding": "‼"}
# Column order inside a family follows the papers; studio twins sort with what they mirror.
PROTOCOL_ORDER = ["intra-random", "intra-group", "cross-manipulation", "cross-dataset"]


# --------------------------------------------------------------------------- collecting

@dataclass(frozen=True)
class Entry:
    path: Path
    result: dict[str, Any]

    @property
    def row(self) -> tuple[str, str, str]:
        """(name, label, kind): a submission named like a detector is still its own row."""
        d = self.result["detector"]
        return d["name"], d["label"] or "", d["kind"]

    @property
    def protocol(self) -> tuple[str, str]:
        p = self.result["protocol"]
        return p["name"], p["version"]

    @property
    def perturbation(self) -> str | None:
        """The perturbation the test videos went through (``avdf perturb``), e.g. ``GB:3``; None: clean."""
        return (self.result["extra"].get("perturbation") or {}).get("spec")


def find_results(inputs: Iterable[str | Path]) -> list[Path]:
    """Result files: each input is a file, or a folder searched for metrics.json."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(path.rglob(METRICS_NAME))
        elif path.exists():
            found.append(path)
        else:
            raise ResultsError(f"{path}: no such results file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ResultsError(f"no {METRICS_NAME} files under {[str(i) for i in inputs]}")
    return unique


def load_entries(paths: Sequence[Path]) -> list[Entry]:
    """Read every result; refuse two results for the same cell or two definitions of one protocol version."""
    entries = [Entry(p, read_result(p)) for p in paths]
    seen: dict[tuple, Path] = {}
    hashes: dict[tuple[str, str], tuple[str, Path]] = {}
    for e in entries:
        cell = (e.row, e.protocol, e.result["fold"], e.perturbation)
        if cell in seen:
            under = f" under {e.perturbation}" if e.perturbation else ""
            raise ResultsError(
                f"two results for {e.row[0]} {e.row[1] or ''} on {e.protocol[0]} v{e.protocol[1]} fold "
                f"{e.result['fold']}{under}: {seen[cell]} and {e.path}"
            )
        seen[cell] = e.path
        h = e.result["protocol"]["hash"]
        if e.protocol in hashes and hashes[e.protocol][0] != h:
            raise ResultsError(
                f"{e.path} and {hashes[e.protocol][1]} disagree on the definition of {e.protocol[0]} "
                f"v{e.protocol[1]} (protocol hash {h[:12]}... vs {hashes[e.protocol][0][:12]}...)"
            )
        hashes[e.protocol] = (h, e.path)
    return entries


# --------------------------------------------------------------------------- the tables

@dataclass(frozen=True)
class Column:
    protocol: str
    version: str
    item: str  # a fold or an average
    metric: str
    header: str
    lower_is_better: bool = False  # ECE, Brier: the HTML highlights the lowest value

    @property
    def key(self) -> str:
        """Machine-readable name (CSV header)."""
        return f"{self.protocol}@{self.version}/{self.item}/{self.metric.upper()}"


@dataclass(frozen=True)
class Cell:
    value: float | None = None
    low: float | None = None
    high: float | None = None
    note: str = ""
    mark: str = ""  # "best" | "tie" | "shortcut" | "finding" (benchmark.leaderboard_rigour)


@dataclass
class Row:
    name: str
    label: str
    kind: str
    cells: list[Cell]


@dataclass
class Table:
    section: str
    family: str
    title: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)


def is_probe(row: tuple[str, str, str]) -> bool:
    return row[0].startswith(PROBE_PREFIX)


def is_studio(snapshot: dict[str, Any]) -> bool:
    return snapshot.get("twin_of") is not None or "studio" in snapshot.get("corpora", [])


def column_items(snapshot: dict[str, Any]) -> list[str]:
    """Folds up to the last one that an average over folds uses, those averages, then the other
    folds (cross-dataset: FAV, W2L ... MIT_S, AVG, KoDF). Averages over categories (inside the
    first fold: AVG-FV of intra, IDForge's AVG of its subsets) follow that fold."""
    folds = list(snapshot["folds"])
    fold_averages = [n for n, m in snapshot["averages"].items() if len(folds) > 1 and set(m) <= set(folds)]
    in_fold = [n for n in snapshot["averages"] if n not in fold_averages]
    folds = folds[:1] + in_fold + folds[1:]
    if not fold_averages:
        return folds
    last = max(folds.index(m) for name in fold_averages for m in snapshot["averages"][name])
    return folds[: last + 1] + fold_averages + folds[last + 1 :]


def _columns(snapshot: dict[str, Any], shared_table: bool, show_version: bool = False) -> list[Column]:
    """A protocol's columns; ``show_version`` when the table holds another version of it too."""
    family = snapshot["family"]
    metrics = FAMILY_LAYOUT.get(family, ("", OTHER_METRICS))[1]
    name, version = snapshot["name"], snapshot["version"]
    cols = []
    for item in column_items(snapshot):
        for metric in metrics:
            parts = []
            if shared_table or item == "main":
                parts.append(f"{name} v{version}" if show_version else name)
            if item != "main":
                parts.append(item)
            parts.append(metric.upper())
            cols.append(Column(name, version, item, metric, " ".join(parts)))
    return cols


class Board:
    """Every result, grouped by row and protocol, with fold averages computed on demand."""

    def __init__(self, entries: Sequence[Entry], n_bootstrap: int = 1000, seed: int = 0) -> None:
        # Results on perturbed test videos go to the robustness table (benchmark.leaderboard_robustness)
        self.perturbed = [e for e in entries if e.perturbation]
        entries = [e for e in entries if not e.perturbation]
        self.entries = list(entries)
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.snapshots = {e.protocol: e.result["protocol"] for e in entries}
        self.cells: dict[tuple, dict[str, Entry]] = {}
        self.row_keys: set[tuple[str, str, str]] = set()
        for e in entries:
            self.cells.setdefault((e.row, e.protocol), {})[e.result["fold"]] = e
            self.row_keys.add(e.row)
        self._averages: dict[tuple, dict[str, Any]] = {}
        self._scores: dict[Path, Any] = {}

    def rows(self, probes: bool = True) -> list[tuple[str, str, str]]:
        return sorted(r for r in self.row_keys if probes or not is_probe(r))

    def scores(self, entry: Entry):
        if entry.path not in self._scores:
            self._scores[entry.path] = read_scores(entry.path, entry.result)
        return self._scores[entry.path]

    def paired_scores(self, a: Entry, b: Entry) -> tuple[Any, Any, Any] | str:
        """(labels, scores of a, scores of b) over the same test videos, sorted by key, for the paired
        tests (DeLong, paired bootstraps); or why the two results cannot be paired."""
        import numpy as np

        ta, tb = self.scores(a), self.scores(b)
        if ta is None or tb is None:
            return "a result has no scores.parquet"
        da, db = ({k: (y, s) for k, y, s in zip(*(t.column(c).to_pylist() for c in ("key", "label", "score")))}
                  for t in (ta, tb))
        if set(da) != set(db):
            return f"the rows were scored on different test videos ({len(da)} vs {len(db)} keys)"
        keys = sorted(da)
        if any(da[k][0] != db[k][0] for k in keys):
            return "the two results label the same videos differently"
        return (np.array([da[k][0] for k in keys]), np.array([da[k][1] for k in keys]),
                np.array([db[k][1] for k in keys]))

    def fold_average(self, row, protocol, name: str) -> dict[str, Any] | None:
        """An average over folds (AVG-FV of cross-manipulation, AVG of cross-dataset)."""
        key = (row, protocol, name)
        if key not in self._averages:
            members = self.snapshots[protocol]["averages"][name]
            folds = self.cells.get((row, protocol), {})
            missing = [m for m in members if m not in folds]
            if missing:
                self._averages[key] = {"missing": missing}
            else:
                summaries = {m: folds[m].result["metrics"]["overall"] for m in members}
                data = {}
                for m in members:
                    table = self.scores(folds[m])
                    if table is not None:
                        data[m] = (table.column("label").to_numpy(), table.column("score").to_numpy())
                threshold = folds[members[0]].result["metrics"]["threshold"]
                self._averages[key] = average_with_ci(
                    summaries, members, data, threshold=threshold, n_bootstrap=self.n_bootstrap, seed=self.seed
                )
        return self._averages[key]

    def cell(self, row, column: Column) -> Cell:
        protocol = (column.protocol, column.version)
        folds = self.cells.get((row, protocol), {})
        snapshot = self.snapshots[protocol]
        if "." in column.metric:  # per modality: metrics.modalities.<modality>.<metric>
            modality, metric = column.metric.split(".")
            entry = folds.get(column.item)
            block = (entry.result["metrics"].get("modalities") or {}).get(modality) if entry else None
            if block is None:
                return Cell(note="no result" if entry is None else "no per-modality score")
            ci = (block.get("ci") or {}).get(metric) or {}
            return Cell(value=block.get(metric), low=ci.get("low"), high=ci.get("high"),
                        note=(block.get("undefined") or {}).get(metric, ""))
        if column.metric == "spread":
            entry = folds.get(column.item)
            spread = entry.result["metrics"]["overall"].get("score_spread") if entry else None
            if spread is None:
                return Cell(note="no result" if entry is None else "no score spread in this result")
            return Cell(value=spread["std"])
        if column.item in snapshot["folds"]:
            entry = folds.get(column.item)
            if entry is None:
                return Cell(note="no result")
            block = entry.result["metrics"]["overall"]
        elif len(snapshot["folds"]) == 1 or not set(snapshot["averages"][column.item]) <= set(snapshot["folds"]):
            entry = folds.get(snapshot["folds"][0])  # an average over categories, inside the first fold
            block = entry.result["metrics"].get("averages", {}).get(column.item) if entry else None
            if block is None:
                return Cell(note="no result")
        else:
            block = self.fold_average(row, protocol, column.item)
            if "missing" in block:
                return Cell(note=f"missing folds {block['missing']}")
        value = block.get(column.metric)
        ci = (block.get("ci") or {}).get(column.metric) or {}
        note = (block.get("undefined") or {}).get(column.metric, "")
        return Cell(value=value, low=ci.get("low"), high=ci.get("high"), note=note)


def _protocol_rank(snapshot: dict[str, Any]) -> tuple:
    mirrored = snapshot.get("twin_of") or snapshot["name"]
    known = PROTOCOL_ORDER.index(mirrored) if mirrored in PROTOCOL_ORDER else len(PROTOCOL_ORDER)
    return known, snapshot["name"], [int(p) if p.isdigit() else p for p in snapshot["version"].split(".")]


def build_tables(board: Board) -> list[Table]:
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for protocol, snap in sorted(board.snapshots.items()):
        section = STUDIO_SECTION if is_studio(snap) else REAL_SECTION
        groups.setdefault((section, snap["family"]), []).append(protocol)
    ordered = sorted(
        groups,
        key=lambda g: (g[0] != REAL_SECTION, FAMILY_ORDER.index(g[1]) if g[1] in FAMILY_ORDER else 99, g[1]),
    )
    last_of_section = {g[0]: g for g in ordered}
    tables = []
    for section, family in ordered:
        protocols = sorted(groups[(section, family)], key=lambda p: _protocol_rank(board.snapshots[p]))
        shared = len(protocols) > 1
        names = [board.snapshots[p]["name"] for p in protocols]
        columns = [c for p in protocols
                   for c in _columns(board.snapshots[p], shared, names.count(board.snapshots[p]["name"]) > 1)]
        title = FAMILY_LAYOUT.get(family, (f"{family} (AUC / AP per fold)",))[0]
        table = Table(section, family, title, columns)
        for row in board.rows(probes=False):
            if not any((row, p) in board.cells for p in protocols):
                continue
            table.rows.append(Row(row[0], row[1], row[2], [board.cell(row, c) for c in columns]))
        tables.append(table)
        if family == "intra":
            tables += _modality_table(board, section, protocols)
        if last_of_section[section] == (section, family):
            tables.append(_spread_table(board, section, [p for g in ordered if g[0] == section for p in groups[g]]))
    return tables


def _spread_table(board: Board, section: str, protocols: list[tuple[str, str]]) -> Table:
    """One column per fold of the section's protocols: how far each row's test scores spread."""
    columns = []
    for p in sorted(protocols, key=lambda p: _protocol_rank(board.snapshots[p])):
        snap = board.snapshots[p]
        columns += [Column(snap["name"], snap["version"], fold, "spread",
                           snap["name"] + ("" if fold == "main" else f" {fold}") + " SD")
                    for fold in snap["folds"]]
    table = Table(section, "spread", SPREAD_TITLE, columns)
    table.rows = [Row(row[0], row[1], row[2], [board.cell(row, c) for c in columns])
                  for row in board.rows(probes=False) if any((row, p) in board.cells for p in protocols)]
    return table


def _modality_table(board: Board, section: str, protocols: list[tuple[str, str]]) -> list[Table]:
    """The per-modality table of the intra protocols' rows that have per-modality results."""
    def has_modalities(row) -> bool:
        return any("modalities" in e.result["metrics"] for p in protocols for e in board.cells.get((row, p), {}).values())

    rows = [row for row in board.rows(probes=False) if has_modalities(row)]
    if not rows:
        return []
    columns = []
    for p in protocols:
        snap = board.snapshots[p]
        for fold in snap["folds"]:
            prefix = snap["name"] + ("" if fold == "main" else f" {fold}")
            columns += [Column(snap["name"], snap["version"], fold, key, f"{prefix} {header}")
                        for key, header in MODALITY_METRICS]
    table = Table(section, "intra-modality", MODALITY_TITLE, columns)
    table.rows = [Row(row[0], row[1], row[2], [board.cell(row, c) for c in columns]) for row in rows]
    return [table]


# --------------------------------------------------------------------------- writing

def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def cell_text(cell: Cell) -> str:
    if cell.value is None:
        return "—"
    mark = f" {MARK_SYMBOLS[cell.mark]}" if cell.mark else ""
    if cell.low is None or cell.high is None:
        return pct(cell.value) + mark
    return f"{pct(cell.value)} [{pct(cell.low)}, {pct(cell.high)}]{mark}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(tables: Sequence[Table], title: str, n_results: int, created: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"{n_results} result(s), generated {created}. Values are percentages; brackets hold the 95 % "
        "bootstrap confidence interval (videos resampled). ACC uses threshold 0.5 (ACC@val: the threshold "
        "each checkpoint chose on its validation split); — means no result or undefined. "
        f"{MARK_SYMBOLS['best']} best AUC of a fold; {MARK_SYMBOLS['tie']} not significantly lower than it "
        f"(DeLong's test, p >= {SIGNIFICANCE_ALPHA}, same test videos); {MARK_SYMBOLS['shortcut']} a shortcut "
        f"probe reaches AUC >= {100 * SHORTCUT_WARN_AUC:.0f} (trivial file facts separate real from fake there); "
        f"{MARK_SYMBOLS['finding']} a probe beats chance with all the shortcut audit's tests in view (Holm).",
    ]
    section = None
    for t in tables:
        if t.section != section:
            section = t.section
            lines += ["", f"## {section}"]
            if section == STUDIO_SECTION:
                lines += ["", f"> {STUDIO_NOTE}"]
        lines += ["", f"### {t.title}", ""]
        header = ["Detector", "Label", *[c.header for c in t.columns]]
        lines.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
        lines.append("|" + "|".join([":--", ":--"] + ["--:"] * len(t.columns)) + "|")
        for r in t.rows:
            name = r.name + (" (submission)" if r.kind == "submission" else "")
            cells = [_md_escape(name), _md_escape(r.label or "—"), *[cell_text(c) for c in r.cells]]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_csv(tables: Sequence[Table]) -> str:
    """One row per (section, detector, label); values as fractions in [0, 1] with CI bounds."""
    columns: list[Column] = []
    for t in tables:
        columns += [c for c in t.columns if c not in columns]
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for t in tables:
        for r in t.rows:
            corpus = "studio" if t.section == STUDIO_SECTION else "real"
            out = rows.setdefault((corpus, r.name, r.label, r.kind), {"corpus": corpus, "detector": r.name,
                                                               "label": r.label, "kind": r.kind})
            for c, cell in zip(t.columns, r.cells):
                out[c.key] = cell.value
                out[f"{c.key}_ci_low"] = cell.low
                out[f"{c.key}_ci_high"] = cell.high
    fieldnames = ["corpus", "detector", "label", "kind"]
    for c in columns:
        fieldnames += [c.key, f"{c.key}_ci_low", f"{c.key}_ci_high"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    for key in sorted(rows, key=lambda k: (k[0] != "real", k[1:])):
        writer.writerow({k: ("" if v is None else v) for k, v in rows[key].items()})
    return buf.getvalue()
