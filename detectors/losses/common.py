"""Shape checks and small numeric helpers shared by the loss modules."""
from __future__ import annotations

import torch


def require_same_shape(name: str, **tensors: torch.Tensor) -> None:
    """Raise a ValueError naming the loss and the tensors when shapes differ."""
    shapes = {key: tuple(t.shape) for key, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{key}={shape}" for key, shape in shapes.items())
        raise ValueError(f"{name}: inputs must have the same shape, got {listed}")


def require_ndim(name: str, tensor_name: str, tensor: torch.Tensor, ndim: int) -> None:
    if tensor.dim() != ndim:
        raise ValueError(f"{name}: {tensor_name} must have {ndim} dims, got shape {tuple(tensor.shape)}")


def binary_labels(name: str, labels: torch.Tensor, batch: int) -> torch.Tensor:
    """Validate a (B,) tensor of 0/1 labels and return it as float."""
    labels = torch.as_tensor(labels)
    if labels.shape != (batch,):
        raise ValueError(f"{name}: labels must have shape ({batch},), got {tuple(labels.shape)}")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"{name}: labels must be 0 (real) or 1 (fake), got {labels.tolist()}")
    return labels.float()


def kl_between_softmaxes(target_logits: torch.Tensor, input_logits: torch.Tensor) -> torch.Tensor:
    """``sum_x P log(P/Q)`` over the last axis, ``P = softmax(target)``, ``Q = softmax(input)``.

    Returns one value per leading index (no reduction over them).
    """
    log_p = torch.log_softmax(target_logits, dim=-1)
    log_q = torch.log_softmax(input_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)
