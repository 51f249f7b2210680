"""The Ray worker of ``avdf generate``: one task = one output clip (a chain of generator steps).

Generators are built once per worker process, on first use, and reused. Each
task runs in its own fresh work folder (external tools write fixed scratch
files); only the final file is moved into place, atomically.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from generators.base import Generator
from generators.recipes.common import PREV
from pipeline.atomic import sha256_file
from pipeline.clip import Clip
from pipeline.errors import ConfigError
from pipeline.media import probe
from pipeline.runner import item_dir_name


def build_generator(name: str, options: dict[str, Any], face_backend: str, seed: int) -> Generator:
    """Instantiate a registered generator with its params.yaml options."""
    from generators.builtin.common import BuiltinGenerator
    from generators.external.base import ExternalTool
    from generators.registry import GENERATORS

    cls = GENERATORS.get(name)
    opts = {k: v for k, v in options.items() if k not in ("num_cpus", "num_gpus")}
    if isinstance(cls, type) and issubclass(cls, BuiltinGenerator):
        opts = {"face_backend": face_backend, "seed": seed, **opts}
    elif isinstance(cls, type) and issubclass(cls, ExternalTool):
        opts = {"face_backend": face_backend, **opts}
    try:
        return cls(**opts)
    except TypeError as exc:
        raise ConfigError(f"generator {name!r}: bad options {sorted(opts)} ({exc})") from None


class GenerateWorker:
    def __init__(self, generator_options: dict[str, dict[str, Any]] | None = None, face_backend: str = "mediapipe",
                 seed: int = 0) -> None:
        self.generator_options = generator_options or {}
        self.face_backend = face_backend
        self.seed = seed
        self._generators: dict[str, Generator] = {}

    def generator(self, name: str) -> Generator:
        if name not in self._generators:
            self._generators[name] = build_generator(name, self.generator_options.get(name, {}), self.face_backend,
                                                     self.seed)
        return self._generators[name]

    def __call__(self, item: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        out_dir = Path(out_dir)
        workdir = out_dir / "work" / item_dir_name(item["key"])
        if workdir.exists():
            shutil.rmtree(workdir)  # a retried task starts clean
        workdir.mkdir(parents=True)
        clip = dict(item["clip"])
        prev: Path | None = None
        tags = []
        for i, step in enumerate(item["steps"]):
            gen = self.generator(step["generator"])
            video = prev if step["video"] == PREV else Path(step["video"])
            audio = step.get("audio")
            audio = prev if audio == PREV else (Path(audio) if audio else None)
            kw: dict[str, Any] = {}
            if step.get("source_video"):
                kw["source_video"] = Path(step["source_video"])
            if step.get("text"):
                kw["text"] = step["text"]
            prev = gen(video, audio, workdir / f"step{i}", source_keys=clip["source_keys"], **kw)
            tags.append(gen.tag)
        assert prev is not None, f"{item['key']}: a task needs at least one step"
        final = out_dir / item["out"]
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(prev, final)
        shutil.rmtree(workdir, ignore_errors=True)
        info = probe(final)
        v, a = info.video, info.audio
        num_frames = v.num_frames if v and v.num_frames else int(round((v.duration_s or info.duration_s) * 25))
        num_samples = int(round((a.duration_s or info.duration_s) * 16000)) if a else None
        clip.update(
            path=item["out"], generator="+".join(tags), fps=v.fps if v else None,
            sample_rate=a.sample_rate if a else None, num_frames=num_frames, num_samples=num_samples,
            duration_s=info.duration_s, sha256=sha256_file(final),
        )
        return Clip(**clip).to_row()
