"""Face backends: the factory, offline model loading, faces + 68 common landmarks on real faces."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError, RegistryError
from pipeline.faces import FACE_BACKENDS, Face, make_face_backend
from pipeline.faces.base import LEFT_EYE, MOUTH, RIGHT_EYE, interocular
from pipeline.faces.insightface_backend import default_root, resolve_pack
from pipeline.media import iter_frames

OFFLINE_BACKENDS = ["mediapipe", "dlib"]


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path))
    assert img is not None, path
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module", params=OFFLINE_BACKENDS)
def backend(request):
    be = make_face_backend(request.param)
    yield be
    be.close()


@pytest.fixture(scope="module")
def still_faces(shared_media: Path) -> list[Path]:
    paths = sorted(p for p in (shared_media / "still_face").iterdir() if p.suffix in {".jpg", ".png"})
    assert paths
    return paths


def check_plausible_face(face: Face, shape: tuple[int, ...]) -> None:
    h, w = shape[:2]
    lm = face.landmarks
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    assert np.isfinite(lm).all()
    assert (lm[:, 0] > -0.1 * w).all() and (lm[:, 0] < 1.1 * w).all()
    assert (lm[:, 1] > -0.1 * h).all() and (lm[:, 1] < 1.1 * h).all()
    # The layout's geometry: image-left eye left of the image-right eye, both above the mouth.
    left, right, mouth = lm[LEFT_EYE].mean(0), lm[RIGHT_EYE].mean(0), lm[MOUTH].mean(0)
    assert left[0] < right[0]
    assert mouth[1] > max(left[1], right[1])
    assert interocular(lm) > 10
    x0, y0, x1, y1 = face.box
    assert x1 > x0 and y1 > y0 and face.score >= 0  # dlib HOG margins are not capped at 1
    cx, cy = lm[27:36].mean(0)  # the nose lies inside the box
    assert x0 <= cx <= x1 and y0 <= cy <= y1


def test_unknown_backend_says_what_exists():
    with pytest.raises(RegistryError, match=r"unknown face_backend 'mediapip'.*did you mean 'mediapipe'"):
        make_face_backend("mediapip")


def test_bad_backend_options_are_a_config_error():
    with pytest.raises(ConfigError, match="bad options"):
        make_face_backend("mediapipe", no_such_option=1)
    with pytest.raises(ConfigError, match="tiles must be true or false"):
        make_face_backend("mediapipe", tiles="no")  # a YAML typo must not silently mean True
    with pytest.raises(ConfigError, match="detector must be 'hog' or 'mmod'"):
        make_face_backend("dlib", detector="cnn")


def test_builtin_backends_are_registered():
    assert {"mediapipe", "dlib", "insightface"} <= set(FACE_BACKENDS.names())


def test_insightface_without_pack_explains_where_to_put_it(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"model pack 'buffalo_l' not found.*models/buffalo_l.*never downloads"):
        make_face_backend("insightface", root=tmp_path)
    # An empty folder named like a pack is no pack either.
    (tmp_path / "models" / "buffalo_l").mkdir(parents=True)
    with pytest.raises(ConfigError, match="not found"):
        make_face_backend("insightface", root=tmp_path)
    assert not any((tmp_path / "models").glob("*.zip")), "nothing may be downloaded"


def test_insightface_pack_without_68_point_model_is_refused(tmp_path: Path):
    pack = tmp_path / "models" / "det_only"
    pack.mkdir(parents=True)
    (pack / "det_10g.onnx").write_bytes(b"not a real model")
    with pytest.raises(ConfigError, match="no 68-point landmark model"):
        make_face_backend("insightface", pack="det_only", root=tmp_path)


@pytest.mark.realmedia
def test_insightface_with_a_local_pack(still_faces: list[Path]):
    try:
        resolve_pack("buffalo_l")
    except ConfigError:
        pytest.skip(f"no local insightface pack under {default_root()}/models/buffalo_l")
    be = make_face_backend("insightface")
    img = read_rgb(still_faces[0])
    faces = be.detect(img)
    assert faces
    check_plausible_face(faces[0], img.shape)


def test_the_mediapipe_backend_leaves_pyplot_unloaded_until_it_is_used():
    """mediapipe imports pyplot for drawing; the backend defers pyplot's code (0.2-0.3 s of a cold
    ``avdf detect``) to its first use, which must still work in the same process."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipeline.faces import make_face_backend\n"
        "make_face_backend('mediapipe')\n"
        "print('matplotlib.figure' in sys.modules)\n"
        "import matplotlib.pyplot as plt\n"
        "print('matplotlib.figure' in sys.modules)\n"
        "fig, ax = plt.subplots(); ax.plot([0, 1]); print(type(fig).__name__, len(ax.lines))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["False", "False", "Figure 1"]


def test_face_rejects_wrong_landmark_count():
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        Face(box=np.zeros(4), score=1.0, landmarks=np.zeros((5, 2)))


def test_no_face_in_a_flat_image(backend):
    assert backend.detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_no_face_in_a_test_pattern(make_clip):
    """ffmpeg's test pattern holds a blob the whole-frame detector takes for a small face (one frame of
    the 96 px pattern, score 0.52) and the landmark model's own face-presence check lets through: a face
    the detector saw that small must be found again in its crop, and this one is not."""
    backend = make_face_backend("mediapipe")
    try:
        faces = [backend.detect(frame) for frame in iter_frames(make_clip("pattern.mp4", duration=0.4, size="96x96"))]
    finally:
        backend.close()
    assert len(faces) == 10 and not any(faces)


