"""Export a CMDFD build to the released CSV format (one CSV per subset, reals included).

Columns and label conventions follow ``reference/cmdfd_csv``: real rows are
``origin+<clip id>`` with labels 0,0,0 and Identi/Sync 1; fake rows are
``<prefix>+<target clip id>-<audio clip id>``. Our fakes carry their audio
inside the mp4, so ``Audio_Path`` names the mp4 (the released lists point
at separate 16 kHz wavs). Paths are absolute under ``root``.
"""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from generators.recipes.cmdfd import SUBSETS
from generators.recipes.common import clip_id
from pipeline.atomic import atomic_path
from pipeline.clip import Clip

COLUMNS = ["ID_Name", "Audio_Path", "Video_Path", "ENtire_Label", "Audio_Label", "Video_Label", "Identi_Label",
           "Sync_Label", "Frame_Len", "Audio_Len", "FPS", "AudioSamRate"]


def _row(clip: Clip, id_name: str, path: Path) -> dict[str, object]:
    return {
        "ID_Name": id_name, "Audio_Path": str(path), "Video_Path": str(path),
        "ENtire_Label": clip.label, "Audio_Label": int(clip.audio_fake), "Video_Label": int(clip.video_fake),
        "Identi_Label": int(clip.label == 0 or clip.audio_source_identity == clip.identity),
        "Sync_Label": int(bool(clip.sync)), "Frame_Len": float(clip.num_frames or 0),
        "Audio_Len": int(clip.num_samples or 0), "FPS": float(clip.fps or 25.0),
        "AudioSamRate": int(clip.sample_rate or 16000),
    }


def export_cmdfd_csv(fakes: Sequence[Clip], reals: Sequence[Clip], fake_root: Path, real_root: Path,
                     out_dir: Path) -> dict[str, Path]:
    """Write ``<subset>.csv`` for every subset present; return subset -> path."""
    by_subset: dict[str, list[Clip]] = defaultdict(list)
    for c in fakes:
        by_subset[json.loads(c.extra or "{}").get("subset", c.method)].append(c)
    real_by_key = {c.key: c for c in reals}
    written: dict[str, Path] = {}
    for subset in sorted(by_subset):
        rows, origin_keys = [], []
        for c in sorted(by_subset[subset], key=lambda c: c.key):
            info = json.loads(c.extra or "{}")
            target = real_by_key.get(info.get("target_key", ""))
            if target is not None and target.key not in origin_keys:
                origin_keys.append(target.key)
            prefix = SUBSETS.get(c.method, (c.method, c.method))[1] + ("_Self" if c.self_audio else "")
            pair = c.key.split("/")[1].replace("--", "-")
            rows.append(_row(c, f"{prefix}+{pair}", (fake_root / c.path).resolve()))
        origin = [_row(real_by_key[k], f"origin+{clip_id(real_by_key[k])}", (real_root / real_by_key[k].path).resolve())
                  for k in origin_keys]
        path = Path(out_dir) / f"{subset}.csv"
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(origin + rows)
        written[subset] = path
    return written
