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


class ScheduledDetector(VideoBaseline):
    """The video baseline with a "paper" that states its optimiser, learning rate and schedule."""

    name = "scheduled"
    PRESETS = {"tiny": {"frame_size": 32, "width": 8, "depth": 2}, "paper": {"frame_size": 32, "width": 8, "depth": 2}}
    TRAIN = {"optimizer": "sgd", "lr": 0.05, "epochs": 3, "batch_size": 4,
             "schedule": {"kind": "step", "milestones": [2], "gamma": 0.1}}
    TRAIN_FROM_PAPER = ("optimizer", "lr", "schedule")
