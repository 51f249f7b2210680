"""Real talking-face clips from ../shared/media decode to 25 fps / 16 kHz with matching durations."""
import numpy as np
import pytest

from pipeline.media import SAMPLE_RATE, decode_audio, expected_frames, iter_frames, probe

pytestmark = pytest.mark.realmedia


def _clips(shared_media):
    clips = sorted((shared_media / "real_talking").glob("*.mp4"))
    if not clips:
        pytest.skip("no real talking clips")
    return clips


def test_real_clips_decode_to_25fps_16k(shared_media):
    for clip in _clips(shared_media):
        info = probe(clip)
        n = sum(1 for _ in iter_frames(clip, size=(64, 64), info=info))
        video_s = info.video.duration_s or info.duration_s
        assert abs(n - expected_frames(video_s)) <= 1, clip.name
        audio = decode_audio(clip)
        assert audio.dtype == np.float32
        assert abs(len(audio) / SAMPLE_RATE - info.audio.duration_s) <= 1 / 25, clip.name
        assert np.abs(audio).max() > 0.01, f"{clip.name}: silent"


def test_vfr_real_clip_is_flagged(shared_media):
    clip = shared_media / "real_talking" / "OpenTalker_video-retalking__examples_face_1.mp4"
    if not clip.exists():
        pytest.skip("VFR clip absent")
    assert probe(clip).video.vfr
