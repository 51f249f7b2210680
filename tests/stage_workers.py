"""Stage workers used by the runner tests (imported by Ray worker processes)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.errors import MediaError
from pipeline.runner import item_dir_name


class SquareWorker:
    """Writes key -> value**2 to a file; fails the items the test asks it to."""

    loads = 0

    def __init__(self, fail_keys: list[str] = (), die_once_keys: list[str] = (), sleep_keys: list[str] = ()):
        SquareWorker.loads += 1
        self.fail_keys = set(fail_keys)
        self.die_once_keys = set(die_once_keys)
        self.sleep_keys = set(sleep_keys)

    def __call__(self, item: dict, out_dir: Path) -> dict:
        key = item["key"]
        if key in self.fail_keys:
            raise MediaError(f"{key}.mp4", "no audio stream", "no_audio")
        marker = out_dir / f"{item_dir_name(key)}.died"
        if key in self.die_once_keys and not marker.exists():
            marker.write_text("x")
            os._exit(1)  # the whole worker process dies; Ray retries the task
        if key in self.sleep_keys:
            time.sleep(60)
        out = out_dir / f"{item_dir_name(key)}.txt"
        out.write_text(str(item["value"] ** 2))
        return {"key": key, "square": item["value"] ** 2, "pid": os.getpid(), "loads": SquareWorker.loads}
