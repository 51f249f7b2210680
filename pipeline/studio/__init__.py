"""The studio corpus: built-in, offline, deterministic talking-head clips (see docs/studio.md)."""
from pipeline.studio.build import build_studio
from pipeline.studio.plan import GENDERS, GROUPS, StudioParamError

__all__ = ["build_studio", "StudioParamError", "GROUPS", "GENDERS"]
