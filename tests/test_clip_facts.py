"""pipeline.clip_facts against hand-built arrays, and the loaders' ``facts`` modality over real shards.

Every expected value here is worked out by hand from how the arrays were built, never by the code under test.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import pipeline.clip_facts as clip_facts_module
from pipeline.clip_facts import FACT_GROUPS, FACTS, clip_facts

SR = 16000


def facts_of(arrays: dict, row: dict | None = None) -> dict[str, float]:
    return dict(zip(FACTS, clip_facts(arrays, row or {}).tolist()))


def tone(seconds: float, amplitude: float = 0.5, hz: float = 1000.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(int(round(seconds * SR))) / SR)).astype(np.float32)


def zeros(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SR)), np.float32)


def row_with_source(**source) -> dict:
    return {"extra": json.dumps({"preprocess": {"source": source}})}


def test_every_fact_is_defined_in_the_docstring_table_and_in_exactly_one_group():
    table = {m.group(2): m.group(1) for m in re.finditer(r"^(\S+)\s+(\w+)\s{2,}\S", clip_facts_module.__doc__, re.M)}
    assert set(FACTS) <= set(table), set(FACTS) - set(table)
    assert all(table[name] == group for group, names in FACT_GROUPS.items() for name in names)
    assert len(FACTS) == len(set(FACTS)) == sum(len(v) for v in FACT_GROUPS.values())


# --- silence --------------------------------------------------------------------------------------

def test_leading_and_trailing_digital_silence_around_a_tone():
    audio = np.concatenate([zeros(0.5), tone(1.0), zeros(0.25)])
    facts = facts_of({"audio": audio})
    assert facts["leading_silence_s"] == pytest.approx(0.5, abs=0.01)
    assert facts["trailing_silence_s"] == pytest.approx(0.25, abs=0.01)


def test_silence_is_relative_to_the_clip_loudest_frame():
    """Noise 50 dB under a loud tone is a pause; the same tone recorded 50 dB quieter is sound."""
    rng = np.random.default_rng(0)
    noise = (0.5 / np.sqrt(2) * 10 ** (-50 / 20) * rng.standard_normal(int(0.3 * SR))).astype(np.float32)
    loud = facts_of({"audio": np.concatenate([noise, tone(1.0), noise[: int(0.2 * SR)]])})
    assert loud["leading_silence_s"] == pytest.approx(0.3, abs=0.01)
    assert loud["trailing_silence_s"] == pytest.approx(0.2, abs=0.01)
    quiet = facts_of({"audio": np.concatenate([zeros(0.1), tone(1.0, amplitude=0.5 * 10 ** (-50 / 20))])})
    assert quiet["leading_silence_s"] == pytest.approx(0.1, abs=0.01)
    assert quiet["trailing_silence_s"] == pytest.approx(0.0, abs=0.01)


def test_a_clip_silent_throughout_is_silent_from_end_to_end():
    """Coding noise at -90 dBFS in a clip with no sound at all: the absolute floor makes it silence."""
    audio = (10 ** (-90 / 20) * np.random.default_rng(1).standard_normal(SR)).astype(np.float32)
    facts = facts_of({"audio": audio})
    assert facts["leading_silence_s"] == pytest.approx(1.0) and facts["trailing_silence_s"] == pytest.approx(1.0)


# --- duration and loudness --------------------------------------------------------------------------

def test_durations_count_frames_and_samples():
    facts = facts_of({"audio": zeros(1.7), "face_found": np.ones(40, bool), "boxes": np.zeros((40, 4), np.float32)})
    assert facts["video_duration_s"] == pytest.approx(1.6)  # 40 frames at 25 fps
    assert facts["audio_duration_s"] == pytest.approx(1.7)
    assert facts["av_array_mismatch_s"] == pytest.approx(0.1, abs=1e-6)


def test_loudness_of_full_scale_and_half_scale_sines():
    full = facts_of({"audio": tone(1.0, amplitude=1.0)})  # 1 kHz at 16 kHz: samples hit +-1 exactly
    assert full["rms_dbfs"] == pytest.approx(-3.0103, abs=0.01)  # 20 log10(1 / sqrt 2)
    assert full["peak_dbfs"] == pytest.approx(0.0, abs=0.01)
    half = facts_of({"audio": tone(1.0, amplitude=0.5)})
    assert half["rms_dbfs"] == pytest.approx(-9.0309, abs=0.01)  # -3.01 - 6.02
    assert half["peak_dbfs"] == pytest.approx(-6.0206, abs=0.01)


# --- container and av-sync (source facts recorded at preprocessing) ---------------------------------

def test_container_and_av_sync_facts_come_from_the_recorded_source():
    row = row_with_source(format="mov,mp4,m4a,3gp,3g2,mj2", video_codec="h264", audio_codec="speex",
                          bit_rate_kbps=900.5, video_bit_rate_kbps=800.0, audio_bit_rate_kbps=96.0, fps=29.97,
                          width=640, height=360, sample_rate=44100, channels=2,
                          video_start_s=0.1, audio_start_s=0.3, video_duration_s=2.0, audio_duration_s=2.1)
    facts = facts_of({"audio": zeros(1.0)}, row)
    assert (facts["bit_rate_kbps"], facts["video_bit_rate_kbps"], facts["audio_bit_rate_kbps"]) == \
        pytest.approx((900.5, 800.0, 96.0))
    assert (facts["source_fps"], facts["source_width"], facts["source_height"]) == pytest.approx((29.97, 640, 360))
    assert (facts["source_sample_rate"], facts["source_channels"]) == (44100, 2)
    # codes: 0 not recorded, 1 a name not listed, 2 + position in the list ("mov" and "h264" come first)
    assert (facts["container_code"], facts["video_codec_code"], facts["audio_codec_code"]) == (2, 2, 1)
    assert facts["av_start_offset_s"] == pytest.approx(0.2, abs=1e-6)
    assert facts["av_duration_diff_s"] == pytest.approx(0.1, abs=1e-6)


def test_missing_source_facts_are_zero_and_a_missing_start_is_not_a_zero_start():
    none = facts_of({"audio": zeros(1.0)}, {"extra": None})
    assert all(none[name] == 0 for name in FACT_GROUPS["container"] + ("av_start_offset_s", "av_duration_diff_s"))
    half = facts_of({"audio": zeros(1.0)}, row_with_source(audio_start_s=0.3, audio_codec="aac"))
    assert half["av_start_offset_s"] == 0 and half["audio_codec_code"] == 2 and half["video_codec_code"] == 0


# --- face box -----------------------------------------------------------------------------------------

def test_face_box_facts_use_found_frames_relative_to_the_source_frame():
    boxes = np.array([
        [45, 15, 75, 45],     # side 30, centre (60, 30)
        [80, 30, 120, 70],    # side 40, centre (100, 50)
        [115, 45, 165, 95],   # side 50, centre (140, 70)
        [0, 0, 200, 100],     # not found (interpolated): must not count
        [0, 0, 200, 100],
    ], np.float32)
    found = np.array([True, True, True, False, False])
    facts = facts_of({"boxes": boxes, "face_found": found}, row_with_source(width=200, height=100))
    assert facts["face_width_rel"] == pytest.approx(40 / 200)
    assert facts["face_height_rel"] == pytest.approx(40 / 100)
    assert facts["face_centre_x_rel"] == pytest.approx(100 / 200)
    assert facts["face_centre_y_rel"] == pytest.approx(50 / 100)
    assert facts["face_size_cv"] == pytest.approx(np.sqrt(200 / 3) / 40, rel=1e-5)  # SD of 30, 40, 50 / median


def test_no_face_no_audio_and_no_source_give_finite_zeros_without_crashing():
    arrays = {"audio": np.zeros(0, np.float32), "boxes": np.full((5, 4), np.nan, np.float32),
              "face_found": np.zeros(5, bool)}
    vector = clip_facts(arrays, row_with_source(width=200, height=100))
    assert vector.dtype == np.float32 and vector.shape == (len(FACTS),) and np.isfinite(vector).all()
    facts = dict(zip(FACTS, vector.tolist()))
    assert all(facts[name] == 0 for name in FACT_GROUPS["face-box"] + FACT_GROUPS["silence"])
    assert facts["rms_dbfs"] == facts["peak_dbfs"] == -120
    assert np.isfinite(clip_facts({}, {})).all()


# --- the loaders' facts modality ---------------------------------------------------------------------

CLIPS = [("studio/a-u1", 40, 0.5), ("studio/b-u1", 20, 0.0), ("studio/c-u1", 33, 0.25)]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.loading.synthetic import frame_indexed_arrays, write_synthetic_corpus
    from pipeline.shards import CropSizes, write_shards

    root = tmp_path_factory.mktemp("facts")
    clips = []
    for key, frames, lead in CLIPS:
        arrays = frame_indexed_arrays(frames, 16, 8, 8)
        arrays["boxes"] = np.tile(np.array([[20, 30, 60, 80]], np.float32), (frames, 1))
        arrays["audio"] = np.concatenate([zeros(lead), tone(frames / 25 - lead)])
        assert len(arrays["audio"]) == frames * 640
        clips.append({"key": key, "num_frames": frames, "arrays": arrays,
                      "extra": json.dumps({"preprocess": {"source": {"width": 100, "height": 100}}})})
    manifest = write_synthetic_corpus(root / "pre", clips, sizes=(16, 8, 8))
    write_shards(manifest, root / "shards", sizes=CropSizes(16, 8, 8), progress=False)
    return root / "shards"


def test_facts_alone_read_the_arrays_they_need():
    from pipeline.loaders import SegmentSpec

    assert set(SegmentSpec(modalities=("facts",)).arrays()) == {"audio", "boxes", "face_found"}
    assert SegmentSpec(modalities=("face", "facts")).arrays()[0] == "face"


def test_every_segment_of_a_clip_carries_its_facts(shards: Path):
    from pipeline.loaders import EvalLoader, SegmentSpec

    leads = {key: lead for key, _, lead in CLIPS}
    seen: dict[str, list] = {}
    for batch in EvalLoader(shards, SegmentSpec(num_frames=8, modalities=("facts", "face")), batch_size=4):
        facts = batch["inputs"]["facts"]
        assert facts.dtype.is_floating_point and facts.shape == (len(batch["meta"]["key"]), len(FACTS))
        assert "audio" not in batch["inputs"]  # read for the facts, not handed over
        for key, vector in zip(batch["meta"]["key"], facts.numpy()):
            seen.setdefault(key, []).append(vector)
    assert sorted(seen) == sorted(leads)
    lead = FACTS.index("leading_silence_s")
    for key, vectors in seen.items():
        assert len(vectors) > 1 and all(np.array_equal(v, vectors[0]) for v in vectors)
        assert vectors[0][lead] == pytest.approx(leads[key], abs=0.01)
        assert vectors[0][FACTS.index("face_width_rel")] == pytest.approx(0.4)  # boxes and the row's frame size


def test_facts_are_computed_once_per_clip_not_once_per_segment(shards: Path, monkeypatch):
    from collections import OrderedDict

    import pipeline.loading.reader as reader
    import pipeline.loading.segments as segments
    from pipeline.loaders import EvalLoader, SegmentSpec, TrainLoader

    calls: list[str] = []

    def counting(arrays, row):
        calls.append(row["key"])
        return clip_facts(arrays, row)

    monkeypatch.setattr(segments, "clip_facts", counting)
    monkeypatch.setattr(reader, "_parts", OrderedDict())  # forget what earlier tests read in this process
    spec = SegmentSpec(num_frames=8, modalities=("facts",))
    loader = TrainLoader(shards, spec, batch_size=4, segments_per_epoch=30, seed=3)
    for _ in range(2):  # two epochs, 60 segments of 3 clips
        assert sum(len(b["meta"]["key"]) for b in loader) == 30
    list(EvalLoader(shards, spec, batch_size=4))
    assert sorted(calls) == sorted(key for key, _, _ in CLIPS)
