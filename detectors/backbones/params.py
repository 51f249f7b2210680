"""Frozen / trainable switches and parameter counts."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def set_trainable(module: "torch.nn.Module", trainable: bool) -> "torch.nn.Module":
    """Switch ``requires_grad`` on every parameter of ``module``; returns it for chaining.

    A frozen backbone is also put in eval mode so dropout does not perturb the
    features a detector treats as fixed; the training loop's ``train()`` call
    on the parent module would flip it back, so detectors that freeze a
    backbone should keep it in eval themselves.
    """
    for p in module.parameters():
        p.requires_grad_(trainable)
    if not trainable:
        module.eval()
    return module


def count_parameters(module: "torch.nn.Module") -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    return trainable, total
