"""``avdf detect``'s cached traces (detectors.traced): kept only when they score as the eager detector,
ignored when stale, read without importing the detector's code; the same scores either way."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detectors.baselines import VideoBaseline, VideoBaselineConfig
from detectors.registry import DETECTORS
from detectors.traced import TraceMismatch, load_traced, save_traced, trace_predict

TESTS = Path(__file__).parent


def _inputs(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"face": torch.randint(0, 255, (batch, 16, 3, 32, 32), generator=g, dtype=torch.uint8)}


class SizeDependent(VideoBaseline):
    """Scores a batch of two differently from any other: a branch a trace records for one size only."""

    name = "size-dependent"

    def forward(self, inputs):
        out = super().forward(inputs)
        if inputs["face"].shape[0] == 2:
            out = {k: v + 1.0 for k, v in out.items()}
        return out


def small(cls=VideoBaseline):
    torch.manual_seed(0)
    return cls(VideoBaselineConfig(frame_size=32, width=8, depth=2)).eval()


def test_a_trace_that_froze_a_branch_is_refused():
    model = small(SizeDependent)
    trace_predict(model, [_inputs(3), _inputs(5, seed=1)])  # the branch is never taken: equal
    with pytest.raises(TraceMismatch, match="batch 1: score differs"):
        trace_predict(model, [_inputs(3), _inputs(2, seed=1)])


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_stale_trace_is_ignored(tmp_path):
    model = small()
    path = save_traced(tmp_path / "t.pt", trace_predict(model, [_inputs(2), _inputs(3)]), model, "sha-a")
    assert load_traced(path, "sha-a") is not None
    assert load_traced(path, "sha-b") is None  # another checkpoint
    assert load_traced(tmp_path / "none.pt", "sha-a") is None
    from detectors.traced import _META  # the entry's record: change one version it was traced under

    files = {_META: ""}
    module = torch.jit.load(str(path), _extra_files=files)
    meta = json.loads(files[_META])
    torch.jit.save(module, str(tmp_path / "old.pt"),
                   _extra_files={_META: json.dumps({**meta, "versions": {**meta["versions"], "torch": "2.0.0"}})})
    assert load_traced(tmp_path / "old.pt", "sha-a") is None
    (tmp_path / "broken.pt").write_bytes(b"not a zip")
    assert load_traced(tmp_path / "broken.pt", "sha-a") is None


def test_a_trace_of_a_plugged_in_detector_goes_stale_when_its_code_changes(tmp_path, monkeypatch):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text("from detectors.baselines import VideoBaseline\n\n"
                      "class Mine(VideoBaseline):\n    name = 'mine'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = DETECTORS.get("my_plugin:Mine")
    model = small(cls)
    path = save_traced(tmp_path / "t.pt", trace_predict(model, [_inputs(2), _inputs(3)]), model, "sha")
    assert load_traced(path, "sha") is not None
    plugin.write_text(plugin.read_text() + "# changed\n")
    assert load_traced(path, "sha") is None


def test_a_cached_trace_loads_without_the_detectors_code(tmp_path):
    """The point of the cache: scoring a tiny CAD (CLIP + Whisper from transformers) imports torch only."""
    torch.manual_seed(0)
    cad = DETECTORS.get("cad").from_preset("tiny").eval()
    from test_detectors import make_batch  # the per-detector synthetic inputs

    batches = [make_batch(cad, torch.tensor(labels), seed)["inputs"] for seed, labels in enumerate(([0, 1], [1, 0, 1]))]
    save_traced(tmp_path / "cad.pt", trace_predict(cad, batches), cad, "sha")
    torch.save(batches[1], tmp_path / "inputs.pt")
    expected = cad.predict(batches[1])["score"]
    code = (
        "import sys, torch\n"
        "from detectors.traced import load_traced\n"
        f"traced = load_traced(__import__('pathlib').Path({str(tmp_path / 'cad.pt')!r}), 'sha')\n"
        f"scores = traced.predict(torch.load({str(tmp_path / 'inputs.pt')!r}))\n"
        f"torch.save(scores['score'], {str(tmp_path / 'out.pt')!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'whisper')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(TESTS)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert torch.equal(torch.load(tmp_path / "out.pt"), expected)


def test_detect_caches_a_trace_then_scores_with_it_and_says_so(tmp_path):
    """The first ``avdf detect`` with a checkpoint scores eagerly and caches the trace; the next one
    scores with the trace: the same scores, threshold and verdict. ``trace_max_mb: 0`` turns it off."""
    from loop_data import SyntheticSource

    from benchmark.detect import DetectParams, detect_video
    from detectors.baselines import AudioBaseline, AudioBaselineConfig
    from detectors.loop import LoopParams, fit
    from generators.synthetic import make_talking_clip
    from pipeline.preprocess import PreprocessParams

    model = AudioBaseline(AudioBaselineConfig(num_frames=16, width=8, depth=2))
    fit(model, SyntheticSource(n=8, frames=16), tmp_path / "run", LoopParams(epochs=1, device="cpu"), progress=False)
    checkpoint = tmp_path / "run" / "best.pt"
    clip = make_talking_clip(tmp_path / "talk.mp4", seconds=1.6, size=160)

    def detect(**params):
        return detect_video(clip, checkpoint, DetectParams(device="cpu", **params), PreprocessParams())

    first, second, off = detect(), detect(), detect(trace_max_mb=0)
    assert first["inference"].startswith("eager; traced for the next run") and "trace" in first["seconds"]
    assert second["inference"] == "traced (cached)" and off["inference"] == "eager"
    for result in (second, off):
        assert result["scores"] == first["scores"] and result["timeline"] == first["timeline"]
        assert (result["threshold"], result["threshold_source"], result["verdict"]) == (
            first["threshold"], first["threshold_source"], first["verdict"])
