"""Shortcut probes: registered per fact group, scaled as documented, able to catch a non-monotone shortcut,
and, trained and evaluated through the benchmark's own train and evaluate on real shards, finding a
leading-silence shortcut planted in a corpus while staying at chance where silence says nothing."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from detectors.loop import BatchSource, LoopParams, fit
from detectors.probes import SCALING, ShortcutProbe
from detectors.registry import DETECTORS
from pipeline.clip_facts import FACT_GROUPS, FACTS
from pipeline.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_one_registered_probe_per_fact_group_with_identical_presets():
    for group in FACT_GROUPS:
        cls = DETECTORS.get(f"probe-{group}")
        assert issubclass(cls, ShortcutProbe) and cls.GROUP == group and cls.name == f"probe-{group}"
        assert cls.PRESETS["tiny"] == cls.PRESETS["paper"] == {"group": group}
        assert cls.from_preset("tiny").inputs.modalities == ("facts",)
    assert set(SCALING) == set(FACTS)


def test_a_probe_reads_only_its_own_group():
    with pytest.raises(ConfigError, match="probe-loudness"):
        DETECTORS.get("probe-silence").from_preset("tiny", group="loudness")
    with pytest.raises(ValueError, match="facts have 3 values"):
        DETECTORS.get("probe-silence").from_preset("tiny")({"facts": torch.zeros(2, 3)})


def test_facts_are_scaled_as_documented():
    facts = torch.zeros(1, len(FACTS))
    facts[0, FACTS.index("bit_rate_kbps")] = 99.0
    facts[0, FACTS.index("audio_codec_code")] = 5.0
    facts[0, FACTS.index("rms_dbfs")] = -30.0
    facts[0, FACTS.index("peak_dbfs")] = 0.0
    container = dict(zip(FACT_GROUPS["container"], DETECTORS.get("probe-container").from_preset().scaled(facts)[0]))
    assert float(container["bit_rate_kbps"]) == pytest.approx(math.log(100) - 5)  # log1p(99) - 5
    assert float(container["video_bit_rate_kbps"]) == -5.0  # not recorded: log1p(0) - 5
    assert float(container["audio_codec_code"]) == pytest.approx((5 - 2) / 2)
    loudness = DETECTORS.get("probe-loudness").from_preset().scaled(facts)[0]
    assert loudness.tolist() == pytest.approx([0.0, 3.0])  # (dBFS + 30) / 10


class FactsSource(BatchSource):
    """In-memory facts: fakes' overall bitrate in a narrow band, reals' on both sides of it."""

    def __init__(self, n_train: int = 512, n_val: int = 128) -> None:
        self.train = self._items(n_train, seed=1, prefix="train")
        self.val = self._items(n_val, seed=2, prefix="val")

    @staticmethod
    def _items(n: int, seed: int, prefix: str) -> dict:
        g = torch.Generator().manual_seed(seed)
        labels = torch.arange(n) % 2
        low = torch.rand(n, generator=g) < 0.5
        real_rate = torch.where(low, 30 + 50 * torch.rand(n, generator=g), 130 + 270 * torch.rand(n, generator=g))
        fake_rate = 95 + 10 * torch.rand(n, generator=g)
        facts = torch.rand(n, len(FACTS), generator=g)  # every other fact: noise, the same for both classes
        facts[:, FACTS.index("bit_rate_kbps")] = torch.where(labels.bool(), fake_rate, real_rate)
        return {"inputs": {"facts": facts}, "targets": {"label": labels, "video_fake": labels, "audio_fake": labels},
                "meta": {"key": [f"{prefix}/c{i}" for i in range(n)]}}

    @staticmethod
    def _batches(data: dict, order: list[int], size: int):
        for i in range(0, len(order), size):
            idx = order[i:i + size]
            yield {part: {k: v[torch.tensor(idx)] if torch.is_tensor(v) else [v[j] for j in idx]
                          for k, v in values.items()}
                   for part, values in data.items()}

    def train_epoch(self, epoch, rank, world_size):
        order = torch.randperm(len(self.train["meta"]["key"]), generator=torch.Generator().manual_seed(epoch))
        return self._batches(self.train, order.tolist(), 32)

    def validation(self):
        return self._batches(self.val, list(range(len(self.val["meta"]["key"]))), 64)


def test_a_narrow_bitrate_band_is_caught(tmp_path):
    """Fakes at 95-105 kbit/s, reals at 30-80 or 130-400: no threshold on the bitrate separates them, the
    hidden layer does."""
    torch.manual_seed(0)
    model = DETECTORS.get("probe-container").from_preset("tiny")
    params = LoopParams(**{**ShortcutProbe.TRAIN, "epochs": 20, "device": "cpu"})
    metrics = fit(model, FactsSource(), tmp_path, params, progress=False)
    assert metrics["best_val_auc"] >= 0.9, metrics


# --- the shortcut planted in real shards, found through avdf train + avdf evaluate -------------------

SR, FRAMES, VIDEOS = 16000, 40, 40
LEAD_S = 0.5


def _speech_like(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Noise under a syllable-rate envelope that never falls silent."""
    t = np.arange(int(round(seconds * SR))) / SR
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 2 * np.pi))
    return (envelope * rng.standard_normal(len(t))).astype(np.float32)


