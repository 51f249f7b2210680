"""``avdf leaderboard``: merge result files into leaderboard.md / .csv / .html.

Rows are detectors and their ablations (result ``detector.name`` +
``detector.label``); column groups follow the papers' tables:

- intra (``intra`` family): ACC and AUC of each protocol;
- cross-manipulation: AP and AUC of each held-out category, then AVG-FV;
- cross-dataset: AUC of FakeAVCeleb's test set and each CMDFD subset, AVG, then KoDF.

Other families get AUC and AP per fold. Detectors with per-modality scores get
a per-modality table over the intra protocols (AVPrompt's Table 4: ACC / AUC
of the video score against the video label, of the audio score against the
audio label). Results on studio-twin protocols go
to their own tables, labelled as a proxy that is not comparable to
real-corpus numbers. Averages over folds (AVG-FV, AVG) are computed here
from the fold results (mean of the fold metrics, bootstrap CI from the fold
scores); averages inside one fold come from the result itself.
``leaderboard.html`` is one self-contained page (see
``benchmark.leaderboard_page``). Beyond the papers' tables
(``benchmark.leaderboard_rigour``): significance marks (DeLong) in each fold's AUC
column, a shortcut-probe row and audit, and operating-point and calibration tables;
``--compare A B`` prints the tests between two rows (``benchmark.compare``).
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmark.leaderboard_page import render_html
from benchmark.leaderboard_rigour import add_rigour
from benchmark.leaderboard_robustness import robustness_tables
from benchmark.leaderboard_tables import Board, build_tables, find_results, load_entries, render_csv, render_markdown
from pipeline.atomic import write_bytes_atomic
from pipeline.config import load_section
from pipeline.errors import ConfigError


@dataclass
class LeaderboardParams:
    """``leaderboard`` section."""

    title: str = "avdf leaderboard"
    # ROC / PR curves and score histograms in leaderboard.html (needs each result's scores.parquet).
    plots: bool = True


def write_leaderboard(
    inputs: Iterable[str | Path],
    out: str | Path,
    *,
    title: str = "avdf leaderboard",
    plots: bool = True,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Path]:
    """Read results, build the tables and write leaderboard.md, .csv and .html into ``out``.

    Everything is rendered in memory before the first file is written.
    """
    from benchmark.results import build_time

    entries = load_entries(find_results(inputs))
    board = Board(entries, n_bootstrap=n_bootstrap, seed=seed)
    tables = add_rigour(board, build_tables(board))
    for extra in robustness_tables(board):  # at the end of its section
        last = max((i for i, t in enumerate(tables) if t.section == extra.section), default=len(tables) - 1)
        tables.insert(last + 1, extra)
    created = build_time()
    docs = {
        "leaderboard.md": render_markdown(tables, title, len(entries), created),
        "leaderboard.csv": render_csv(tables),
        "leaderboard.html": render_html(board, tables, title=title, created=created, plots=plots),
    }
    out = Path(out)
    written = {}
    for name, text in docs.items():
        write_bytes_atomic(out / name, text.encode("utf-8"))
        # Atomic writes create private temporaries; these are pages meant to be read and served.
        (out / name).chmod(0o644)
        written[name] = out / name
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", help="metrics.json files or folders holding them")
    parser.add_argument("--out", help="output folder (leaderboard.md, .csv, .html); required unless --compare")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="print DeLong's AUC test and paired bootstraps of two rows (name or name[label]) "
                             "on every fold both have, instead of writing the leaderboard")
    parser.add_argument("--title", help="page title (default: params leaderboard.title)")
    parser.add_argument("--no-plots", action="store_true", help="leave the curves out of the HTML page")


def run(args: argparse.Namespace) -> int:
    params_path = args.params if Path(args.params).exists() else None
    params = load_section("leaderboard", params_path)
    scoring = load_section("evaluate", params_path)
    if args.compare:
        from benchmark.compare import compare, format_comparison

        board = Board(load_entries(find_results(args.results)), n_bootstrap=scoring.bootstrap, seed=scoring.seed)
        records = compare(board, *args.compare, n_resamples=scoring.bootstrap, seed=scoring.seed)
        print(format_comparison(*args.compare, records))
        return 0
    if not args.out:
        raise ConfigError("avdf leaderboard: --out is required (unless --compare)")
    written = write_leaderboard(
        args.results,
        args.out,
        title=args.title or params.title,
        plots=params.plots and not args.no_plots,
        n_bootstrap=scoring.bootstrap,
        seed=scoring.seed,
    )
    for path in written.values():
        print(path)
    return 0

