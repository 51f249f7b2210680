"""LoRA via peft on the tiny backbones, and the frozen / trainable switches."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from detectors.backbones.clip import tiny_clip_vision  # noqa: E402
from detectors.backbones.errors import BackboneError  # noqa: E402
from detectors.backbones.lora import apply_lora, count_parameters, lora_parameter_names  # noqa: E402
from detectors.backbones.params import set_trainable  # noqa: E402
from detectors.backbones.whisper import encode, tiny_whisper_encoder  # noqa: E402


def test_lora_on_whisper_leaves_only_adapters_trainable_with_the_paper_rank():
    enc = tiny_whisper_encoder()
    mel = torch.randn(2, 80, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = encode(enc, mel, truncate=True)
    _, total_before = count_parameters(enc)
    same = apply_lora(enc, r=8, alpha=16)
    assert same is enc  # adapters are injected in place; detectors keep their module
    q = enc.layers[0].self_attn.q_proj
    assert q.r["default"] == 8 and q.lora_alpha["default"] == 16 and q.scaling["default"] == pytest.approx(2.0)
    trainable, total = count_parameters(enc)
    # 2 layers x (q_proj, v_proj) x r x (in + out) with d_model 64
    assert trainable == 2 * 2 * 8 * (64 + 64)
    assert total == total_before + trainable
    names = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert names == set(lora_parameter_names(enc)) and all("lora_" in n for n in names)
    assert not any("k_proj.lora" in n for n in names)
    with torch.no_grad():  # B starts at zero: the adapted model starts as the original
        assert torch.allclose(encode(enc, mel, truncate=True), before, atol=1e-6)


def test_lora_gradients_reach_only_adapters_on_clip():
    model = apply_lora(tiny_clip_vision(), r=4, alpha=8, target_modules=("q_proj", "k_proj", "v_proj", "out_proj"))
    model.train()
    out = model(pixel_values=torch.randn(1, 3, 224, 224)).pooler_output.sum()
    out.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad and all("lora_" in n for n in with_grad)
    assert any("lora_B" in n for n in with_grad)
    trainable, _ = count_parameters(model)
    assert trainable == 2 * 4 * 4 * (64 + 64)


def test_lora_rejects_unknown_targets():
    with pytest.raises(BackboneError, match="no module named 'query'"):
        apply_lora(tiny_whisper_encoder(), target_modules=("query",))


def test_set_trainable_switches_every_parameter():
    enc = tiny_whisper_encoder()
    set_trainable(enc, True)
    assert count_parameters(enc)[0] == count_parameters(enc)[1] > 0
    set_trainable(enc, False)
    assert count_parameters(enc)[0] == 0 and not enc.training
