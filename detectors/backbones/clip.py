"""CLIP vision tower: from a ``transformers`` folder / id, an OpenAI CLIP state dict, or a tiny config.

Every source ends as a ``transformers`` ``CLIPVisionModel``. OpenAI's ``clip``
package checkpoints (TorchScript ``.pt`` archives or plain state dicts with
``visual.*`` keys) are renamed into that layout; the fused attention
projection ``in_proj_weight`` ([q; k; v] on the output axis) splits into three.
The text tower and the image projection (``visual.proj``) are not part of a
vision model and are left out.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.backbones.errors import BackboneError
from detectors.backbones.params import set_trainable
from detectors.backbones.weights import (
    instantiate,
    load_strict,
    local_path_or_none,
    read_hf_folder_weights,
    read_weight_file,
    resolve_model_id,
)

if TYPE_CHECKING:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

_VIT_B = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
          "image_size": 224, "projection_dim": 512}
# The two paper backbones: CAD uses ViT-B/16, AVPrompt ViT-B/32.
CLIP_PRESETS: dict[str, dict[str, Any]] = {
    "ViT-B/16": _VIT_B | {"patch_size": 16},
    "ViT-B/32": _VIT_B | {"patch_size": 32},
}
TINY_CLIP: dict[str, Any] = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                             "num_attention_heads": 4, "image_size": 224, "patch_size": 32, "projection_dim": 32}
TINY_SEED = 0
# Fields that decide tensor shapes / the computation; a preset must agree with a folder's config on them.
_ARCH_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size")
# Buffers older checkpoints saved that current models recompute.
_IGNORED = re.compile(r"(^|\.)position_ids$")
_VISION_PREFIX = "vision_model."
_TOWER_PARTS = ("embeddings.", "pre_layrnorm.", "encoder.", "post_layernorm.")


def clip_vision_config(preset: str | None = None, **overrides: Any) -> "CLIPVisionConfig":
    """A ``CLIPVisionConfig`` for a preset (``ViT-B/16``, ``ViT-B/32``, ``tiny``) plus overrides."""
    from transformers import CLIPVisionConfig

    values = dict(_preset(preset) if preset else {}) | overrides
    values.setdefault("hidden_act", "quick_gelu")  # what OpenAI CLIP was trained with
    return CLIPVisionConfig(**values)


def _preset(name: str) -> dict[str, Any]:
    if name == "tiny":
        return TINY_CLIP
    if name not in CLIP_PRESETS:
        raise BackboneError(f"unknown CLIP preset {name!r}; choose one of {sorted(CLIP_PRESETS) + ['tiny']}")
    return CLIP_PRESETS[name]


def build_clip_vision(config: "CLIPVisionConfig", *, seed: int | None = None) -> "CLIPVisionModel":
    """A model of ``config``: random with ``seed``, uninitialised (to be loaded into) without."""
    from transformers import CLIPVisionModel

    return instantiate(CLIPVisionModel, config, seed)


def tiny_clip_vision(seed: int = TINY_SEED, **overrides: Any) -> "CLIPVisionModel":
    """Deterministic tiny random CLIP vision tower (224 px input, 7x7 patches of 32)."""
    return build_clip_vision(clip_vision_config("tiny", **overrides), seed=seed)


# --- OpenAI CLIP layout ---------------------------------------------------------------------

def is_openai_clip_state(state: dict[str, "torch.Tensor"]) -> bool:
    return "visual.conv1.weight" in state or "conv1.weight" in state and "class_embedding" in state


def openai_clip_to_hf(state: dict[str, "torch.Tensor"]) -> tuple[dict[str, "torch.Tensor"], dict[str, int]]:
    """Vision weights of an OpenAI CLIP state dict in ``CLIPVisionModel`` naming, plus the dims they imply.

    Heads cannot be read off the tensors; OpenAI's rule (width / 64) is returned and
    a preset or ``config_overrides`` may replace it.
    """
    visual = {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")} or dict(state)
    if "transformer.resblocks.0.attn.in_proj_weight" not in visual:
        raise BackboneError("OpenAI CLIP state dict without a ViT visual transformer (a ResNet CLIP is not supported)")
    out: dict[str, torch.Tensor] = {
        "embeddings.class_embedding": visual["class_embedding"],
        "embeddings.patch_embedding.weight": visual["conv1.weight"],
        "embeddings.position_embedding.weight": visual["positional_embedding"],
        "pre_layrnorm.weight": visual["ln_pre.weight"], "pre_layrnorm.bias": visual["ln_pre.bias"],
        "post_layernorm.weight": visual["ln_post.weight"], "post_layernorm.bias": visual["ln_post.bias"],
    }
    layers = sorted({int(m.group(1)) for k in visual if (m := re.match(r"transformer\.resblocks\.(\d+)\.", k))})
    for i in layers:
        src, dst = f"transformer.resblocks.{i}.", f"encoder.layers.{i}."
        q_w, k_w, v_w = visual[src + "attn.in_proj_weight"].chunk(3, dim=0)
        q_b, k_b, v_b = visual[src + "attn.in_proj_bias"].chunk(3, dim=0)
        for proj, w, b in (("q_proj", q_w, q_b), ("k_proj", k_w, k_b), ("v_proj", v_w, v_b)):
            out[f"{dst}self_attn.{proj}.weight"], out[f"{dst}self_attn.{proj}.bias"] = w, b
        renames = {"attn.out_proj.": "self_attn.out_proj.", "ln_1.": "layer_norm1.", "ln_2.": "layer_norm2.",
                   "mlp.c_fc.": "mlp.fc1.", "mlp.c_proj.": "mlp.fc2."}
        for old, new in renames.items():
            for leaf in ("weight", "bias"):
                out[f"{dst}{new}{leaf}"] = visual[f"{src}{old}{leaf}"]
    out = {k: v.float().contiguous() for k, v in out.items()}
    return out, _dims_from_hf_state(out)


def _dims_from_hf_state(state: dict[str, "torch.Tensor"]) -> dict[str, int]:
    patch = state["embeddings.patch_embedding.weight"]
    positions = state["embeddings.position_embedding.weight"].shape[0]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise BackboneError(f"CLIP weights: {positions} position embeddings is not a square grid plus a class token")
    width = int(patch.shape[0])
    layers = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    return {"hidden_size": width, "patch_size": int(patch.shape[-1]), "image_size": grid * int(patch.shape[-1]),
            "num_hidden_layers": len(layers), "num_attention_heads": max(1, width // 64),
            "intermediate_size": int(state["encoder.layers.0.mlp.fc1.weight"].shape[0])}


# --- the source dispatcher -----------------------------------------------------------------

def _vision_state(state: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """The vision tower of a CLIPModel / CLIPVisionModel state dict, without the ``vision_model.`` prefix.

    CLIPModel checkpoints (and CLIPVisionModel ones from transformers < 5) prefix the
    tower with ``vision_model.``; transformers 5 saves a CLIPVisionModel without it.
    """
    if any(k.startswith(_VISION_PREFIX) for k in state):
        state = {k[len(_VISION_PREFIX):]: v for k, v in state.items() if k.startswith(_VISION_PREFIX)}
    elif "embeddings.patch_embedding.weight" not in state:
        raise BackboneError("CLIP weights: no 'vision_model.*', 'embeddings.*' or OpenAI 'visual.*' tensors found")
    return {k: v for k, v in state.items() if k.startswith(_TOWER_PARTS) and not _IGNORED.search(k)}


def _load_into(model: "CLIPVisionModel", state: dict[str, "torch.Tensor"], source: object) -> None:
    # Older transformers nest the tower under ``vision_model.`` inside the module too.
    if next(iter(model.state_dict())).startswith(_VISION_PREFIX):
        state = {_VISION_PREFIX + k: v for k, v in state.items()}
    load_strict(model, state, source)


def _config_for(file_dims: dict[str, Any], preset: str | None, overrides: dict[str, Any]) -> "CLIPVisionConfig":
    # A preset builds the architecture the paper expects, so weights of another variant fail
    # with a named shape mismatch instead of silently loading as what they are.
    base = dict(_preset(preset)) if preset else dict(file_dims)
    return clip_vision_config(None, **(base | overrides))


def _load_folder(folder: Path, preset: str | None, overrides: dict[str, Any], source: object) -> "CLIPVisionModel":
    from transformers import CLIPVisionConfig

    if not (folder / "config.json").exists():
        raise BackboneError(f"{folder}: not a transformers folder (no config.json)")
    config = CLIPVisionConfig.from_pretrained(str(folder), local_files_only=True)
    if preset:
        expected = _preset(preset)
        wrong = [f for f in _ARCH_FIELDS if f in expected and getattr(config, f) != expected[f]]
        if wrong:
            f = wrong[0]
            raise BackboneError(f"{folder}: config.json has {f}={getattr(config, f)} but preset {preset} needs {expected[f]}")
    for key, value in overrides.items():
        setattr(config, key, value)
    model = build_clip_vision(config)
    state = read_hf_folder_weights(folder)
    state = openai_clip_to_hf(state)[0] if is_openai_clip_state(state) else _vision_state(state)
    _load_into(model, state, source)
    return model


def _load_file(path: Path, preset: str | None, overrides: dict[str, Any]) -> "CLIPVisionModel":
    state = read_weight_file(path)
    if is_openai_clip_state(state):
        state, dims = openai_clip_to_hf(state)
    else:
        state = _vision_state(state)
        dims = _dims_from_hf_state(state)
    model = build_clip_vision(_config_for(dims, preset, overrides))
    _load_into(model, state, path)
    return model


def load_clip_vision(
    source: str | Path | None = None,
    *,
    tiny: bool = False,
    preset: str | None = None,
    config_overrides: dict[str, Any] | None = None,
    frozen: bool = True,
    allow_download: bool = False,
) -> "CLIPVisionModel":
    """A ``transformers`` ``CLIPVisionModel`` from any supported source.

    ``source``: a ``transformers`` folder (CLIPModel or CLIPVisionModel), a weights file
    (OpenAI ``clip`` TorchScript ``.pt`` / state dict with ``visual.*`` keys, or an HF
    state dict), or a hub model id (only from the local cache unless ``allow_download``).
    ``preset`` (``ViT-B/16``, ``ViT-B/32``) fixes the architecture the weights must fit,
    or alone builds a random model of that size; ``tiny=True`` builds the tiny random
    model. ``config_overrides`` patch the config (e.g. ``num_attention_heads`` for a
    state dict whose head count is not OpenAI's width/64). ``frozen`` sets requires_grad.
    """
    overrides = dict(config_overrides or {})
    if tiny and (source is not None or preset is not None):
        raise BackboneError("load_clip_vision: tiny=True builds its own model; do not also pass a source or preset")
    if tiny:
        model = tiny_clip_vision(**overrides)
    elif source is None:
        if preset is None:
            raise BackboneError("load_clip_vision: give a source (path or id), a preset, or tiny=True")
        model = build_clip_vision(clip_vision_config(preset, **overrides), seed=TINY_SEED)
    else:
        path = local_path_or_none(source, what="CLIP weights")
        if path is None:
            folder = resolve_model_id(str(source), allow_download=allow_download, what="CLIP model")
            model = _load_folder(folder, preset, overrides, source)
        elif path.is_dir():
            model = _load_folder(path, preset, overrides, path)
        else:
            model = _load_file(path, preset, overrides)
    return set_trainable(model, not frozen)
