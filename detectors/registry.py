"""The detector registry (built-ins register here; plug-ins via entry points or module:Class)."""
from __future__ import annotations

from pipeline.registry import Registry

DETECTORS = Registry("detectors")
