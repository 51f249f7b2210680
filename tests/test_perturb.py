"""Perturbations checked against their definitions (DeeperForensics-1.0's for video), not
against the code under test: BT.601 and studio-range YCbCr, Gaussian kernels and bilinear
resizes written out here, SNRs, spectra and click positions measured here."""
from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import AvdfError, ConfigError, MediaError
from pipeline.media import SAMPLES_PER_FRAME, decode_audio, decode_video, read_tags, write_mp4
from pipeline.perturb import (
    ALL_SPECS,
    DEFAULT_SPECS,
    PerturbSpec,
    PerturbSpecError,
    apply_audio,
    apply_video,
    parse_spec,
    perturb_file,
    resolve,
)
from pipeline.perturb.video import block_positions, pixelation_size

SR = 16000
# DeeperForensics-1.0, perturbation/add_distortion_to_video.py, get_distortion_parameter.
DF_TABLE = {
    "CS": [0.4, 0.3, 0.2, 0.1, 0.0],
    "CC": [0.85, 0.725, 0.6, 0.475, 0.35],
    "BW": [16, 32, 48, 64, 80],
    "GNC": [0.001, 0.002, 0.005, 0.01, 0.05],
    "GB": [7, 9, 13, 17, 21],
    "JPEG": [2, 3, 4, 5, 6],
    "VC": [30, 32, 35, 38, 40],
}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def bt601(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-range BT.601 Y, Cb - 128, Cr - 128 of 0..255 RGB."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return y, (b - y) * 0.564, (r - y) * 0.713


def speechlike(n: int, seed: int = 0) -> np.ndarray:
    """Tones whose frequency jumps every 50 ms: broadband enough, and no two lags correlate alike."""
    freqs = np.repeat(rng(seed).uniform(200, 2000, n // 800 + 1), 800)[:n]
    return (0.3 * np.sin(2 * np.pi * np.cumsum(freqs) / SR)).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    clean = clean.astype(np.float64)
    return 10 * np.log10(np.sum(clean**2) / np.sum((noisy.astype(np.float64) - clean) ** 2))


# ---------------------------------------------------------------- specs


def test_levels_are_deeperforensics_values():
    for kind, values in DF_TABLE.items():
        assert [PerturbSpec(kind, lv).value for lv in range(1, 6)] == values


@pytest.mark.parametrize(
    "text, kind, level, canonical",
    [
        ("GB:3", "GB", 3, "GB:3"),
        ("gnc:5", "GNC", 5, "GNC:5"),
        ("mp3:32", "mp3", 32, "mp3:32"),
        ("snr:10", "snr", 10, "snr:10"),
        ("offset:+2", "offset", 2, "offset:+2"),
        ("offset:-5", "offset", -5, "offset:-5"),
        ("band:8", "band", 8, "band:8"),
        ("mixed-5", "mixed", 5, "mixed-5"),
        ("mixed", "mixed", None, "mixed"),
        ("none", "none", None, "none"),
    ],
)
def test_parse(text, kind, level, canonical):
    spec = parse_spec(text)
    assert (spec.kind, spec.level, str(spec)) == (kind, level, canonical)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("GBX:3", "did you mean 'GB'"),
        ("blur:3", "unknown perturbation"),
        ("GB:6", "levels: 1, 2, 3, 4, 5"),
        ("GB", "no level None"),
        ("mp3:48", "levels: 64, 32, 16"),
        ("offset:3", "levels: -5, -2, +2, +5"),
        ("snr:ten", "not an integer"),
        ("mixed-3", "no level 3"),
    ],
)
def test_bad_specs_say_what_is_wrong(text, needle):
    with pytest.raises(PerturbSpecError, match=re.escape(needle)) as info:
        parse_spec(text)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, AvdfError)


