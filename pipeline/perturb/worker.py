"""The Ray worker of ``avdf perturb``: one clip's media file, perturbed into the stage's folder.

The output row is the clip's own manifest row (same key, labels and metadata) pointing at the
perturbed mp4, with the provenance of ``perturb_file`` under ``extra.perturbation``. Each clip's
seed is derived from the stage seed and its key, so a clip's perturbation does not depend on
which other clips are in the run, or in which order they are done.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.perturb.file import perturb_file
from pipeline.perturb.spec import parse_spec


def clip_seed(seed: int, key: str) -> int:
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return int(np.random.SeedSequence([seed, digest]).generate_state(1)[0])


class PerturbWorker:
    def __init__(self, spec: str, seed: int = 0) -> None:
        self.spec = parse_spec(spec)
        self.seed = seed

    def __call__(self, item: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        from pipeline.atomic import sha256_file
        from pipeline.media import FPS, SAMPLE_RATE
        from pipeline.runner import item_dir_name

        item = dict(item)
        media = Path(item.pop("media_path"))
        rel = Path("clips") / f"{item_dir_name(item['key'])}.mp4"
        provenance = perturb_file(media, out_dir / rel, self.spec, clip_seed(self.seed, item["key"]))
        extra = json.loads(item["extra"]) if item.get("extra") else {}
        extra["perturbation"] = {**provenance, "stage_seed": self.seed}
        num_frames = provenance["num_frames"]
        return {
            **item,
            "path": str(rel),
            "sha256": sha256_file(out_dir / rel),
            "fps": float(FPS),
            "sample_rate": SAMPLE_RATE,
            "num_frames": num_frames,
            "num_samples": provenance["num_samples"],
            "duration_s": num_frames / FPS,
            "extra": json.dumps(extra, sort_keys=True, default=str),
        }
