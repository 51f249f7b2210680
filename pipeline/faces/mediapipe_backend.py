"""mediapipe backend: BlazeFace full-range detection + the 468-point FaceMesh, mapped to the common 68.

mediapipe 0.10.x ships both models inside the wheel (legacy ``mp.solutions``
API), so nothing downloads. FaceMesh runs on a square crop around each
detected face rather than on the whole frame: its own internal detector is the
short-range one and misses small faces in wide shots, and running it per box
gives one mesh per detected face when a frame holds several.
"""
from __future__ import annotations

import numpy as np

from pipeline.errors import ConfigError
from pipeline.faces.base import Face, FaceBackend, check_frame

# FaceMesh vertex for each of the 68 common points (see base.py for the layout):
# for every iBUG point, the mesh vertex nearest dlib's point on average over the
# real still faces in shared/media (mean error 0.049 inter-ocular distances; eyes
# 0.032, mouth 0.030; jaw is the loosest, as the two contours differ in kind).
# tests/test_faces.py re-checks the agreement.
MESH_TO_68 = np.array(
    [
        # jaw 0-16
        127, 234, 137, 215, 138, 136, 149, 176, 152, 377, 378, 365, 367, 435, 366, 447, 356,
        # brows 17-21, 22-26
        70, 63, 105, 65, 55, 285, 296, 334, 293, 300,
        # nose bridge 27-30, nostril base 31-35
        168, 197, 195, 4, 75, 97, 2, 326, 305,
        # image-left eye 36-41, image-right eye 42-47
        246, 160, 158, 155, 153, 144, 382, 385, 386, 249, 373, 380,
        # outer lip 48-59
        61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 91,
        # inner lip 60-67
        62, 38, 13, 268, 325, 317, 14, 87,
    ],
    dtype=np.int64,
)
assert MESH_TO_68.shape == (68,)


class MediapipeBackend(FaceBackend):
    """Options: ``min_confidence`` (detector score threshold), ``model_selection``
    ("auto", default: the short-range model, and the full-range one on frames where it
    finds nothing; 0 = short range only; 1 = full range only), ``crop_scale`` (side of
    the square FaceMesh crop relative to the detection box), ``max_faces``.

    Measured on shared/media/real_talking: the full-range model alone misses faces
    that fill the frame (VoxCeleb-style 224 px crops: 12 of 20 frames found), the
    short-range model alone misses small faces in wide shots; "auto" finds both."""

    name = "mediapipe"

    def __init__(
        self,
        min_confidence: float = 0.5,
        model_selection: int | str = "auto",
        crop_scale: float = 1.8,
        max_faces: int = 4,
    ) -> None:
        import mediapipe as mp  # heavy: import only when a backend is built

        self.min_confidence = min_confidence
        self.model_selection = model_selection
        self.crop_scale = crop_scale
        self.max_faces = max_faces
        if model_selection not in ("auto", 0, 1):
            raise ConfigError(f"mediapipe face backend: model_selection must be 'auto', 0 or 1, got {model_selection!r}")
        detection = mp.solutions.face_detection.FaceDetection
        self._detectors = [
            detection(model_selection=m, min_detection_confidence=min_confidence)
            for m in ((0, 1) if model_selection == "auto" else (model_selection,))
        ]
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=0.3
        )

    def describe(self) -> dict[str, object]:
        import mediapipe as mp

        return {
            "name": self.name,
            "version": mp.__version__,
            "min_confidence": self.min_confidence,
            "model_selection": self.model_selection,
            "crop_scale": self.crop_scale,
        }

    def detect(self, frame_rgb: np.ndarray) -> list[Face]:
        frame = check_frame(frame_rgb)
        h, w = frame.shape[:2]
        detections = []
        for detector in self._detectors:
            detections = detector.process(frame).detections or []
            if detections:
                break
        faces: list[Face] = []
        for det in detections[: self.max_faces]:
            rb = det.location_data.relative_bounding_box
            box = np.array([rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w, (rb.ymin + rb.height) * h], np.float32)
            mesh = self._mesh_in_box(frame, box)
            if mesh is None:
                # A face that cannot be landmarked cannot be aligned: treat it as not found.
                continue
            faces.append(Face(box=box, score=float(det.score[0]), landmarks=mesh[MESH_TO_68], native_landmarks=mesh))
        return faces

    def _mesh_in_box(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        import cv2

        h, w = frame.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        half = self.crop_scale * max(box[2] - box[0], box[3] - box[1]) / 2
        side = int(round(2 * half))
        if side < 16:
            return None
        x0, y0 = int(round(cx - half)), int(round(cy - half))
        # A square crop, padded where it leaves the frame: FaceMesh projects its
        # landmarks correctly only for square inputs.
        crop = frame[max(y0, 0) : max(min(y0 + side, h), 0), max(x0, 0) : max(min(x0 + side, w), 0)]
        if crop.shape[0] < 8 or crop.shape[1] < 8:
            return None
        top, left = max(-y0, 0), max(-x0, 0)
        crop = cv2.copyMakeBorder(
            crop, top, side - top - crop.shape[0], left, side - left - crop.shape[1], cv2.BORDER_CONSTANT, value=0
        )
        result = self._mesh.process(np.ascontiguousarray(crop))
        if not result.multi_face_landmarks:
            return None
        pts = result.multi_face_landmarks[0].landmark
        mesh = np.array([(p.x, p.y) for p in pts], np.float32) * side
        mesh += np.array([x0, y0], np.float32)
        return mesh

    def close(self) -> None:
        for detector in self._detectors:
            detector.close()
        self._mesh.close()
