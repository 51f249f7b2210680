"""Training one detector on one fold's keys from WebDataset shards, through the one loop.

``avdf train`` (``benchmark.train``) splits the shards' clips with a protocol and
calls ``train_fold`` with the fold: training reads the train keys, model
selection the validation keys — the test keys are never touched here, and the
keys the loaders really yielded are written to ``keys_read.json``.

Loop settings merge in layers, later winning (``effective_loop``):

- ``paper`` preset: LoopParams defaults < ``train.loop`` < ``train.loop_per_detector[DETECTOR]``
  < the run's ``loop`` in ``train.grid.runs`` < ``PAPER_LOOP`` (every paper
  validates on every segment) < the detector's ``TRAIN`` (its paper's settings, and avdf's
  choices where the paper is silent) < ``train.per_detector[DETECTOR]``. A paper's schedule
  is what its preset runs; ``train.loop`` (sized for the CPU studio profile) cannot override
  it, and says so.
- other presets (``tiny``): LoopParams defaults < ``TRAIN`` < ``train.loop`` <
  ``train.loop_per_detector[DETECTOR]`` < the run's ``loop`` < ``train.per_detector[DETECTOR]``.

A run's ``loop`` (e.g. fewer epochs for the five cross-manipulation folds) applies to every
detector on that protocol and fold, in the grid and in a single ``avdf train`` alike.

Every setting's source is printed when training starts and stored in ``train.json``.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class TrainRun:
    protocol: str
    fold: str
    # LoopParams keys for this run, every detector (a training budget: a layer of train.loop's kind)
    loop: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainGrid:
    """The detector x protocol-fold matrix of dvc.yaml's train and evaluate stages."""

    detectors: list[str] = field(default_factory=lambda: ["video-baseline", "audio-baseline"])
    runs: list[TrainRun] = field(default_factory=list)


@dataclass
class TrainParams:
    """``train`` section."""

    preset: str = "tiny"
    loop: dict[str, Any] = field(default_factory=dict)  # LoopParams keys for every detector
    # train.loop for one detector (the same precedence: a paper preset's own settings win over it)
    loop_per_detector: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_detector: dict[str, dict[str, Any]] = field(default_factory=dict)  # LoopParams keys per detector
    detector_config: dict[str, dict[str, Any]] = field(default_factory=dict)  # config overrides per detector
    segments_per_epoch: int | None = None  # None: one pass over the train clips' non-overlapping segments
    segments_per_clip: int = 2  # segments cut from a clip per visit (amortises reading it)
    balanced: bool = True  # equal expected segments per class
    num_workers: int = 0
    eval_batch_size: int = 16
    # Decoded validation batches kept in memory from one epoch to the next (the same batches every
    # epoch); a validation split larger than this is decoded anew each epoch instead.
    val_cache_mb: int = 1024
    jobs: int | None = None  # runs trained side by side by `avdf train --grid`; None: one per core (1 on a GPU)
    grid: TrainGrid = field(default_factory=lambda: TrainGrid())  # what `dvc repro` trains (dvc.yaml matrix)

    def run_loop(self, protocol: str, fold: str) -> dict[str, Any]:
        """The ``loop`` of the grid run on ``protocol`` (a name, or name@version) and ``fold``; {} if none."""
        name = protocol.partition("@")[0]
        found = [r.loop for r in self.grid.runs if r.protocol.partition("@")[0] == name and r.fold == fold]
        return found[0] if found else {}


def input_spec_to_segments(spec: Any) -> Any:
    """The loaders' SegmentSpec for a detector's InputSpec."""
    from pipeline.loaders import SegmentSpec

    return SegmentSpec(
        num_frames=spec.num_frames,
        modalities=tuple(m for m in spec.modalities if m != "mel") or ("audio",),
        mel=spec.mel,
        face_size=getattr(spec, "face_size", None),
        frame_sampling=getattr(spec, "frame_sampling", "consecutive"),
    )


class RecordedBatches:
    """Batches of a loader, noting every clip key they carry: what training really read, kept
    as an audit trail (``keys_read.json``) beside what the protocol said it should read."""

    def __init__(self, batches: Any, into: set[str]) -> None:
        self.batches, self.into = batches, into

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            self.into.update(batch["meta"]["key"])
            yield batch