def test_all_specs_and_default_subset():
    assert len(ALL_SPECS) == len(set(ALL_SPECS)) == 1 + 7 * 5 + (5 + 3 * 3 + 1 + 4) + 2
    assert all(parse_spec(str(s)) == s for s in ALL_SPECS)
    assert set(DEFAULT_SPECS) <= set(ALL_SPECS)
    names = {str(s) for s in DEFAULT_SPECS}
    assert {"none", "snr:10", "mp3:32"} <= names
    assert {f"{k}:{lv}" for k in DF_TABLE for lv in (1, 3, 5)} <= names


def test_mixed_modes_draw_from_the_seed():
    drawn5 = [resolve(PerturbSpec("mixed", 5), rng(s)) for s in range(200)]
    assert {d.level for d in drawn5} == {5}
    assert {d.kind for d in drawn5} == set(DF_TABLE)  # VC included, as in DF's random type
    drawn = [resolve(PerturbSpec("mixed"), rng(s)) for s in range(200)]
    assert {d.level for d in drawn} == {1, 2, 3, 4, 5}
    assert resolve(PerturbSpec("mixed"), rng(7)) == resolve(PerturbSpec("mixed"), rng(7))
    plain, r = PerturbSpec("GB", 2), rng(3)
    assert resolve(plain, r) == plain and r.integers(1 << 30) == rng(3).integers(1 << 30)  # drew nothing


# ---------------------------------------------------------------- video (DF's definitions)


@pytest.mark.parametrize("level", range(1, 6))
def test_colour_saturation_scales_bt601_chroma(level):
    factor = DF_TABLE["CS"][level - 1]
    colours = np.array([[200, 80, 40], [30, 160, 220], [250, 250, 10], [90, 90, 90]], np.uint8)
    frames = np.broadcast_to(colours[:, None, None, :], (4, 16, 16, 3)).copy()
    out = apply_video(frames, "CS", level, rng())
    y0, cb0, cr0 = bt601(frames)
    y1, cb1, cr1 = bt601(out)
    # Truncation to uint8 moves each channel by < 1: luma kept, chroma times the factor.
    assert np.abs(y1 - y0).max() <= 1.0
    assert np.abs(cb1 - factor * cb0).max() <= 1.0 and np.abs(cr1 - factor * cr0).max() <= 1.0
    # In RGB: Y + factor (RGB - Y), truncated. DF's chroma pivot sits 0.002 off neutral, which
    # can take a value just under an integer (a grey 90 becomes 89): hence the 0.01 slack.
    expected = y0[..., None] + factor * (frames - y0[..., None])
    assert np.all((out <= expected + 0.01) & (out >= expected - 1.01))


def test_colour_contrast_is_a_truncated_scale():
    frame = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    for level, factor in enumerate(DF_TABLE["CC"], start=1):
        out = apply_video(frame[None], "CC", level, rng())[0]
        exact = np.array([int(Fraction(v) * Fraction(str(factor))) for v in range(256)])  # floor, exactly
        assert np.array_equal(out[..., 0].ravel(), exact), level


