"""What the tasks of one ``avdf generate`` run share: work repeated on the same input is done once.

A target clip is forged several times (CMDFD: with another identity's speech and with its
own; FakeAVCeleb: up to five categories, three of which start from the same
voice-converted clip), and it is also the face donor of its partner's swaps. So the
same inputs recur across tasks, and what is computed from them is kept here, keyed by
the sha256 of the files it came from:

- **face detections** per decoded frame of a video (``load_detections``): a target's
  landmark track is detected once per run, not once per fake;
- **decoded media** (``decoded``): a real clip's frames (decoded by each fake of the
  target, and for its partner's swaps) and audio (the plan's clear-speech check decodes
  every real clip's audio, so the tasks find their driving audio decoded);
- **speech synthesised** from a transcript (``array``): targets reading the same sentence;
- **intermediate outputs** of a generator chain (``step_output``): FakeAVCeleb's
  voice-converted clip that several categories of one target start from.

Every entry is exactly what recomputing would give (face detection is a pure function of
the pixels, decoding of the bytes, a built-in generator of its inputs and settings), so a
fake is the same bytes with or without the cache. The folder sits in the stage's output
folder, where every node of a cluster can read it, and the stage removes it when it ends,
so it never reaches DVC's hash of the outputs. Entries are written to a temporary name and
renamed: a reader sees a whole entry or none, and two tasks that compute the same entry at
once both write the same content (the last rename wins).
"""
from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_path, sha256_file, sha256_json

CACHE_DIR = "cache"


def cache_dir(out: Path) -> Path:
    """The cache folder of a generate run writing into ``out`` (shared by all its recipes)."""
    return Path(out) / CACHE_DIR


class StageCache:
    """Content-addressed entries under ``root`` (see the module docstring).

    Decoded videos are large (8 MB for 2 s at 224 px), so they are kept only while the
    folder holds less than ``max_video_bytes`` of them; past that, tasks decode again.
    """

    def __init__(self, root: str | Path, max_video_bytes: int = 2 << 30) -> None:
        self.root = Path(root)
        self.max_video_bytes = max_video_bytes
        # sha256 per file version: a file is hashed once per process, however often it is used. (The
        # files hashed are the run's inputs and the intermediate outputs here, none rewritten in a run.)
        self._hashes: dict[tuple, str] = {}

    def file_id(self, path: str | Path) -> str:
        """sha256 of a file's content."""
        st = os.stat(path)
        stamp = (str(Path(path).resolve()), st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        if stamp not in self._hashes:
            self._hashes[stamp] = sha256_file(path)
        return self._hashes[stamp]

    def key(self, *parts: Any) -> str:
        return sha256_json(parts)

    def _entry(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.npz"

    # -- arrays ------------------------------------------------------------------------
    def load_arrays(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        try:
            with np.load(self._entry(kind, key)) as data:
                return {k: data[k] for k in data.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, zipfile.BadZipFile):  # unreadable (a full disk?): recompute it
            return None

    def store_arrays(self, kind: str, key: str, **arrays: np.ndarray) -> None:
        with atomic_path(self._entry(kind, key)) as tmp:
            with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to the temporary name
                np.savez(f, **arrays)

    def array(self, kind: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The array kept under (kind, key); computed and kept when missing (videos: within the budget)."""
        entry = self.load_arrays(kind, key)
        if entry is not None:
            return entry["data"]
        data = compute()
        if kind != "video" or self._bytes(kind) + data.nbytes <= self.max_video_bytes:
            self.store_arrays(kind, key, data=data)
        return data

    # -- decoded media -----------------------------------------------------------------
    def decoded(self, kind: str, path: str | Path, decode: Callable[[], np.ndarray], *settings: Any) -> np.ndarray:
        """``decode()``: a file's ``kind`` ("audio", "video") decoded with these settings, kept
        for the tasks that decode the same file the same way."""
        if kind == "video" and Path(path).resolve().is_relative_to(self.root.resolve()):
            return decode()  # the frames of an intermediate output kept here: mostly decoded once, by the next step
        return self.array(kind, self.key(kind, self.file_id(path), settings), decode)

    def _bytes(self, kind: str) -> int:
        folder = self.root / kind
        return sum(p.stat().st_size for p in folder.glob("*/*.npz")) if folder.is_dir() else 0

    # -- face detections per frame -----------------------------------------------------
    def load_detections(self, key: str) -> dict[int, np.ndarray | None]:
        """Frame index -> (68, 2) landmarks found there, or None where no face was found."""
        entry = self.load_arrays("detections", key)
        if entry is None:
            return {}
        return {int(i): (lm if ok else None) for i, ok, lm in zip(entry["ids"], entry["found"], entry["landmarks"])}

    def store_detections(self, key: str, detections: dict[int, np.ndarray | None]) -> None:
        """Add ``detections`` to the entry (another task may have added other frames meanwhile)."""
        merged = {**self.load_detections(key), **detections}
        ids = sorted(merged)
        blank = np.zeros((68, 2), np.float32)
        self.store_arrays(
            "detections", key, ids=np.array(ids, np.int64), found=np.array([merged[i] is not None for i in ids]),
            landmarks=np.stack([blank if merged[i] is None else merged[i] for i in ids]).astype(np.float32))

    # -- intermediate outputs ----------------------------------------------------------
    def _step_folder(self, key: str) -> Path:
        return self.root / "steps" / key[:2] / key

    def step_output(self, key: str) -> Path | None:
        """The intermediate output kept under ``key``, or None."""
        # Dot names are writes in progress (atomic_path's temporary names).
        done = sorted(p for p in self._step_folder(key).glob("*") if not p.name.startswith("."))
        return done[0] if done else None

    def store_step_output(self, key: str, made: Path) -> Path:
        """Move ``made`` in as the output kept under ``key``, and return where it now is. Its file
        name is kept: a tool may read meaning into an input's name."""
        dest = self._step_folder(key) / Path(made).name
        with atomic_path(dest) as tmp:
            shutil.move(str(made), tmp)
        return dest
