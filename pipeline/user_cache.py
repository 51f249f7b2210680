"""Where avdf keeps files it can rebuild (the joined packaged Whisper, traced detectors): never a
DVC output, never needed for correctness, safe to delete."""
from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """``$AVDF_CACHE_DIR``, else ``$XDG_CACHE_HOME/avdf``, else ``~/.cache/avdf``."""
    if os.environ.get("AVDF_CACHE_DIR"):
        return Path(os.environ["AVDF_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "avdf"
