"""Selectors: which clips a protocol rule applies to, written as data.

A selector is a mapping from a Clip field to the value it must have, or to a
list of accepted values. All fields must match (AND); a list means "any of"
(OR). Three logical keys nest selectors: ``any_of: [sel, ...]``,
``all_of: [sel, ...]`` and ``not: sel``. A field ``extra.NAME`` reads key
``NAME`` of the clip's JSON ``extra`` column (e.g. ``extra.subset: W2L``),
which lets one selector accept a corpus' native subset name as well as the
method/self_audio fields. ``null`` matches a missing value. The empty
selector matches every clip.

Selectors are checked when a protocol file is loaded: an unknown field (with
a "did you mean") or a value of the wrong type is a ConfigError naming the
dotted key in the file.
"""
from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from pipeline.clip import CLIP_SCHEMA
from pipeline.errors import ConfigError, ManifestError

LOGICAL_KEYS = ("any_of", "all_of", "not")
EXTRA_PREFIX = "extra."
# Parsed `extra` JSON is cached on each row under this name.
PARSED_EXTRA = "_extra"


def _expected_type(field: str) -> tuple[type, ...] | None:
    """Python types a selector value for ``field`` may have (None: any scalar)."""
    if field.startswith(EXTRA_PREFIX):
        return None
    t = CLIP_SCHEMA.field(field).type
    if pa.types.is_boolean(t):
        return (bool,)
    if pa.types.is_integer(t):
        return (int,)
    if pa.types.is_floating(t):
        return (int, float)
    if pa.types.is_string(t):
        return (str,)
    return ()  # list-typed fields (source_keys) cannot be selected on


def _check_value(value: Any, field: str, where: str) -> None:
    allowed = _expected_type(field)
    if allowed == ():
        raise ConfigError(f"{where}: field {field!r} is a list and cannot be used in a selector")
    if value is None:
        return
    if isinstance(value, (dict, list)):
        raise ConfigError(f"{where}: expected a scalar value, got {type(value).__name__} {value!r}")
    if allowed is None:
        return
    # bool is an int in Python; a label written as `true` is a mistake, not a 1.
    if isinstance(value, bool) and bool not in allowed:
        raise ConfigError(f"{where}: expected {allowed[0].__name__}, got bool {value!r}")
    if not isinstance(value, allowed):
        raise ConfigError(f"{where}: expected {allowed[0].__name__}, got {type(value).__name__} {value!r}")


class Selector:
    """A compiled selector; ``matches(row)`` tests one manifest row (a dict)."""

    def __init__(self, spec: Mapping[str, Any] | None, where: str) -> None:
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: a selector must be a mapping of Clip fields, got {type(spec).__name__}")
        self.spec = dict(spec)
        self.where = where
        self._fields: list[tuple[str, tuple[Any, ...]]] = []
        self._any: list[Selector] = []
        self._all: list[Selector] = []
        self._not: Selector | None = None
        for key, value in spec.items():
            here = f"{where}.{key}"
            if key in ("any_of", "all_of"):
                if not isinstance(value, list) or not value:
                    raise ConfigError(f"{here}: expected a non-empty list of selectors")
                subs = [Selector(v, f"{here}[{i}]") for i, v in enumerate(value)]
                (self._any if key == "any_of" else self._all).extend(subs)
            elif key == "not":
                self._not = Selector(value, here)
            else:
                _check_field_name(key, where)
                values = tuple(value) if isinstance(value, list) else (value,)
                if not values:
                    raise ConfigError(f"{here}: an empty list matches nothing")
                for i, v in enumerate(values):
                    _check_value(v, key, here if len(values) == 1 else f"{here}[{i}]")
                self._fields.append((key, values))

    def matches(self, row: Mapping[str, Any]) -> bool:
        for field, accepted in self._fields:
            if field_value(row, field) not in accepted:
                return False
        if self._any and not any(s.matches(row) for s in self._any):
            return False
        if any(not s.matches(row) for s in self._all):
            return False
        return not (self._not is not None and self._not.matches(row))

    def values_of(self, field: str) -> set[Any]:
        """Every value this selector (and its nested ones) accepts for ``field``."""
        out: set[Any] = set()
        for f, accepted in self._fields:
            if f == field:
                out.update(accepted)
        for sub in self._walk_children():
            out |= sub.values_of(field)
        return out

    def _walk_children(self) -> Iterator[Selector]:
        yield from self._any
        yield from self._all
        if self._not is not None:
            yield self._not

    def __repr__(self) -> str:
        return f"Selector({self.spec!r})"


def _check_field_name(key: str, where: str) -> None:
    if key.startswith(EXTRA_PREFIX):
        if len(key) == len(EXTRA_PREFIX):
            raise ConfigError(f"{where}: 'extra.' needs a key name, e.g. 'extra.subset'")
        return
    if key in CLIP_SCHEMA.names:
        return
    known = [*CLIP_SCHEMA.names, *LOGICAL_KEYS, "extra.<name>"]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"{where}: unknown selector field {key!r}{hint}; known: {known}")


def field_value(row: Mapping[str, Any], field: str) -> Any:
    """A row's value of a Clip field or of ``extra.NAME`` (rows from ``rows_of``: extra parsed)."""
    if field.startswith(EXTRA_PREFIX):
        return row[PARSED_EXTRA].get(field[len(EXTRA_PREFIX):])
    return row.get(field)


def parse_extra(row: dict[str, Any]) -> dict[str, Any]:
    """Parse a row's JSON ``extra`` once, caching it on the row."""
    if PARSED_EXTRA not in row:
        text = row.get("extra")
        try:
            parsed = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise ManifestError(f"clip {row.get('key')!r}: column 'extra' is not valid JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise ManifestError(f"clip {row.get('key')!r}: column 'extra' must be a JSON object")
        row[PARSED_EXTRA] = parsed
    return row[PARSED_EXTRA]
