"""FakeAVCeleb v1.2 replica: ``FakeAVCeleb_v1.2/<type>/<race>/<gender>/<idNNNNN>/<file>.mp4`` + ``meta_data.csv``.

``meta_data.csv`` has the release's header ``source,target1,target2,method,
category,type,race,gender,path,``: ``path`` holds the file name and the
unnamed tenth column the folder, which starts with ``FakeAVCeleb/`` while the
tree is ``FakeAVCeleb_v1.2/``. Studio groups map onto the five races in order
(group-a African, group-b Asian (East), group-c Asian (South), group-d
Caucasian (American), group-e Caucasian (European)); female / male onto
women / men; identities onto ``idNNNNN`` as in the VoxCeleb2 replica.

Only fakes of the FakeAVCeleb recipe are FakeAVCeleb clips (CMDFD-recipe
fakes are skipped: their methods are not FakeAVCeleb's). Columns per method,
as the adapter reads them: ``source`` = the forged video's identity,
``target1`` = the face's (swaps) or the speech's (wav2lip) identity,
``target2`` = the speech's identity after a swap. File names follow the
release's patterns (``00001.mp4``, ``00001_fake.mp4``,
``00001_id00008_wavtolip.mp4``, ``00001_id00003_<yt id>_id00003_wavtolip.mp4``),
with ``_gan`` before ``_wavtolip`` for fsgan-wav2lip so two swaps of one pair
stay apart. The quirk of the release — 22 files listed twice, as
faceswap-wav2lip and then as wav2lip — is reproduced for the first
faceswap-wav2lip file, so readers meet it here before the real corpus.
"""
from __future__ import annotations

from pipeline.clip import Clip
from pipeline.replicas.base import (
    RACE_OF_GROUP, RACES, ReplicaInputs, ReplicaPlan, audio_key, clip_numbers, csv_text, extra_of,
    face_source_key, stable_numbers, target_key, youtube_id,
)

ROOT = "FakeAVCeleb_v1.2"
SHEET_PREFIX = "FakeAVCeleb"  # the folder column's first part in the release
HEADER = ["source", "target1", "target2", "method", "category", "type", "race", "gender", "path", ""]
TYPES = {"RVRA": "RealVideo-RealAudio", "RVFA": "RealVideo-FakeAudio", "FVRA": "FakeVideo-RealAudio",
         "FVFA": "FakeVideo-FakeAudio"}
LETTERS = {"RVRA": "A", "RVFA": "B", "FVRA": "C", "FVFA": "D"}
GENDERS = {"female": "women", "male": "men", "women": "women", "men": "men"}
METHODS = ("rtvc", "wav2lip", "faceswap", "fsgan", "faceswap-wav2lip", "fsgan-wav2lip")
QUIRK = ("faceswap-wav2lip", "wav2lip")  # the release lists some files under both, in this order


def race_of(clip: Clip) -> str | None:
    e = clip.ethnicity or ""
    return e if e in RACES else RACE_OF_GROUP.get(e)


def plan(inputs: ReplicaInputs) -> ReplicaPlan:
    out = ReplicaPlan("fakeavceleb", root=ROOT)
    numbers = stable_numbers(c.identity for c in inputs.reals)
    vid = {name: f"id{n:05d}" for name, n in numbers.items()}
    utterance = clip_numbers(inputs.reals)
    rows: list[list[str]] = []

    def where(clip: Clip) -> tuple[str, str, str] | None:
        """(type, race, gender) folders of a clip, or None after recording why not."""
        race, gender = race_of(clip), GENDERS.get((clip.gender or "").lower())
        if race is None or gender is None:
            out.skip(clip.key, "no FakeAVCeleb race / gender for its ethnicity / gender")
            return None
        return TYPES[clip.category], race, gender

    def add(clip: Clip, source: str, t1: str, t2: str, method: str, name: str, folders: tuple[str, str, str]) -> None:
        type_, race, gender = folders
        folder = f"{type_}/{race}/{gender}/{source}"
        if out.place(clip.key, f"{ROOT}/{folder}/{name}"):
            rows.append([source, t1, t2, method, LETTERS[clip.category], type_, race, gender, name,
                         f"{SHEET_PREFIX}/{folder}"])

    for clip in inputs.reals:
        folders = where(clip)
        if folders:
            add(clip, vid[clip.identity], "-", "-", "real", f"{utterance[clip.key] + 1:05d}.mp4", folders)
    for fake in inputs.fakes:
        if extra_of(fake).get("recipe") != "fakeavceleb" or fake.method not in METHODS:
            out.skip(fake.key, f"not a FakeAVCeleb-recipe fake (method {fake.method}): no FakeAVCeleb method")
            continue
        target = inputs.by_key.get(target_key(fake) or "")
        if target is None or target.label != 0 or target.identity not in vid:
            out.skip(fake.key, "its target real clip is not in --studio")
            continue
        folders = where(fake)
        if not folders:
            continue
        number = f"{utterance[target.key] + 1:05d}"
        heard = inputs.by_key.get(audio_key(fake) or "")
        face = inputs.by_key.get(face_source_key(fake) or "")
        speaker = vid.get(heard.identity) if heard else None
        m = fake.method
        if m == "rtvc":
            add(fake, vid[target.identity], "-", "-", m, f"{number}_fake.mp4", folders)
        elif m == "wav2lip" and speaker:
            add(fake, vid[target.identity], speaker, "-", m, f"{number}_{speaker}_wavtolip.mp4", folders)
        elif m in ("faceswap", "fsgan") and face and face.identity in vid:
            tag = "_gan" if m == "fsgan" else ""
            add(fake, vid[target.identity], vid[face.identity], "-", m,
                f"{number}_{vid[face.identity]}_{youtube_id(face.video_id)}{tag}_faceswap.mp4", folders)
        elif m in ("faceswap-wav2lip", "fsgan-wav2lip") and face and face.identity in vid and speaker:
            tag = "_gan" if m == "fsgan-wav2lip" else ""
            add(fake, vid[target.identity], vid[face.identity], speaker, m,
                f"{number}_{vid[face.identity]}_{youtube_id(face.video_id)}_{speaker}{tag}_wavtolip.mp4", folders)
        else:
            out.skip(fake.key, f"{m} fake without the speech / face source clip FakeAVCeleb names")
    order = {t: i for i, t in enumerate(TYPES.values())}
    rows.sort(key=lambda r: (order[r[5]], r[6], r[7], r[0], r[8], r[3]))
    # The release's quirk: the first faceswap-wav2lip file listed again, as wav2lip, right after.
    quirk = next((i for i, r in enumerate(rows) if r[3] == QUIRK[0]), None)
    if quirk is not None:
        again = list(rows[quirk])
        again[1], again[2], again[3] = again[2], "-", QUIRK[1]  # wav2lip rows name the speech in target1
        rows.insert(quirk + 1, again)
    out.texts[f"{ROOT}/meta_data.csv"] = csv_text([HEADER, *rows])
    return out
