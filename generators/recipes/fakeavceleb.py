"""The FakeAVCeleb-style recipe: the five cross-manipulation categories per target clip.

- RVFA ``rtvc``: the real video with a cloned voice speaking new text (TTS, pitch-moved
  to the target's voice) — Sync_Label 0, as in FakeAVCeleb's RTVC rows;
- FVRA-WL ``wav2lip``: lip-synced to real speech of another identity;
- FVFA-FS ``faceswap-wav2lip``: another identity's face swapped in (``faceswap``),
  then lip-synced to a fake voice (voice conversion of another identity's speech);
- FVFA-GAN ``fsgan-wav2lip``: the same with ``faceswap-smooth``, our stand-in for
  FSGAN (no GAN: landmark reenactment + colour transfer + seamless blending);
- FVFA-WL ``wav2lip`` on fake audio: a converted voice, then lip-sync.
Ethnicity and gender are copied from the target. Keys:
``<corpus>/<target clip id>--<audio clip id>/<variant>``, variants
``rtvc``, ``wav2lip``, ``faceswap-wav2lip``, ``fsgan-wav2lip``, ``rtvc-wav2lip``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from generators.recipes.common import PREV, Selection, Step, Task, base_fields, clip_id, media_path, rotating_choice

# Transcripts for the TTS voices when a clip carries none (studio clips carry theirs in extra).
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet at the station at half past nine tomorrow morning.",
    "Every morning the old man walked his dog along the river.",
    "She sells sea shells by the sea shore on sunny afternoons.",
)

DEFAULT_GENERATORS = {"lipsync": "wav2lip", "faceswap": "faceswap", "faceswap_gan": "faceswap-smooth",
                      "voice": "voice"}


def transcript_of(clip, rng: np.random.Generator) -> str:
    try:
        text = json.loads(clip.extra or "{}").get("transcript")
    except (ValueError, AttributeError):
        text = None
    return text or SENTENCES[int(rng.integers(len(SENTENCES)))]


def plan_fakeavceleb(selections: Sequence[Selection], media_root: Path, corpus: str, seed: int = 0,
                     generators: Mapping[str, str] | None = None, methods_per_target: int | None = None) -> list[Task]:
    """Tasks for the five FakeAVCeleb categories per selected target (``methods_per_target``:
    only that many categories per target, rotating over targets; None: all five)."""
    g = {**DEFAULT_GENERATORS, **(generators or {})}
    rng = np.random.default_rng(seed + 1)
    tasks: list[Task] = []
    for index, sel in enumerate(selections):
        t, other = sel.target, sel.cross
        tv, ov = media_path(t, media_root), media_path(other, media_root)

        def add(variant: str, subset: str, steps: list[Step], *, video_fake: bool, audio_fake: bool,
                audio_clip, sync: bool, face_source=None) -> None:
            pair = f"{clip_id(t)}--{clip_id(audio_clip)}"
            key = f"{corpus}/{pair}/{variant}"
            sources = [t.key] + ([audio_clip.key] if audio_clip.key != t.key else [])
            if face_source is not None and face_source.key not in sources:
                sources.append(face_source.key)
            extra = {"recipe": "fakeavceleb", "subset": subset, "audio_key": audio_clip.key, "target_key": t.key}
            if face_source is not None:
                extra["face_source_key"] = face_source.key
                extra["face_source_identity"] = face_source.identity
            method = {"FVFA-WL": "wav2lip"}.get(subset, variant)
            clip = base_fields(t, corpus, key, method=method, video_fake=video_fake, audio_fake=audio_fake,
                               audio_source_identity=audio_clip.identity,
                               self_audio=audio_clip.identity == t.identity, sync=sync, source_keys=sources,
                               extra=extra)
            tasks.append(Task(key, steps, f"media/{pair}/{variant}.mp4", clip, t.key))

        text = transcript_of(t, rng)  # drawn for every target, so a rotation does not shift the others
        fake_voice = Step(g["voice"], tv, ov)  # another identity's speech, voice-converted
        variants = [
            ("rtvc", "RVFA", [Step(g["voice"], tv, tv, text=text)],
             dict(video_fake=False, audio_fake=True, audio_clip=t, sync=False)),
            ("wav2lip", "FVRA-WL", [Step(g["lipsync"], tv, ov)],
             dict(video_fake=True, audio_fake=False, audio_clip=other, sync=True)),
            ("faceswap-wav2lip", "FVFA-FS",
             [fake_voice, Step(g["faceswap"], PREV, PREV, source_video=ov), Step(g["lipsync"], PREV, PREV)],
             dict(video_fake=True, audio_fake=True, audio_clip=other, sync=True, face_source=other)),
            ("fsgan-wav2lip", "FVFA-GAN",
             [fake_voice, Step(g["faceswap_gan"], PREV, PREV, source_video=ov), Step(g["lipsync"], PREV, PREV)],
             dict(video_fake=True, audio_fake=True, audio_clip=other, sync=True, face_source=other)),
            ("rtvc-wav2lip", "FVFA-WL", [fake_voice, Step(g["lipsync"], PREV, PREV)],
             dict(video_fake=True, audio_fake=True, audio_clip=other, sync=True)),
        ]
        for variant, subset, steps, kwargs in rotating_choice(variants, index, methods_per_target):
            add(variant, subset, steps, **kwargs)
    return tasks
