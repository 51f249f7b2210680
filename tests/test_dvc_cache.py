"""The project's DVC settings link stage outputs into the cache instead of copying them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STAGE = """stages:
  write:
    cmd: python -c "import pathlib; pathlib.Path('out').mkdir(); pathlib.Path('out/a.bin').write_bytes(bytes(range(256)) * 4096)"
    outs:
      - out
"""


def _dvc(cwd: Path, *args: str) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, check=True, capture_output=True)


def test_a_stage_output_is_hard_linked_into_the_cache(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    _dvc(tmp_path, "init", "-q")
    shutil.copyfile(REPO / ".dvc" / "config", tmp_path / ".dvc" / "config")
    (tmp_path / "dvc.yaml").write_text(STAGE)
    _dvc(tmp_path, "repro", "-q")
    out = tmp_path / "out" / "a.bin"
    cached = [p for p in (tmp_path / ".dvc" / "cache").rglob("*") if p.is_file() and p.stat().st_size == 1 << 20]
    assert len(cached) == 1
    # One file, two names: DVC did not copy the output (with reflink listed first it does, on ext4).
    assert out.stat().st_ino == cached[0].stat().st_ino and out.stat().st_nlink == 2
    assert not out.stat().st_mode & 0o222  # read-only, so a stray write cannot change the cache