def test_bad_frame_is_refused(backend):
    with pytest.raises(ValueError, match="uint8 RGB frame"):
        backend.detect(np.zeros((64, 64), np.uint8))


@pytest.mark.realmedia
def test_every_offline_backend_finds_real_still_faces(backend, still_faces: list[Path]):
    for path in still_faces:
        img = read_rgb(path)
        faces = backend.detect(img)
        assert len(faces) >= 1, f"{backend.name} found no face in {path.name}"
        check_plausible_face(max(faces, key=lambda f: f.area), img.shape)


@pytest.mark.realmedia
def test_every_offline_backend_finds_faces_in_real_talking_clips(backend, shared_media: Path):
    clips = sorted((shared_media / "real_talking").glob("*.mp4"))
    # A 224 px VoxCeleb-style crop and a 720p medium shot.
    chosen = [c for c in clips if "PC-AVS__misc_Audio_Source_00086" in c.name or "HyperLips__test_video1" in c.name]
    assert len(chosen) == 2
    for clip in chosen:
        for i, frame in enumerate(iter_frames(clip)):
            if i >= 8:
                break
            faces = backend.detect(frame)
            assert faces, f"{backend.name}: no face in frame {i} of {clip.name}"
            check_plausible_face(max(faces, key=lambda f: f.area), frame.shape)


@pytest.mark.realmedia
def test_mediapipe_mapping_agrees_with_dlib_68_points(still_faces: list[Path]):
    """The mesh->68 mapping puts eyes and lips where dlib's predictor does (within a few % of the IOD)."""
    mp_be, dl_be = make_face_backend("mediapipe"), make_face_backend("dlib")
    errors = []
    for path in still_faces:
        img = read_rgb(path)
        a, b = mp_be.detect(img)[0].landmarks, dl_be.detect(img)[0].landmarks
        errors.append(np.linalg.norm(a - b, axis=1) / interocular(b))
    err = np.mean(errors, axis=0)
    assert err[36:48].mean() < 0.06, err[36:48]
    assert err[48:68].mean() < 0.06, err[48:68]
    assert err.mean() < 0.08
    assert mp_be.detect(read_rgb(still_faces[0]))[0].native_landmarks.shape == (468, 2)


def _facemesh_landmarks(mesh, image: np.ndarray) -> np.ndarray:
    """FaceMesh's own 468 points (its packaged graph: its detector, then its landmark model) in pixels."""
    result = mesh.process(np.ascontiguousarray(image))
    assert result.multi_face_landmarks, "FaceMesh found no face"
    h, w = image.shape[:2]
    return np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark], np.float32)


def _tilted(image: np.ndarray, degrees: float) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return np.ascontiguousarray(cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REFLECT))


@pytest.fixture(scope="module")
def facemesh():
    import mediapipe as mp

    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1)
    yield mesh
    mesh.close()


@pytest.mark.realmedia
def test_mediapipe_landmark_region_is_facemesh_own(still_faces: list[Path], facemesh):
    """The backend runs FaceMesh's landmark model on the region FaceMesh itself derives from a detection
    (centre, 1.5x the box, turned to level the eyes), from its own detection: on close-ups, upright or
    tilted either way, the points are FaceMesh's own (measured: within 0.4 % of the IOD)."""
    backend = make_face_backend("mediapipe")
    try:
        for path in still_faces[:4]:
            for degrees in (0, 20, -25):
                image = _tilted(read_rgb(path), degrees)
                ours = backend.detect(image)[0]
                theirs = _facemesh_landmarks(facemesh, image)
                error = np.linalg.norm(ours.native_landmarks - theirs, axis=1).mean() / interocular(ours.landmarks)
                assert error < 0.01, (path.name, degrees, error)
    finally:
        backend.close()


@pytest.mark.realmedia
def test_mediapipe_finds_small_looking_faces_again_in_their_crop(shared_media: Path, facemesh):
    """A face the whole-frame detector saw small (a 720p frame shrinks to its 128 px input) is detected
    again in its crop before landmarking, as FaceMesh's graph did inside every crop: its points equal
    FaceMesh's on that crop (measured: mean 0.001 IOD; from the whole-frame box alone, 0.02-0.08)."""
    import cv2

    backend = make_face_backend("mediapipe")
    clip = shared_media / "real_talking" / "semchan_HyperLips__test_video2_video2.mp4"  # 1280x720, face ~190 px
    errors = []
    try:
        for i, frame in enumerate(iter_frames(clip)):
            if i % 25:
                continue
            if i > 125:
                break
            face = backend.detect(frame)[0]
            box = face.box
            side = int(round(backend.crop_scale * max(box[2] - box[0], box[3] - box[1])))
            x0, y0 = (int(round(c - side / 2)) for c in ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
            padded = cv2.copyMakeBorder(frame, side, side, side, side, cv2.BORDER_CONSTANT, value=0)
            crop = padded[y0 + side : y0 + 2 * side, x0 + side : x0 + 2 * side]
            theirs = _facemesh_landmarks(facemesh, crop) + np.array([x0, y0], np.float32)
            errors.append(np.linalg.norm(face.native_landmarks - theirs, axis=1).mean() / interocular(face.landmarks))
    finally:
        backend.close()
    assert len(errors) == 6 and np.mean(errors) < 0.006, errors
