"""Turning a protocol and a manifest into folds of train/val/test keys.

Splits read only manifest rows (never media). Random assignment orders the
groups of each stratum by a seeded hash of the group value, then cuts exact
counts: the result is deterministic for a seed, does not depend on the row
order of the manifest, and a group keeps its part when unrelated clips are
added. Fractions count groups (videos, identities), not clips.

Guarantees, checked on every fold (a violation raises ``ProtocolError``):
- no value of a ``disjoint`` field (``video_id`` always, unless a protocol
  reproduces a released split that cuts videos (``video_disjoint: false``,
  then the cut videos are counted in a warning); ``identity`` for
  identity-disjoint protocols) appears in two parts;
- no key is in two parts; the training part is not empty;
- leave-one-out test sets hold only the held-out category and real clips;
- every test set holds both real and fake clips.
"""
from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmark.protocols.selectors import Selector, field_value, parse_extra
from benchmark.protocols.spec import PARTS, ProtocolSpec, RandomSplit
from pipeline.atomic import sha256_json
from pipeline.clip import Clip
from pipeline.errors import AvdfError

log = logging.getLogger(__name__)

REAL = "real"


class ProtocolError(AvdfError):
    """A protocol that cannot be applied to a manifest, or a broken guarantee."""


@dataclass(frozen=True)
class Fold:
    """One train/val/test assignment. Keys are sorted; ``test_categories``
    maps every test key to ``real`` or the name of its fake category."""

    name: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    test_categories: Mapping[str, str] = field(default_factory=dict)
    excluded: int = 0

    def part(self, name: str) -> tuple[str, ...]:
        if name not in PARTS:
            raise ProtocolError(f"unknown part {name!r}; parts are {list(PARTS)}")
        return getattr(self, name)

    @property
    def training_id(self) -> str:
        """Hash of train+val keys: folds with the same one can share a checkpoint
        (all cross-dataset folds train on the same data)."""
        return sha256_json({"train": self.train, "val": self.val})[:16]

    def sizes(self) -> dict[str, int]:
        n_real = sum(1 for c in self.test_categories.values() if c == REAL)
        return {
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "test_real": n_real,
            "test_fake": len(self.test) - n_real,
            "excluded": self.excluded,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "train": list(self.train),
            "val": list(self.val),
            "test": list(self.test),
            "test_categories": dict(self.test_categories),
            "excluded": self.excluded,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fold:
        return cls(
            name=d["name"],
            train=tuple(d["train"]),
            val=tuple(d["val"]),
            test=tuple(d["test"]),
            test_categories=dict(d["test_categories"]),
            excluded=int(d.get("excluded", 0)),
        )


@dataclass(frozen=True)
class Splits:
    """Every fold of one protocol applied to one manifest."""

    protocol: str
    version: str
    protocol_hash: str
    folds: Mapping[str, Fold]

    def fold(self, name: str) -> Fold:
        if name not in self.folds:
            raise ProtocolError(f"protocol {self.protocol} has no fold {name!r}; folds: {list(self.folds)}")
        return self.folds[name]

    def sizes(self) -> dict[str, dict[str, int]]:
        """Per fold: train, val, test, test_real, test_fake, excluded (for ``avdf ls``)."""
        return {name: f.sizes() for name, f in self.folds.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "version": self.version,
            "protocol_hash": self.protocol_hash,
            "folds": {n: f.to_dict() for n, f in self.folds.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Splits:
        return cls(
            protocol=d["protocol"],
            version=d["version"],
            protocol_hash=d["protocol_hash"],
            folds={n: Fold.from_dict(f) for n, f in d["folds"].items()},
        )


# --------------------------------------------------------------------------- input rows

ClipsLike = pa.Table | Sequence[Clip] | Sequence[Mapping[str, Any]] | str | Path


def rows_of(clips: ClipsLike) -> list[dict[str, Any]]:
    """Manifest rows as dicts from a table, Clips, dicts or a manifest path."""
    if isinstance(clips, (str, Path)):
        from pipeline.manifest import read_manifest

        clips = read_manifest(clips)
    if isinstance(clips, pa.Table):
        rows = clips.to_pylist()
    else:
        rows = [c.to_row() if isinstance(c, Clip) else dict(c) for c in clips]
    seen: set[str] = set()
    for i, row in enumerate(rows):
        key = row.get("key")
        if not isinstance(key, str):
            raise ProtocolError(f"manifest row {i} has no string 'key'")
        if key in seen:
            raise ProtocolError(f"manifest has duplicate key {key!r}")
        seen.add(key)
        parse_extra(row)
    return rows


# --------------------------------------------------------------------------- assignment

def _rank(seed: int, value: Hashable) -> str:
    return hashlib.sha256(f"{seed}\x00{value!r}".encode()).hexdigest()


def _group_rows(rows: Iterable[dict[str, Any]], by: str, where: str) -> dict[Any, list[dict[str, Any]]]:
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        value = row.get(by)
        if value is None:
            raise ProtocolError(f"{where}: clip {row['key']!r} has no {by!r}, which this split groups by")
        groups[value].append(row)
    return groups


def assign_groups(
    rows: Sequence[dict[str, Any]],
    by: str,
    fractions: Mapping[str, float],
    seed: int,
    stratum: Callable[[list[dict[str, Any]]], Hashable],
    where: str,
    rounding: str = "per_stratum",
) -> dict[str, str]:
    """key -> part. Parts other than the last in ``fractions`` get their fraction of each
    stratum's groups, rounded per stratum or across strata (``RandomSplit.rounding``); the
    last part gets the rest."""
    groups = _group_rows(rows, by, where)
    strata: dict[Hashable, list[Any]] = defaultdict(list)
    for value, members in groups.items():
        strata[stratum(members)].append(value)
    parts = list(fractions)
    out: dict[str, str] = {}
    seen = 0  # groups of the strata before this one
    taken = {part: 0 for part in parts}  # groups those strata gave each part
    for key in sorted(strata, key=repr):
        ordered = sorted(strata[key], key=lambda v: _rank(seed, v))
        n = len(ordered)
        start = 0
        for i, part in enumerate(parts):
            if i == len(parts) - 1:
                count = n - start
            elif rounding == "across_strata":
                count = _round_half_up((seen + n) * fractions[part]) - taken[part]
            else:
                count = _round_half_up(n * fractions[part])
            count = max(0, min(n - start, count))
            for value in ordered[start : start + count]:
                for row in groups[value]:
                    out[row["key"]] = part
            start += count
            taken[part] += count
        seen += n
    _fill_empty_parts(out, groups, fractions, seed)
    return out


def _round_half_up(x: float) -> int:
    # floor(x + 0.5): plain rounding, not banker's.
    return int(x + 0.5)


def _fill_empty_parts(out: dict[str, str], groups: Mapping[Any, list[dict[str, Any]]],
                      fractions: Mapping[str, float], seed: int) -> None:
    """A part that asks for a share but rounded down to no group (small strata) takes one
    group from the last part, as long as that leaves the last part a group."""
    last = list(fractions)[-1]
    part_of = {value: out[members[0]["key"]] for value, members in groups.items()}
    for part in list(fractions)[:-1]:
        donors = sorted((v for v, p in part_of.items() if p == last), key=lambda v: _rank(seed, v))
        if fractions[part] > 0 and part not in part_of.values() and len(donors) > 1:
            part_of[donors[0]] = part
            for row in groups[donors[0]]:
                out[row["key"]] = part


def _stratum_by(fields: Sequence[str]) -> Callable[[list[dict[str, Any]]], Hashable]:
    def stratum(members: list[dict[str, Any]]) -> Hashable:
        return tuple(tuple(sorted({repr(m.get(f)) for m in members})) for f in fields)

    return stratum


def _random_fractions(r: RandomSplit) -> dict[str, float]:
    # test first, then val out of the rest, train takes what is left.
    return {"test": r.test, "val": (1 - r.test) * r.val, "train": 1.0}


def _assign_random(rows: Sequence[dict[str, Any]], r: RandomSplit, where: str) -> dict[str, str]:
    return assign_groups(rows, r.by, _random_fractions(r), r.seed, _stratum_by(r.stratify), where, r.rounding)


# --------------------------------------------------------------------------- strategies

def _first_category(row: dict[str, Any], categories: Mapping[str, Selector], where: str) -> str | None:
    hits = [name for name, sel in categories.items() if sel.matches(row)]
    if len(hits) > 1:
        raise ProtocolError(f"{where}: clip {row['key']!r} matches several categories {hits}; selectors overlap")
    return hits[0] if hits else None


def _category_label(row: dict[str, Any], categories: Mapping[str, Selector], where: str) -> str:
    if row["label"] == 0:
        return REAL
    return _first_category(row, categories, where) or f"{row['category']}-{row['method']}"


def split_protocol(
    spec: ProtocolSpec, protocol_hash: str, clips: ClipsLike, folds: Sequence[str] | None = None
) -> Splits:
    where = f"protocol {spec.name} v{spec.version}"
    rows = rows_of(clips)
    corpora = set(spec.corpora)
    present = sorted({r.get("corpus") for r in rows})
    if not corpora & set(present):
        raise ProtocolError(f"{where} needs clips of {sorted(corpora)}; the manifest has corpora {present}")
    pool_sel = Selector(spec.select, f"{where}.select")
    pool = [r for r in rows if r.get("corpus") in corpora and pool_sel.matches(r)]
    categories = {n: Selector(s, f"{where}.categories.{n}") for n, s in spec.categories.items()}
    assignments = _STRATEGIES[spec.split.strategy](spec, pool, categories, where)
    if spec.cover_transfer:
        assignments["main"] = _cover_transfer(spec, assignments["main"], pool, rows, categories, where)
    if spec.main_fold != "main" or spec.transfer:
        assignments = _with_transfer(spec, assignments.pop("main"), rows, where)
    wanted = list(assignments) if folds is None else list(folds)
    unknown = [f for f in wanted if f not in assignments]
    if unknown:
        raise ProtocolError(f"{where} has no fold(s) {unknown}; folds: {list(assignments)}")
    by_key = {r["key"]: r for r in rows if r.get("corpus") in corpora}
    out: dict[str, Fold] = {}
    for name in wanted:
        parts, test_cats = assignments[name]
        fold = Fold(
            name=name,
            train=tuple(sorted(k for k, p in parts.items() if p == "train")),
            val=tuple(sorted(k for k, p in parts.items() if p == "val")),
            test=tuple(sorted(k for k, p in parts.items() if p == "test")),
            test_categories={k: test_cats[k] for k in sorted(test_cats)},
            excluded=len(rows) - len(parts),
        )
        check_fold(fold, by_key, spec, f"{where} fold {name}")
        out[name] = fold
    return Splits(protocol=spec.name, version=spec.version, protocol_hash=protocol_hash, folds=out)


def _with_transfer(spec, main: Assignment, rows, where) -> dict[str, Assignment]:
    """The main fold under its name, then one fold per transfer test set: the main fold's
    train/val parts, tested on clips of the protocol's corpora that the main fold does not use
    (``select`` restricts only the split) and that share no ``disjoint`` value with training."""
    parts, _ = main
    out = {spec.main_fold: main}
    corpora = set(spec.corpora)
    train_val = {k: p for k, p in parts.items() if p != "test"}
    # A transfer test never shares a video (or, for identity-disjoint protocols, an identity)
    # with training: clips that would are left out, so the test side is what training never saw.
    fields = list(dict.fromkeys(["video_id", *spec.disjoint]))
    by_key = {r["key"]: r for r in rows}
    seen = {f: {by_key[k].get(f) for k in train_val} - {None} for f in fields}
    outside = [r for r in rows if r.get("corpus") in corpora and r["key"] not in parts
               and not any(r.get(f) in seen[f] for f in fields)]
    for name, t in spec.transfer.items():
        fake_sel = Selector(t.fake, f"{where}.transfer.{name}.fake")
        real_sel = Selector(t.real, f"{where}.transfer.{name}.real")
        fold_parts, tests = dict(train_val), {}
        for r in outside:
            if r["label"] == 1 and fake_sel.matches(r):
                fold_parts[r["key"]], tests[r["key"]] = "test", name
            elif r["label"] == 0 and real_sel.matches(r):
                fold_parts[r["key"]], tests[r["key"]] = "test", REAL
        out[name] = (fold_parts, tests)
    return out


Assignment = tuple[dict[str, str], dict[str, str]]  # key -> part, test key -> category


def _cover_transfer(spec, main: Assignment, pool, rows, categories, where) -> Assignment:
    """Move training groups (``split.random.by``) into the test part until every transfer test set
    has a fake that shares nothing with training; each move takes the lowest-ranked group holding
    such a fake (the split's seed), never a validation group. Logged, so the shift is visible."""
    r = spec.split.random
    parts = dict(main[0])
    pool_by_key = {row["key"]: row for row in pool}
    groups = _group_rows(pool, r.by, where)
    fields = list(dict.fromkeys(["video_id", *spec.disjoint]))
    for name, t in spec.transfer.items():
        fake_sel = Selector(t.fake, f"{where}.transfer.{name}.fake")
        fakes = [row for row in rows if row.get("corpus") in spec.corpora and row["key"] not in parts
                 and row["label"] == 1 and fake_sel.matches(row)]
        seen = {f: {pool_by_key[k].get(f) for k, p in parts.items() if p != "test"} - {None} for f in fields}
        if not fakes or any(not any(row.get(f) in seen[f] for f in fields) for row in fakes):
            continue  # nothing to cover, or already covered
        # the training groups that hold one of its fakes (a fake shares the group value with its source)
        holders = {row.get(r.by) for row in fakes} & {v for v, members in groups.items()
                                                      if all(parts.get(m["key"]) == "train" for m in members)}
        if not holders:
            continue  # its fakes come from validation groups only: check_fold reports the empty set
        value = min(holders, key=lambda v: _rank(r.seed, v))
        for member in groups[value]:
            parts[member["key"]] = "test"
        log.info("%s: %s %r moved from train to test so that transfer set %s has fakes to score",
                 where, r.by, value, name)
    return parts, _test_categories(parts, pool_by_key, categories, where)


def _test_categories(parts: Mapping[str, str], by_key: Mapping[str, dict], categories, where) -> dict[str, str]:
    return {k: _category_label(by_key[k], categories, where) for k, p in parts.items() if p == "test"}


def _split_random(spec, pool, categories, where) -> dict[str, Assignment]:
    parts = _assign_random(pool, spec.split.random, where)
    by_key = {r["key"]: r for r in pool}
    return {"main": (parts, _test_categories(parts, by_key, categories, where))}


def _split_groups(spec, pool, categories, where) -> dict[str, Assignment]:
    g = spec.split.groups
    value_part = {v: part for part in PARTS for v in getattr(g, part)}
    parts = {r["key"]: value_part[v] for r in pool if (v := field_value(r, g.field)) in value_part}
    if g.val_fraction > 0:
        parts = _carve_val(parts, pool, g.val_fraction, g.by, g.seed, where)
    by_key = {r["key"]: r for r in pool}
    return {"main": (parts, _test_categories(parts, by_key, categories, where))}


def _carve_val(parts: dict[str, str], pool: Sequence[dict[str, Any]], fraction: float, by: str, seed: int,
               where: str) -> dict[str, str]:
    """The corpus names no validation part: keep ``fraction`` of the training groups for it."""
    train = [r for r in pool if parts.get(r["key"]) == "train"]
    return parts | assign_groups(train, by, {"val": fraction, "train": 1.0}, seed, _stratum_by(["label"]),
                                 f"{where} (validation)")


def _given_parts(rows: Sequence[dict[str, Any]], field: str, val: float, by: str, seed: int,
                 where: str) -> dict[str, str]:
    """key -> part from a field naming ``train`` or ``test`` (a corpus' released lists)."""
    parts = {}
    for r in rows:
        value = field_value(r, field)
        if value not in ("train", "test"):
            raise ProtocolError(f"{where}: clip {r['key']!r} has {field} {value!r}; this protocol needs "
                                "'train' or 'test' on every clip (the released lists)")
        parts[r["key"]] = value
    return _carve_val(parts, rows, val, by, seed, where) if val > 0 else parts


def _split_leave_one_out(spec, pool, categories, where) -> dict[str, Assignment]:
    """One cut of the videos (real and fake clips together) serves every fold, so a video is
    never cut: test = real clips + held-out-category fakes of the test videos; train/val =
    real clips + the other categories' fakes of the train/val videos; the rest sits out."""
    lo = spec.split.leave_one_out
    real_sel = Selector(lo.real, f"{where}.leave_one_out.real")
    reals = [r for r in pool if r["label"] == 0 and real_sel.matches(r)]
    real_keys = {r["key"] for r in reals}
    cat_of = {}
    for r in pool:
        if r["key"] not in real_keys:
            cat = _first_category(r, categories, where)
            if cat is not None:
                cat_of[r["key"]] = cat
    clips = reals + [r for r in pool if r["key"] in cat_of]
    if lo.split_field:
        # The corpus' own train/test lists decide; validation is carved from the training videos.
        video_parts = _given_parts(clips, lo.split_field, lo.video_split.val, lo.video_split.by,
                                   lo.video_split.seed, f"{where} (videos)")
    else:
        video_parts = _assign_random(clips, lo.video_split, f"{where} (videos)")
    out: dict[str, Assignment] = {}
    for held in lo.held_out:
        parts: dict[str, str] = {}
        tests: dict[str, str] = {}
        for r in clips:
            key, part = r["key"], video_parts[r["key"]]
            cat = cat_of.get(key)
            if part == "test" and cat in (None, held):
                parts[key], tests[key] = "test", cat or REAL
            elif part != "test" and cat != held:
                parts[key] = part
        out[held] = (parts, tests)
    return out


def _split_cross(spec, pool, categories, where) -> dict[str, Assignment]:
    c = spec.split.cross
    train_side, test_side = pool, pool
    if c.sides is not None:
        sides = assign_groups(
            pool, c.sides.by, {"test": c.sides.test, "train": 1.0}, c.sides.seed,
            _stratum_by(c.sides.stratify), f"{where} (sides)", c.sides.rounding,
        )
        train_side = [r for r in pool if sides[r["key"]] == "train"]
        test_side = [r for r in pool if sides[r["key"]] == "test"]
    train_sel = Selector(c.train, f"{where}.cross.train")
    train_rows = [r for r in train_side if train_sel.matches(r)]
    train_parts = assign_groups(
        train_rows, c.by, {"val": c.val, "train": 1.0}, c.seed, _stratum_by(["label"]), f"{where} (train)"
    )
    out: dict[str, Assignment] = {}
    for name, t in c.tests.items():
        fake_sel = Selector(t.fake, f"{where}.cross.tests.{name}.fake")
        real_sel = Selector(t.real, f"{where}.cross.tests.{name}.real")
        parts = dict(train_parts)
        tests: dict[str, str] = {}
        for r in test_side:
            is_fake = r["label"] == 1 and fake_sel.matches(r)
            is_real = r["label"] == 0 and real_sel.matches(r)
            if not (is_fake or is_real):
                continue
            if r["key"] in parts:
                raise ProtocolError(
                    f"{where} fold {name}: clip {r['key']!r} matches both the training selection and the "
                    "test set; make the selectors disjoint or add `sides`"
                )
            parts[r["key"]] = "test"
            tests[r["key"]] = name if is_fake else REAL
        out[name] = (parts, tests)
    return out


_STRATEGIES = {
    "random": _split_random,
    "groups": _split_groups,
    "leave_one_out": _split_leave_one_out,
    "cross": _split_cross,
}


# --------------------------------------------------------------------------- guarantees

def _log_shared_videos(part_of: Mapping[str, str], by_key: Mapping[str, dict[str, Any]], where: str) -> None:
    parts: dict[Any, set[str]] = defaultdict(set)
    for key, part in part_of.items():
        parts[by_key[key].get("video_id")].add(part)
    shared = sum(1 for v, p in parts.items() if v is not None and len(p) > 1)
    if shared:
        log.warning("%s: %d of %d videos have clips in more than one part (this released split cuts videos)",
                    where, shared, len(parts))


def check_fold(fold: Fold, by_key: Mapping[str, dict[str, Any]], spec: ProtocolSpec, where: str) -> None:
    """Raise ProtocolError if the fold breaks any guarantee of the module docstring."""
    part_of: dict[str, str] = {}
    for part in PARTS:
        for key in fold.part(part):
            if key in part_of:
                raise ProtocolError(f"{where}: clip {key!r} is in both {part_of[key]} and {part}")
            part_of[key] = part
    if not spec.video_disjoint:
        _log_shared_videos(part_of, by_key, where)
    for fld in dict.fromkeys(["video_id", *spec.disjoint]):
        if fld == "video_id" and not spec.video_disjoint:
            continue
        seen: dict[Any, tuple[str, str]] = {}
        for key, part in part_of.items():
            value = by_key[key].get(fld)
            if value is None:
                continue
            if value in seen and seen[value][0] != part:
                other_part, other_key = seen[value]
                raise ProtocolError(
                    f"{where}: {fld} {value!r} spans {other_part} ({other_key}) and {part} ({key}); "
                    f"this protocol must keep every {fld} in one part"
                )
            seen.setdefault(value, (part, key))
    if not fold.train:
        raise ProtocolError(f"{where}: the training part is empty (check the protocol's selectors and corpora)")
    lo = spec.split.leave_one_out
    if lo is not None:
        real_sel = Selector(lo.real, "real")
        held = Selector(spec.categories[fold.name], fold.name)
        for key in fold.test:
            row = by_key[key]
            if not (held.matches(row) or (row["label"] == 0 and real_sel.matches(row))):
                raise ProtocolError(f"{where}: test clip {key!r} is neither real nor of held-out {fold.name}")
    labels = {by_key[k]["label"] for k in fold.test}
    missing = [name for value, name in ((0, "real"), (1, "fake")) if value not in labels]
    if missing:
        raise ProtocolError(
            f"{where}: the test part has no {' and no '.join(missing)} clips "
            f"({len(fold.test)} test clips); metrics need both classes — does the manifest hold "
            f"the clips this fold selects (corpora {spec.corpora})?"
        )
