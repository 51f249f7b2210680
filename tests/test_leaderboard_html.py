"""leaderboard.html in headless Chromium: the tables render, sorting works, the plots are drawn,
and the page fetches nothing."""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import leaderboard_data as data
from benchmark.leaderboard import write_leaderboard
from benchmark.protocols import load_protocol

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]
ROWS = [("cad", "full", 1.0), ("cad", "no-audio", 0.4), ("avprompt", "full", 2.0)]
# Protocols and folds plotted: studio-intra-random (1) + studio-cross-manipulation (5) + cross-dataset (10)
N_FOLD_FIGURES = 16


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install -y chromium; `make install` does it)")
    return found


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    chromium()
    root = tmp_path_factory.mktemp("results")
    studio = data.studio_manifest(per_group=2)
    for protocol in ("studio-intra-random", "studio-cross-manipulation"):
        data.add_results(root, studio, protocol, ROWS, n_bootstrap=30)
    data.add_results(root, data.real_manifest(), "cross-dataset", ROWS[:2], n_bootstrap=30)
    out = tmp_path_factory.mktemp("board")
    return write_leaderboard([root], out, n_bootstrap=30)["leaderboard.html"]


def test_page_is_self_contained(page):
    text = page.read_text()
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert "<link" not in text and " src=" not in text and "@import" not in text


def test_tables_render_and_sort_in_chromium(page, tmp_path):
    done = run_chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", page.as_uri() + "#selftest")
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="selftest-result">(.*?)</pre>', done.stdout, re.S)
    assert found, "the page's self-test did not run (no JavaScript?)"
    report = json.loads(found.group(1))
    # studio intra + studio cross-manipulation + real cross-dataset, each followed by its operating-point
    # and calibration table, and each section's score spread
    assert report["tables"] == 3 * 2 + 2
    assert report["rows"] == (3 + 3 + 2) * 2 + 3 + 2
    assert report["sorted_desc"] is True and report["sorted_asc"] is True
    # The self-test sorts the first numeric column: real tables come first, so cross-dataset FAV AUC.
    rows = list(csv.DictReader(open(page.with_name("leaderboard.csv"))))
    column = f"cross-dataset@{load_protocol('cross-dataset').version}/FAV/AUC"
    assert report["column"].startswith("FAV AUC")
    valued = [r for r in rows if r[column]]
    best = max(valued, key=lambda r: float(r[column]))
    worst = min(valued, key=lambda r: float(r[column]))
    assert report["first_after_desc"].startswith(best["detector"])
    assert report["first_after_asc"].startswith(worst["detector"])
    # Four panels (ROC, PR, histogram, reliability) per protocol fold, each with drawn curves.
    assert report["plots"] == 4 * N_FOLD_FIGURES
    assert report["curves"] >= N_FOLD_FIGURES * (4 + 2 * 2)


def test_screenshot_shows_the_page(page, tmp_path):
    from PIL import Image

    shot = tmp_path / "leaderboard.png"
    done = run_chromium(tmp_path, "--virtual-time-budget=5000", "--window-size=1400,1800",
                        f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1400, 1800)
    histogram = image.histogram()
    # Not blank: plenty of ink (text, table borders, curves) on the white page.
    dark = sum(histogram[:128]) / (image.size[0] * image.size[1])
    assert 0.005 < dark < 0.5, dark
