"""Write a replica: run a corpus module's plan onto the disk, idempotently, and account for every input.

Media: a hard link to the input when the layout takes the file as it is (a
copy across file systems), ffmpeg where it needs another form (the video
stream alone for the video-only corpora; a frames + mp3 + transcript folder
for IDForge v2). Each file or folder is made under a temporary name and
renamed into place. ``avdf-replica.json`` in the output folder records what
made each file (input key, how, the input's sha256); a rerun keeps a file
whose record matches, remakes one whose input changed, removes files it made
before that the plan no longer has, and rewrites a text file only when its
content differs: a rerun on a complete folder changes nothing.

Accounting: inputs = written + already there + skipped + failed, checked.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.atomic import atomic_path, write_bytes_atomic
from pipeline.errors import AvdfError, MediaError
from pipeline.ffmpeg_bin import ffmpeg_exe
from pipeline.registry import Registry
from pipeline.replicas.base import (
    IDFORGE_FOLDER, LINK, VIDEO_ONLY, WAV, Placed, ReplicaError, ReplicaInputs, ReplicaPlan, load_inputs, short_hash,
)

RECORD_NAME = "avdf-replica.json"
RECORD_FORMAT = 1

# corpus -> "module:plan". One module per corpus; a new corpus is one line here.
REPLICAS = Registry("replicas")
for _name in ("voxceleb2", "fakeavceleb", "idforge", "faceforensics", "celebdf", "kodf", "cmdfd"):
    REPLICAS.register(_name, f"pipeline.replicas.{_name}:plan")


@dataclass
class ReplicaSummary:
    corpus: str
    out: Path
    root: Path  # what to ingest
    inputs: int
    written: int
    kept: int
    removed: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        def kinds(items: list[tuple[str, str]]) -> str:
            counts = Counter(why for _, why in items)
            return " (" + "; ".join(f"{why}: {n}" for why, n in sorted(counts.items())) + ")" if counts else ""

        return (
            f"replica {self.corpus}: {self.inputs} inputs -> {self.written} written, {self.kept} already there, "
            f"{len(self.skipped)} skipped{kinds(self.skipped)}, {len(self.failed)} failed{kinds(self.failed)}"
            f"{f', {self.removed} stale removed' if self.removed else ''} -> {self.root}"
        )


def _fingerprint(inputs: ReplicaInputs, key: str) -> str:
    """What identifies an input's content: its manifest sha256, else size and mtime."""
    clip = inputs.by_key[key]
    if clip.sha256:
        return clip.sha256
    st = inputs.media[key].stat()
    return f"size{st.st_size}-mtime{st.st_mtime_ns}"


def _run_ffmpeg(args: list[str], what: Path) -> None:
    proc = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *args], capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unknown error"]
        raise MediaError(what, f"ffmpeg failed ({tail[0]})", "encode")


def _link(src: Path, tmp: Path) -> None:
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not allowed: a copy is the same bytes
        shutil.copyfile(src, tmp)


def _video_only(src: Path, tmp: Path) -> None:
    # The video stream as it is (no re-encode), no audio, no container tags: same input, same bytes.
    _run_ffmpeg(["-i", str(src), "-map", "0:v:0", "-c", "copy", "-an", "-sn", "-dn", "-map_metadata", "-1",
                 "-fflags", "+bitexact", "-movflags", "+faststart", "-f", "mp4", str(tmp)], src)


def _wav(src: Path, tmp: Path) -> None:
    # The audio track as the released lists' 16 kHz mono PCM wav, no tags: same input, same bytes.
    _run_ffmpeg(["-i", str(src), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le",
                 "-map_metadata", "-1", "-fflags", "+bitexact", "-f", "wav", str(tmp)], src)


def _idforge_folder(src: Path, folder: Path, stem: str, transcript: str | None) -> None:
    """``frames_ndarray.npy`` (16 RGB frames at 25 fps, 4 groups of 4), ``<name>.mp3`` and ``<name>.txt``."""
    import numpy as np

    from pipeline.frame_folders import FRAMES_NAME, group_frame_indices
    from pipeline.media import iter_frames, probe

    info = probe(src)
    if info.audio is None:
        raise MediaError(src, "no audio stream (an IDForge folder holds the clip's mp3)", "no_audio")
    video = list(iter_frames(src, info=info))  # 25 fps, as every stage decodes
    if not video:
        raise MediaError(src, "no decodable video frames", "truncated")
    # The same 4 groups of 4 that preprocessing assumes when it reads the folder back.
    frames = np.stack([video[i] for i in group_frame_indices(len(video))])
    folder.mkdir(parents=True)
    np.save(folder / FRAMES_NAME, frames)
    _run_ffmpeg(["-i", str(src), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", "16000", "-c:a", "libmp3lame", "-b:a",
                 "64k", "-map_metadata", "-1", "-fflags", "+bitexact", "-id3v2_version", "0",
                 str(folder / f"{stem}.mp3")], src)
    (folder / f"{stem}.txt").write_text((transcript or "").strip() + "\n", encoding="utf-8")


