"""KoDF replica: ``original_videos/<subject>/<clip>.mp4``, ``synthesized_videos/<model>/<subject>/<clip>.mp4``
and the Korean metadata sheets ``원본영상_training_메타데이터.csv`` / ``변조영상_training_메타데이터.csv``.

This is the layout ``pipeline/ingest/kodf.py`` reads (the public facts of the
release: the two top folders, per-model folders, the sheets' names and the
columns ``영상ID`` video id, ``타겟영상`` target video, ``변조모델`` model; the
full column list is not public, so only those are written). Subjects are the
identities' numbers (``s007`` -> ``00007``), clip names are unique over the
corpus (the sheets link fakes to originals by file name). Files are hard
links: KoDF keeps the original audio in every clip.

Because a KoDF fake keeps the original audio, only studio fakes with a fake
video and real audio (FVRA) are KoDF clips: lip-sync fakes (wav2lip,
videoretalking) go to ``wav2lip/``, one-shot talking heads (audio2head,
makeittalk) to ``atfhp/`` (audio-driven talking face with head pose), both
``audio-driven`` in the sheet; a real-audio face swap to ``dffs/`` or
``fsgan/``. Fakes with fake audio are skipped with that reason.
"""
from __future__ import annotations

from pipeline.replicas.base import (
    ReplicaInputs, ReplicaPlan, clip_numbers, csv_text, short_hash, stable_numbers, target_key,
)

REAL_DIR, FAKE_DIR = "original_videos", "synthesized_videos"
ORIGINALS_SHEET = "원본영상_training_메타데이터.csv"
FAKES_SHEET = "변조영상_training_메타데이터.csv"
# studio method -> (KoDF model folder, the sheet's 변조모델 value)
MODEL_OF_METHOD = {
    "wav2lip": ("wav2lip", "audio-driven"), "videoretalking": ("wav2lip", "audio-driven"),
    "audio2head": ("atfhp", "audio-driven"), "makeittalk": ("atfhp", "audio-driven"),
    "faceswap": ("dffs", "dffs"), "fsgan": ("fsgan", "fsgan"),
}


def plan(inputs: ReplicaInputs) -> ReplicaPlan:
    out = ReplicaPlan("kodf", root=".")
    numbers = stable_numbers(c.identity for c in inputs.reals)
    subject = {name: f"{n:05d}" for name, n in numbers.items()}
    utterance = clip_numbers(inputs.reals)
    names: dict[str, str] = {}  # real key -> its file name
    originals, fakes = [["영상ID"]], [["영상ID", "타겟영상", "변조모델"]]
    for clip in inputs.reals:
        sub = subject[clip.identity]
        name = f"{sub}_{utterance[clip.key]:03d}.mp4"
        if out.place(clip.key, f"{REAL_DIR}/{sub}/{name}"):
            names[clip.key] = name
            originals.append([name])
    for fake in inputs.fakes:
        model = MODEL_OF_METHOD.get(fake.method)
        target = target_key(fake)
        if fake.category != "FVRA" or model is None:
            out.skip(fake.key, f"not a KoDF fake ({fake.method} {fake.category}): KoDF fakes are video fakes "
                               "with the original audio")
        elif target not in names:
            out.skip(fake.key, "its target real clip is not in --studio")
        else:
            sub = subject[inputs.by_key[target].identity]
            name = f"{names[target].removesuffix('.mp4')}_{short_hash(fake.key)}.mp4"
            if out.place(fake.key, f"{FAKE_DIR}/{model[0]}/{sub}/{name}"):
                fakes.append([name, names[target], model[1]])
    out.texts[ORIGINALS_SHEET] = csv_text([originals[0], *sorted(originals[1:])])
    out.texts[FAKES_SHEET] = csv_text([fakes[0], *sorted(fakes[1:])])
    return out
