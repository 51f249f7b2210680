"""The CMDFD recipe: each selected real clip forged by every lip-sync / talking-head
generator twice — driven by another identity's speech, and by the clip's own
original audio track (the ``_Self`` subsets: "the original audio of the identity
itself"; in the released ``W2L_Self.csv`` the fake's ``Audio_Path`` is the very
wav of its real clip).

The selected real clips are CMDFD's real clips too (the released lists put the
same 1,000 ``origin`` clips beside every subset's fakes): ``origin_clips`` re-keys
them into the CMDFD corpus (``<corpus>/origin/<clip id>``, ``extra.subset``
``origin``), pointing at the same media, so that the cross-dataset protocol finds
reals and fakes of one corpus.

Labels follow the released CSVs (``reference/cmdfd_csv``): video fake, audio
real; ``Identi_Label`` 1 only for ``_Self``; ``Sync_Label`` 1 for the lip-sync
tools (Wav2Lip, VideoReTalking) and 0 for the one-shot talking heads
(Audio2Head, MakeItTalk) — the Clip's ``sync`` carries the same value.
Keys: ``<corpus>/<target clip id>--<audio clip id>/<method>`` (``_S``: the audio
clip is the target itself).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from generators.recipes.common import (
    Selection, Step, Task, base_fields, clip_id, lip_sync_of, media_path, rotating_choice,
)
from pipeline.clip import Clip

# method -> (CMDFD subset, ID_Name prefix) for cross-identity audio; "_Self" variants add a suffix.
SUBSETS: dict[str, tuple[str, str]] = {
    "wav2lip": ("W2L", "wav2lip"),
    "videoretalking": ("VideoReTalk", "VideoReTalk"),
    "audio2head": ("Audio2Head", "Audio2Head"),
    "makeittalk": ("MakeItTalk", "MakeItTalk"),
}

DEFAULT_METHODS = {m: m for m in SUBSETS}


def subset_of(method: str, self_audio: bool) -> str:
    base = SUBSETS.get(method, (method, method))[0]
    return f"{base}_Self" if self_audio else base


def plan_cmdfd(selections: Sequence[Selection], media_root: Path, corpus: str,
               methods: Mapping[str, str] | None = None, methods_per_target: int | None = None) -> list[Task]:
    """Tasks for two fakes per (selected target, method): cross-identity and self audio.

    ``methods_per_target``: forge each target with only that many methods, rotating over
    targets (None: every method, as released)."""
    methods = dict(methods or DEFAULT_METHODS)
    tasks: list[Task] = []
    for index, sel in enumerate(selections):
        t = sel.target
        drivers: list[tuple[Clip, bool]] = [(sel.cross, False), (t, True)]
        for method, generator in rotating_choice(list(methods.items()), index, methods_per_target):
            sync = lip_sync_of(generator)
            for audio_clip, is_self in drivers:
                pair = f"{clip_id(t)}--{clip_id(audio_clip)}"
                key = f"{corpus}/{pair}/{method}"
                clip = base_fields(
                    t, corpus, key, method=method, video_fake=True, audio_fake=False,
                    audio_source_identity=audio_clip.identity, self_audio=is_self, sync=sync,
                    source_keys=list(dict.fromkeys([t.key, audio_clip.key])),
                    extra={"recipe": "cmdfd", "subset": subset_of(method, is_self), "audio_key": audio_clip.key,
                           "target_key": t.key},
                )
                step = Step(generator, media_path(t, media_root), media_path(audio_clip, media_root))
                tasks.append(Task(key, [step], f"media/{pair}/{method}.mp4", clip, t.key))
    return tasks


def origin_key(target: Clip, corpus: str) -> str:
    return f"{corpus}/origin/{clip_id(target)}"


def origin_clips(targets: Sequence[Clip], corpus: str, rel_paths: Mapping[str, str]) -> list[Clip]:
    """The real clips of a CMDFD build: each forged target, re-keyed into the CMDFD corpus.

    ``rel_paths``: target key -> its media path relative to the build's folder (the media
    are not copied). Provenance: ``source_keys`` is the original clip."""
    out = []
    for t in targets:
        extra = {"recipe": "cmdfd", "subset": "origin", "target_key": t.key}
        out.append(Clip.from_row({
            **t.to_row(), "key": origin_key(t, corpus), "corpus": corpus, "path": rel_paths[t.key],
            "source_keys": [t.key], "extra": json.dumps(extra, sort_keys=True)}))
    return out
