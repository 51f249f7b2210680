"""Face backends behind one interface, tracking, and aligned crops.

``make_face_backend(name, **options)`` builds a backend by name; the built-ins
are ``mediapipe`` (the default: measured best offline, see ``avdf bench faces``),
``dlib`` and ``insightface`` (needs a local model pack). Third-party backends
register under the entry-point group ``avdf.face_backends`` or are named as
``module:Class``.
"""
from __future__ import annotations

from typing import Any

from pipeline.faces.base import NUM_LANDMARKS, Face, FaceBackend
from pipeline.registry import Registry

FACE_BACKENDS = Registry("face_backends")
FACE_BACKENDS.register("mediapipe", "pipeline.faces.mediapipe_backend:MediapipeBackend")
FACE_BACKENDS.register("dlib", "pipeline.faces.dlib_backend:DlibBackend")
FACE_BACKENDS.register("insightface", "pipeline.faces.insightface_backend:InsightfaceBackend")

DEFAULT_FACE_BACKEND = "mediapipe"


def make_face_backend(name: str = DEFAULT_FACE_BACKEND, **options: Any) -> FaceBackend:
    """Build (and load the models of) the face backend ``name`` with backend-specific ``options``.

    Raises RegistryError for an unknown name and ConfigError for bad options
    or missing local models.
    """
    from pipeline.errors import ConfigError

    cls = FACE_BACKENDS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, FaceBackend)):
        raise ConfigError(f"face backend {name!r} resolves to {cls!r}, which is not a FaceBackend subclass")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"face backend {name!r}: bad options {sorted(options)} ({exc})") from None


__all__ = ["DEFAULT_FACE_BACKEND", "FACE_BACKENDS", "NUM_LANDMARKS", "Face", "FaceBackend", "make_face_backend"]
