"""Classification heads and the SimSiam projector."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class TwoLayerHead(nn.Module):
    """AVPrompt's heads: "two linear layers with a ReLU activation" (seeds/002).

    The paper does not give the hidden width; ``hidden_dim`` is a knob (the
    ``paper`` config's choice is explained in ``param_budget``).
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_classes: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FusedClassifier(nn.Module):
    """CAD's classifier on "the final integrated vector ... encompassing both the specific and shared
    components" (seeds/000, Sec. 4.4): concatenate the given vectors, then a two-layer MLP.

    ``in_dims`` lists the widths in the order the vectors are passed, e.g.
    ``(shared_v2a, shared_a2v, specific_video, specific_audio)``; an ablation
    that drops a path builds the classifier with fewer inputs.
    """

    def __init__(self, in_dims: Sequence[int], hidden_dim: int, num_classes: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        if not in_dims:
            raise ValueError("FusedClassifier: in_dims must name at least one input")
        self.in_dims = tuple(int(d) for d in in_dims)
        self.net = nn.Sequential(
            nn.Linear(sum(self.in_dims), hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, num_classes)
        )

    def forward(self, *vectors: torch.Tensor) -> torch.Tensor:
        widths = tuple(v.shape[-1] for v in vectors)
        if widths != self.in_dims:
            raise ValueError(f"FusedClassifier: expected inputs of widths {self.in_dims}, got {widths}")
        return self.net(torch.cat(vectors, dim=-1))


class SimSiamProjector(nn.Module):
    """The "SimSiam projections" ``z`` of CAD Eq. 8: an MLP in the style of SimSiam's projector.

    ``norm="batch"`` follows SimSiam (BatchNorm; needs batches of 2+ in
    training); ``norm="layer"`` works with any batch size.
    """

    def __init__(self, dim: int, hidden_dim: int | None = None, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "layer"):
            raise ValueError(f"SimSiamProjector: norm must be 'batch' or 'layer', got {norm!r}")
        hidden_dim = hidden_dim or dim
        make = (lambda d: nn.BatchNorm1d(d)) if norm == "batch" else (lambda d: nn.LayerNorm(d))
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), make(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, dim), make(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
