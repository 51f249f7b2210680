"""``leaderboard.html``: one self-contained page (no network) with sortable tables and plots.

The template (``benchmark/templates/leaderboard.html``) holds the CSS and the
vanilla-JS table sorting; this module fills in the tables and, per protocol
and fold, inline-SVG ROC and precision-recall curves of every detector and
their score histograms, drawn from each result's ``scores.parquet``.
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from benchmark.leaderboard_tables import Board, Table

# Enough distinct colours for a typical board; they repeat beyond that.
PALETTE = ["#2463b8", "#d1495b", "#2a9d55", "#e0a100", "#7b4fb3", "#1b9aaa", "#8c564b", "#e377c2", "#555555"]


def _template() -> str:
    return resources.files("benchmark.templates").joinpath("leaderboard.html").read_text(encoding="utf-8")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _row_label(name: str, label: str) -> str:
    return f"{name} ({label})" if label else name


# --------------------------------------------------------------------------- tables

def render_table(table: Table, index: int) -> str:
    from benchmark.leaderboard_tables import MARK_SYMBOLS

    best = {}
    for j, column in enumerate(table.columns):
        values = [r.cells[j].value for r in table.rows if r.cells[j].value is not None]
        if len(values) > 1:
            best[j] = min(values) if column.lower_is_better else max(values)
    head = ['<th data-type="text">Detector</th>', '<th data-type="text">Label</th>']
    for c in table.columns:
        head.append(f'<th data-type="num" title="{_esc(c.key)}">{_esc(c.header)}</th>')
    body = []
    for r in table.rows:
        tag = '<span class="tag">submission</span>' if r.kind == "submission" else ""
        tds = [f'<td data-v="{_esc(r.name)}">{_esc(r.name)}{tag}</td>', f"<td>{_esc(r.label or '—')}</td>"]
        for j, cell in enumerate(r.cells):
            if cell.value is None:
                tds.append(f'<td class="num" data-v="" title="{_esc(cell.note or "no value")}">—</td>')
                continue
            ci = ""
            tips = [cell.note] if cell.note else []
            if cell.low is not None and cell.high is not None:
                ci = f'<span class="ci">{_pct(cell.low)}–{_pct(cell.high)}</span>'
                tips.insert(0, f"95 % CI {_pct(cell.low)}–{_pct(cell.high)}")
            title = f' title="{_esc("; ".join(tips))}"' if tips else ""
            cls = "num best" if best.get(j) == cell.value else "num"
            if cell.mark:
                cls += f" mark-{cell.mark}"
            mark = f'<span class="mark">{MARK_SYMBOLS[cell.mark]}</span>' if cell.mark else ""
            tds.append(f'<td class="{cls}" data-v="{cell.value!r}"{title}>{_pct(cell.value)}{mark}{ci}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (
        f'<h3>{_esc(table.title)}</h3>\n<div class="scroll"><table class="board" id="table-{index}">'
        f"<thead><tr>{''.join(head)}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


# --------------------------------------------------------------------------- plots

# Inline SVG drawn here (no plotting library): a few kB per panel, crisp at any zoom,
# and milliseconds to make, where rendering PNGs with matplotlib took seconds per fold.
_W, _H = 300, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 10, 26, 40
MAX_POINTS = 400


def _thin(x: np.ndarray, y: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= limit:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(int))
    return x[keep], y[keep]


class _Panel:
    """One SVG chart with data coordinates [0, 1] x [0, ymax]."""

    def __init__(self, title: str, xlabel: str, ylabel: str, ymax: float = 1.0) -> None:
        self.title, self.xlabel, self.ylabel, self.ymax = title, xlabel, ylabel, ymax
        self.items: list[str] = []

    def _x(self, v: float) -> float:
        return _LEFT + v * (_W - _LEFT - _RIGHT)

    def _y(self, v: float) -> float:
        return _H - _BOTTOM - (v / self.ymax) * (_H - _TOP - _BOTTOM)

    def line(self, xs, ys, color: str, *, width: float = 1.8, dash: str | None = None, name: str = "") -> None:
        points = " ".join(f"{self._x(float(a)):.1f},{self._y(float(b)):.1f}" for a, b in zip(xs, ys))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        tip = f"<title>{_esc(name)}</title>" if name else ""
        self.items.append(
            f'<polyline class="curve" fill="none" stroke="{color}" stroke-width="{width}"{dash_attr} '
            f'points="{points}">{tip}</polyline>'
        )

    def svg(self) -> str:
        grid = []
        for t in np.linspace(0, 1, 5):
            x, y = self._x(t), self._y(t * self.ymax)
            grid.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_H - _BOTTOM}" class="grid"/>')
            grid.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" class="grid"/>')
            grid.append(f'<text x="{x:.1f}" y="{_H - _BOTTOM + 14}" text-anchor="middle">{t:g}</text>')
            label = f"{t * self.ymax:.2g}" if self.ymax != 1.0 else f"{t:g}"
            grid.append(f'<text x="{_LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        frame = (f'<rect x="{_LEFT}" y="{_TOP}" width="{_W - _LEFT - _RIGHT}" height="{_H - _TOP - _BOTTOM}" '
                 'class="frame"/>')
        labels = (
            f'<text x="{_W / 2:.0f}" y="16" text-anchor="middle" class="title">{_esc(self.title)}</text>'
            f'<text x="{(_LEFT + _W - _RIGHT) / 2:.0f}" y="{_H - 8}" text-anchor="middle">{_esc(self.xlabel)}</text>'
            f'<text x="12" y="{(_TOP + _H - _BOTTOM) / 2:.0f}" text-anchor="middle" '
            f'transform="rotate(-90 12 {(_TOP + _H - _BOTTOM) / 2:.0f})">{_esc(self.ylabel)}</text>'
        )
        return (
            f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
            f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{_esc(self.title)}">'
            + frame + "".join(grid) + "".join(self.items) + labels + "</svg>"
        )


def fold_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray, str]], title: str) -> str:
    """ROC, precision-recall, score-histogram and reliability panels (inline SVG) of several detectors on
    one fold.

    ``curves``: (legend label, labels 0/1, scores, summary such as "AUC 97.3 [95.1, 98.8]") per detector.
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    from benchmark.calibration import reliability_bins
    from benchmark.operating_report import CALIBRATION_BINS

    reliability = _Panel(f"Reliability ({CALIBRATION_BINS} equal-mass bins)", "mean P(fake) in bin",
                         "share of fakes in bin")
    reliability.line([0, 1], [0, 1], "#bbbbbb", width=1, dash="3 3")
    roc = _Panel("ROC", "false positive rate", "true positive rate")
    roc.line([0, 1], [0, 1], "#bbbbbb", width=1, dash="3 3")
    pr = _Panel("Precision-recall", "recall", "precision")
    bins = np.linspace(0, 1, 21)
    hists = []
    for i, (label, y, s, _) in enumerate(curves):
        if 0 < y.sum() < len(y):
            fpr, tpr, _ = roc_curve(y, s)
            roc.line(*_thin(fpr, tpr), PALETTE[i % len(PALETTE)], name=label)
            precision, recall, _ = precision_recall_curve(y, s)
            # The step curve AP integrates: precision p_k over recall (r_{k-1}, r_k].
            rx = np.repeat(recall[::-1], 2)[1:-1]
            py = np.repeat(precision[::-1][1:], 2)
            pr.line(*_thin(rx, py), PALETTE[i % len(PALETTE)], name=label)
        points = reliability_bins(y, s, CALIBRATION_BINS)
        reliability.line([b["mean_score"] for b in points], [b["fraction_fake"] for b in points],
                         PALETTE[i % len(PALETTE)], name=label)
        fake = np.histogram(s[y == 1], bins=bins)[0] / max(1, int((y == 1).sum()))
        real = np.histogram(s[y == 0], bins=bins)[0] / max(1, int((y == 0).sum()))
        hists.append((i, label, fake, real))
    ymax = max([1e-9] + [float(max(f.max(), r.max())) for _, _, f, r in hists])
    hist = _Panel("Scores (solid fake, dashed real)", "P(fake)", "share of videos", ymax=ymax * 1.05)
    for i, label, fake, real in hists:
        xs = np.repeat(bins, 2)[1:-1]
        color = PALETTE[i % len(PALETTE)]
        hist.line(xs, np.repeat(fake, 2), color, width=1.6, name=f"{label}: fake")
        hist.line(xs, np.repeat(real, 2), color, width=1.3, dash="5 3", name=f"{label}: real")
    legend = "".join(
        f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
        f"{_esc(label)} — {_esc(summary)}</li>"
        for i, (label, _, _, summary) in enumerate(curves)
    )
    return (
        f'<figure class="fold-plots"><figcaption>{_esc(title)}</figcaption>'
        f'<div class="panels">{roc.svg()}{pr.svg()}{hist.svg()}{reliability.svg()}</div><ul class="legend">{legend}</ul></figure>'
    )


