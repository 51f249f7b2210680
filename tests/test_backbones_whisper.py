"""Whisper encoder backbone: openai-whisper checkpoints, HF folders, log-mel, truncated windows, bad input."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
whisper_model = pytest.importorskip("whisper.model")

from detectors.backbones.errors import BackboneError, WeightShapeMismatch  # noqa: E402
from detectors.backbones.whisper import (  # noqa: E402
    encode,
    load_whisper_encoder,
    log_mel,
    tiny_whisper_encoder,
    write_hf_whisper_folder,
)

DIMS = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=4, n_audio_layer=2,
            n_vocab=64, n_text_ctx=8, n_text_state=64, n_text_head=4, n_text_layer=1)
SEGMENT_SAMPLES = 10_240  # 16 frames at 25 fps, AVPrompt's audio window


def _openai_whisper(dims: dict) -> "whisper_model.Whisper":
    torch.manual_seed(1)
    model = whisper_model.Whisper(whisper_model.ModelDimensions(**dims)).eval()
    with torch.no_grad():  # fresh LayerNorms are ones/zeros; perturb so a swapped weight/bias would show
        for name, p in model.encoder.named_parameters():
            if "ln" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def openai_model():
    return _openai_whisper(DIMS)


@pytest.fixture(scope="module")
def openai_ckpt(tmp_path_factory, openai_model):
    path = tmp_path_factory.mktemp("ow") / "tiny-whisper.pt"
    torch.save({"dims": dataclasses.asdict(openai_model.dims), "model_state_dict": openai_model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def speechlike():
    t = np.arange(16_000 * 2) / 16_000
    rng = np.random.default_rng(0)
    return (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_openai_checkpoint_matches_openai_encoder(openai_ckpt, openai_model, speechlike):
    ours = load_whisper_encoder(openai_ckpt)
    assert ours.config.d_model == 64 and ours.config.encoder_layers == 2 and ours.config.encoder_attention_heads == 4
    mel = log_mel(speechlike)[None]
    with torch.no_grad():
        theirs = openai_model.encoder(mel)
        mine = encode(ours, mel)
    assert mine.shape == theirs.shape == (1, 1500, 64)
    assert torch.allclose(mine, theirs, atol=1e-4)


def test_truncated_window_slices_positional_embeddings(openai_ckpt, openai_model, speechlike):
    """32 encoder positions from 10,240 samples, equal to an openai encoder built for a 32-position context."""
    ours = load_whisper_encoder(openai_ckpt)
    mel = log_mel(speechlike[:SEGMENT_SAMPLES], pad_to_30s=False)
    assert mel.shape == (80, 64)
    with torch.no_grad():
        mine = encode(ours, mel, truncate=True)
    assert mine.shape == (1, 32, 64)
    short = whisper_model.Whisper(whisper_model.ModelDimensions(**DIMS | {"n_audio_ctx": 32})).eval()
    state = openai_model.state_dict()
    state["encoder.positional_embedding"] = state["encoder.positional_embedding"][:32]
    short.load_state_dict(state)
    with torch.no_grad():
        assert torch.allclose(mine, short.encoder(mel[None]), atol=1e-4)


def test_truncated_encode_of_the_full_window_is_the_normal_forward(speechlike):
    enc = tiny_whisper_encoder()
    mel = log_mel(np.stack([speechlike, speechlike[::-1].copy()]))
    assert mel.shape == (2, 80, 3000)
    with torch.no_grad():
        assert torch.allclose(encode(enc, mel, truncate=True), encode(enc, mel), atol=1e-5)
    with pytest.raises(BackboneError, match="3000 mel frames"):
        encode(enc, mel[..., :64])
    with pytest.raises(BackboneError, match="multiple of 2"):
        encode(enc, mel[..., :63], truncate=True)


def test_log_mel_matches_transformers_feature_extractor(speechlike):
    from transformers import WhisperFeatureExtractor

    ref = WhisperFeatureExtractor(feature_size=80)(speechlike, sampling_rate=16_000, return_tensors="np").input_features[0]
    ours = log_mel(speechlike).numpy()
    assert ours.shape == ref.shape == (80, 3000)
    assert np.abs(ours - ref).max() < 1e-3
    # Batched rows are normalised independently: a quiet row does not change a loud one.
    batch = log_mel(np.stack([speechlike, 0.01 * speechlike]))
    assert torch.allclose(batch[0], log_mel(speechlike), atol=1e-6)


@pytest.mark.parametrize("pad_to_30s", [True, False])
def test_log_mel_is_openai_whispers_bit_for_bit(speechlike, pad_to_30s):
    """``log_mel`` computes Whisper's features itself (importing the whisper package costs 0.15 s at
    every process start); they must be openai-whisper's, to the bit, padded or not, 80 or 128 bands."""
    from whisper.audio import N_SAMPLES, log_mel_spectrogram, pad_or_trim

    audio = torch.as_tensor(speechlike[:N_SAMPLES - 12_345] if pad_to_30s else speechlike[:10_240])
    for n_mels in (80, 128):
        ref = log_mel_spectrogram(pad_or_trim(audio) if pad_to_30s else audio, n_mels=n_mels)
        assert torch.equal(log_mel(audio, n_mels=n_mels, pad_to_30s=pad_to_30s), ref)


def test_hf_folder_round_trip(tmp_path, speechlike):
    enc = tiny_whisper_encoder(seed=5)
    write_hf_whisper_folder(enc, tmp_path / "hf")
    loaded = load_whisper_encoder(tmp_path / "hf")
    mel = log_mel(speechlike[:SEGMENT_SAMPLES], pad_to_30s=False)
    with torch.no_grad():
        assert torch.equal(encode(loaded, mel, truncate=True), encode(enc, mel, truncate=True))


def test_tiny_is_deterministic_and_frozen_by_default():
    a, b = load_whisper_encoder(tiny=True), load_whisper_encoder(tiny=True)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not any(p.requires_grad for p in a.parameters())
    trainable = load_whisper_encoder(tiny=True, frozen=False)
    assert any(p.requires_grad for p in trainable.parameters())


def test_checkpoint_of_another_size_names_the_first_mismatched_tensor(openai_ckpt):
    with pytest.raises(WeightShapeMismatch) as err:
        load_whisper_encoder(openai_ckpt, preset="base")
    assert err.value.name == "conv1.weight"
    assert err.value.expected == (512, 80, 3) and err.value.got == (64, 80, 3)
    assert "conv1.weight" in str(err.value) and "tiny-whisper.pt" in str(err.value)


def test_bad_sources_are_clear(tmp_path, monkeypatch):
    with pytest.raises(BackboneError, match="not found"):
        load_whisper_encoder(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneError, match="junk.pt"):
        load_whisper_encoder(tmp_path / "junk.pt")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match="local folder or file"):
        load_whisper_encoder("openai/whisper-nonexistent")
    with pytest.raises(BackboneError, match="unknown Whisper preset"):
        load_whisper_encoder(preset="huge")