class ReplayedBatches:
    """The batches of a loader that yields the same ones every pass (validation), decoded on the first
    pass and replayed from memory after it, unless they add up to more than ``max_bytes`` (then every
    pass decodes them anew). A replay hands out copies: a detector that changed its inputs in place
    cannot change the next epoch's validation (a copy costs a memcpy, decoding costs a resize or STFT)."""

    def __init__(self, batches: Any, max_bytes: int) -> None:
        self.batches, self.max_bytes = batches, max_bytes
        self.kept: list[dict[str, Any]] | None = None
        self.fits = True

    def __len__(self) -> int:
        return len(self.kept) if self.kept is not None else len(self.batches)

    def __iter__(self):
        import torch

        if self.kept is not None:
            for batch in self.kept:
                yield {part: {k: v.clone() if torch.is_tensor(v) else v for k, v in values.items()}
                       for part, values in batch.items()}
            return
        kept: list[dict[str, Any]] = []
        size = 0
        for batch in self.batches:
            if self.fits:
                size += sum(t.nbytes for t in batch["inputs"].values())
                if size <= self.max_bytes:
                    kept.append(batch)
                else:
                    self.fits, kept = False, []
            yield batch
        if self.fits:  # only a whole pass is replayed: one left early (an error, a break) keeps nothing
            self.kept = kept


