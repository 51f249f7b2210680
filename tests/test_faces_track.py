"""Tracking (linking, main speaker, gaps) and aligned crops."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.faces import Face, make_face_backend
from pipeline.faces.base import eye_centres
from pipeline.faces.crops import EYE_Y, FACE_IOD, CropSizes, CropWriter, alignment_transforms, similarity
from pipeline.faces.track import link_tracks, track_faces


def face_at(x: float, y: float, side: float) -> Face:
    """A face whose 68 points are spread inside its box (enough for tracking, which only reads boxes)."""
    rng = np.random.default_rng(int(x * 7 + y * 13 + side))
    lm = np.column_stack([x + rng.uniform(0, side, 68), y + rng.uniform(0, side, 68)])
    return Face(box=np.array([x, y, x + side, y + side]), score=0.9, landmarks=lm)


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def mediapipe_backend():
    be = make_face_backend("mediapipe")
    yield be
    be.close()


def test_linking_follows_moving_faces_and_keeps_them_apart():
    dets = [[face_at(100 + 3 * t, 100, 80), face_at(400, 50 + 2 * t, 60)] for t in range(10)]
    tracks = link_tracks(dets)
    assert len(tracks) == 2
    assert all(len(tr.frames) == 10 for tr in tracks)
    assert tracks[0].faces[-1].box[0] == pytest.approx(127)


def test_persistent_face_beats_a_large_transient_one():
    dets = [[face_at(270, 130, 100)] + ([face_at(20, 20, 200)] if t < 4 else []) for t in range(40)]
    result = track_faces(dets, (640, 360))
    assert result.main_track == 0
    assert result.found.all()
    assert "more persistent" in result.reason
    assert len(result.tracks) == 2


def test_larger_central_face_beats_a_small_corner_face():
    dets = [[face_at(10, 10, 50), face_at(260, 120, 120)] for _ in range(20)]
    result = track_faces(dets, (640, 360))
    assert result.main_track == 1
    assert "larger" in result.reason and "more central" in result.reason
    assert result.boxes[0, 0] == pytest.approx(260, abs=1)


def test_gaps_are_interpolated_and_reported():
    dets: list = [[face_at(100 + 2 * t, 100, 80)] for t in range(30)]
    for t in range(10, 15):
        dets[t] = []
    dets[29] = []
    result = track_faces(dets, (640, 360), box_sigma=0)
    assert result.gaps == [(10, 15), (29, 30)]
    assert result.longest_gap == (10, 15)
    assert result.face_fraction == pytest.approx(24 / 30)
    # Linear interpolation across the gap, hold at the end.
    assert result.boxes[12, 0] == pytest.approx(124, abs=1e-3)
    assert result.boxes[29, 0] == pytest.approx(result.boxes[28, 0])
    assert result.summary()["frames_without_face"] == 6


def test_frames_skipped_by_detect_every_are_not_gaps():
    dets: list = [[face_at(100 + t, 100, 80)] if t % 3 == 0 or t == 19 else None for t in range(20)]
    result = track_faces(dets, (640, 360), box_sigma=0)
    assert result.gaps == []
    assert result.face_fraction == 1.0
    assert result.boxes[4, 0] == pytest.approx(104, abs=1e-3)


def test_no_detection_at_all():
    result = track_faces([[] for _ in range(5)], (64, 64))
    assert result.main_track is None and result.face_fraction == 0.0 and result.gaps == [(0, 5)]


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (6, 2))
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -7.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = similarity(src, src @ rot.T + shift)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


@pytest.mark.realmedia
def test_main_speaker_in_frames_with_two_real_faces(mediapipe_backend, shared_media: Path):
    """Two real still faces pasted into frames: the larger, central, persistent one is chosen."""
    import cv2

    still = shared_media / "still_face"
    big = cv2.resize(read_rgb(still / "wangsuzhen_Audio2Head__demo_img_obama.jpg"), (220, 220))
    small = cv2.resize(read_rgb(still / "yzhou359_MakeItTalk__examples_natalie.jpg"), (150, 150))
    frames = []
    for t in range(10):
        canvas = np.full((360, 640, 3), 90, np.uint8)
        canvas[10:160, 480 - 2 * t : 630 - 2 * t] = small  # top-right corner, drifting
        canvas[70 + t : 290 + t, 210:430] = big  # centre, drifting down
        frames.append(canvas)
    dets = [mediapipe_backend.detect(f) for f in frames]
    assert all(len(d) == 2 for d in dets), [len(d) for d in dets]
    result = track_faces(dets, (640, 360))
    assert len(result.tracks) == 2
    cx = (result.boxes[:, 0] + result.boxes[:, 2]) / 2
    assert np.all(np.abs(cx - 320) < 40), "the main track is the central face"
    assert "larger" in result.reason


@pytest.mark.realmedia
def test_crops_have_the_right_sizes_and_put_the_eyes_on_the_template(mediapipe_backend, shared_media: Path):
    import cv2

    img = read_rgb(shared_media / "still_face" / "OpenTalker_SadTalker__examples_source_image_people_0.png")
    # Rotate and shift the face so alignment has work to do.
    h, w = img.shape[:2]
    img = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 12, 0.8), (w, h))
    lm = mediapipe_backend.detect(img)[0].landmarks
    sizes = CropSizes()
    writer = CropWriter(np.stack([lm] * 3), sizes)
    for i in range(3):
        writer.add(i, img)
    assert writer.face.shape == (3, 224, 224, 3) and writer.face.dtype == np.uint8
    assert writer.face_gray.shape == (3, 112, 112)
    assert writer.mouth.shape == (3, 96, 96)
    # Detect again on the aligned crop: level eyes at the template positions.
    found = mediapipe_backend.detect(writer.face[0])
    assert found
    left, right = eye_centres(found[0].landmarks)
    assert abs(left[1] - right[1]) < 4
    assert left[1] == pytest.approx(EYE_Y * 224, abs=8)
    assert right[0] - left[0] == pytest.approx(FACE_IOD * 224, abs=10)
    # The mouth ROI centre (mouth-corner midpoint) lands where the template puts the mouth.
    _, mouth_centres = alignment_transforms(np.stack([lm]), sigma=0)
    assert mouth_centres[0] == pytest.approx([0.5, EYE_Y + FACE_IOD * 1.11], abs=0.06)


def test_crop_alignment_is_smoothed_over_time():
    rng = np.random.default_rng(1)
    base = face_at(100, 100, 100).landmarks
    noisy = np.stack([base + rng.normal(0, 2.0, base.shape) for _ in range(50)]).astype(np.float32)
    raw, _ = alignment_transforms(noisy, sigma=0)
    smooth, _ = alignment_transforms(noisy, sigma=2)
    assert np.std(np.diff(smooth[:, :, 2], axis=0)) < 0.5 * np.std(np.diff(raw[:, :, 2], axis=0))
