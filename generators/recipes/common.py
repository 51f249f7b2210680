"""What both recipes share: tasks, pair selection from clear-speech identities, keys.

A task is one JSON-able item of the Ray stage: an output key, the generator
steps that make the file (a chain such as voice -> faceswap -> wav2lip feeds
each step's output to the next; ``"@prev"`` names it), the output path, and
the Clip fields the recipe decides (labels, provenance). The worker fills in
what only the output can tell (frames, samples, sha256, generator versions).

Pair selection is a pure function of (manifest, params, seed): sorted
inputs and one seeded generator, so the same inputs plan the same corpus.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.clip import Clip, safe_id
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from generators.cache import StageCache

PREV = "@prev"


@dataclass
class Step:
    generator: str
    video: str  # a path or PREV
    audio: str | None  # a path, PREV, or None (the video's own audio)
    source_video: str | None = None
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Task:
    key: str
    steps: list[Step]
    out: str  # output path relative to the recipe's output folder
    clip: dict[str, Any]  # Clip fields decided by the recipe
    target_key: str = ""

    def to_item(self) -> dict[str, Any]:
        return {"key": self.key, "steps": [s.to_dict() for s in self.steps], "out": self.out, "clip": self.clip}


@dataclass
class Selection:
    """A target clip and the other identity's clip whose speech drives its cross-identity fakes.

    The self-audio fakes (CMDFD ``_S``) are driven by the target's own audio track."""

    target: Clip
    cross: Clip
    extra: dict[str, Any] = field(default_factory=dict)


def clip_id(clip: Clip) -> str:
    """A key component naming a clip: its key without the corpus, slashes as '_'."""
    return safe_id(clip.key.split("/", 1)[1].replace("/", "_"))


def output_corpus(recipe: str, clips: Sequence[Clip]) -> str:
    """``cmdfd`` / ``fakeavceleb`` for real corpora; ``studio-<recipe>`` for the studio twins,
    so a combined manifest never mixes proxy and real forgeries under one corpus name."""
    corpora = {c.corpus for c in clips}
    return f"studio-{recipe}" if corpora == {"studio"} else recipe


def media_path(clip: Clip, media_root: Path) -> str:
    p = Path(clip.path)
    return str(p if p.is_absolute() else (media_root / p).resolve())


def clear_speech(clips: Sequence[Clip], media_root: Path, min_voiced_fraction: float,
                 score: Callable[[Path], float] | None = None, cache: StageCache | None = None) -> dict[str, float]:
    """Median voiced fraction per identity (frames within 30 dB of the loud ones and above
    -45 dBFS); identities at or above ``min_voiced_fraction`` have clear speech.

    The clips' audio is decoded on threads (the work is ffmpeg's, in subprocesses, so every core
    takes part), and put in ``cache`` for the tasks that are driven by it. A clip's score is kept
    for the process: each recipe of a run plans over the same clips."""
    from generators.audio_features import voiced_fraction
    from pipeline.media import SAMPLE_RATE, decode_audio

    if score is None:
        def score(path: Path) -> float:
            try:
                st = path.stat()
            except OSError:
                return 0.0
            stamp = (str(path), st.st_mtime_ns, st.st_size)
            if stamp not in _VOICED:
                def decode() -> np.ndarray:
                    return decode_audio(path, SAMPLE_RATE)

                try:
                    audio = decode() if cache is None else cache.decoded("audio", path, decode, SAMPLE_RATE)
                except Exception:  # an unreadable clip counts as no speech; the identity may still pass
                    return 0.0
                _VOICED[stamp] = voiced_fraction(audio)
            return _VOICED[stamp]
    paths = [Path(media_path(c, media_root)) for c in clips]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        scores = list(pool.map(score, paths))
    per_id: dict[str, list[float]] = defaultdict(list)
    for c, value in zip(clips, scores):
        per_id[c.identity].append(value)
    return {i: float(np.median(v)) for i, v in per_id.items()}


# Voiced fraction per (path, mtime, size) of the clips this process has scored.
_VOICED: dict[tuple[str, int, int], float] = {}


