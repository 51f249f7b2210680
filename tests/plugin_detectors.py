"""A plugged-in detector (module:Class) that records everything it is given."""
from __future__ import annotations

from detectors.baselines import VideoBaseline

SEEN_INPUTS: list[set[str]] = []


class SpyDetector(VideoBaseline):
    """The video baseline, recording the input names of every forward call."""

    name = "spy"

    def forward(self, inputs):
        SEEN_INPUTS.append(set(inputs))
        return super().forward(inputs)
