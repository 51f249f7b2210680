"""VoxCeleb2 replica: ``dev/mp4/idNNNNN/<youtube id>/NNNNN.mp4`` + ``vox2_meta.csv``.

Identities map to ``idNNNNN`` by their own number (studio ``s007`` ->
``id00007``); each studio video (``video_id``) becomes an 11-character
YouTube-like id hashed from it, so the utterances of one video share a folder
exactly as VoxCeleb2's do; utterances are numbered ``00001``... per identity
(VoxCeleb2 numbers them per identity across its videos). The files are hard
links. ``vox2_meta.csv`` has the release's header ``VoxCeleb2 ID ,VGGFace2
ID ,Gender ,Set`` (a space before each comma, the rows alike), gender ``m`` /
``f``. VoxCeleb2 holds real clips only: fakes are skipped with that reason.
"""
from __future__ import annotations

from pipeline.replicas.base import ReplicaInputs, ReplicaPlan, clip_numbers, stable_numbers, youtube_id

META_NAME = "vox2_meta.csv"
META_HEADER = "VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set"
GENDER = {"male": "m", "female": "f", "men": "m", "women": "f", "m": "m", "f": "f"}


def vox_id(number: int) -> str:
    return f"id{number:05d}"


def plan(inputs: ReplicaInputs) -> ReplicaPlan:
    out = ReplicaPlan("voxceleb2", root=".")
    numbers = stable_numbers(c.identity for c in inputs.reals)
    utterance = clip_numbers(inputs.reals)
    genders: dict[str, str] = {}
    for clip in inputs.reals:
        vid = vox_id(numbers[clip.identity])
        out.place(clip.key, f"dev/mp4/{vid}/{youtube_id(clip.video_id)}/{utterance[clip.key] + 1:05d}.mp4")
        genders[vid] = GENDER.get((clip.gender or "").lower(), "")
    for fake in inputs.fakes:
        out.skip(fake.key, "VoxCeleb2 holds real clips only")
    rows = [f"{vid} ,n{int(vid[2:]):06d} ,{genders[vid]} ,dev" for vid in sorted(genders)]
    out.texts[META_NAME] = "\n".join([META_HEADER, *rows]) + "\n"
    return out