def select_pairs(clips: Sequence[Clip], seed: int, *, targets_per_identity: int = 1, max_targets: int | None = None,
                 voiced: dict[str, float] | None = None, min_voiced_fraction: float = 0.0) -> list[Selection]:
    """For each clear-speech identity, ``targets_per_identity`` target clips, each paired with a
    clip of another clear-speech identity whose speech drives its cross-identity fakes.

    As in the released CMDFD lists, cross pairs are mutual swaps: identities are paired off
    (A, B) and A's k-th target is driven by B's k-th target and vice versa; with an odd number
    of identities the last one borrows a partner's target. ``max_targets`` caps the selection,
    spread over the (ethnicity, gender) groups."""
    real = sorted((c for c in clips if c.label == 0), key=lambda c: c.key)
    by_id: dict[str, list[Clip]] = defaultdict(list)
    for c in real:
        by_id[c.identity].append(c)
    ids = sorted(i for i in by_id if voiced is None or voiced.get(i, 0.0) >= min_voiced_fraction)
    if len(ids) < 2:
        return []
    rng = np.random.default_rng(seed)
    targets = {i: [by_id[i][j] for j in rng.permutation(len(by_id[i]))[:targets_per_identity]] for i in ids}
    order = [ids[j] for j in rng.permutation(len(ids))]
    partner: dict[str, str] = {}
    for a, b in zip(order[0::2], order[1::2]):
        partner[a], partner[b] = b, a
    if len(order) % 2:
        partner[order[-1]] = order[rng.integers(len(order) - 1)]
    out: list[Selection] = []
    for identity in ids:
        theirs = targets[partner[identity]]
        out += [Selection(target, theirs[k % len(theirs)]) for k, target in enumerate(targets[identity])]
    if max_targets is not None and len(out) > max_targets:
        out = spread_over_groups(out, max_targets)
    return out


def spread_over_groups(selections: Sequence[Selection], n: int) -> list[Selection]:
    """``n`` of ``selections`` spread over the targets' ethnicity groups first, then gender.

    A capped corpus must still have fakes in every group the split protocols
    use (a prefix of sorted identities would cover only the first groups):
    picks go round-robin over ethnicities, and each ethnicity alternates its
    genders (starting at a different one per ethnicity, so both genders show
    up even when ``n`` only covers each ethnicity once). Input order is kept.
    """
    by_eth: dict[str, dict[str, list[Selection]]] = defaultdict(lambda: defaultdict(list))
    for s in selections:
        by_eth[s.target.ethnicity or ""][s.target.gender or ""].append(s)
    queues: list[list[Selection]] = []
    for i, eth in enumerate(sorted(by_eth)):
        genders = sorted(by_eth[eth])
        genders = genders[i % len(genders):] + genders[: i % len(genders)]
        interleaved: list[Selection] = []
        while any(by_eth[eth][g] for g in genders):
            interleaved += [by_eth[eth][g].pop(0) for g in genders if by_eth[eth][g]]
        queues.append(interleaved)
    picked: list[Selection] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    order = {id(s): i for i, s in enumerate(selections)}
    return sorted(picked, key=lambda s: order[id(s)])


def rotating_choice(options: Sequence[Any], index: int, k: int | None) -> list[Any]:
    """``k`` of ``options`` for the ``index``-th target, rotating so that consecutive targets
    cover every option equally often (None or k >= len: all of them, in order)."""
    if k is None or k >= len(options):
        return list(options)
    if k < 1:
        raise ConfigError(f"methods_per_target must be >= 1 or null, got {k}")
    return [options[(index * k + j) % len(options)] for j in range(k)]


def base_fields(target: Clip, corpus: str, key: str, *, method: str, video_fake: bool, audio_fake: bool,
                audio_source_identity: str | None, self_audio: bool | None, sync: bool | None,
                source_keys: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    from pipeline.clip import category_of

    return dict(
        key=key, corpus=corpus, identity=target.identity, video_id=target.video_id,
        label=int(video_fake or audio_fake), video_fake=video_fake, audio_fake=audio_fake,
        category=category_of(video_fake, audio_fake), method=method,
        audio_source_identity=audio_source_identity, self_audio=self_audio, sync=sync,
        ethnicity=target.ethnicity, gender=target.gender, source_keys=source_keys,
        extra=json.dumps(extra, sort_keys=True),
    )


def lip_sync_of(generator: str) -> bool:
    from generators.registry import GENERATORS

    return bool(getattr(GENERATORS.get(generator), "lip_sync", True))
