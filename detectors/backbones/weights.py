"""Reading weight files and loading them into a module with shape errors that name the tensor."""
from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.backbones.errors import BackboneError, MissingWeights, WeightShapeMismatch

if TYPE_CHECKING:
    import torch

# HF folders name their weights one of these ways (single file or sharded with an index).
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HF_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def require_path(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise BackboneError(f"{path}: {what} not found (no such file or folder)")
    return path


def read_torch_pickle(path: str | Path, what: str, error: type[Exception] = BackboneError, *,
                      weights_only: bool = True) -> Any:
    """``torch.load`` of ``path`` onto the CPU; ``error`` names the file when it is missing or unreadable."""
    import torch

    path = Path(path)
    if not path.exists():
        raise error(f"{path}: {what} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise error(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from None


def _is_torchscript(path: Path) -> bool:
    # TorchScript archives (OpenAI's CLIP .pt files) are zips holding a constants.pkl / code/ folder.
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())


def read_weight_file(path: str | Path) -> dict[str, "torch.Tensor"]:
    """A flat ``name -> tensor`` dict from a safetensors, torch pickle or TorchScript file.

    Pickles are read with ``weights_only=True``: a checkpoint is data, never code.
    A dict that wraps the weights (``state_dict`` / ``model_state_dict`` / ``model``) is unwrapped.
    """
    import torch

    path = require_path(path, "weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    if _is_torchscript(path):
        import warnings

        # torch deprecates TorchScript, but OpenAI's CLIP checkpoints are published in it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            archive = torch.jit.load(str(path), map_location="cpu")
        return {k: v.detach() for k, v in archive.state_dict().items()}
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a weights file"
        raise BackboneError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc})") from exc
    for wrapper in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BackboneError(f"{path}: expected a state dict of tensors, found {type(obj).__name__}")
    return dict(obj)


def read_hf_folder_weights(folder: Path) -> dict[str, "torch.Tensor"]:
    """All tensors of a ``transformers`` checkpoint folder (single file or sharded)."""
    import json

    for name in HF_WEIGHT_FILES:
        if (folder / name).exists():
            return read_weight_file(folder / name)
    for name in HF_INDEX_FILES:
        if (folder / name).exists():
            shards = sorted(set(json.loads((folder / name).read_text())["weight_map"].values()))
            out: dict[str, torch.Tensor] = {}
            for shard in shards:
                out.update(read_weight_file(folder / shard))
            return out
    raise MissingWeights(f"{folder}: no weights file ({', '.join(HF_WEIGHT_FILES + HF_INDEX_FILES)})")


def strip_prefix(state: Mapping[str, "torch.Tensor"], prefixes: tuple[str, ...]) -> dict[str, "torch.Tensor"]:
    """Keep the tensors under the first prefix that any key has, with that prefix removed."""
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return dict(state)


def load_strict(
    module: "torch.nn.Module",
    state: Mapping[str, "torch.Tensor"],
    source: object,
    *,
    optional: tuple[str, ...] = (),
) -> None:
    """Load ``state`` into ``module``: every tensor must exist with the right shape.

    Raises ``WeightShapeMismatch`` for the first tensor (in the module's order)
    whose shape differs, ``MissingWeights`` for missing or unexpected names.
    ``optional`` names (e.g. non-persistent buffers) may be absent.
    """
    expected = module.state_dict()
    for name, tensor in expected.items():
        if name in state and tuple(state[name].shape) != tuple(tensor.shape):
            raise WeightShapeMismatch(source, name, tensor.shape, state[name].shape)
    missing = [n for n in expected if n not in state and n not in optional]
    if missing:
        raise MissingWeights(f"{source}: {len(missing)} weights missing, first {missing[0]!r}")
    unexpected = [n for n in state if n not in expected]
    if unexpected:
        raise MissingWeights(
            f"{source}: {len(unexpected)} weights the backbone has no place for, first {unexpected[0]!r}"
        )
    module.load_state_dict({k: v for k, v in state.items()}, strict=False)


def resolve_model_id(model_id: str, *, allow_download: bool, what: str) -> Path:
    """The local folder of a hub model id: from the HF cache, or downloaded only when allowed.

    Nothing downloads by default: an id missing from the cache is an error that
    tells the user to pass a local path instead.
    """
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            model_id,
            local_files_only=not allow_download,
            allow_patterns=["*.json", "*.safetensors", "*.bin"],
        )
    except Exception as exc:  # noqa: BLE001 - hub errors vary by version; all mean "not available"
        how = "download failed" if allow_download else "not in the local Hugging Face cache and downloads are off"
        raise BackboneError(
            f"{what} {model_id!r}: {how} ({type(exc).__name__}); pass a local folder or file instead"
        ) from exc
    return Path(folder)


_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def local_path_or_none(source: str | Path, *, what: str) -> Path | None:
    """``source`` as an existing local path, or None when it reads as a hub model id.

    Something that can only be a path (a ``Path`` object, an absolute / ``./`` /
    ``~`` path, a weights-file suffix, or more than one ``/``) but does not exist
    is an error naming it, rather than a confusing hub lookup.
    """
    path = Path(source).expanduser()
    if path.exists():
        return path
    text = str(source)
    if (
        isinstance(source, Path)
        or text.startswith(("/", ".", "~"))
        or text.endswith(_WEIGHT_SUFFIXES)
        or text.count("/") > 1
    ):
        require_path(path, what)
    return None


def skip_init():
    """Context in which ``transformers`` models skip random init (weights are loaded right after).

    Random init of a ViT-B is ~4 s on CPU, pure waste before a load. transformers
    keeps this switch in ``transformers.initialization``; where it is missing we
    just pay the init.
    """
    import contextlib

    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older / newer transformers without it
        return contextlib.nullcontext()
    return no_init_weights()


def instantiate(model_cls: type, config: Any, seed: int | None) -> Any:
    """``model_cls(config)`` in eval mode: random from ``seed``, or uninitialised (to be loaded into) without."""
    import torch

    if seed is None:
        with skip_init():
            return model_cls(config).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_cls(config).eval()
