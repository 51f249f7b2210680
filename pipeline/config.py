"""params.yaml: one section per stage, each loaded into a typed dataclass.

Each stage owns the dataclass of its section (next to its code); this module
only knows where they live and converts YAML into them strictly: an unknown
section or key, a missing required key or a value of the wrong type is a
ConfigError that names the dotted key.
"""
from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from pipeline.errors import ConfigError

T = TypeVar("T")

# section name (= stage name = CLI subcommand = DVC stage) -> "module:Class"
SECTIONS: dict[str, str] = {
    "ray": "pipeline.raycluster:RayParams",
    "fetch": "pipeline.fetch:FetchParams",
    "ingest": "pipeline.ingest:IngestParams",
    "preprocess": "pipeline.preprocess:PreprocessParams",
    "generate": "generators.stage:GenerateParams",
    "shard": "pipeline.shards:ShardParams",
    "transcribe": "detectors.ecl.transcripts:TranscribeParams",
    "teach": "detectors.teaching:TeachParams",
    "train": "detectors.training:TrainParams",
    "perturb": "benchmark.perturb:PerturbParams",
    "evaluate": "benchmark.evaluate:EvaluateParams",
    "leaderboard": "benchmark.leaderboard:LeaderboardParams",
    "detect": "benchmark.detect:DetectParams",
    "submit": "benchmark.submit:SubmitParams",
}


def _section_class(name: str) -> type:
    module, _, attr = SECTIONS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, checking every key and type."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    kwargs = {}
    for name, f in known.items():
        key = f"{where}.{name}"
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # a dataclass' own checks (__post_init__)
        raise ConfigError(f"{where}: {exc}") from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        kt, vt = args or (Any, Any)
        return {_convert(kt, k, where): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a path string, got {type(value).__name__}")
        return Path(value)
    raise ConfigError(f"{where}: unsupported config type {tp}")


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of stage sections")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; known sections: {sorted(SECTIONS)}")
    return data


def load_section(name: str, path: str | Path | None = "params.yaml") -> Any:
    """Load one section of params.yaml (defaults when ``path`` is None or the section is absent)."""
    if name not in SECTIONS:
        raise ConfigError(f"unknown params section {name!r}; known sections: {sorted(SECTIONS)}")
    data = read_yaml(path).get(name) if path is not None else None
    return from_mapping(_section_class(name), data, name)


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Load and check every section of params.yaml."""
    data = read_yaml(path)
    return {name: from_mapping(_section_class(name), data.get(name), name) for name in SECTIONS}
