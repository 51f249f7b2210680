"""FaceForensics++ replica: ``original_sequences/youtube/c23/videos/NNN.mp4`` and
``manipulated_sequences/<Method>/c23/videos/<target>_<source>.mp4`` + ``{train,val,test}.json``.

Every studio real clip is an original ``NNN`` (000-999, in key order); the
video stream is copied without audio (FF++ has none) and without
re-encoding, under ``c23`` (the adapter's default quality folder). Studio
fakes onto FF++ methods, ``<target>_<source>`` naming the forged clip and the
clip that gave the face (swaps) or drove the mouth (the others)::

    faceswap-wav2lip, faceswap                  FaceSwap        (landmark face swap)
    fsgan-wav2lip, fsgan                        FaceShifter     (the learned-swap stand-in)
    wav2lip, videoretalking                     NeuralTextures  (mouth region re-rendered)
    audio2head, makeittalk                      Face2Face       (whole-face reenactment)

Audio-only fakes (rtvc) have nothing to show without audio and are skipped, as
is a fake whose source is its own target (CMDFD ``_S``) or whose name another
fake already took. Splits: originals joined by a fake, or by their identity,
go to one split together (connected groups, in order: 72 % of them train, 14 %
val, 14 % test as FF++'s 720/140/140, at least one group each); each split file lists the
fake pairs and then pairs the remaining originals, so every original is in
exactly one split and a pair never straddles two.
"""
from __future__ import annotations

import json

from pipeline.clip import Clip
from pipeline.replicas.base import (
    VIDEO_ONLY, ReplicaInputs, ReplicaPlan, audio_key, face_source_key, stable_numbers, target_key,
)

COMPRESSION = "c23"
FOLDER_OF_METHOD = {
    "faceswap-wav2lip": "FaceSwap", "faceswap": "FaceSwap",
    "fsgan-wav2lip": "FaceShifter", "fsgan": "FaceShifter",
    "wav2lip": "NeuralTextures", "videoretalking": "NeuralTextures",
    "audio2head": "Face2Face", "makeittalk": "Face2Face",
}
SWAPS = ("faceswap-wav2lip", "faceswap", "fsgan-wav2lip", "fsgan")
MAX_ORIGINALS = 1000  # NNN: three digits


def _source_key(fake: Clip) -> str | None:
    return face_source_key(fake) if fake.method in SWAPS else audio_key(fake)


def _splits(numbers: dict[str, str], identity_of: dict[str, str], edges: list[tuple[str, str]]) -> dict[str, str]:
    """original number -> split, keeping fake pairs and identities within one split."""
    parent = {n: n for n in numbers.values()}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first_of_identity: dict[str, str] = {}
    for key, n in sorted(numbers.items(), key=lambda kv: kv[1]):
        union(first_of_identity.setdefault(identity_of[key], n), n)
    for a, b in edges:
        union(a, b)
    groups: dict[str, list[str]] = {}
    for n in sorted(parent):
        groups.setdefault(find(n), []).append(n)
    # FF++'s 720/140/140 over the groups, each part at least one group when there are three:
    # cutting by clips let big groups (identities chained by mutual swaps) fill train and val
    # and leave the test split empty.
    ordered = sorted(groups)
    n_test = max(1, round(0.14 * len(ordered))) if len(ordered) >= 3 else 0
    n_val = max(1, round(0.14 * len(ordered))) if len(ordered) >= 2 else 0
    n_train = len(ordered) - n_val - n_test
    split = {}
    for i, root in enumerate(ordered):
        part = "train" if i < n_train else "val" if i < n_train + n_val else "test"
        split.update((n, part) for n in groups[root])
    return split


def plan(inputs: ReplicaInputs) -> ReplicaPlan:
    out = ReplicaPlan("faceforensics", root=".")
    stable_numbers(c.identity for c in inputs.reals)  # the same identity check as every replica
    numbers: dict[str, str] = {}
    for i, clip in enumerate(inputs.reals):
        if i >= MAX_ORIGINALS:
            out.skip(clip.key, f"FaceForensics++ numbers its originals 000-{MAX_ORIGINALS - 1}")
            continue
        numbers[clip.key] = f"{i:03d}"
        out.place(clip.key, f"original_sequences/youtube/{COMPRESSION}/videos/{numbers[clip.key]}.mp4", VIDEO_ONLY)
    edges: list[tuple[str, str]] = []
    for fake in inputs.fakes:
        folder = FOLDER_OF_METHOD.get(fake.method)
        t, s = numbers.get(target_key(fake) or ""), numbers.get(_source_key(fake) or "")
        if not fake.video_fake or folder is None:
            out.skip(fake.key, f"no FaceForensics++ method for a {fake.method} {fake.category} fake (video-only corpus)")
        elif t is None or s is None:
            out.skip(fake.key, "its target or source real clip is not an original here")
        elif t == s:
            out.skip(fake.key, "its source is its own target clip (no <target>_<source> pair)")
        elif out.place(fake.key, f"manipulated_sequences/{folder}/{COMPRESSION}/videos/{t}_{s}.mp4", VIDEO_ONLY):
            edges.append((t, s))
    identity_of = {c.key: c.identity for c in inputs.reals}
    split = _splits(numbers, identity_of, edges)
    for part in ("train", "val", "test"):
        pairs = sorted({tuple(sorted(e)) for e in edges if split[e[0]] == part})
        paired = {n for p in pairs for n in p}
        alone = sorted(n for n, p in split.items() if p == part and n not in paired)
        for a, b in zip(alone[0::2], alone[1::2]):
            pairs.append((a, b))
        if len(alone) % 2:
            # The odd one out pairs with another original of its split (or itself when alone).
            pairs.append((alone[-1], pairs[0][0] if pairs else alone[-1]))
        out.texts[f"{part}.json"] = json.dumps([list(p) for p in pairs]) + "\n"
    return out
