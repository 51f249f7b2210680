"""``avdf generate``: run a recipe's generators over (target, driving audio) pairs on Ray.

For each recipe (``--recipe``, or every recipe in ``generate.recipes``) the
stage selects pairs from the real clips of ``--manifest``, runs one Ray task
per output clip (target, audio, generator chain) with the generators'
resources, and writes under ``OUT/<recipe>/``:

- ``manifest.parquet`` — fakeavceleb: the fakes; cmdfd: the CMDFD build as
  released, its real clips (each forged target re-keyed ``<corpus>/origin/<clip>``
  into the CMDFD corpus, pointing at the same media) beside its fakes;
- ``combined.parquet`` (fakeavceleb) — the real target clips (re-rooted: their
  paths made relative to ``OUT/<recipe>``, the media are not copied) plus the
  fakes;
- ``failures.parquet`` — tasks that failed (crash, timeout, wrong length), with
  the generator's own stderr tail; a rerun retries only those.

While it runs, the tasks of all recipes share ``OUT/cache`` (``generators.cache``): a target's
face detections, decoded media and FakeAVCeleb's voice-converted clip are computed once, not
once per fake. The stage removes it when it ends, so DVC never hashes it. Tasks are started
one per target first (``spread_targets``), so that a target's later fakes find that work done.

``avdf export-cmdfd`` writes a cmdfd build in the authors' released layout
(``My_Test/`` tree and list CSVs), which the ``cmdfd`` ingest adapter reads.

Media paths of the input manifest are relative to the manifest's folder.
On a multi-node cluster, the input media and ``OUT`` must be on storage every
node sees (the tasks read and write plain paths).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import AvdfError, ConfigError

if TYPE_CHECKING:
    from generators.cache import StageCache


@dataclass
class GenerateParams:
    """``generate`` section."""

    recipes: list[str] = field(default_factory=lambda: ["cmdfd", "fakeavceleb"])
    seed: int = 0
    # Clear speech: an identity qualifies when the median share of voiced frames of its clips reaches this.
    min_voiced_fraction: float = 0.3
    targets_per_identity: int = 1
    # Targets forged per recipe, spread over the (ethnicity, gender) groups; None: every clear-speech
    # identity.
    max_targets: int | None = None
    # Methods (CMDFD) / categories (FakeAVCeleb) per target, rotating over targets; None: all, as
    # released. Fewer per target spreads the same number of fakes over more identities, so an
    # identity-disjoint split cannot be solved by recognising the few forged people.
    methods_per_target: dict[str, int | None] = field(default_factory=dict)
    # CMDFD method -> registered generator (e.g. wav2lip: wav2lip-external to use the real tool).
    cmdfd_methods: dict[str, str] = field(default_factory=lambda: {
        "wav2lip": "wav2lip", "videoretalking": "videoretalking", "audio2head": "audio2head",
        "makeittalk": "makeittalk"})
    # FakeAVCeleb roles -> registered generator.
    fakeavceleb_generators: dict[str, str] = field(default_factory=lambda: {
        "lipsync": "wav2lip", "faceswap": "faceswap", "faceswap_gan": "faceswap-smooth", "voice": "voice"})
    # Constructor options per generator name (external tools: checkout, checkpoint, extra_args,
    # timeout_s, num_gpus ...).
    generator_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    face_backend: str = "mediapipe"
    timeout_s: float | None = 1800.0

    def __post_init__(self) -> None:
        for recipe, k in self.methods_per_target.items():
            if recipe not in RECIPE_NAMES:
                raise ConfigError(f"generate.methods_per_target: unknown recipe {recipe!r}; known: {list(RECIPE_NAMES)}")
            if k is not None and (not isinstance(k, int) or k < 1):
                raise ConfigError(f"generate.methods_per_target.{recipe}: must be an integer >= 1 or null, got {k!r}")


RECIPE_NAMES = ("cmdfd", "fakeavceleb")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", choices=RECIPE_NAMES, help="default: every recipe in params.yaml")
    parser.add_argument("--manifest", required=True, help="manifest of real clips")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray)")


def plan(recipe: str, clips: list, media_root: Path, params: GenerateParams, cache: StageCache | None = None) -> list:
    """The recipe's tasks for these clips (deterministic for params.seed). The real clips' audio,
    decoded for the clear-speech check, goes into ``cache`` for the tasks."""
    from generators.recipes.cmdfd import plan_cmdfd
    from generators.recipes.common import clear_speech, output_corpus, select_pairs
    from generators.recipes.fakeavceleb import plan_fakeavceleb

    real = [c for c in clips if c.label == 0]
    voiced = (clear_speech(real, media_root, params.min_voiced_fraction, cache=cache)
              if params.min_voiced_fraction > 0 else None)
    selections = select_pairs(real, params.seed, targets_per_identity=params.targets_per_identity,
                              max_targets=params.max_targets, voiced=voiced,
                              min_voiced_fraction=params.min_voiced_fraction)
    if not selections:
        raise AvdfError(f"{recipe}: no pairs to forge: need real clips of at least two identities with clear "
                        f"speech (min_voiced_fraction={params.min_voiced_fraction})")
    corpus = output_corpus(recipe, real)
    if recipe == "cmdfd":
        return plan_cmdfd(selections, media_root, corpus, params.cmdfd_methods, params.methods_per_target.get(recipe))
    if recipe == "fakeavceleb":
        return plan_fakeavceleb(selections, media_root, corpus, params.seed, params.fakeavceleb_generators,
                                params.methods_per_target.get(recipe))
    raise ConfigError(f"generate.recipes: unknown recipe {recipe!r}; known: {list(RECIPE_NAMES)}")


def spread_targets(tasks: list) -> list:
    """``tasks`` reordered: one task of every target first, then a second of each, and so on.

    The fakes of one target share work (its landmark track, FakeAVCeleb's voice-converted clip),
    which the first of them puts in the run's cache. Planned side by side, two of them would start
    together on two workers and both compute it; spread out, the later ones find it done."""
    seen: dict[str, int] = defaultdict(int)
    rank = []
    for t in tasks:
        rank.append(seen[t.target_key])
        seen[t.target_key] += 1
    return [t for _, _, t in sorted(zip(rank, range(len(tasks)), tasks), key=lambda r: r[:2])]


def _resources(task, params: GenerateParams) -> tuple[float, float]:
    from generators.registry import GENERATORS

    cpus, gpus = 0.0, 0.0
    for step in task.steps:
        cls = GENERATORS.get(step.generator)
        opts = params.generator_options.get(step.generator, {})
        cpus = max(cpus, float(opts.get("num_cpus", cls.num_cpus)))
        gpus = max(gpus, float(opts.get("num_gpus", cls.num_gpus)))
    return max(cpus, 0.001), gpus


def _check_generators(tasks: list, params: GenerateParams) -> None:
    """Build every generator the tasks need once, here, so that a missing checkout or
    checkpoint is one clear error before any task starts (not one failure per task)."""
    from generators.worker import build_generator

    names = sorted({s.generator for t in tasks for s in t.steps})
    for name in names:
        build_generator(name, params.generator_options.get(name, {}), params.face_backend, params.seed)


def generate_recipe(recipe: str, manifest: Path, out: Path, params: GenerateParams, ray_params=None,
                    address: str | None = None, progress: bool = True, keep_cache: bool = False):
    """Run one recipe end to end; returns (fakes, failures, computed, skipped).

    The tasks share a cache (``generators.cache``) in ``OUT/cache``, removed at the end unless
    ``keep_cache`` (``avdf generate`` keeps it for its next recipe, which forges the same targets)."""
    from generators.cache import cache_dir

    try:
        return _generate_recipe(recipe, manifest, out, params, ray_params, address, progress)
    finally:
        if not keep_cache:
            shutil.rmtree(cache_dir(Path(out)), ignore_errors=True)


def _generate_recipe(recipe: str, manifest: Path, out: Path, params: GenerateParams, ray_params,
                     address: str | None, progress: bool):
    from generators.cache import StageCache, cache_dir
    from generators.recipes.common import media_path, output_corpus
    from pipeline.clip import Clip
    from pipeline.manifest import read_clips, write_failures, write_manifest
    from pipeline.raycluster import RayParams
    from pipeline.runner import run_stage

    ray_params = ray_params or RayParams()
    manifest = Path(manifest).resolve()
    media_root = manifest.parent
    clips = read_clips(manifest)
    tasks = plan(recipe, clips, media_root, params, StageCache(cache_dir(Path(out))))
    _check_generators(tasks, params)
    out_dir = Path(out) / recipe
    groups: dict[tuple[float, float], list] = defaultdict(list)
    for t in spread_targets(tasks):
        groups[_resources(t, params)].append(t)
    config = {"generator_options": params.generator_options, "face_backend": params.face_backend, "seed": params.seed}
    rows, failures, computed, skipped = [], [], 0, 0
    for (cpus, gpus), group in sorted(groups.items()):
        result = run_stage(
            f"generate-{recipe}", [t.to_item() for t in group], "generators.worker:GenerateWorker", config, out_dir,
            num_cpus=cpus, num_gpus=gpus, max_retries=ray_params.max_retries, timeout_s=params.timeout_s,
            address=address or ray_params.address, ray_num_cpus=ray_params.num_cpus,
            object_store_mb=ray_params.object_store_mb, progress=progress,
        )
        rows += result.rows
        failures += result.failures
        computed += result.computed
        skipped += result.skipped
    order = {t.key: i for i, t in enumerate(tasks)}
    rows.sort(key=lambda r: order[r["key"]])
    failures.sort(key=lambda f: order[f.key])  # in plan order, not the order the tasks ended in
    fakes = [Clip.from_row(r) for r in rows]
    by_key = {c.key: c for c in clips}
    made_from = {json.loads(c.extra or "{}").get("target_key") for c in fakes}
    targets = [by_key[k] for k in dict.fromkeys(t.target_key for t in tasks) if k in made_from]
    # Targets re-rooted beside the fakes (their paths made relative to OUT/<recipe>; media not copied).
    rel_paths = {c.key: os.path.relpath(media_path(c, media_root), out_dir.resolve()) for c in targets}
    write_failures(failures, out_dir / "failures.parquet")
    if recipe == "cmdfd":
        from generators.recipes.cmdfd import origin_clips

        # The CMDFD build, as released: its real ("origin") clips beside its fakes, in one corpus.
        corpus = output_corpus(recipe, [c for c in clips if c.label == 0])
        write_manifest(origin_clips(targets, corpus, rel_paths) + fakes,
                       out_dir / "manifest.parquet")
    else:
        write_manifest(fakes, out_dir / "manifest.parquet")
        reals = [Clip.from_row({**c.to_row(), "path": rel_paths[c.key]}) for c in targets]
        write_manifest(reals + fakes, out_dir / "combined.parquet")
    return fakes, failures, computed, skipped


def run(args: argparse.Namespace) -> int:
    from generators.cache import cache_dir
    from pipeline.config import load_section

    params_path = getattr(args, "params", "params.yaml")
    params_path = params_path if params_path and Path(params_path).exists() else None
    params: GenerateParams = load_section("generate", params_path)
    ray_params = load_section("ray", params_path)
    recipes = [args.recipe] if args.recipe else params.recipes
    unknown = [r for r in recipes if r not in RECIPE_NAMES]
    if unknown:
        raise ConfigError(f"generate.recipes: unknown recipe(s) {unknown}; known: {list(RECIPE_NAMES)}")
    status = 0
    try:
        for recipe in recipes:
            # The recipes forge the same targets: the cache stays until the last one is done.
            fakes, failures, computed, skipped = generate_recipe(recipe, Path(args.manifest), Path(args.out), params,
                                                                 ray_params, args.address, keep_cache=True)
            print(f"generate {recipe}: {len(fakes) + len(failures)} tasks -> {len(fakes)} fakes "
                  f"({computed} computed, {skipped} up to date), {len(failures)} failed; "
                  f"see {Path(args.out) / recipe / 'failures.parquet'}" if failures else
                  f"generate {recipe}: {len(fakes)} fakes ({computed} computed, {skipped} up to date), 0 failed")
    finally:
        shutil.rmtree(cache_dir(Path(args.out)), ignore_errors=True)
    return status