def _audio(rng: np.random.Generator, lead_s: float) -> np.ndarray:
    """A clip's audio: ``lead_s`` of digital silence, then speech; the whole clip at a level drawn from one
    distribution whatever ``lead_s`` is (so the silence, not the loudness, tells clips apart)."""
    audio = np.concatenate([np.zeros(int(lead_s * SR), np.float32), _speech_like(rng, FRAMES / 25 - lead_s)])
    level = 10 ** (rng.uniform(-35, -20) / 20)
    return (audio * level / np.sqrt(np.mean(audio.astype(np.float64) ** 2))).astype(np.float32)


def _face_boxes(rng: np.random.Generator) -> np.ndarray:
    x0, y0, side = rng.uniform(40, 80), rng.uniform(20, 50), rng.uniform(60, 90)
    jitter = rng.normal(0, 1.5, (FRAMES, 4))
    return (np.array([x0, y0, x0 + side, y0 + side]) + jitter).astype(np.float32)


def silence_corpus(root: Path, planted: bool) -> Path:
    """Studio-shaped shards: one real and one FakeAVCeleb-style fake per video, equal in duration, level and face
    box. ``planted``: every fake starts with 0.5 s of silence, no real does. Otherwise each video draws a
    lead (0 or 0.5 s) that its real and its fake share: silence varies, but says nothing about the label, so a
    probe doing better than chance there would be reading the label from something else (a leak)."""
    from pipeline.loading.synthetic import frame_indexed_arrays, write_synthetic_corpus
    from pipeline.shards import CropSizes, write_shards

    rng = np.random.default_rng(7)
    source = {"preprocess": {"source": {"width": 200, "height": 160}}}
    clips = []
    for v in range(VIDEOS):
        shared_lead = LEAD_S * rng.integers(0, 2)
        for fake in (False, True):
            arrays = frame_indexed_arrays(FRAMES, 16, 8, 8)
            arrays["audio"] = _audio(rng, (LEAD_S if fake else 0.0) if planted else shared_lead)
            arrays["boxes"] = _face_boxes(rng)
            common = dict(num_frames=FRAMES, identity=f"p{v:02d}", video_id=f"p{v:02d}-v1",
                          ethnicity=f"group-{'abcde'[v % 5]}", gender="female" if v % 2 else "male", arrays=arrays)
            if fake:
                clips.append(dict(key=f"studio-fakeavceleb/p{v:02d}-u1--x/wav2lip", video_fake=True, method="wav2lip",
                                  extra=json.dumps({"recipe": "fakeavceleb", **source}), **common))
            else:
                clips.append(dict(key=f"studio/p{v:02d}-u1", extra=json.dumps(source), **common))
    manifest = write_synthetic_corpus(root / "corpus", clips, sizes=(16, 8, 8))
    write_shards(manifest, root / "shards", sizes=CropSizes(16, 8, 8), progress=False)
    return root / "shards"


def train_and_score(detector: str, shards: Path, out: Path) -> dict:
    """``avdf train`` then ``avdf evaluate`` on the studio random split: the test fold's overall metrics."""
    from benchmark.evaluate import EvaluateParams, evaluate_checkpoint
    from benchmark.train import train
    from detectors.training import TrainParams

    params = TrainParams(loop={"epochs": 15, "device": "cpu"}, segments_per_clip=1)
    train(detector, "studio-intra-random", shards, out / "run", params, progress=False)
    (metrics_path,) = evaluate_checkpoint(out / "run" / "best.pt", shards, out / "eval",
                                          EvaluateParams(bootstrap=500, device="cpu"))
    return json.loads(metrics_path.read_text())["metrics"]["overall"]


def test_probe_silence_finds_planted_leading_silence_and_nothing_where_silence_says_nothing(tmp_path):
    planted = train_and_score("probe-silence", silence_corpus(tmp_path / "planted", planted=True), tmp_path / "p")
    assert planted["n_real"] >= 10 and planted["n_fake"] >= 10, planted
    assert planted["auc"] >= 0.9, planted

    shared = train_and_score("probe-silence", silence_corpus(tmp_path / "shared", planted=False), tmp_path / "s")
    assert shared["n_real"] >= 10 and shared["n_fake"] >= 10, shared
    assert 0.35 <= shared["auc"] <= 0.65, shared
    assert shared["ci"]["auc"]["low"] <= 0.5 <= shared["ci"]["auc"]["high"], shared
