"""dlib backend: HOG (or MMOD CNN) detector + the 68-point shape predictor.

The HOG detector ships inside dlib (``dlib-bin``); the shape predictor and the
MMOD detector ship in the ``face-recognition-models`` package. That package's
``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so its
folder is located without importing it.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigError
from pipeline.faces.base import Face, FaceBackend, check_frame


def face_recognition_models_dir() -> Path:
    """The ``models`` folder of the installed ``face-recognition-models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the dlib face backend needs the 'face-recognition-models' package "
            "(pip install face-recognition-models dlib-bin)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class DlibBackend(FaceBackend):
    """Options: ``detector`` ('hog', default, or 'mmod' — a CNN, ~10x slower on CPU),
    ``upsample`` (detector upsampling passes; 1 finds faces down to ~40 px),
    ``detect_max_side`` (detect on a copy downscaled to this longest side for speed;
    landmarks are always fitted on the full-resolution frame; 0 = never downscale)."""

    name = "dlib"

    def __init__(self, detector: str = "hog", upsample: int = 0, detect_max_side: int = 640) -> None:
        import dlib  # heavy: import only when a backend is built

        models = face_recognition_models_dir()
        if detector == "hog":
            self._detector = dlib.get_frontal_face_detector()
        elif detector == "mmod":
            self._detector = dlib.cnn_face_detection_model_v1(str(models / "mmod_human_face_detector.dat"))
        else:
            raise ConfigError(f"dlib face backend: detector must be 'hog' or 'mmod', got {detector!r}")
        self._predictor = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
        self._rect = dlib.rectangle
        self.detector = detector
        self.upsample = upsample
        self.detect_max_side = detect_max_side

    def describe(self) -> dict[str, object]:
        import dlib

        return {
            "name": self.name,
            "version": dlib.__version__,
            "detector": self.detector,
            "upsample": self.upsample,
            "detect_max_side": self.detect_max_side,
        }

    def detect(self, frame_rgb: np.ndarray) -> list[Face]:
        import cv2

        frame = check_frame(frame_rgb)
        h, w = frame.shape[:2]
        scale = 1.0
        small = frame
        if self.detect_max_side and max(h, w) > self.detect_max_side:
            scale = self.detect_max_side / max(h, w)
            small = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        if self.detector == "hog":
            rects, scores, _ = self._detector.run(small, self.upsample, 0.0)
        else:
            dets = self._detector(small, self.upsample)
            rects, scores = [d.rect for d in dets], [d.confidence for d in dets]
        faces = []
        for rect, score in zip(rects, scores):
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], np.float32) / scale
            full = self._rect(*(int(round(v)) for v in box))
            shape = self._predictor(frame, full)
            pts = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
            faces.append(Face(box=box, score=float(score), landmarks=pts))
        return faces