def render_plots(board: Board) -> str:
    """Per protocol (a collapsible block), per fold: one figure with every detector's curves."""
    blocks = []
    for protocol, snap in sorted(board.snapshots.items()):
        figures = []
        for fold in snap["folds"]:
            curves = []
            for row in board.rows():
                entry = board.cells.get((row, protocol), {}).get(fold)
                if entry is None:
                    continue
                scores = board.scores(entry)
                if scores is None:
                    continue
                overall = entry.result["metrics"]["overall"]
                summary = f"AUC {_pct(overall['auc'])}"
                ci = (overall.get("ci") or {}).get("auc") or {}
                if ci.get("low") is not None:
                    summary += f" [{_pct(ci['low'])}, {_pct(ci['high'])}]"
                y = scores.column("label").to_numpy().astype(int)
                s = scores.column("score").to_numpy().astype(float)
                curves.append((_row_label(row[0], row[1]), y, s, summary))
            if not curves:
                continue
            name = f"{snap['name']} v{snap['version']}" + ("" if fold == "main" else f" — fold {fold}")
            figures.append(fold_figure(curves, name))
        if figures:
            studio = " (studio proxy)" if snap.get("twin_of") or "studio" in snap.get("corpora", []) else ""
            blocks.append(
                f"<details open><summary>{_esc(snap['name'])} v{_esc(snap['version'])}{studio}: "
                f"{len(figures)} fold(s)</summary>\n" + "\n".join(figures) + "\n</details>"
            )
    if not blocks:
        return ""
    return '<section class="section plots"><h2>Curves and score histograms</h2>\n' + "\n".join(blocks) + "</section>"


