"""Small manifests (Clip rows, no media) shaped like the corpora, and predictions on them.

Used by test_submit*.py and test_leaderboard*.py: studio-like manifests carry
what the studio twins select on (``extra.recipe``, ``method``, ``self_audio``,
``ethnicity`` group-a..e, ``identity``); real-like ones mirror FakeAVCeleb,
CMDFD and KoDF.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmark.protocols import load_protocol
from pipeline.clip import Clip, category_of
from pipeline.manifest import write_manifest

STUDIO_GROUPS = ["group-a", "group-b", "group-c", "group-d", "group-e"]
FAV_ETHNICITIES = ["African", "Asian (East)", "Asian (South)", "Caucasian (American)", "Caucasian (European)"]
# (video_fake, audio_fake, method) of FakeAVCeleb's fake kinds
FAV_FAKES = [
    (False, True, "rtvc"),
    (True, False, "wav2lip"),
    (True, False, "faceswap"),
    (True, False, "fsgan"),
    (True, True, "faceswap-wav2lip"),
    (True, True, "fsgan-wav2lip"),
    (True, True, "wav2lip"),
]
CMDFD_METHODS = ["wav2lip", "videoretalking", "audio2head", "makeittalk"]


def clip(corpus: str, name: str, identity: str, *, video_fake=False, audio_fake=False, method="real",
         **kw) -> Clip:
    return Clip(
        key=f"{corpus}/{name}", corpus=corpus, identity=identity, video_id=name, path=f"{name}.mp4",
        label=int(video_fake or audio_fake), video_fake=video_fake, audio_fake=audio_fake,
        category=category_of(video_fake, audio_fake), method=method, **kw,
    )


def fav_like(corpus: str, groups: list[str], per_group: int = 3, videos: int = 2, recipe: str | None = None):
    """Real videos per identity and one fake of each FakeAVCeleb kind per real video."""
    clips = []
    extra = json.dumps({"recipe": recipe}) if recipe else None
    for g, group in enumerate(groups):
        for i in range(per_group):
            identity = f"p{g}{i:02d}"
            for v in range(videos):
                vid = f"{identity}-v{v}"
                clips.append(clip(corpus, vid, identity, ethnicity=group, gender="female"))
                for vf, af, method in FAV_FAKES:
                    name = f"{vid}-{category_of(vf, af)}-{method}"
                    clips.append(clip(corpus, name, identity, video_fake=vf, audio_fake=af, method=method,
                                      ethnicity=group, gender="female", extra=extra))
    return clips


def cmdfd_fakes(corpus: str, identities: list[tuple[str, str | None]], recipe: str | None = None):
    """One fake per (CMDFD method, self_audio) for each (identity, group)."""
    clips = []
    extra = json.dumps({"recipe": recipe}) if recipe else None
    for identity, group in identities:
        for method in CMDFD_METHODS:
            for self_audio in (False, True):
                name = f"{identity}-cm-{method}{'-self' if self_audio else ''}"
                clips.append(clip(corpus, name, identity, video_fake=True, method=method, self_audio=self_audio,
                                  ethnicity=group, extra=extra))
    return clips


def studio_manifest(per_group: int = 3) -> list[Clip]:
    """As `avdf generate` makes it: the CMDFD-style build (corpus studio-cmdfd) holds its origin
    clips (each forged studio real again) beside its fakes."""
    clips = fav_like("studio", STUDIO_GROUPS, per_group=per_group, recipe="fakeavceleb")
    identities = sorted({(c.identity, c.ethnicity) for c in clips})
    origins = [Clip.from_row({**c.to_row(), "key": f"studio-cmdfd/origin/{c.key.split('/', 1)[1]}",
                              "corpus": "studio-cmdfd", "source_keys": [c.key],
                              "extra": json.dumps({"recipe": "cmdfd", "subset": "origin"})})
               for c in clips if c.label == 0 and c.video_id.endswith("-v0")]
    return clips + origins + cmdfd_fakes("studio-cmdfd", identities, recipe="cmdfd")


def real_manifest() -> list[Clip]:
    clips = fav_like("fakeavceleb", FAV_ETHNICITIES)
    cm_ids = [(f"c{i:02d}", None) for i in range(6)]
    clips += [clip("cmdfd", f"{i}-real", i) for i, _ in cm_ids]
    clips += cmdfd_fakes("cmdfd", cm_ids)
    for i in range(4):
        clips.append(clip("kodf", f"k{i}-real", f"k{i}"))
        clips.append(clip("kodf", f"k{i}-fake", f"k{i}", video_fake=True, method="fsgan"))
    return clips


def write(clips: list[Clip], path: Path) -> Path:
    write_manifest(clips, path)
    return path


def fake_scores(keys: list[str], labels: list[int], quality: float, seed: int) -> np.ndarray:
    """A stand-in detector's P(fake): label-shifted noise, better separated as quality grows."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels, dtype=float)
    raw = rng.normal(0.0, 1.0, len(keys)) + quality * (2 * y - 1)
    return 1.0 / (1.0 + np.exp(-raw))


def add_results(root: Path, clips: list[Clip], protocol_name: str, rows, folds=None, seed: int = 0,
                n_bootstrap: int = 50) -> None:
    """Score stand-in predictions of each (name, label, quality) row on every fold into
    ``root/<name>-<label>/<protocol>/<fold>/`` (metrics.json + scores.parquet)."""
    from benchmark.results import DetectorInfo, score_predictions, write_scored

    protocol = load_protocol(protocol_name)
    splits = protocol.split(clips)
    for r, (name, label, quality) in enumerate(rows):
        for f, fold in enumerate(folds or protocol.folds):
            preds = predictions(protocol_name, clips, fold=fold, quality=quality, seed=seed + 10 * r + f)
            scored = score_predictions(protocol, splits.fold(fold), clips, preds,
                                       detector=DetectorInfo(name, label), n_bootstrap=n_bootstrap)
            write_scored(root / f"{name}-{label}" / protocol_name / fold, scored)


def predictions(protocol_name: str, clips: list[Clip], fold: str | None = None, quality: float = 1.5,
                seed: int = 0, all_folds: bool = False) -> pa.Table:
    """A valid predictions table (key, score[, fold]) for one fold or every fold."""
    protocol = load_protocol(protocol_name)
    label_of = {c.key: c.label for c in clips}
    folds = protocol.folds if all_folds else [fold or protocol.folds[0]]
    splits = protocol.split(clips, folds=folds)
    cols: dict[str, list] = {"key": [], "score": [], "fold": []}
    for i, name in enumerate(folds):
        keys = list(splits.fold(name).test)
        cols["key"] += keys
        cols["score"] += fake_scores(keys, [label_of[k] for k in keys], quality, seed + i).tolist()
        cols["fold"] += [name] * len(keys)
    if not all_folds:
        del cols["fold"]
    return pa.table(cols)
