"""Read a CTranslate2 ``model.bin`` directly and turn its Whisper encoder into a ``transformers`` state dict.

This module only parses the format; ``detectors.backbones.whisper`` builds the encoder from
the state dict (``load_ct2_whisper_encoder``), so imports go one way (whisper -> this module).

The file format (as CTranslate2's Python spec writer lays it out, little endian):

    u32 binary_version                       (this reader: 4..6)
    str spec_name, u32 spec_revision         (version >= 2)
    u32 n_variables, then per variable:
        str name, u8 rank, u32 dims[rank], u8 dtype_id, u32 num_bytes, bytes data
    u32 n_aliases, then per alias: str alias, str target     (version >= 3)

where ``str`` is ``u16 length (incl. NUL) + utf-8 bytes + NUL`` and dtype ids
are float32, int8, int16, int32, float16, bfloat16 in that order. Quantized
linear weights (int8 / int16) carry a ``weight_scale`` beside them:
``float = int / scale`` (per output row for int8, one scalar for int16).

The Whisper encoder's names (``encoder/...``) map to ``WhisperEncoder``'s:
the fused self-attention projection ``linear_0`` ([q; k; v] stacked on the
output axis) splits into three; Whisper's key projection has no bias, so the
middle third of the fused bias is zero and is dropped.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from detectors.backbones.errors import BackboneError, MissingWeights

if TYPE_CHECKING:
    import torch

SUPPORTED_VERSIONS = range(4, 7)
# Order of CTranslate2's DataType enum; bfloat16 has no numpy type and is read as raw uint16.
_DTYPES: tuple[tuple[str, np.dtype], ...] = (
    ("float32", np.dtype("<f4")),
    ("int8", np.dtype("i1")),
    ("int16", np.dtype("<i2")),
    ("int32", np.dtype("<i4")),
    ("float16", np.dtype("<f2")),
    ("bfloat16", np.dtype("<u2")),
)


class Ct2FormatError(BackboneError):
    """A ``model.bin`` that is not a CTranslate2 model this reader understands."""


@dataclass
class Ct2Model:
    """The raw content of a ``model.bin``: arrays by name (aliases resolved) and their stored dtypes."""

    path: Path
    binary_version: int
    spec_name: str
    spec_revision: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def tensor(self, name: str) -> "torch.Tensor":
        """A float32 torch tensor, dequantized when the file stores ``name`` as int8/int16."""
        import torch

        if name not in self.arrays:
            raise MissingWeights(f"{self.path}: variable {name!r} not in the model")
        array, dtype = self.arrays[name], self.dtypes[name]
        if dtype == "bfloat16":
            t = torch.from_numpy(array.copy()).view(torch.bfloat16).float()
        else:
            t = torch.from_numpy(array.astype(np.float32))
        if dtype in ("int8", "int16"):
            scale_name = name.rsplit("/", 1)[0] + "/weight_scale"
            if scale_name not in self.arrays:
                raise MissingWeights(f"{self.path}: quantized {name!r} has no {scale_name!r}")
            scale = torch.from_numpy(self.arrays[scale_name].astype(np.float32))
            t = t / (scale.reshape(-1, *([1] * (t.dim() - 1))) if scale.dim() else scale)
        return t


class _Reader:
    def __init__(self, f: BinaryIO, path: Path) -> None:
        self.f, self.path = f, path

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise Ct2FormatError(f"{self.path}: truncated CTranslate2 model (wanted {n} bytes, got {len(data)})")
        return data

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def string(self) -> str:
        raw = self.take(self.u16())
        if not raw.endswith(b"\0"):
            raise Ct2FormatError(f"{self.path}: malformed string in CTranslate2 model")
        return raw[:-1].decode("utf-8")


def read_ct2_model(path: str | Path) -> Ct2Model:
    """Parse ``model.bin`` (or a folder holding one) into arrays; nothing is executed or imported."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    if not path.exists():
        raise BackboneError(f"{path}: CTranslate2 model.bin not found")
    with open(path, "rb") as f:
        r = _Reader(f, path)
        version = r.u32()
        if version not in SUPPORTED_VERSIONS:
            raise Ct2FormatError(
                f"{path}: CTranslate2 binary version {version} is not supported "
                f"(supported {SUPPORTED_VERSIONS.start}..{SUPPORTED_VERSIONS.stop - 1}); "
                "re-convert the model with a recent ctranslate2"
            )
        model = Ct2Model(path=path, binary_version=version, spec_name=r.string(), spec_revision=r.u32())
        for _ in range(r.u32()):
            name = r.string()
            shape = tuple(r.u32() for _ in range(r.u8()))
            type_id = r.u8()
            if type_id >= len(_DTYPES):
                raise Ct2FormatError(f"{path}: variable {name!r} has unknown dtype id {type_id}")
            dtype_name, np_dtype = _DTYPES[type_id]
            num_bytes = r.u32()
            expected = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
            if num_bytes != expected:
                raise Ct2FormatError(
                    f"{path}: variable {name!r} has {num_bytes} bytes, shape {list(shape)} {dtype_name} needs {expected}"
                )
            model.arrays[name] = np.frombuffer(r.take(num_bytes), dtype=np_dtype).reshape(shape)
            model.dtypes[name] = dtype_name
        for _ in range(r.u32()):
            alias, target = r.string(), r.string()
            model.aliases[alias] = target
        for alias, target in model.aliases.items():
            if target in model.arrays:
                model.arrays[alias] = model.arrays[target]
                model.dtypes[alias] = model.dtypes[target]
        if f.read(1):
            raise Ct2FormatError(f"{path}: trailing bytes after the alias table (corrupt or not a CTranslate2 model)")
    return model


