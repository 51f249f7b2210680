"""Small and dark faces: a wide, dim shot whose face is a twentieth of the frame width (DFDC, KoDF, ...)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.faces import make_face_backend
from pipeline.faces.base import interocular
from pipeline.faces.mediapipe_backend import TILE_OVERLAP, TILE_SHARES, non_max_suppression, tile_grid
from pipeline.preprocess_clip import PreprocessOptions, preprocess_clip

# The whole-frame pass alone: the mediapipe backend as it was before tiles and dark crops.
WHOLE_FRAME_ONLY = {"tiles": False, "dark_luma": 0}
DFDC_CLIPS = ("abofeumbvv", "abqwwspghj")  # 1920x1080 DFDC face swaps; the first one dim, face ~110 px


def studio_face(identity: int) -> np.ndarray:
    """One 224 px frame of a studio-corpus identity (the face ~106 px wide, centred)."""
    from pipeline.studio.face import FaceRenderer
    from pipeline.studio.plan import plan_clips

    spec = plan_clips(10, 1, seed=0)[identity]
    renderer = FaceRenderer(spec.identity.face, spec.look, seed=1)
    return renderer.render(0.3, 1.0, 0.0, np.array([0, 0, 0, 0, 0, 1.0]))


def dim_wide_shot(face: np.ndarray, x: int, y: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 1920x1080 frame of a dim, cluttered room with ``face`` pasted so that the face is 96 px
    (1/20 of the width) wide at (x, y); returns the frame and the pasted square (x0, y0, x1, y1)."""
    import cv2

    rng = np.random.default_rng(seed)
    side = round(224 * 96 / 106)
    room = cv2.resize(rng.integers(40, 200, (9, 16, 3)).astype(np.uint8), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    room[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    # Under-exposed, with sensor noise: what a dim room gives a phone camera.
    frame = room.astype(np.float32) * 0.3 + rng.normal(0, 2, room.shape)
    return frame.clip(0, 255).astype(np.uint8), np.array([x, y, x + side, y + side], np.float32)


@pytest.fixture(scope="module")
def shots() -> list[tuple[np.ndarray, np.ndarray]]:
    # Darker- and lighter-skinned identities, at different places in the frame (one near a corner).
    return [dim_wide_shot(studio_face(0), 300, 200, 0), dim_wide_shot(studio_face(1), 1100, 500, 1),
            dim_wide_shot(studio_face(5), 1650, 820, 0)]


def test_tiles_cover_the_frame_with_overlap():
    for h, w in [(1080, 1920), (720, 1280), (1024, 640), (360, 640)]:
        for share in TILE_SHARES:
            tiles = tile_grid(h, w, share)
            cover = np.zeros((h, w), np.int32)
            for x, y, side in tiles:
                assert 0 <= x and x + side <= w and 0 <= y and y + side <= h
                cover[y : y + side, x : x + side] += 1
            assert cover.min() >= 1, (h, w, share)
            # Neighbours overlap by at least TILE_OVERLAP of a tile, so no face that small is ever cut in two.
            xs = sorted({x for x, _, _ in tiles})
            side = tiles[0][2]
            assert all(b - a <= side * (1 - TILE_OVERLAP) + 1 for a, b in zip(xs, xs[1:]))
    # Frames near the detector's input size are not tiled (nothing to gain).
    assert tile_grid(224, 224, min(TILE_SHARES)) == []


def test_overlapping_boxes_from_neighbouring_tiles_are_one_face():
    a = (np.array([100, 100, 200, 200], np.float32), 0.7)
    b = (np.array([110, 105, 205, 210], np.float32), 0.9)
    c = (np.array([500, 100, 600, 200], np.float32), 0.6)
    kept = non_max_suppression([a, b, c])
    assert [s for _, s in kept] == [0.9, 0.6]


def test_small_dark_face_found_where_the_whole_frame_pass_misses_it(shots):
    before = make_face_backend("mediapipe", **WHOLE_FRAME_ONLY)
    default = make_face_backend("mediapipe")
    try:
        for i, (frame, pasted) in enumerate(shots):
            assert before.detect(frame) == [], f"shot {i}: the whole-frame pass was meant to miss this face"
            faces = default.detect(frame)
            assert len(faces) == 1, f"shot {i}: {len(faces)} faces"
            lm = faces[0].landmarks
            x0, y0, x1, y1 = pasted
            cx, cy = lm[27:36].mean(0)  # the nose lies in the pasted face
            assert x0 < cx < x1 and y0 < cy < y1, (i, (cx, cy), pasted)
            # Eyes ~40 % of a 96 px face apart: landmarks at the face's scale, not a blob's.
            assert 25 < interocular(lm) < 55, (i, interocular(lm))
    finally:
        before.close()
        default.close()


def dfdc_clip(shared_media: Path, name: str) -> Path:
    path = shared_media / "fake" / f"aaronchong888_DeepFake-Detect__train_sample_videos_{name}.mp4"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.mark.realmedia
@pytest.mark.parametrize("name", DFDC_CLIPS)
def test_dfdc_wide_shots_keep_their_face(name: str, shared_media: Path, tmp_path: Path):
    """The default preprocessing finds the face of real 1080p DFDC face swaps in >= 90 % of frames."""
    summary = preprocess_clip(dfdc_clip(shared_media, name), tmp_path / "clip.npz", PreprocessOptions())
    assert summary["backend"]["name"] == "mediapipe"
    track = summary["track"]
    assert summary["face_fraction"] >= 0.9, track
    assert track["longest_gap_frames"] <= PreprocessOptions().max_gap_frames
    # No second face that persists: a false detection on the chest of the dim clip, once its
    # crop is landmarked with the real face above it, would make one in a fifth of the frames.
    others = [t for t in track["tracks"] if t["track"] != track["main_track"]]
    assert all(t["persistence"] < 0.1 for t in others), track
