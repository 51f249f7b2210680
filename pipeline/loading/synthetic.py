"""Small preprocessed clips (npz + manifest, the ``avdf preprocess`` contract) made from arrays.

Used by the shard/loader tests and ``avdf bench loader``: every array of frame ``t``
holds the value ``t`` (mod 256 for uint8), and so does audio sample block
``[640 t, 640 (t + 1))`` — so any segment shows whether frames and audio line up.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.clip import Clip, category_of
from pipeline.loading.segments import SAMPLES_PER_FRAME


def frame_indexed_arrays(num_frames: int, face: int = 224, face_gray: int = 112, mouth: int = 96) -> dict[str, np.ndarray]:
    """Arrays of one clip where every frame (and its audio block) carries its frame index."""
    t = np.arange(num_frames)
    t8 = (t % 256).astype(np.uint8)
    return {
        "face": np.broadcast_to(t8[:, None, None, None], (num_frames, face, face, 3)).copy(),
        "face_gray": np.broadcast_to(t8[:, None, None], (num_frames, face_gray, face_gray)).copy(),
        "mouth": np.broadcast_to(t8[:, None, None], (num_frames, mouth, mouth)).copy(),
        "audio": np.repeat(t.astype(np.float32), SAMPLES_PER_FRAME),
        "landmarks": np.broadcast_to(t.astype(np.float32)[:, None, None], (num_frames, 68, 2)).copy(),
        "boxes": np.broadcast_to(t.astype(np.float32)[:, None], (num_frames, 4)).copy(),
        "face_found": np.ones(num_frames, dtype=bool),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Uncompressed npz, as ``pipeline.preprocess_clip`` writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def clip_row(key: str, npz_rel: str, num_frames: int, video_fake: bool = False, audio_fake: bool = False,
             **fields: Any) -> Clip:
    corpus = key.split("/")[0]
    identity = fields.pop("identity", key.split("/")[1].split("-")[0])
    fake = video_fake or audio_fake
    method = fields.pop("method", "synthetic" if fake else "real")
    return Clip(
        key=key, corpus=corpus, identity=identity, video_id=fields.pop("video_id", key.split("/")[1]),
        path=npz_rel, label=int(fake), video_fake=video_fake, audio_fake=audio_fake,
        category=category_of(video_fake, audio_fake), method=method,
        fps=25.0, sample_rate=16000, num_frames=num_frames, num_samples=num_frames * SAMPLES_PER_FRAME,
        duration_s=num_frames / 25.0, **fields,
    )


def write_synthetic_corpus(
    folder: Path,
    clips: Sequence[dict[str, Any]],
    sizes: tuple[int, int, int] = (224, 112, 96),
) -> Path:
    """npz files + ``manifest.parquet`` in ``folder``; each clip dict: key, num_frames, optional
    video_fake / audio_fake / other Clip fields / ``arrays`` (default: frame-indexed arrays)."""
    from pipeline.manifest import write_manifest

    rows = []
    for spec in clips:
        spec = dict(spec)
        key, n = spec.pop("key"), spec.pop("num_frames")
        arrays = spec.pop("arrays", None) or frame_indexed_arrays(n, *sizes)
        rel = f"clips/{key.replace('/', '__')}.npz"
        write_npz(folder / rel, arrays)
        rows.append(clip_row(key, rel, n, **spec))
    manifest = folder / "manifest.parquet"
    write_manifest(rows, manifest)
    return manifest