def _scalar(model: Ct2Model, name: str) -> int:
    if name not in model.arrays:
        raise MissingWeights(f"{model.path}: variable {name!r} not in the model")
    return int(np.asarray(model.arrays[name]).reshape(-1)[0])


def whisper_encoder_state_dict(model: Ct2Model) -> tuple[dict[str, "torch.Tensor"], dict[str, int]]:
    """HF ``WhisperEncoder`` state dict + the config numbers it implies, from a Whisper CT2 model."""
    if model.spec_name != "WhisperSpec":
        raise Ct2FormatError(f"{model.path}: a {model.spec_name!r} model, not a Whisper one")
    layer_ids = sorted({int(m.group(1)) for k in model.arrays if (m := re.match(r"encoder/layer_(\d+)/", k))})
    if not layer_ids or layer_ids != list(range(len(layer_ids))):
        raise MissingWeights(f"{model.path}: encoder layers missing or not numbered 0..N-1 ({layer_ids[:5]}...)")
    t = model.tensor
    state = {
        "conv1.weight": t("encoder/conv1/weight"),
        "conv1.bias": t("encoder/conv1/bias"),
        "conv2.weight": t("encoder/conv2/weight"),
        "conv2.bias": t("encoder/conv2/bias"),
        "embed_positions.weight": t("encoder/position_encodings/encodings"),
        "layer_norm.weight": t("encoder/layer_norm/gamma"),
        "layer_norm.bias": t("encoder/layer_norm/beta"),
    }
    for i in layer_ids:
        src, dst = f"encoder/layer_{i}", f"layers.{i}"
        qkv_w, qkv_b = t(f"{src}/self_attention/linear_0/weight"), t(f"{src}/self_attention/linear_0/bias")
        q_w, k_w, v_w = qkv_w.chunk(3, dim=0)
        q_b, _k_b, v_b = qkv_b.chunk(3, dim=0)
        state |= {
            f"{dst}.self_attn.q_proj.weight": q_w.contiguous(),
            f"{dst}.self_attn.q_proj.bias": q_b.contiguous(),
            f"{dst}.self_attn.k_proj.weight": k_w.contiguous(),
            f"{dst}.self_attn.v_proj.weight": v_w.contiguous(),
            f"{dst}.self_attn.v_proj.bias": v_b.contiguous(),
            f"{dst}.self_attn.out_proj.weight": t(f"{src}/self_attention/linear_1/weight"),
            f"{dst}.self_attn.out_proj.bias": t(f"{src}/self_attention/linear_1/bias"),
            f"{dst}.self_attn_layer_norm.weight": t(f"{src}/self_attention/layer_norm/gamma"),
            f"{dst}.self_attn_layer_norm.bias": t(f"{src}/self_attention/layer_norm/beta"),
            f"{dst}.fc1.weight": t(f"{src}/ffn/linear_0/weight"),
            f"{dst}.fc1.bias": t(f"{src}/ffn/linear_0/bias"),
            f"{dst}.fc2.weight": t(f"{src}/ffn/linear_1/weight"),
            f"{dst}.fc2.bias": t(f"{src}/ffn/linear_1/bias"),
            f"{dst}.final_layer_norm.weight": t(f"{src}/ffn/layer_norm/gamma"),
            f"{dst}.final_layer_norm.bias": t(f"{src}/ffn/layer_norm/beta"),
        }
    conv1 = state["conv1.weight"]
    dims = {
        "d_model": int(conv1.shape[0]),
        "num_mel_bins": int(conv1.shape[1]),
        "encoder_layers": len(layer_ids),
        "encoder_attention_heads": _scalar(model, "encoder/num_heads"),
        "encoder_ffn_dim": int(state["layers.0.fc1.weight"].shape[0]),
        "max_source_positions": int(state["embed_positions.weight"].shape[0]),
    }
    return state, dims
