"""IDForge v2 replica: ``<subset>/idNN/idNN_SS/<name>.mp4/`` folders + ``{train,val,test}.csv``.

Each clip becomes a v2 folder: ``frames_ndarray.npy`` (16 RGB frames decoded
at 25 fps: 4 groups of 4 consecutive frames with evenly spaced starts),
``<name>.mp3`` (the audio track, 16 kHz mono) and ``<name>.txt`` (the
transcript of the speech heard: the studio row's ``extra.transcript`` of the
clip whose audio the fake carries). ``idNN`` is the identity's number
(``s007`` -> ``id07``), ``idNN_SS`` its ``SS``-th video, ``<name>`` the
utterance (``00001``; fakes add a hash of their key, so several fakes of one
utterance in one subset stay apart).

Studio methods onto IDForge subsets (the labels survive; IDForge does not
name tools, so the method becomes the subset)::

    studio fake (recipe: method, category)         IDForge subset                   why
    fakeavceleb: rtvc (RVFA)                      tts_textgen                      TTS voice on the real video
    fakeavceleb: wav2lip (FVRA)                   lip_audiomismatch_textmismatch   lips synced to another clip's real speech
    fakeavceleb: wav2lip (FVFA, rtvc-wav2lip)     lip_rvc_textmismatch             lips synced to a converted voice
    fakeavceleb: faceswap-wav2lip / fsgan-wav2lip face_rvc_textmismatch            face swap, converted voice
    cmdfd: wav2lip / videoretalking / audio2head  lip_audiomismatch_textmismatch   face re-rendered to another clip's
           / makeittalk (FVRA)                                                     real speech (talking heads: nearest)

The rtvc voice speaks the clip's own transcript (or a drawn sentence when it
has none): not another clip's text, so ``textgen`` is the nearer name. A fake
with no subset (a face swap that keeps real audio) is skipped with that
reason. Splits are identity-disjoint (7 / 1 / 2 of every 10 identities);
every folder is listed in exactly one split file, one path per line, sorted.
"""
from __future__ import annotations

from pipeline.clip import Clip
from pipeline.replicas.base import (
    IDFORGE_FOLDER, ReplicaInputs, ReplicaPlan, audio_key, clip_numbers, extra_of, identity_splits, short_hash,
    stable_numbers, target_key, video_numbers,
)

PRISTINE = "pristine"
LIP_SYNC = ("wav2lip", "videoretalking", "audio2head", "makeittalk")
SWAPS = ("faceswap-wav2lip", "fsgan-wav2lip")


def subset_of(fake: Clip) -> str | None:
    """The IDForge subset a studio fake stands for (see the table above), or None."""
    if fake.category == "RVFA":
        return "tts_textgen"
    if fake.method in SWAPS and fake.category == "FVFA":
        return "face_rvc_textmismatch"
    if fake.method in LIP_SYNC:
        return {"FVRA": "lip_audiomismatch_textmismatch", "FVFA": "lip_rvc_textmismatch"}.get(fake.category)
    return None


def plan(inputs: ReplicaInputs) -> ReplicaPlan:
    out = ReplicaPlan("idforge", root=".")
    numbers = stable_numbers(c.identity for c in inputs.reals)
    ids = {name: f"id{n:02d}" for name, n in numbers.items()}
    utterance = clip_numbers(inputs.reals)
    session = video_numbers(inputs.reals)
    split_of = identity_splits(ids)
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}

    def add(clip: Clip, subset: str, identity: str, video_id: str, name: str, transcript: str | None) -> None:
        rel = f"{subset}/{ids[identity]}/{ids[identity]}_{session[video_id]:02d}/{name}.mp4"
        if out.place(clip.key, rel, IDFORGE_FOLDER, transcript or ""):
            lines[split_of[identity]].append(rel)

    for clip in inputs.reals:
        add(clip, PRISTINE, clip.identity, clip.video_id, f"{utterance[clip.key] + 1:05d}",
            extra_of(clip).get("transcript"))
    for fake in inputs.fakes:
        subset = subset_of(fake)
        target = inputs.by_key.get(target_key(fake) or "")
        if subset is None:
            out.skip(fake.key, f"no IDForge subset for a {fake.method} {fake.category} fake")
        elif target is None or target.label != 0 or target.identity not in ids:
            out.skip(fake.key, "its target real clip is not in --studio")
        else:
            # The words heard: the driving clip's transcript (rtvc re-speaks the target's own).
            text = inputs.transcript(audio_key(fake)) or inputs.transcript(target.key)
            add(fake, subset, target.identity, target.video_id,
                f"{utterance[target.key] + 1:05d}_{short_hash(fake.key)}", text)
    for split, rels in lines.items():
        out.texts[f"{split}.csv"] = "".join(f"{r}\n" for r in sorted(rels))
    return out
