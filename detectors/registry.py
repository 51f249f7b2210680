"""The detector registry (built-ins register here; plug-ins via entry points or module:Class)."""
from __future__ import annotations

from typing import Any

from pipeline.registry import Registry


def _check(name: str, cls: Any) -> None:
    # Imported lazily: `avdf ls` and the CLI start-up must not import torch.
    from detectors.base import check_detector_class

    check_detector_class(name, cls)


DETECTORS = Registry("detectors", validate=_check)
DETECTORS.register("video-baseline", "detectors.baselines:VideoBaseline")
DETECTORS.register("audio-baseline", "detectors.baselines:AudioBaseline")
DETECTORS.register("cad", "detectors.cad:CAD")
DETECTORS.register("avprompt", "detectors.avprompt:AVPrompt")
DETECTORS.register("ecl", "detectors.ecl:ECL")
# Shortcut probes: one per group of pipeline.clip_facts (trivial facts that may give a corpus away).
DETECTORS.register("probe-silence", "detectors.probes:SilenceProbe")
DETECTORS.register("probe-duration", "detectors.probes:DurationProbe")
DETECTORS.register("probe-loudness", "detectors.probes:LoudnessProbe")
DETECTORS.register("probe-container", "detectors.probes:ContainerProbe")
DETECTORS.register("probe-av-sync", "detectors.probes:AVSyncProbe")
DETECTORS.register("probe-face-box", "detectors.probes:FaceBoxProbe")