def _make(placed: Placed, src: Path, dest: Path) -> None:
    if not src.is_file():
        raise MediaError(src, "input media file does not exist", "missing")
    if placed.make == IDFORGE_FOLDER:
        # Built beside its final name, then renamed: a half-made folder never has the released name.
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            _idforge_folder(src, tmp, dest.stem, placed.transcript)
            _remove(dest)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    with atomic_path(dest) as tmp:
        if placed.make == LINK:
            _link(src, tmp)
        elif placed.make == VIDEO_ONLY:
            _video_only(src, tmp)
        elif placed.make == WAV:
            _wav(src, tmp)
        else:  # pragma: no cover - a corpus module bug
            raise ReplicaError(f"unknown way to make {placed.rel}: {placed.make!r}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _prune_empty_dirs(path: Path, stop: Path) -> None:
    while path != stop and path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        path = path.parent


def _write_text(dest: Path, content: str) -> bool:
    data = content.encode("utf-8")
    if dest.is_file() and dest.read_bytes() == data:
        return False
    write_bytes_atomic(dest, data)
    return True


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else {}


def write_replica(corpus: str, studio: str | Path, out: str | Path, fakes: Sequence[str | Path] = (),
                  workers: int = 4, progress: bool = True) -> ReplicaSummary:
    """Write ``corpus``'s native layout of the studio clips (and fakes) under ``out``; print a summary line."""
    from tqdm import tqdm

    plan_fn = REPLICAS.get(corpus)
    inputs = load_inputs(Path(studio), [Path(f) for f in fakes])
    plan: ReplicaPlan = plan_fn(inputs)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReplicaError(f"{out}: exists and is not a folder")
    rels = [p.rel for p in plan.placed] + list(plan.texts)
    if len(set(rels)) != len(rels) or RECORD_NAME in rels:
        raise ReplicaError(f"replica {corpus}: the plan names a file twice (a bug in pipeline/replicas/{corpus}.py)")

    record_path = out / RECORD_NAME
    previous = _read_record(record_path)
    if previous and previous.get("corpus") != corpus:
        raise ReplicaError(f"{out}: holds a {previous.get('corpus')} replica; choose another --out for {corpus}")
    before: dict[str, dict] = previous.get("files", {})
    files: dict[str, dict] = {}
    todo: list[tuple[Placed, dict]] = []
    for placed in plan.placed:
        entry = {"key": placed.key, "make": placed.make, "input_sha256": _fingerprint(inputs, placed.key)}
        if placed.transcript is not None:
            entry["transcript_sha256"] = short_hash(placed.transcript, 64)
        if before.get(placed.rel) == entry and (out / placed.rel).exists():
            files[placed.rel] = entry  # made from the same input before: nothing to do
        else:
            todo.append((placed, entry))
    kept = len(files)

    def make(item: tuple[Placed, dict]) -> str | None:
        placed = item[0]
        try:
            _make(placed, inputs.media[placed.key], out / placed.rel)
        except (AvdfError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    failed: list[tuple[str, str]] = []
    # ffmpeg does the work in subprocesses: threads are enough to run several at once.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(make, todo), total=len(todo), desc=f"replica {corpus}", unit="clip",
                            disable=not progress, leave=False))
    for (placed, entry), error in zip(todo, results):
        if error is None:
            files[placed.rel] = entry
        else:
            failed.append((placed.key, error))
    written = len(todo) - len(failed)
    # Files this writer made before that the plan no longer has (never anything else).
    removed = 0
    for rel in sorted(set(before) - set(files) - {p.rel for p in plan.placed}):
        path = out / rel
        if path.exists() or path.is_symlink():
            _remove(path)
            _prune_empty_dirs(path.parent, out)
            removed += 1
    for rel in sorted(set(previous.get("texts", [])) - set(plan.texts)):
        (out / rel).unlink(missing_ok=True)
    for rel, content in sorted(plan.texts.items()):
        _write_text(out / rel, content)

    skipped = list(inputs.ignored) + plan.skipped
    summary = ReplicaSummary(corpus=corpus, out=out, root=out / plan.root, inputs=len(inputs.all_keys),
                             written=written, kept=kept, removed=removed, skipped=skipped, failed=failed)
    # Each input once: a WAV is a companion file of an input placed as its media too (CMDFD's wavs).
    accounted = [p.key for p in plan.placed if p.make != WAV] + [k for k, _ in skipped]
    if sorted(accounted) != sorted(inputs.all_keys):
        lost = sorted(set(inputs.all_keys) - set(accounted))[:5]
        raise ReplicaError(f"replica {corpus}: inputs not accounted for {lost} (a bug in pipeline/replicas/{corpus}.py)")
    record = {
        "format": RECORD_FORMAT, "corpus": corpus, "root": plan.root, "files": files,
        "texts": sorted(plan.texts), "skipped": sorted(map(list, skipped)), "failed": sorted(map(list, failed)),
    }
    _write_text(record_path, json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(summary.line())
    return summary


def read_record(out: str | Path) -> dict:
    """The record of a written replica: ``files`` maps each released path to the input key it holds."""
    return _read_record(Path(out) / RECORD_NAME)
