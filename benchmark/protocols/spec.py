"""The typed form of a protocol file, loaded strictly from YAML.

A protocol file holds one family (``intra``, ``cross-manipulation``,
``cross-dataset``, ``studio``): a list of protocols, each with a name, a
version, the corpora it applies to, an optional pool selector, named fake
categories (selectors) used for per-category metrics, named averages over
them (AVG-FV), and exactly one split strategy:

- ``random``: groups of clips (by ``video_id`` unless told otherwise) go to
  test with probability ``test`` and to validation with ``val`` of the rest,
  stratified so every part keeps the class (and category) mix. One fold.
- ``groups``: a field's values name the part (ethnicity -> train/val/test; or a
  corpus' own split, ``extra.split`` -> train/val/test). When the corpus names
  no validation part (``val: []``), ``val_fraction`` of the training groups is
  kept for validation. One fold.
- ``leave_one_out``: one fold per held-out category: test = that category's
  fakes + the test part of the real clips; train/val = the other categories'
  fakes + the remaining real clips.
- ``cross``: train/val from one selector, one fold per named test set
  (fakes + reals from other selectors); optionally ``sides`` first splits the
  pool by identity so that the train and test sides never share one.

A one-fold protocol (``random``, ``groups``) may name its fold (``main_fold``,
default ``main``) and add ``transfer`` test sets: further folds that share the
fold's train and validation parts (one checkpoint) and test on other clips of
the protocol's ``corpora`` (its ``select`` restricts only the split), such as
CMDFD subsets or KoDF for a model trained on FakeAVCeleb.

Everything is checked at load (unknown keys named, types, fractions, that
names referenced exist); guarantees that depend on the data are checked when
splitting (see ``splitting.py``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from benchmark.protocols.selectors import Selector
from pipeline.clip import CLIP_SCHEMA
from pipeline.errors import ConfigError

PARTS = ("train", "val", "test")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9\-]*$")
_VERSION_RE = re.compile(r"^\d+(\.\d+)*$")


@dataclass
class RandomSplit:
    """Seeded random assignment of groups of clips to parts."""

    test: float
    # Fraction of the non-test groups kept for validation (checkpoint choice).
    val: float = 0.1
    # Clips sharing this field's value always land in the same part.
    by: str = "video_id"
    # Fields whose (per-group) values define strata; each stratum is split
    # with the fractions, so small classes/categories still reach every part.
    stratify: list[str] = field(default_factory=lambda: ["label"])
    seed: int = 0
    # How each stratum's share of a part is rounded to whole groups. ``per_stratum``: each
    # stratum on its own (a stratum of 3 groups gets round(3 x 0.07) = 0 validation groups, so
    # with many small strata a part falls far below its fraction). ``across_strata``: strata in
    # turn, each taking the rounded running total minus what earlier strata took, so every part
    # gets its fraction of all groups (within one) and each stratum its share within one.
    rounding: str = "per_stratum"


ROUNDINGS = ("per_stratum", "across_strata")


@dataclass
class GroupSplit:
    """A field's values decide the part (e.g. ethnicity)."""

    field: str  # a Clip field, or extra.NAME
    train: list[str]
    val: list[str]
    test: list[str]
    # With ``val: []``: the share of the training groups (``by``) kept for validation.
    val_fraction: float = 0.0
    by: str = "video_id"
    seed: int = 0


@dataclass
class LeaveOneOut:
    """One fold per held-out category (names from the protocol's ``categories``)."""

    held_out: list[str]
    # Which clips are the real ones.
    real: dict[str, Any]
    # How the videos (real clips and their fakes together) are cut into test / val / train.
    video_split: RandomSplit
    # A field naming each clip's part (``extra.split``: the released train/test lists); then only
    # video_split.val / by / seed are used, to carve validation out of the training part.
    split_field: str | None = None


@dataclass
class TestSet:
    """A cross-dataset test set: its fakes and the reals they are scored against."""

    fake: dict[str, Any]
    real: dict[str, Any]


@dataclass
class CrossSplit:
    """Train on one selection, test on each named test set (one fold each)."""

    train: dict[str, Any]
    tests: dict[str, TestSet]
    # Fraction of training videos kept for validation.
    val: float = 0.1
    by: str = "video_id"
    seed: int = 0
    # When train and test come from the same clips (a studio twin), first
    # split the pool into a train side and a test side (``by: identity``);
    # only ``sides.test`` and ``sides.by``/``seed``/``stratify`` are used.
    sides: RandomSplit | None = None


