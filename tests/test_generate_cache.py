"""The cache the tasks of one ``avdf generate`` run share (``generators.cache``): the same fakes, made
with each face detected once and FakeAVCeleb's voice-converted clip made once per target.

The tasks run in this process through the real worker (mediapipe, ffmpeg, the built-in generators);
the face backend is wrapped to count what it is asked to detect, and the generators to count calls.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from generators.cache import StageCache, cache_dir
from generators.face_geometry import shared_face_backend
from generators.stage import GenerateParams, plan
from generators.synthetic import talking_corpus
from generators.worker import GenerateWorker
from pipeline.atomic import sha256_file
from pipeline.manifest import write_manifest
from pipeline.media import SAMPLE_RATE, decode_audio


class CountingBackend:
    """The real face backend, counting the frames it is given."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.calls = 0

    def detect(self, frame: np.ndarray):
        self.calls += 1
        return self.backend.detect(frame)

    def describe(self) -> dict:
        return self.backend.describe()


class CountingGenerator:
    """A built generator, counting its calls (attributes pass through to it)."""

    def __init__(self, generator) -> None:
        self.generator = generator
        self.calls = 0

    def __getattr__(self, name: str):
        return getattr(self.generator, name)

    def __call__(self, *args, **kw):
        self.calls += 1
        return self.generator(*args, **kw)


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> list:
    """One target forged as CMDFD wav2lip (cross and self audio) and in all five FakeAVCeleb categories."""
    root = tmp_path_factory.mktemp("gen_cache") / "corpus"
    write_manifest(talking_corpus(root, identities=2, utterances=1, seconds=0.6, size=112), root / "manifest.parquet")
    from pipeline.manifest import read_clips

    clips = read_clips(root / "manifest.parquet")
    params = GenerateParams(min_voiced_fraction=0.3, max_targets=1, cmdfd_methods={"wav2lip": "wav2lip"},
                            methods_per_target={"cmdfd": None, "fakeavceleb": None})
    cache = StageCache(cache_dir(root / "planned"))
    out = plan("cmdfd", clips, root, params, cache) + plan("fakeavceleb", clips, root, params, cache)
    # The clear-speech check left the real clips' audio in the cache, as decode_audio gives it.
    for c in clips:
        assert np.array_equal(cache.decoded("audio", root / c.path, _never, SAMPLE_RATE), decode_audio(root / c.path))
    return out


def _run(tasks: list, out: Path, cache: bool, worker: GenerateWorker | None = None, suffix: str = ""):
    """Every task through ``worker`` (a new one by default), into ``out/<corpus><suffix>``;
    returns (sha256 per key, the worker, how many frames it gave the face backend)."""
    if worker is None:
        worker = GenerateWorker(cache=cache)
        backend = CountingBackend(shared_face_backend("mediapipe"))
        for name in sorted({s.generator for t in tasks for s in t.steps}):
            gen = worker.generator(name)
            gen._backend = backend
            worker._generators[name] = CountingGenerator(gen)
    backend = next(iter(worker._generators.values())).generator._backend
    before = backend.calls
    shas = {t.key: worker(t.to_item(), out / (t.key.split("/")[0] + suffix))["sha256"] for t in tasks}
    return shas, worker, backend.calls - before


@pytest.mark.slow  # 40 s (make acceptance)
def test_shared_cache_makes_the_same_fakes_without_repeating_work(tasks, tmp_path):
    assert len(tasks) == 7 and sum(len(t.steps) > 1 for t in tasks) == 3  # three start with the same voice step
    reference, plain, plain_detections = _run(tasks, tmp_path / "plain", cache=False)
    assert not cache_dir(tmp_path / "plain").exists()

    shas, worker, detections = _run(tasks, tmp_path / "run", cache=True)
    assert shas == reference  # the same bytes
    assert 0 < detections < plain_detections
    # The voice-converted clip that FVFA-FS, FVFA-GAN and FVFA-WL start from was made once (+ RVFA's own).
    assert worker._generators["voice"].calls == 2 and plain._generators["voice"].calls == 4

    # The same tasks again in the same run (other output folders beside the first, one cache): every
    # face was detected already and every intermediate clip is there, so no frame is detected again.
    again, worker, detections = _run(tasks, tmp_path / "run", cache=True, worker=worker, suffix="-again")
    assert again == reference and detections == 0
    assert worker._generators["voice"].calls == 2 + 1  # only RVFA's TTS voice, a final output


def _never() -> np.ndarray:
    raise AssertionError("computed, though it was kept")


def test_cached_entries_are_whole_and_keyed_by_content(tmp_path):
    cache = StageCache(tmp_path / "cache", max_video_bytes=1000)
    a, b, c = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "c.bin"
    a.write_bytes(b"one")
    b.write_bytes(b"one")
    c.write_bytes(b"two")
    samples = np.arange(4, dtype=np.float32)
    assert cache.decoded("audio", a, lambda: samples, SAMPLE_RATE) is samples
    # Same content under another name: kept; other settings or content: computed.
    assert np.array_equal(cache.decoded("audio", b, _never, SAMPLE_RATE), samples)
    assert cache.decoded("audio", b, lambda: samples[:2], 8000).shape == (2,)
    assert cache.decoded("audio", c, lambda: samples[:1], SAMPLE_RATE).shape == (1,)
    # Decoded videos are kept up to the size budget only.
    cache.decoded("video", a, lambda: np.zeros(600, np.uint8), 25, None)
    cache.decoded("video", c, lambda: np.ones(600, np.uint8), 25, None)
    assert cache.decoded("video", a, _never, 25, None).sum() == 0
    assert cache.decoded("video", c, lambda: np.full(600, 2, np.uint8), 25, None).max() == 2
    # Detections merge with what another task stored meanwhile; no face is remembered as None.
    lm = np.ones((68, 2), np.float32)
    cache.store_detections("k", {0: lm, 2: None})
    cache.store_detections("k", {4: 2 * lm})
    got = cache.load_detections("k")
    assert sorted(got) == [0, 2, 4] and got[2] is None and np.array_equal(got[4], 2 * lm)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.startswith(".")]  # no temporary left
    # audio x3 (a = b, b at 8 kHz, c), video x1, detections x1
    assert Counter(p.suffix for p in (tmp_path / "cache").rglob("*") if p.is_file()) == {".npz": 5}
    assert sha256_file(a) == cache.file_id(a)
