"""Celeb-DF v2 replica: ``Celeb-real/idN_NNNN.mp4``, ``Celeb-synthesis/idT_idS_NNNN.mp4`` and
``List_of_testing_videos.txt``.

Studio real clips become ``Celeb-real/id<N>_<NNNN>.mp4`` (the identity's
number, the clip's rank among the identity's clips); studio face swaps
(faceswap[-wav2lip], fsgan[-wav2lip]) become
``Celeb-synthesis/id<target>_id<face>_<NNNN>.mp4`` on their target clip's
number. Video stream only (Celeb-DF has no audio), copied without
re-encoding. Other fakes are skipped: Celeb-DF holds face swaps only, and no
studio clip stands for ``YouTube-real/``. The test list names the clips of
the test identities (2 of every 10, as the other replicas' splits), in the
release's convention **1 = real, 0 = fake**, sorted.
"""
from __future__ import annotations

from pipeline.replicas.base import (
    VIDEO_ONLY, ReplicaInputs, ReplicaPlan, clip_numbers, face_source_key, identity_splits, stable_numbers, target_key,
)

SWAPS = ("faceswap-wav2lip", "faceswap", "fsgan-wav2lip", "fsgan")
TEST_LIST = "List_of_testing_videos.txt"
REAL, FAKE = "1", "0"  # the list's labels


def plan(inputs: ReplicaInputs) -> ReplicaPlan:
    out = ReplicaPlan("celebdf", root=".")
    numbers = stable_numbers(c.identity for c in inputs.reals)
    utterance = clip_numbers(inputs.reals)
    split = identity_splits(numbers)
    listed: list[str] = []
    for clip in inputs.reals:
        rel = f"Celeb-real/id{numbers[clip.identity]}_{utterance[clip.key]:04d}.mp4"
        if out.place(clip.key, rel, VIDEO_ONLY) and split[clip.identity] == "test":
            listed.append(f"{REAL} {rel}")
    for fake in inputs.fakes:
        target = inputs.by_key.get(target_key(fake) or "")
        face = inputs.by_key.get(face_source_key(fake) or "")
        if fake.method not in SWAPS or not fake.video_fake:
            out.skip(fake.key, f"not a face swap ({fake.method}): Celeb-DF holds face swaps only")
        elif target is None or face is None or target.key not in utterance or face.identity not in numbers:
            out.skip(fake.key, "its target or face source real clip is not in --studio")
        elif face.identity == target.identity:
            out.skip(fake.key, "a swap of an identity onto itself has no idT_idS name")
        else:
            t, s = numbers[target.identity], numbers[face.identity]
            rel = f"Celeb-synthesis/id{t}_id{s}_{utterance[target.key]:04d}.mp4"
            if out.place(fake.key, rel, VIDEO_ONLY) and split[target.identity] == "test":
                listed.append(f"{FAKE} {rel}")
    out.texts[TEST_LIST] = "".join(f"{line}\n" for line in sorted(listed, key=lambda l: l.split()[1]))
    return out