class ShardBatchSource:
    """BatchSource over shards: resampled training epochs and the fixed-order validation pass
    (``val_segments_per_clip`` segments of each clip, all when None; decoded once, see ReplayedBatches).

    ``read`` collects the keys each pass yielded (``train`` / ``val``)."""

    def __init__(self, shard_dir: Path, segments: Any, train_keys: Iterable[str], val_keys: Iterable[str],
                 batch_size: int, params: TrainParams, seed: int, val_segments_per_clip: int | None = None) -> None:
        from pipeline.loaders import ShardSet

        self.shard_dir = shard_dir
        self.segments = segments
        self.train_set = ShardSet(shard_dir, list(train_keys))
        self.val_set = ShardSet(shard_dir, list(val_keys))
        self.batch_size = batch_size
        self.params = params
        self.seed = seed
        self.val_segments_per_clip = val_segments_per_clip
        self.read: dict[str, set[str]] = {"train": set(), "val": set()}
        self.validation_batches: ReplayedBatches | None = None  # made by the first validation()

    def train_epoch(self, epoch: int, rank: int, world_size: int) -> Iterable[dict[str, Any]]:
        from pipeline.loaders import TrainLoader

        loader = TrainLoader(
            self.train_set, self.segments, batch_size=max(1, self.batch_size // world_size),
            num_workers=self.params.num_workers, seed=self.seed, balanced=self.params.balanced,
            segments_per_epoch=self.params.segments_per_epoch,
            segments_per_clip=self.params.segments_per_clip, rank=rank, world_size=world_size,
        )
        loader.set_epoch(epoch)
        return RecordedBatches(loader, self.read["train"])

    def validation(self) -> Iterable[dict[str, Any]]:
        from pipeline.loaders import EvalLoader

        if self.validation_batches is None:
            loader = EvalLoader(self.val_set, self.segments, batch_size=self.params.eval_batch_size,
                                num_workers=self.params.num_workers, segments_per_clip=self.val_segments_per_clip)
            self.validation_batches = ReplayedBatches(loader, self.params.val_cache_mb << 20)
        return RecordedBatches(self.validation_batches, self.read["val"])


def warn_if_upsampled(shardset: Any, spec: Any) -> None:
    """Say so when the shards hold smaller faces than the detector consumes (they get upsampled)."""
    from pipeline.loading.reader import ClipReader
    from pipeline.loading.segments import CorruptSample

    want = getattr(spec, "face_size", None)
    if not want or "face" not in spec.modalities:
        return
    try:
        stored = ClipReader(shardset.shard_dir).array(shardset.rows[0], "face").shape[1]
    except CorruptSample:
        return  # the loader reports corrupt clips itself
    if stored < want:
        log.warning("faces in %s are %d px but the detector consumes %d px: they are upsampled (set "
                    "preprocess.face_size: %d and rebuild the shards for the real thing)",
                    shardset.shard_dir, stored, want, want)


def build_detector(name: str, preset: str, overrides: dict[str, Any], ablation: str | None = None) -> Any:
    """Resolve, check and build a detector (with a named ablation's config overrides applied)."""
    from detectors.registry import DETECTORS
    from pipeline.errors import ConfigError

    cls = DETECTORS.get(name)
    if ablation is not None:
        ablations = getattr(cls, "ABLATIONS", {})
        if ablation not in ablations:
            raise ConfigError(f"{cls.name}: unknown ablation {ablation!r}; ablations: {sorted(ablations)}")
        overrides = {**overrides, **ablations[ablation]}
    return cls.from_preset(preset, **overrides)


PAPER_PRESET = "paper"
# Loop settings of every paper preset where its detector's TRAIN says nothing (a layer just under TRAIN,
# so train.loop, sized for the CPU studio profile, cannot change them; train.per_detector still can):
# the papers select checkpoints on, and test, every segment of a clip.
PAPER_LOOP: dict[str, Any] = {"val_segments_per_clip": None}


@dataclass(frozen=True)
class EffectiveLoop:
    """The loop settings a run uses and where each came from (``schedule.gamma`` -> ``paper``)."""

    params: Any  # detectors.loop.LoopParams
    sources: dict[str, str]
    shadowed: dict[str, Any]  # train.loop(_per_detector) values a paper preset's own settings kept out
    shadowed_from: dict[str, str] = field(default_factory=dict)  # where each of those was set

    def describe(self, detector: str, preset: str) -> str:
        flat = _flatten(dataclasses.asdict(self.params))
        lines = [f"{detector} (preset {preset}) trains with:"]
        lines += [f"  {key} = {flat[key]!r}  [{self.sources.get(key, 'default')}]" for key in flat]
        lines += [f"  {self.shadowed_from.get(key, 'train.loop')} {key} = {value!r} not applied: {self.sources[key]} "
                  f"sets it (override with train.per_detector.{detector}.{key})" for key, value in self.shadowed.items()]
        return "\n".join(lines)


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def effective_loop(detector: Any, params: TrainParams, preset: str | None = None,
                   run: tuple[str, str] | None = None) -> EffectiveLoop:
    """Merge the loop settings' layers for ``detector`` (a class or an instance) under ``preset``, for the
    run (protocol, fold) when given."""
    from detectors.loop import LoopParams
    from pipeline.config import from_mapping

    preset = preset or params.preset
    name = detector.name
    train = _flatten(getattr(detector, "TRAIN", {}))
    from_paper = set(getattr(detector, "TRAIN_FROM_PAPER", ()))

    def stated_by_paper(key: str) -> bool:  # a whole setting: the paper's schedule has no unstated warm-up
        return key.split(".")[0] in from_paper

    paper = preset == PAPER_PRESET
    own = {k: (v, f"{name}'s paper" if stated_by_paper(k) else f"{name}.TRAIN (avdf's choice; the paper is silent)")
           for k, v in train.items()}
    if paper:
        paper_loop = f"{PAPER_PRESET} presets (every segment, as the papers score)"
        own = {**{k: (v, paper_loop) for k, v in PAPER_LOOP.items()}, **own}
    shared: dict[str, tuple[Any, str]] = {}  # key -> (value, source)
    layers = [(params.loop, "train.loop"),
              (params.loop_per_detector.get(name, {}), f"train.loop_per_detector.{name}")]
    if run:
        layers.append((params.run_loop(*run), f"train.grid.runs[{run[0]}/{run[1]}].loop"))
    for layer, source in layers:
        shared.update({k: (v, source) for k, v in _flatten(layer).items()})
    shadowed: dict[str, Any] = {}
    if paper:
        shadowed = {k: vs for k, vs in shared.items() if stated_by_paper(k) or (k in own and own[k][0] != vs[0])}
        shared = {k: vs for k, vs in shared.items() if k not in shadowed}
    override = {k: (v, f"train.per_detector.{name}") for k, v in _flatten(params.per_detector.get(name, {})).items()}
    merged: dict[str, tuple[Any, str]] = {}
    for layer in ([shared, own, override] if paper else [own, shared, override]):
        merged.update(layer)
    shadowed = {k: vs for k, vs in shadowed.items() if k not in override}  # an explicit override decides
    sources = {k: source for k, (_, source) in merged.items()}
    for key in shadowed:
        sources.setdefault(key, f"{name}'s paper (states {key.split('.')[0]}; this part is the default)")
    loop = from_mapping(LoopParams, _unflatten({k: v for k, (v, _) in merged.items()}), f"train loop params for {name}")
    return EffectiveLoop(loop, sources, {k: v for k, (v, _) in shadowed.items()},
                         {k: source for k, (_, source) in shadowed.items()})


def loop_params_for(detector: Any, params: TrainParams, preset: str | None = None) -> Any:
    """The LoopParams of ``effective_loop``."""
    return effective_loop(detector, params, preset).params


def fill_run_placeholders(config: dict[str, Any], protocol: str, fold: str) -> dict[str, Any]:
    """``{protocol}`` and ``{fold}`` in string values (per-run files such as ECL's teachers)."""
    return {k: v.format(protocol=protocol, fold=fold) if isinstance(v, str) else v for k, v in config.items()}


def check_fitted_on(model: Any, fold: Any) -> None:
    """Refuse a detector whose pretrained parts (ECL's teachers) learned from clips outside this
    run's training split: that would leak validation or test clips into the model."""
    from pipeline.errors import ConfigError

    train = set(fold.train)
    for part, keys in model.fitted_on().items():
        if keys is None:
            log.info("%s: %s was trained outside avdf (no record of its data); trusted as external", model.name, part)
            continue
        outside = sorted(set(keys) - train)
        if outside:
            raise ConfigError(
                f"{model.name}: its {part} learned from {len(outside)} clip(s) outside the training split of fold "
                f"{fold.name} (e.g. {outside[:3]}); train it on this fold: avdf teach ... --protocol P --fold "
                f"{fold.name}"
            )


KEYS_READ_NAME = "keys_read.json"


def write_keys_read(path: Path, read: dict[str, set[str]]) -> None:
    """The clip keys training and checkpoint selection read (merged with an earlier, resumed run's)."""
    import json

    from pipeline.atomic import write_json_atomic

    before = json.loads(path.read_text()) if path.exists() else {}
    write_json_atomic(path, {part: sorted(set(before.get(part, [])) | keys) for part, keys in read.items()})


def data_hash(shard_dir: Path, fold: Any) -> str:
    from pipeline.atomic import sha256_file, sha256_json
    from pipeline.loading.format import INDEX_NAME

    return sha256_json({"index": sha256_file(shard_dir / INDEX_NAME), "train": fold.train, "val": fold.val})


def train_fold(detector_name: str, fold: Any, identity: dict[str, Any], shard_dir: Path, out: Path,
               params: TrainParams, preset: str | None = None, ablation: str | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Train on ``fold.train``, select on ``fold.val``; ``identity`` (protocol, fold) goes into the
    checkpoints and train.json. ``{protocol}``/``{fold}`` in the detector's configured strings
    name this run's own files."""
    from detectors.loop import DistributedContext, fit, seed_everything
    from detectors.registry import DETECTORS
    from pipeline.atomic import write_json_atomic

    preset = preset or params.preset
    protocol = identity.get("protocol", {}).get("name", "")
    overrides = fill_run_placeholders(params.detector_config.get(detector_name, {}), protocol, fold.name)
    effective = effective_loop(DETECTORS.get(detector_name), params, preset, (protocol, fold.name))
    loop = effective.params
    seed_everything(loop.seed)  # before building: the initial weights are part of what the seed fixes
    model = build_detector(detector_name, preset, overrides, ablation)
    check_fitted_on(model, fold)
    if DistributedContext.from_env().is_main:
        log.info(effective.describe(model.name, preset))
    source = ShardBatchSource(shard_dir, input_spec_to_segments(model.inputs), fold.train, fold.val,
                              loop.batch_size, params, loop.seed, loop.val_segments_per_clip)
    warn_if_upsampled(source.train_set, model.inputs)
    identity = {**identity, "fold": fold.name, "preset": preset, "ablation": ablation, "detector_spec": detector_name}
    d_hash = data_hash(shard_dir, fold)
    metrics = fit(model, source, out, loop, data_hash=d_hash, extra_identity=identity, progress=progress)
    if DistributedContext.from_env().is_main:
        write_keys_read(out / KEYS_READ_NAME, source.read)
    write_json_atomic(out / "train.json", {**identity, "detector": model.name, "data_hash": d_hash,
                                           "loop": dataclasses.asdict(loop), "loop_sources": effective.sources,
                                           "loop_not_applied": effective.shadowed, "train_clips": len(fold.train),
                                           "val_clips": len(fold.val)})
    return metrics