@dataclass
class SplitSpec:
    """Exactly one strategy is given."""

    random: RandomSplit | None = None
    groups: GroupSplit | None = None
    leave_one_out: LeaveOneOut | None = None
    cross: CrossSplit | None = None

    @property
    def strategy(self) -> str:
        return next(n for n in ("random", "groups", "leave_one_out", "cross") if getattr(self, n) is not None)


@dataclass
class ProtocolSpec:
    name: str
    version: str
    description: str
    corpora: list[str]
    split: SplitSpec
    # Family for listing (defaults to the file's family).
    family: str | None = None
    # Further restricts the pool (clips of ``corpora`` that match).
    select: dict[str, Any] = field(default_factory=dict)
    # Fields no value of which may appear in two parts of a fold.
    # video_id is always enforced; add identity for identity-disjoint protocols.
    disjoint: list[str] = field(default_factory=lambda: ["video_id"])
    # False only to reproduce a released split that cuts videos (ECL's FAV lists put a video's
    # real clip and the fakes made on it in different parts); splitting then logs how many.
    video_disjoint: bool = True
    # Named fake categories (selectors) for per-category metrics.
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Named means over categories or folds (AVG-FV, AVG).
    averages: dict[str, list[str]] = field(default_factory=dict)
    # The one fold of a random / groups split is named this.
    main_fold: str = "main"
    # Further test folds sharing that fold's train/val parts (see the module docstring).
    transfer: dict[str, TestSet] = field(default_factory=dict)
    # A transfer test set none of whose fakes lies outside training takes one training group
    # (the split's ``by``, e.g. an identity) holding such a fake into the test part: every test set
    # gets fakes to score (a small corpus forges each method on few identities).
    cover_transfer: bool = False
    # The real-corpus protocol a studio protocol mirrors.
    twin_of: str | None = None
    notes: str = ""


@dataclass
class MethodInfo:
    """What produces a method value on the studio corpus, and what it mirrors."""

    generator: str
    mirrors: str
    category: list[str] = field(default_factory=list)
    # Which generate recipe emits it (``fakeavceleb`` and/or ``cmdfd``).
    recipe: list[str] = field(default_factory=list)


@dataclass
class ProtocolFile:
    family: str
    protocols: list[ProtocolSpec]
    description: str = ""
    # Studio only: every `method` value its selectors use must be listed here.
    methods: dict[str, MethodInfo] = field(default_factory=dict)


def check_fraction(value: float, where: str, allow_zero: bool = True) -> None:
    lo_ok = value >= 0 if allow_zero else value > 0
    if not (lo_ok and value < 1):
        raise ConfigError(f"{where}: fraction {value} must be in {'[0' if allow_zero else '(0'}, 1)")


def _check_group_field(name: str, where: str, allow_extra: bool = False) -> None:
    if allow_extra and name.startswith("extra.") and len(name) > len("extra."):
        return
    if name not in CLIP_SCHEMA.names:
        raise ConfigError(f"{where}: {name!r} is not a Clip field; known: {list(CLIP_SCHEMA.names)}")


def _check_random(r: RandomSplit, where: str, need_test: bool = True) -> None:
    check_fraction(r.test, f"{where}.test", allow_zero=not need_test)
    check_fraction(r.val, f"{where}.val")
    _check_group_field(r.by, f"{where}.by")
    if r.rounding not in ROUNDINGS:
        raise ConfigError(f"{where}.rounding: {r.rounding!r} is not one of {list(ROUNDINGS)}")
    for i, s in enumerate(r.stratify):
        _check_group_field(s, f"{where}.stratify[{i}]")


