"""Calling `transformers` encoder layers the same way across library versions."""
from __future__ import annotations

import torch
from torch import nn


def run_layer(layer: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """One CLIP/Whisper encoder layer without an attention mask.

    transformers 5 returns a tensor, 4.x a tuple whose first item is the hidden states.
    """
    out = layer(hidden_states, None)
    return out[0] if isinstance(out, tuple) else out


def freeze(module: nn.Module) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(False)