@pytest.mark.parametrize("level", range(1, 6))
def test_block_wise_count_and_painting(level):
    per_256 = DF_TABLE["BW"][level - 1]
    frames = np.zeros((2, 512, 512, 3), np.uint8)
    positions = block_positions(512, 512, per_256, rng(level))
    assert len(positions) == per_256 * (512 // 256)
    out = apply_video(frames, "BW", level, rng(level))
    expected = np.zeros((512, 512), bool)
    for x, y in positions:
        expected[y : y + 8, x : x + 8] = True
    assert np.array_equal(np.all(out[0] == 128, axis=-1), expected)
    assert np.array_equal(out[0][~expected], np.zeros(((~expected).sum(), 3), np.uint8))
    assert not np.array_equal(out[0], out[1])  # positions redrawn every frame, as DF's loop does


def test_block_wise_sizes_and_bounds():
    # min(h, w) // 256 first: below 256 px no block at all; 256..511 px one unit.
    assert len(block_positions(255, 4000, 80, rng())) == 0
    assert len(block_positions(256, 300, 16, rng())) == 16
    assert len(block_positions(767, 2000, 16, rng())) == 32
    # DF's randint(0, w - 1 - 8) is inclusive: corners span [0, w - 9] x [0, h - 9].
    r = rng(1)
    corners = np.concatenate([block_positions(256, 264, 80, r) for _ in range(60)])
    assert corners[:, 0].min() == 0 and corners[:, 0].max() == 264 - 9
    assert corners[:, 1].min() == 0 and corners[:, 1].max() == 256 - 9


@pytest.mark.parametrize("level", [1, 2, 3])
def test_gaussian_noise_variance_in_studio_ycbcr(level):
    variance = DF_TABLE["GNC"][level - 1]
    frames = np.full((4, 64, 64, 3), 128, np.uint8)  # mid-grey: little clipping up to level 3
    out = apply_video(frames, "GNC", level, rng(level))
    for clean, noisy, span in zip(bt601(frames), bt601(out), (219, 224, 224)):
        # Studio-range 8-bit YCbCr over 255: Y' = (16 + 219 Y / 255) / 255, chroma alike with 224.
        measured = np.var((noisy - clean) * span / 255 / 255)
        assert measured == pytest.approx(variance, rel=0.05)


def _gaussian_blur_by_definition(frame: np.ndarray, k: int) -> np.ndarray:
    sigma, r = k / 6, k // 2
    kernel = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    x = np.pad(frame.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="reflect")  # OpenCV's reflect-101
    x = sum(kernel[i] * x[i : i + frame.shape[0]] for i in range(k))
    return sum(kernel[i] * x[:, i : i + frame.shape[1]] for i in range(k))


@pytest.mark.parametrize("level", range(1, 6))
def test_gaussian_blur_kernel_and_sigma(level):
    k = DF_TABLE["GB"][level - 1]
    frame = rng(level).integers(0, 256, (48, 56, 3), dtype=np.uint8)
    out = apply_video(frame[None], "GB", level, rng())[0]
    # OpenCV's uint8 path rounds a fixed-point kernel: within 1.5 levels (a sigma 10% off is
    # 3+ levels away). The kernel size itself barely shows at k >= 17: with sigma = k / 6 the
    # weights it cuts off are under half a level.
    assert np.abs(out - _gaussian_blur_by_definition(frame, k)).max() <= 1.5


def _bilinear(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize with pixel centres at +0.5 and edges clamped (OpenCV's INTER_LINEAR), rounded."""

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), pos - lo

    y0, y1, fy = axis(img.shape[0], h)
    x0, x1, fx = axis(img.shape[1], w)
    img = img.astype(np.float64)
    rows = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    return np.round(out).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("level", range(1, 6))
def test_pixelation_steps_down_and_up(level):
    factor = DF_TABLE["JPEG"][level - 1]
    frame = rng(level).integers(0, 256, (64, 70, 3), dtype=np.uint8)
    assert pixelation_size(64, 70, factor) == (64 // factor, 70 // factor)
    out = apply_video(frame[None], "JPEG", level, rng())[0]
    small = _bilinear(frame, 64 // factor, 70 // factor)
    assert out.shape == frame.shape
    assert np.abs(out.astype(int) - _bilinear(small, 64, 70)).max() <= 2  # two fixed-point rounds


def test_video_compression_acts_at_the_encode_only():
    frames = rng().integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert apply_video(frames, "VC", 3, rng()) is frames
    with pytest.raises(PerturbSpecError):
        apply_video(frames, "VC", 0, rng())


@pytest.mark.parametrize("kind", ["BW", "GNC"])
def test_random_video_kinds_follow_the_seed(kind):
    frames = np.full((2, 256, 256, 3), 60, np.uint8)
    a, b = apply_video(frames, kind, 2, rng(1)), apply_video(frames, kind, 2, rng(1))
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != apply_video(frames, kind, 2, rng(2)).tobytes()


# ---------------------------------------------------------------- audio


@pytest.mark.parametrize("level", [30, 20, 10, 5, 0])
def test_white_noise_at_the_snr(level):
    clean = speechlike(SR)
    noisy = apply_audio(clean, "snr", level, rng(level))
    assert noisy.dtype == np.float32 and len(noisy) == len(clean)
    assert snr_db(clean, noisy) == pytest.approx(level, abs=0.5)
    spectrum = np.abs(np.fft.rfft(noisy - clean)) ** 2  # white: as much power below as above 4 kHz
    half = len(spectrum) // 2
    assert spectrum[:half].sum() / spectrum[half:].sum() == pytest.approx(1.0, rel=0.1)
    assert noisy.tobytes() == apply_audio(clean, "snr", level, rng(level)).tobytes()
    assert noisy.tobytes() != apply_audio(clean, "snr", level, rng(level + 1)).tobytes()


def _lag(reference: np.ndarray, other: np.ndarray, span: int = 2000) -> int:
    mid = slice(4000, len(reference) - 4000)
    window = reference[mid].astype(np.float64)
    return max(range(-span, span + 1), key=lambda d: float(np.dot(window, other[4000 + d : len(reference) - 4000 + d])))


def test_codec_round_trips_keep_length_and_alignment():
    clean = speechlike(SR + 123, seed=1)  # not a whole number of codec frames
    outs = {}
    for codec in ("mp3", "aac", "opus"):
        out = apply_audio(clean, codec, 32, rng())
        assert out.dtype == np.float32 and len(out) == len(clean), codec
        assert _lag(clean, out) == 0, codec  # encoder delay and AAC's priming removed
        assert 3 < snr_db(clean, out) < 60, codec  # lossy, but the same sound
        outs[codec] = out
    assert len({o.tobytes() for o in outs.values()}) == 3
    # The bitrate is honoured: fewer bits, more coding error.
    assert snr_db(clean, apply_audio(clean, "mp3", 16, rng())) < snr_db(clean, apply_audio(clean, "mp3", 64, rng()))


def test_band_limit_removes_energy_above_4k():
    clean = rng(5).standard_normal(SR + 1).astype(np.float32)
    out = apply_audio(clean, "band", 8, rng())
    assert len(out) == len(clean)
    freqs = np.fft.rfftfreq(len(clean), 1 / SR)
    before, after = (np.abs(np.fft.rfft(x)) ** 2 for x in (clean, out))
    high, low = freqs > 4500, freqs < 3500
    assert 10 * np.log10(after[high].sum() / before[high].sum()) < -40
    assert 10 * np.log10(after[low].sum() / before[low].sum()) == pytest.approx(0, abs=0.5)


@pytest.mark.parametrize("frames", [-5, -2, 2, 5])
def test_offset_moves_a_click_by_whole_frames(frames):
    assert SAMPLES_PER_FRAME == 640
    clean = np.zeros(SR, np.float32)
    clean[8000] = 1.0
    out = apply_audio(clean, "offset", frames, rng())
    assert len(out) == len(clean)
    assert int(np.argmax(out)) == 8000 + frames * 640 and out.sum() == 1.0
    loud = apply_audio(np.ones(SR, np.float32), "offset", frames, rng())
    pad = slice(0, frames * 640) if frames > 0 else slice(SR + frames * 640, SR)
    assert np.all(loud[pad] == 0) and loud.sum() == SR - abs(frames) * 640  # silence in the gap


# ---------------------------------------------------------------- files


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """1 s of moving 64x64 colour with a 16 kHz speech-like track."""
    y, x = np.mgrid[0:64, 0:64]
    frames = np.stack([np.stack([(x * 4 + 9 * t) % 256, (y * 4) % 256, (x + y + 5 * t) % 256], -1) for t in range(25)])
    return write_mp4(tmp_path / "src.mp4", frames.astype(np.uint8), speechlike(SR, seed=2))


def _sei_crf(path: Path) -> float:
    """The CRF x264 wrote into the stream's SEI options string."""
    match = re.search(rb"x264 - core .*? crf=([0-9.]+)", path.read_bytes(), re.S)
    assert match, "no x264 SEI in the stream"
    return float(match.group(1))


def test_video_perturbation_file_keeps_lengths_and_records(clip: Path, tmp_path: Path):
    dst = tmp_path / "cc.mp4"
    prov = perturb_file(clip, dst, parse_spec("CC:5"), seed=3)
    src_v, out_v = decode_video(clip), decode_video(dst)
    assert out_v.shape == src_v.shape
    assert len(decode_audio(dst)) == len(decode_audio(clip)) == SR
    # The perturbation reached the file: CC's floor(0.35 v), within the re-encode's error.
    assert out_v.mean() == pytest.approx(np.floor(0.35 * src_v).mean(), abs=1.5)
    assert _sei_crf(dst) == 18.0 == prov["encoder"]["crf"]
    assert prov["spec"] == "CC:5" and (prov["kind"], prov["level"], prov["value"], prov["seed"]) == ("CC", 5, 0.35, 3)
    assert prov["drawn"] is None and prov["num_frames"] == 25 and prov["num_samples"] == SR
    assert json.loads(read_tags(dst)["avdf_perturbation"]) == prov


def test_video_compression_writes_the_crf(clip: Path, tmp_path: Path):
    dst = tmp_path / "vc.mp4"
    prov = perturb_file(clip, dst, parse_spec("VC:3"), seed=0)
    assert _sei_crf(dst) == 35.0 and prov["encoder"]["crf"] == 35
    assert b"subme=7" in dst.read_bytes()  # libx264's default preset (medium), as DF's plain ffmpeg call
    assert len(decode_video(dst)) == 25 and len(decode_audio(dst)) == SR
    assert prov["definition"].endswith("distortions.py:video_compression")
    assert json.loads(read_tags(dst)["avdf_perturbation"]) == prov


def test_audio_perturbation_file(clip: Path, tmp_path: Path):
    dst = tmp_path / "snr.mp4"
    prov = perturb_file(clip, dst, parse_spec("snr:0"), seed=4)
    src_a, out_a = decode_audio(clip), decode_audio(dst)
    assert len(out_a) == len(src_a) and len(decode_video(dst)) == 25
    assert snr_db(src_a, out_a) == pytest.approx(0, abs=1.0)  # the noise, through the final AAC encode
    assert (prov["kind"], prov["value"], prov["num_samples"]) == ("snr", 0, SR)


def test_mixed_file_records_the_draw_and_same_seed_same_bytes(clip: Path, tmp_path: Path):
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    spec = parse_spec("mixed")
    seed = next(s for s in range(100) if resolve(spec, rng(s)).kind in ("GNC", "BW"))  # a random kind
    prov = perturb_file(clip, a, spec, seed)
    drawn = resolve(spec, rng(seed))
    assert prov["drawn"] == {"kind": drawn.kind, "level": drawn.level}
    assert (prov["spec"], prov["kind"], prov["level"]) == ("mixed", drawn.kind, drawn.level)
    perturb_file(clip, b, spec, seed)
    assert a.read_bytes() == b.read_bytes()
    perturb_file(clip, c, PerturbSpec("GNC", 2), seed)
    perturb_file(clip, b, PerturbSpec("GNC", 2), seed + 1)
    assert c.read_bytes() != b.read_bytes()


def test_audio_kind_on_a_silent_film_is_refused(make_clip, tmp_path: Path):
    src = make_clip("mute.mp4", duration=0.4, size="64x64", audio=False)
    with pytest.raises(MediaError, match="no audio stream to apply mp3:32"):
        perturb_file(src, tmp_path / "out.mp4", parse_spec("mp3:32"), seed=0)
    prov = perturb_file(src, tmp_path / "gb.mp4", parse_spec("GB:1"), seed=0)
    assert prov["num_samples"] is None and len(decode_video(tmp_path / "gb.mp4")) == 10
