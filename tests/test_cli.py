"""The avdf console script, run as a user runs it (a subprocess)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import COMMANDS

AVDF = shutil.which("avdf") or str(Path(sys.executable).parent / "avdf")


def avdf(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([AVDF, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_every_stage():
    out = avdf("--help")
    assert out.returncode == 0
    for name in ("fetch", "ingest", "preprocess", "generate", "shard", "train", "evaluate", "leaderboard",
                 "detect", "submit", "ls", "bench", "probe"):
        assert name in out.stdout


def test_probe_prints_json(make_clip):
    out = avdf("probe", str(make_clip(duration=1)))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["video"]["fps"] == 25


@pytest.mark.parametrize("content,message", [
    (None, "file does not exist"),
    (b"", "file is empty"),
    (b"plain text, no media" * 50, "not a readable media file"),
])
def test_probe_bad_input_one_line_no_traceback(tmp_path, content, message):
    path = tmp_path / "input.mp4"
    if content is not None:
        path.write_bytes(content)
    out = avdf("probe", str(path))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "input.mp4" in lines[0] and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_debug_shows_traceback(tmp_path):
    out = avdf("--debug", "probe", str(tmp_path / "missing.mp4"))
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_ls_runs():
    out = avdf("ls")
    assert out.returncode == 0
    assert "detectors" in out.stdout and "generators" in out.stdout


def test_every_command_module_has_the_stage_interface():
    import importlib

    for name, (module, _) in COMMANDS.items():
        mod = importlib.import_module(module)
        assert callable(mod.add_arguments) and callable(mod.run), name


def test_ls_protocols_lists_versions():
    out = avdf("ls", "protocols")
    assert out.returncode == 0, out.stderr
    for name in ("intra-random", "intra-group", "cross-manipulation", "cross-dataset", "studio-intra-group"):
        assert name in out.stdout


def test_preprocess_takes_manifests_listed_or_repeated():
    from pathlib import Path

    from benchmark.cli import build_parser

    args = build_parser().parse_args(["preprocess", "--manifest", "a.parquet", "--manifest", "b.parquet",
                                      "c.parquet", "--out", "o"])
    assert args.manifest == [Path("a.parquet"), Path("b.parquet"), Path("c.parquet")]


def test_a_command_builds_only_its_own_parser():
    """`avdf detect` must not import every stage's stack (torch, Ray, pyarrow) just to parse its arguments."""
    code = ("import sys; from benchmark.cli import main; import benchmark.cli as cli; "
            "cli.build_parser(only=cli._command_in(['--params', 'train', 'detect', 'v.mp4'])); "
            "print(sorted(m for m in ('torch', 'ray', 'pyarrow', 'transformers', 'benchmark.train') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_detect_help_names_its_arguments():
    out = avdf("detect", "--help")
    assert out.returncode == 0 and "--checkpoint" in out.stdout
