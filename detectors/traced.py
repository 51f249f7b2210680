"""A trained detector frozen for scoring: its ``predict`` traced to TorchScript, cached per checkpoint.

Why: rebuilding a detector from its checkpoint imports its code, and for the CLIP and Whisper
backbones that means ``transformers``, whose import alone takes about 2 s on a CPU (its
modelling base pulls in torch.distributed.tensor, torch._dynamo and scipy.optimize): most of a
cold ``avdf detect``. A traced module is read by torch alone, in about 0.2 s for a tiny preset.

Trust: a trace records the operations that one input went through, so it is only kept when it
gives the eager detector's scores bit for bit on every batch it is checked on, which includes a
batch of another size than the one traced. On any difference or tracing error, the eager detector
stays in use. An entry is keyed by the checkpoint's SHA-256 and records the versions of torch and
transformers and the SHA-256 of the detector's source files; it is ignored (and rebuilt) when any
of them changed. CPU only: a trace fixes the device of the tensors it creates.

TorchScript is deprecated in torch 2.13. Its successor, torch.export, loads a saved program only
after importing torch._dynamo and friends, about 1.8 s, which is the cost this module exists to
avoid. When torch drops TorchScript, tracing fails and detect scores with the eager detector.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from detectors.base import Detector, InputSpec
from pipeline.atomic import atomic_path, sha256_file

FORMAT = 1
_META = "avdf_traced.json"


class TraceMismatch(Exception):
    """The traced module's scores differ from the eager detector's."""


class _Predict(torch.nn.Module):
    """``predict`` as ``forward``: the one method a trace records."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.detector.predict(inputs)


@dataclass
class TracedDetector:
    """What scoring needs of a detector (``name``, ``inputs``, ``predict``), from a traced module."""

    module: Any  # torch.jit.ScriptModule
    name: str
    inputs: InputSpec
    meta: dict[str, Any]

    def eval(self) -> "TracedDetector":
        self.module.eval()
        return self

    def to(self, device: torch.device | str) -> "TracedDetector":
        if torch.device(device).type != "cpu":
            raise ValueError("a traced detector runs on the CPU it was traced on")
        return self

    def predict(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.module(inputs)


def trace_predict(detector: Detector, batches: Sequence[dict[str, torch.Tensor]]) -> Any:
    """Trace ``detector.predict`` on ``batches[0]`` and check it on every batch: equal scores or
    ``TraceMismatch``. Pass batches of two sizes at least, so a size frozen into the trace shows."""
    detector.eval()
    wrapper = _Predict(detector).eval()
    with torch.no_grad(), warnings.catch_warnings(), _quiet("transformers"):
        warnings.simplefilter("ignore")  # TracerWarnings: branches on shapes, checked below instead
        module = torch.jit.trace(wrapper, (batches[0],), strict=False, check_trace=False)
        for i, batch in enumerate(batches):
            eager, traced = detector.predict(batch), module(batch)
            if set(eager) != set(traced):
                raise TraceMismatch(f"batch {i}: traced scores {sorted(traced)}, eager {sorted(eager)}")
            for name in eager:
                if not torch.equal(eager[name], traced[name]):
                    diff = (eager[name].float() - traced[name].float()).abs().max().item()
                    raise TraceMismatch(f"batch {i}: {name} differs from the eager detector's by up to {diff:.3g}")
    return module


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """A library's log records below ERROR dropped (tracing a ``transformers`` model walks its
    attributes, and a config property logs a warning about a loss it never uses)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def source_files(detector: Detector) -> list[Path]:
    """The code a trace was recorded from: the detectors package and, for a plugged-in detector, its module."""
    package = Path(__file__).resolve().parent
    files = sorted(package.rglob("*.py"))
    module_file = getattr(sys.modules.get(type(detector).__module__), "__file__", None)
    if module_file and package not in Path(module_file).resolve().parents:
        files.append(Path(module_file).resolve())
    return files


def _versions() -> dict[str, str]:
    out = {"torch": torch.__version__}
    try:
        out["transformers"] = importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        out["transformers"] = "absent"
    return out


def cache_entry(cache_dir: Path, checkpoint: Path) -> tuple[Path, str]:
    """(the cache file for ``checkpoint``, the checkpoint's SHA-256)."""
    digest = sha256_file(checkpoint)
    return Path(cache_dir) / "traced" / f"{digest}.pt", digest


def save_traced(path: Path, module: Any, detector: Detector, checkpoint_sha256: str,
                extra: dict[str, Any] | None = None) -> Path:
    """Write the traced module with what loading it must check (atomically: a killed run leaves none)."""
    meta = {
        "format": FORMAT,
        "name": detector.name,
        "inputs": asdict(detector.inputs),
        "checkpoint_sha256": checkpoint_sha256,
        "versions": _versions(),
        "sources": {str(p): sha256_file(p) for p in source_files(detector)},
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(module, str(tmp), _extra_files={_META: json.dumps(meta)})
    return path


def load_traced(path: Path, checkpoint_sha256: str) -> TracedDetector | None:
    """The traced detector at ``path``, or None where there is none or it is stale (another checkpoint,
    another torch or transformers, changed detector code) or unreadable: the caller then builds the
    eager detector, which is never wrong."""
    if not path.exists():
        return None
    files = {_META: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
        meta = json.loads(files[_META])
    except Exception:  # noqa: BLE001 - a cache entry that does not load is only rebuilt
        return None
    if meta.get("format") != FORMAT or meta.get("checkpoint_sha256") != checkpoint_sha256:
        return None
    if meta.get("versions") != _versions():
        return None
    for name, digest in meta.get("sources", {}).items():
        if not Path(name).exists() or sha256_file(name) != digest:
            return None
    spec = meta["inputs"]
    inputs = InputSpec(**{**spec, "modalities": tuple(spec["modalities"])})
    return TracedDetector(module=module.eval(), name=meta["name"], inputs=inputs, meta=meta)
