"""The Generator interface: (target video, driving audio, workdir) -> a labelled fake mp4.

A generator is a class with a name, a version, the resources one call needs
(``num_cpus``, ``num_gpus``), the kind of forgery it makes and which
modalities it fakes. Its constructor loads weights once (a Ray worker builds
it once and reuses it for every task); a call writes one fake clip in the
workdir it is given and returns its path. Every output is 25 fps video with
16 kHz mono audio, as long as the driving audio, and says it is synthetic in
its own container metadata (:func:`synthetic_metadata`), not only in our
manifest.
"""
from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pipeline.errors import RegistryError

if TYPE_CHECKING:
    from generators.cache import StageCache

KINDS = ("lipsync", "talking_head", "faceswap", "voice")
SYNTHETIC_TAG = "avdf_synthetic"


class Generator(ABC):
    """Base class of every generator (built-in, external adapter or plug-in)."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    num_cpus: ClassVar[float] = 1
    num_gpus: ClassVar[float] = 0
    video_fake: ClassVar[bool] = True
    audio_fake: ClassVar[bool] = False
    # Whether the output's lips follow the driving audio in the released
    # CMDFD labels (Sync_Label): 1 for the lip-sync tools, 0 for the one-shot
    # talking heads, whose mouths only loosely follow it.
    lip_sync: ClassVar[bool] = True

    @property
    def tag(self) -> str:
        """``name@version``: what the Clip's ``generator`` field records."""
        return f"{self.name}@{self.version}"

    @abstractmethod
    def __call__(
        self,
        target_video: Path,
        driving_audio: Path | None,
        workdir: Path,
        *,
        source_keys: Sequence[str] = (),
        source_video: Path | None = None,
        **kw: Any,
    ) -> Path:
        """Write the fake clip under ``workdir`` and return its path.

        ``source_keys`` name the real clips it is made from (written into the
        file's metadata); ``source_video`` is the donor identity of a face swap.
        """

    def describe(self) -> dict[str, Any]:
        """Settings that change the output (hashed into the stage's cache keys)."""
        return {"name": self.name, "version": self.version}

    def use_cache(self, cache: StageCache | None) -> None:
        """Take the cache the tasks of a generate run share (``generators.cache``), to skip work
        another task did on the same inputs; the default keeps nothing there. None: no cache."""


def synthetic_metadata(generator: Generator, source_keys: Sequence[str] = (), **extra: str) -> dict[str, str]:
    """Container tags that label a generated file as synthetic, with its provenance."""
    tags = {
        SYNTHETIC_TAG: "1",
        "avdf_generator": generator.tag,
        "avdf_kind": generator.kind,
        "avdf_source_keys": ",".join(source_keys),
        "comment": f"synthetic media made by avdf generator {generator.tag}",
    }
    tags.update({f"avdf_{k}": str(v) for k, v in extra.items()})
    return tags


def validate_generator(name: str, cls: Any) -> None:
    """Registry hook: refuse anything that does not implement the Generator interface."""
    if not isinstance(cls, type):
        raise RegistryError(f"generator {name!r} resolves to {cls!r}, which is not a class")
    if not issubclass(cls, Generator):
        # Duck-typed plug-ins are accepted if they carry the whole interface.
        missing = [a for a in ("name", "version", "kind", "num_cpus", "num_gpus", "__call__") if not hasattr(cls, a)]
        if missing:
            raise RegistryError(
                f"generator {name!r} ({cls.__module__}:{cls.__qualname__}) does not implement the Generator "
                f"interface: missing {missing} (subclass generators.base.Generator)"
            )
    elif inspect.isabstract(cls):
        raise RegistryError(
            f"generator {name!r} ({cls.__module__}:{cls.__qualname__}) is abstract: "
            f"implement {sorted(cls.__abstractmethods__)}"
        )
    for attr in ("name", "version"):
        if not getattr(cls, attr, ""):
            raise RegistryError(f"generator {name!r} ({cls.__qualname__}) has an empty {attr!r}")
    if getattr(cls, "kind", "") not in KINDS:
        raise RegistryError(f"generator {name!r}: kind {getattr(cls, 'kind', None)!r} is not one of {KINDS}")
    for attr in ("num_cpus", "num_gpus"):
        value = getattr(cls, attr)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise RegistryError(f"generator {name!r}: {attr} must be a non-negative number, got {value!r}")
