"""The generator registry (built-ins register here; plug-ins via entry points or module:Class)."""
from __future__ import annotations

from generators.base import validate_generator
from pipeline.registry import Registry

GENERATORS = Registry("generators", validate=validate_generator)

# Built-ins register lazily as module:Class strings: importing the registry
# (which ``avdf ls`` does) imports no OpenCV, mediapipe or TTS.
from generators.builtin import register_builtins  # noqa: E402

register_builtins(GENERATORS)
