"""CLIP vision backbone: tiny config, HF folders, OpenAI-layout state dicts, presets, bad input."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from detectors.backbones.clip import CLIP_PRESETS, clip_vision_config, load_clip_vision, tiny_clip_vision  # noqa: E402
from detectors.backbones.errors import BackboneError, WeightShapeMismatch  # noqa: E402
from pipeline.errors import AvdfError  # noqa: E402


def _hf_to_openai(model) -> dict[str, torch.Tensor]:
    """Inverse of the loader's mapping, written independently: HF CLIPVisionModel -> OpenAI ``visual.*``."""
    sd = {k.removeprefix("vision_model."): v for k, v in model.state_dict().items()}
    out = {
        "visual.class_embedding": sd["embeddings.class_embedding"],
        "visual.conv1.weight": sd["embeddings.patch_embedding.weight"],
        "visual.positional_embedding": sd["embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": sd["pre_layrnorm.weight"], "visual.ln_pre.bias": sd["pre_layrnorm.bias"],
        "visual.ln_post.weight": sd["post_layernorm.weight"], "visual.ln_post.bias": sd["post_layernorm.bias"],
        # Parts of a real OpenAI checkpoint that a vision tower does not use:
        "visual.proj": torch.randn(sd["post_layernorm.weight"].shape[0], 16),
        "token_embedding.weight": torch.randn(10, 16),
        "logit_scale": torch.tensor(4.6),
    }
    for i in range(model.config.num_hidden_layers):
        h, o = f"encoder.layers.{i}.", f"visual.transformer.resblocks.{i}."
        out[o + "attn.in_proj_weight"] = torch.cat([sd[h + f"self_attn.{p}_proj.weight"] for p in "qkv"])
        out[o + "attn.in_proj_bias"] = torch.cat([sd[h + f"self_attn.{p}_proj.bias"] for p in "qkv"])
        for ours, theirs in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                             ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
            out[o + theirs + ".weight"] = sd[h + ours + ".weight"]
            out[o + theirs + ".bias"] = sd[h + ours + ".bias"]
    return {k: v.clone() for k, v in out.items()}


def _randomize_norms(model) -> None:
    # Fresh LayerNorms are ones/zeros; perturb them so a swapped weight/bias would show.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))


@pytest.fixture(scope="module")
def tiny():
    model = tiny_clip_vision(seed=3)
    _randomize_norms(model)
    return model


@pytest.fixture(scope="module")
def pixels():
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def _features(model, pixels):
    with torch.no_grad():
        return model(pixel_values=pixels).last_hidden_state


def test_tiny_is_deterministic_small_and_runs(pixels):
    a, b = load_clip_vision(tiny=True), load_clip_vision(tiny=True)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    out = _features(a, pixels)
    assert out.shape == (2, 1 + (224 // 32) ** 2, 64)
    assert torch.isfinite(out).all()
    assert sum(p.numel() for p in a.parameters()) < 1_000_000


def test_hf_folder_round_trip(tmp_path, tiny, pixels):
    tiny.save_pretrained(tmp_path / "clip")
    loaded = load_clip_vision(tmp_path / "clip")
    assert torch.equal(_features(loaded, pixels), _features(tiny, pixels))


def test_clipmodel_layout_state_dict_with_text_tower(tmp_path, tiny, pixels):
    # A CLIPModel checkpoint nests the tower under vision_model. and carries the text side too.
    state = {f"vision_model.{k}": v for k, v in tiny.state_dict().items()}
    state |= {"text_model.embeddings.token_embedding.weight": torch.randn(10, 8), "logit_scale": torch.tensor(1.0),
              "vision_model.embeddings.position_ids": torch.arange(50)[None]}
    torch.save(state, tmp_path / "clip_hf.pt")
    loaded = load_clip_vision(tmp_path / "clip_hf.pt", config_overrides={"num_attention_heads": 4})
    assert torch.allclose(_features(loaded, pixels), _features(tiny, pixels), atol=1e-6)


def test_openai_state_dict_converts_to_the_same_model(tmp_path, tiny, pixels):
    torch.save(_hf_to_openai(tiny), tmp_path / "ViT-tiny.pt")
    loaded = load_clip_vision(tmp_path / "ViT-tiny.pt", config_overrides={"num_attention_heads": 4})
    assert loaded.config.patch_size == 32 and loaded.config.image_size == 224
    assert loaded.config.num_hidden_layers == 2 and loaded.config.hidden_act == "quick_gelu"
    assert torch.allclose(_features(loaded, pixels), _features(tiny, pixels), atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_openai_torchscript_archive_loads(tmp_path, tiny, pixels):
    # OpenAI's clip package publishes TorchScript archives; make one holding the same parameter names.
    class Holder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Holder()
    for name, value in _hf_to_openai(tiny).items():
        *parents, leaf = name.split(".")
        mod = root
        for part in parents:
            if not hasattr(mod, part):
                mod.add_module(part, torch.nn.Module())
            mod = getattr(mod, part)
        mod.register_parameter(leaf, torch.nn.Parameter(value))
    torch.jit.save(torch.jit.script(root), str(tmp_path / "ViT-tiny-jit.pt"))
    loaded = load_clip_vision(tmp_path / "ViT-tiny-jit.pt", config_overrides={"num_attention_heads": 4})
    assert torch.allclose(_features(loaded, pixels), _features(tiny, pixels), atol=1e-5)


def test_paper_presets():
    assert clip_vision_config("ViT-B/16").patch_size == 16
    assert clip_vision_config("ViT-B/32").patch_size == 32
    for preset in CLIP_PRESETS.values():
        assert preset["hidden_size"] == 768 and preset["num_hidden_layers"] == 12 and preset["image_size"] == 224


def test_weights_of_another_variant_name_the_first_mismatched_tensor(tmp_path):
    # B/16-shaped patch embedding (tiny width) loaded where a /32 config is asked for.
    patch16 = tiny_clip_vision(patch_size=16)
    torch.save(_hf_to_openai(patch16), tmp_path / "p16.pt")
    with pytest.raises(WeightShapeMismatch) as err:
        load_clip_vision(tmp_path / "p16.pt", config_overrides={"num_attention_heads": 4, "patch_size": 32})
    assert err.value.name == "embeddings.patch_embedding.weight"
    assert err.value.expected == (64, 3, 32, 32) and err.value.got == (64, 3, 16, 16)
    assert "embeddings.patch_embedding.weight" in str(err.value) and "p16.pt" in str(err.value)
    assert isinstance(err.value, AvdfError)


def test_tiny_weights_against_a_paper_preset_fail_clearly(tmp_path, tiny):
    torch.save(_hf_to_openai(tiny), tmp_path / "tiny.pt")
    with pytest.raises(WeightShapeMismatch, match="embeddings.class_embedding.*\\[64\\].*\\[768\\]"):
        load_clip_vision(tmp_path / "tiny.pt", preset="ViT-B/32")
    tiny.save_pretrained(tmp_path / "folder")
    with pytest.raises(BackboneError, match="preset ViT-B/16"):
        load_clip_vision(tmp_path / "folder", preset="ViT-B/16")


def test_missing_path_and_uncached_id_are_clear(tmp_path, monkeypatch):
    with pytest.raises(BackboneError, match="not found") as err:
        load_clip_vision(tmp_path / "nope" / "clip.pt")
    assert "nope" in str(err.value)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match="local folder or file"):
        load_clip_vision("someone/clip-vit-nonexistent")


def test_frozen_and_trainable(tmp_path):
    frozen = load_clip_vision(tiny=True)
    assert not any(p.requires_grad for p in frozen.parameters())
    trainable = load_clip_vision(tiny=True, frozen=False)
    assert all(p.requires_grad for p in trainable.parameters())
    with pytest.raises(BackboneError):
        load_clip_vision()
    with pytest.raises(BackboneError, match="unknown CLIP preset"):
        load_clip_vision(preset="ViT-H/14")
