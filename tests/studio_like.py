"""Studio-shaped synthetic clips (the studio protocols' fields, frame-indexed arrays) and their shards,
for tests that train and evaluate through real shards without rendering the studio corpus."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.loading.synthetic import frame_indexed_arrays, write_synthetic_corpus
from pipeline.shards import CropSizes, write_shards

SIZES = (32, 16, 16)
GROUPS = ["group-a", "group-b", "group-c", "group-d", "group-e"]


def _arrays(fake: bool, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    arrays = frame_indexed_arrays(32, *SIZES)
    arrays["face"] = rng.integers(0, 120, arrays["face"].shape, dtype=np.uint8)
    if fake:  # a visible blending artefact in every frame
        arrays["face"][:, 8:24, 8:24] = 250
    return arrays


def studio_clips(cmdfd_w2l: bool = False) -> list[dict]:
    """Studio-shaped clips: 2 identities per group, each with a real clip and a FakeAVCeleb-style fake
    (and, with ``cmdfd_w2l``, a CMDFD-style W2L fake)."""
    clips = []
    for g, group in enumerate(GROUPS):
        for i in range(2):
            ident = f"s{g}{i}"
            common = dict(identity=ident, ethnicity=group, gender="female" if i else "male", num_frames=32)
            clips.append(dict(key=f"studio/{ident}-u1", video_id=f"{ident}-v1", arrays=_arrays(False, g * 10 + i), **common))
            clips.append(dict(
                key=f"studio-fakeavceleb/{ident}-u1--x/wav2lip", video_id=f"{ident}-v1", video_fake=True,
                method="wav2lip", extra=json.dumps({"recipe": "fakeavceleb"}), arrays=_arrays(True, g * 10 + i + 5),
                **common,
            ))
            if cmdfd_w2l:  # the CMDFD-style build: its origin (real) clip and a W2L fake of it
                clips.append(dict(
                    key=f"studio-cmdfd/origin/{ident}-u1", video_id=f"{ident}-v1", source_keys=[f"studio/{ident}-u1"],
                    extra=json.dumps({"recipe": "cmdfd", "subset": "origin"}), arrays=_arrays(False, g * 10 + i),
                    **common,
                ))
                clips.append(dict(
                    key=f"studio-cmdfd/{ident}-u1--y/wav2lip", video_id=f"{ident}-v1", video_fake=True,
                    method="wav2lip", self_audio=False, extra=json.dumps({"recipe": "cmdfd", "subset": "W2L"}),
                    arrays=_arrays(True, g * 10 + i + 7), **common,
                ))
    return clips


def write_studio_shards(root: Path, clips: list[dict] | None = None, **clip_options) -> Path:
    """Shards of ``clips`` (default: ``studio_clips(**clip_options)``) under ``root``; -> the shard folder."""
    manifest = write_synthetic_corpus(root / "corpus", studio_clips(**clip_options) if clips is None else clips, SIZES)
    write_shards(manifest, root / "shards", sizes=CropSizes(*SIZES), progress=False)
    return root / "shards"
