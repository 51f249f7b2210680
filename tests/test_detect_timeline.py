"""``avdf detect --timeline`` / ``--localisation-json``: where each scored segment lies, without a model."""
from __future__ import annotations

import json

import pytest

import benchmark.detect as detect
from benchmark.cli import main
from benchmark.localisation_io import read_proposals
from benchmark.timeline import TimelineRow, as_proposals, segment_timeline
from pipeline.loading.segments import SegmentSpec


def test_non_overlapping_16_frame_segments_at_25_fps():
    # 40 frames: segments at frames 0 and 16 (frames 32..39 make no full segment and are not scored).
    starts = SegmentSpec(num_frames=16).eval_starts(40)
    assert starts == [0, 16]
    rows = segment_timeline(starts, 16, 40, [0.2, 0.9])
    assert rows == [TimelineRow(0.0, 0.64, 0.2), TimelineRow(0.64, 1.28, 0.9)]


def test_a_short_clip_ends_at_its_last_frame_and_overlap_follows_the_hop():
    # 10 frames < one segment: the one (padded) segment covers the clip's 10 real frames, 0.4 s.
    assert segment_timeline([0], 16, 10, [0.7]) == [TimelineRow(0.0, 0.4, 0.7)]
    # A hop of 8: segments overlap by half.
    starts = SegmentSpec(num_frames=16, hop=8).eval_starts(32)
    assert segment_timeline(starts, 16, 32, [0.1, 0.2, 0.3]) == [
        TimelineRow(0.0, 0.64, 0.1), TimelineRow(0.32, 0.96, 0.2), TimelineRow(0.64, 1.28, 0.3)]
    with pytest.raises(ValueError, match="2 segment starts but 1 scores"):
        segment_timeline([0, 16], 16, 40, [0.5])


def test_proposals_keep_segment_order_until_written():
    rows = [TimelineRow(0.0, 0.64, 0.2), TimelineRow(0.64, 1.28, 0.9)]
    assert as_proposals(rows) == [(0.2, 0.0, 0.64), (0.9, 0.64, 1.28)]


def fake_result(video: str) -> dict:
    return {
        "video": video, "detector": "spy", "scores": {"score": 0.55}, "verdict": "fake", "threshold": 0.5,
        "threshold_source": "default", "segments": 3, "duration_s": 1.96, "face_fraction": 1.0, "repairs": [],
        "notes": [], "seconds": {"load": 0.0, "preprocess": 0.0, "score": 0.0, "total": 0.0},
        "timeline": [{"start_s": 0.0, "end_s": 0.64, "score": 0.25}, {"start_s": 0.64, "end_s": 1.28, "score": 0.85},
                     {"start_s": 1.28, "end_s": 1.92, "score": 0.55}],
    }


def test_cli_prints_rows_and_writes_the_videos_localisation_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(detect, "detect_video", lambda video, *a, **k: fake_result(str(video)))
    out = tmp_path / "loc.json"
    video = tmp_path / "clips" / "000001.mp4"
    assert main(["--params", str(tmp_path / "none.yaml"), "detect", str(video), "--checkpoint", "c.pt",
                 "--timeline", "--localisation-json", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-4:] == ["start_s\tend_s\tscore", "0.00\t0.64\t0.2500", "0.64\t1.28\t0.8500", "1.28\t1.92\t0.5500"]
    # Keyed by the file name, highest score first: the order AV-Deepfake1M's scorer ranks by.
    assert json.loads(out.read_text()) == {"000001.mp4": [[0.85, 0.64, 1.28], [0.55, 1.28, 1.92], [0.25, 0.0, 0.64]]}
    assert read_proposals(out)["000001.mp4"][0] == (0.85, 0.64, 1.28)


def test_cli_without_the_options_prints_no_timeline(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(detect, "detect_video", lambda video, *a, **k: fake_result(str(video)))
    assert main(["--params", str(tmp_path / "none.yaml"), "detect", "v.mp4", "--checkpoint", "c.pt"]) == 0
    assert "start_s" not in capsys.readouterr().out
    assert not list(tmp_path.iterdir())
