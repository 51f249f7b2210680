"""A clean copy of the checkout (the files git tracks) to run `dvc repro` in, as a fresh clone would."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_checkout(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """(the copy's folder, the environment to run avdf and dvc in it)."""
    work = tmp_path / "avdf"
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, work / name)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(work), "DVC_NO_ANALYTICS": "1"}
    return work, env