def validate_spec(spec: ProtocolSpec, where: str) -> None:
    """Checks that need more than types: names, fractions, references."""
    if not _NAME_RE.match(spec.name):
        raise ConfigError(f"{where}.name: {spec.name!r} must be lower-case letters, digits and '-'")
    if not _VERSION_RE.match(spec.version):
        raise ConfigError(f"{where}.version: {spec.version!r} must look like '1.0.0' (quote it in YAML)")
    if not spec.corpora:
        raise ConfigError(f"{where}.corpora: at least one corpus is required")
    for i, name in enumerate(spec.disjoint):
        _check_group_field(name, f"{where}.disjoint[{i}]")
    Selector(spec.select, f"{where}.select")
    for cat, sel in spec.categories.items():
        Selector(sel, f"{where}.categories.{cat}")
    given = [n for n in ("random", "groups", "leave_one_out", "cross") if getattr(spec.split, n) is not None]
    if len(given) != 1:
        raise ConfigError(
            f"{where}.split: give exactly one of random, groups, leave_one_out, cross (got {given or 'none'})"
        )
    s = spec.split
    here = f"{where}.split"
    if s.random is not None:
        _check_random(s.random, f"{here}.random")
        folds = ["main"]
    elif s.groups is not None:
        g = s.groups
        _check_group_field(g.field, f"{here}.groups.field", allow_extra=True)
        _check_group_field(g.by, f"{here}.groups.by")
        check_fraction(g.val_fraction, f"{here}.groups.val_fraction")
        if g.val and g.val_fraction:
            raise ConfigError(f"{here}.groups: give val values or val_fraction, not both")
        seen: dict[str, str] = {}
        for part in PARTS:
            values = getattr(g, part)
            if not values and not (part == "val" and g.val_fraction > 0):
                raise ConfigError(f"{here}.groups.{part}: at least one {g.field} value is required"
                                  + (" (or val_fraction)" if part == "val" else ""))
            for v in values:
                if v in seen:
                    raise ConfigError(f"{here}.groups: {g.field} {v!r} is in both {seen[v]} and {part}")
                seen[v] = part
        folds = ["main"]
    elif s.leave_one_out is not None:
        lo = s.leave_one_out
        Selector(lo.real, f"{here}.leave_one_out.real")
        _check_random(lo.video_split, f"{here}.leave_one_out.video_split", need_test=lo.split_field is None)
        if lo.split_field is not None:
            _check_group_field(lo.split_field, f"{here}.leave_one_out.split_field", allow_extra=True)
        if not lo.held_out:
            raise ConfigError(f"{here}.leave_one_out.held_out: list at least one category")
        for name in lo.held_out:
            if name not in spec.categories:
                raise ConfigError(
                    f"{here}.leave_one_out.held_out: {name!r} is not one of the protocol's categories "
                    f"{sorted(spec.categories)}"
                )
        folds = list(lo.held_out)
    else:
        c = s.cross
        assert c is not None
        Selector(c.train, f"{here}.cross.train")
        check_fraction(c.val, f"{here}.cross.val")
        _check_group_field(c.by, f"{here}.cross.by")
        if c.sides is not None:
            _check_random(c.sides, f"{here}.cross.sides")
        if not c.tests:
            raise ConfigError(f"{here}.cross.tests: at least one test set is required")
        for name, t in c.tests.items():
            Selector(t.fake, f"{here}.cross.tests.{name}.fake")
            Selector(t.real, f"{here}.cross.tests.{name}.real")
        folds = list(c.tests)
    if spec.main_fold != "main" or spec.transfer:
        if s.random is None and s.groups is None:
            raise ConfigError(f"{where}: main_fold and transfer apply to random and groups splits only")
        folds = [spec.main_fold]
        if spec.cover_transfer and s.random is None:
            raise ConfigError(f"{where}: cover_transfer applies to random splits only")
        for name, t in spec.transfer.items():
            if name in folds:
                raise ConfigError(f"{where}.transfer: {name!r} is already a fold name")
            Selector(t.fake, f"{where}.transfer.{name}.fake")
            Selector(t.real, f"{where}.transfer.{name}.real")
            folds.append(name)
    names = set(folds) | set(spec.categories)
    for avg, members in spec.averages.items():
        missing = [m for m in members if m not in names]
        if not members or missing:
            raise ConfigError(
                f"{where}.averages.{avg}: members {missing or members} are not folds or categories of "
                f"{spec.name} ({sorted(names)})"
            )


def fold_names(spec: ProtocolSpec) -> list[str]:
    s = spec.split
    if s.leave_one_out is not None:
        return list(s.leave_one_out.held_out)
    if s.cross is not None:
        return list(s.cross.tests)
    return [spec.main_fold, *spec.transfer]
