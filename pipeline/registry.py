"""One plug-in mechanism for detectors and generators.

A registry maps names to classes. Built-ins register lazily as ``module:attr``
strings (importing a registry stays cheap); third-party packages register via
the entry-point group ``avdf.<kind>``; and any ``module:Class`` path a user
types resolves without registration. Collisions are refused and unknown names
get a "did you mean".
"""
from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from pipeline.errors import RegistryError


def load_object(spec: str) -> Any:
    """Import ``module:attr`` (``module.sub:Outer.Inner`` allowed)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(f"{spec!r} is not a 'module:Class' path")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(f"cannot import module {module_name!r} for {spec!r}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RegistryError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


class Registry:
    """Names -> classes for one kind of plug-in (``detectors`` or ``generators``)."""

    def __init__(self, kind: str, validate: Callable[[str, Any], None] | None = None) -> None:
        self.kind = kind
        self.group = f"avdf.{kind}"
        self._specs: dict[str, str | type] = {}
        self._origin: dict[str, str] = {}
        self._validate = validate
        self._entry_points_loaded = False

    def register(self, name: str, target: str | type | None = None, origin: str = "built-in") -> Any:
        """Register ``target`` (a class or a lazy ``module:Class``) under ``name``.

        Usable as a decorator: ``@registry.register("mine")``.
        """
        if target is None:

            def decorator(cls: type) -> type:
                self.register(name, cls, origin)
                return cls

            return decorator
        if name in self._specs and self._specs[name] != target:
            raise RegistryError(
                f"{self.kind} name {name!r} is already registered by {self._origin[name]} "
                f"({self._describe(self._specs[name])}); refusing {self._describe(target)} from {origin}"
            )
        self._specs[name] = target
        self._origin[name] = origin
        return target

    @staticmethod
    def _describe(target: str | type) -> str:
        return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            self.register(ep.name, ep.value, origin=f"entry point of {ep.dist.name if ep.dist else '?'}")

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._specs)

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, target, origin) for every registered plug-in."""
        return [(n, self._describe(self._specs[n]), self._origin[n]) for n in self.names()]

    def get(self, name: str) -> type:
        """Resolve a registered name or a ``module:Class`` path to a checked class."""
        self._load_entry_points()
        if name in self._specs:
            target = self._specs[name]
            cls = load_object(target) if isinstance(target, str) else target
        elif ":" in name:
            cls = load_object(name)
        else:
            close = difflib.get_close_matches(name, self._specs, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(sorted(self._specs)) or "none"
            raise RegistryError(
                f"unknown {self.kind[:-1]} {name!r}{hint} (registered: {known}; "
                "or pass a 'module:Class' path)"
            )
        if self._validate is not None:
            self._validate(name, cls)
        return cls
