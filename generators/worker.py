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
from generators.cache import StageCache, cache_dir
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
    """Called as ``worker(item, out_dir)`` with ``out_dir`` = ``OUT/<recipe>``; the tasks of every
    recipe of one run share the cache in ``cache_dir(OUT)`` (``generators.cache``), which the
    stage removes when it ends."""

    def __init__(self, generator_options: dict[str, dict[str, Any]] | None = None, face_backend: str = "mediapipe",
                 seed: int = 0, cache: bool = True) -> None:
        self.generator_options = generator_options or {}
        self.face_backend = face_backend
        self.seed = seed
        self.cached = cache  # False: every task computes everything itself (the same outputs)
        self._generators: dict[str, Generator] = {}
        self._caches: dict[Path, StageCache] = {}

    def generator(self, name: str) -> Generator:
        if name not in self._generators:
            self._generators[name] = build_generator(name, self.generator_options.get(name, {}), self.face_backend,
                                                     self.seed)
        return self._generators[name]

    def cache(self, out_dir: Path) -> StageCache | None:
        if not self.cached:
            return None
        root = cache_dir(Path(out_dir).parent)
        if root not in self._caches:  # one per run: it remembers the files it has hashed
            self._caches[root] = StageCache(root)
        return self._caches[root]

    def __call__(self, item: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        out_dir = Path(out_dir)
        workdir = out_dir / "work" / item_dir_name(item["key"])
        if workdir.exists():
            shutil.rmtree(workdir)  # a retried task starts clean
        workdir.mkdir(parents=True)
        cache = self.cache(out_dir)
        clip = dict(item["clip"])
        prev: Path | None = None
        tags = []
        for i, step in enumerate(item["steps"]):
            gen = self.generator(step["generator"])
            use_cache = getattr(gen, "use_cache", None)  # duck-typed plug-ins may lack it
            if use_cache is not None:
                use_cache(cache)
            video = prev if step["video"] == PREV else Path(step["video"])
            audio = step.get("audio")
            audio = prev if audio == PREV else (Path(audio) if audio else None)
            kw: dict[str, Any] = {}
            if step.get("source_video"):
                kw["source_video"] = Path(step["source_video"])
            if step.get("text"):
                kw["text"] = step["text"]
            if cache is not None and i < len(item["steps"]) - 1:
                # An intermediate output (FakeAVCeleb's voice-converted clip) is what several tasks
                # start from: made once per run. The final output is this task's alone.
                prev = self._intermediate(cache, gen, video, audio, workdir / f"step{i}", clip["source_keys"], kw)
            else:
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

    @staticmethod
    def _intermediate(cache: StageCache, gen: Generator, video: Path, audio: Path | None, workdir: Path,
                      source_keys: list[str], kw: dict[str, Any]) -> Path:
        """``gen``'s output for these inputs: from the cache, or made and put there. Keyed by
        everything the output depends on: the generator's settings, the inputs' content, the
        provenance written into the file."""
        files = {"video": video, "audio": audio, "source_video": kw.get("source_video")}
        key = cache.key("step", gen.tag, gen.describe(), {k: cache.file_id(p) if p else None for k, p in files.items()},
                        kw.get("text"), list(source_keys))
        done = cache.step_output(key)
        if done is not None:
            return done
        return cache.store_step_output(key, Path(gen(video, audio, workdir, source_keys=source_keys, **kw)))