def render_robustness_plots(board: Board) -> str:
    """Per perturbed protocol fold: AUC against severity, one panel per perturbation type."""
    from benchmark.leaderboard_robustness import _kind_order, severity_curves

    curves = severity_curves(board)
    figures = []
    for (protocol, version, fold), kinds in sorted(curves.items()):
        rows = sorted({row for points in kinds.values() for row in points})
        panels = []
        for kind in sorted(kinds, key=_kind_order):
            top = max([1] + [s for points in kinds[kind].values() for s, _ in points])
            panel = _Panel(f"{kind}: AUC vs severity", f"severity 1 .. {top} (as a fraction of {top})", "AUC")
            for i, row in enumerate(rows):
                points = kinds[kind].get(row)
                if points:
                    panel.line([s / top for s, _ in points], [a for _, a in points], PALETTE[i % len(PALETTE)],
                               name=_row_label(row[0], row[1]))
            panels.append(panel.svg())
        legend = "".join(f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
                         f"{_esc(_row_label(row[0], row[1]))}</li>" for i, row in enumerate(rows))
        title = f"{protocol} v{version}" + ("" if fold == "main" else f" — fold {fold}")
        figures.append(f'<figure class="fold-plots"><figcaption>{_esc(title)}: robustness</figcaption>'
                       f'<div class="panels">{"".join(panels)}</div><ul class="legend">{legend}</ul></figure>')
    if not figures:
        return ""
    return ('<section class="section plots"><h2>Robustness: AUC against perturbation severity</h2>\n'
            + "\n".join(figures) + "</section>")


# --------------------------------------------------------------------------- the page

def render_html(board: Board, tables: Sequence[Table], *, title: str, created: str, plots: bool = True) -> str:
    from benchmark.leaderboard_tables import STUDIO_NOTE, STUDIO_SECTION

    parts = []
    section = None
    for i, table in enumerate(tables):
        if table.section != section:
            if section is not None:
                parts.append("</section>")
            section = table.section
            cls = "section studio" if section == STUDIO_SECTION else "section real"
            parts.append(f'<section class="{cls}"><h2>{_esc(section)}</h2>')
            if section == STUDIO_SECTION:
                parts.append(f'<p class="studio-note">{_esc(STUDIO_NOTE)}</p>')
        parts.append(render_table(table, i))
    if section is not None:
        parts.append("</section>")
    if plots:
        parts.append(render_plots(board))
        parts.append(render_robustness_plots(board))
    meta = f"{len(board.entries)} result(s), generated {created}"
    page = _template()
    return (
        page.replace("@@TITLE@@", _esc(title)).replace("@@META@@", _esc(meta)).replace("@@CONTENT@@", "\n".join(parts))
    )
