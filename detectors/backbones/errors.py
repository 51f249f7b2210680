"""Errors raised while building or loading a backbone (all user-facing ``AvdfError``s)."""
from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import AvdfError


class BackboneError(AvdfError):
    """Weights or a backbone source that cannot be used as asked."""


class WeightShapeMismatch(BackboneError):
    """A weight whose shape differs from what the backbone config builds.

    ``name`` is the first mismatched tensor (in the module's own naming), so a
    user can tell at once whether the file is the wrong variant (B/16 vs B/32)
    or the wrong model altogether.
    """

    def __init__(self, source: object, name: str, expected: Sequence[int], got: Sequence[int]) -> None:
        self.source = str(source)
        self.name = name
        self.expected = tuple(int(d) for d in expected)
        self.got = tuple(int(d) for d in got)
        super().__init__(
            f"{self.source}: weight {name!r} has shape {list(self.got)} but the backbone config "
            f"expects {list(self.expected)} (wrong model variant or config?)"
        )


class MissingWeights(BackboneError):
    """A source that lacks weights the backbone needs (or has ones it cannot place)."""
