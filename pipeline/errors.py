"""User-facing errors. The CLI prints them as one line (no traceback unless --debug)."""
from __future__ import annotations


class AvdfError(Exception):
    """Base for errors caused by the user's input or setup, not by a bug in avdf."""


class MediaError(AvdfError):
    """A media file that cannot be read as the stage needs it. ``path`` names the file."""

    def __init__(self, path: object, problem: str, error_type: str = "media") -> None:
        self.path = str(path)
        self.problem = problem
        self.error_type = error_type
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple:
        # Rebuilt from its own fields when it crosses a process boundary (``avdf detect``'s child).
        return type(self), (self.path, self.problem, self.error_type)


class ManifestError(AvdfError):
    """A manifest whose columns or values break the Clip contract."""


class ConfigError(AvdfError):
    """params.yaml (or a config file) with an unknown key, a wrong type or a bad value."""


class RegistryError(AvdfError):
    """An unknown, colliding or malformed detector / generator plug-in."""


class NotImplementedYet(AvdfError):
    """A stage whose implementation lands in a later issue."""
