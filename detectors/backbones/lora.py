"""LoRA adapters through ``peft`` (CAD puts LoRA r=8, alpha=16 on its Whisper encoder)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from detectors.backbones.errors import BackboneError
from detectors.backbones.params import count_parameters

if TYPE_CHECKING:
    import torch

__all__ = ["apply_lora", "count_parameters", "lora_parameter_names"]


def apply_lora(
    model: "torch.nn.Module",
    r: int = 8,
    alpha: int = 16,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
    dropout: float = 0.0,
) -> "torch.nn.Module":
    """Inject LoRA adapters into ``model`` in place and leave only them trainable.

    The module keeps its class and forward (peft's ``inject_adapter_in_model``,
    not a ``PeftModel`` wrapper), so a detector holds the same object before and
    after. The effective update is ``(alpha / r) * B @ A`` on each target layer.
    """
    from peft import LoraConfig, inject_adapter_in_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    absent = [t for t in target_modules if t not in names]
    if absent:
        raise BackboneError(f"apply_lora: {type(model).__name__} has no module named {absent[0]!r}")
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(target_modules), lora_dropout=dropout, bias="none")
    model = inject_adapter_in_model(config, model)
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    return model


def lora_parameter_names(model: "torch.nn.Module") -> list[str]:
    return [name for name, _ in model.named_parameters() if "lora_" in name]
