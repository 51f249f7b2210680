"""The one face-backend interface and the common landmark layout.

Every backend returns faces with landmarks in the 68-point iBUG 300-W layout
(the layout dlib's shape predictor and insightface's ``1k3d68`` model emit;
mediapipe's 468-point mesh is mapped onto it in ``mediapipe_backend``), so
tracking, alignment and the ECL/CAD/AVPrompt inputs never depend on which
backend ran. Indices, in image coordinates of a frontal face ("left" = image
left = the subject's right):

    0-16  jaw, image-left ear -> chin (8) -> image-right ear
    17-21 image-left brow (outer -> inner)   22-26 image-right brow (inner -> outer)
    27-30 nose bridge, top -> tip             31-35 nostril base, left -> right
    36-41 image-left eye: 36 outer corner, 37-38 upper lid, 39 inner corner, 40-41 lower lid
    42-47 image-right eye: 42 inner corner, 43-44 upper lid, 45 outer corner, 46-47 lower lid
    48-59 outer lip: 48 left corner, 51 top centre, 54 right corner, 57 bottom centre
    60-67 inner lip: 60 left corner, 62 top centre, 64 right corner, 66 bottom centre
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

NUM_LANDMARKS = 68

# Named groups of the common layout (slices into the 68 points).
JAW = slice(0, 17)
LEFT_BROW = slice(17, 22)
RIGHT_BROW = slice(22, 27)
NOSE = slice(27, 36)
LEFT_EYE = slice(36, 42)  # image left
RIGHT_EYE = slice(42, 48)  # image right
OUTER_LIP = slice(48, 60)
INNER_LIP = slice(60, 68)
MOUTH = slice(48, 68)
LEFT_MOUTH_CORNER = 48
RIGHT_MOUTH_CORNER = 54
# Points that move with the head but hardly with speech or expression:
# what jitter is measured on and what the crop alignment leans on.
RIGID = np.r_[27:48]


@dataclass
class Face:
    """One detected face in one frame, in source-frame pixels."""

    box: np.ndarray  # (4,) float32: x0, y0, x1, y1
    score: float
    landmarks: np.ndarray  # (68, 2) float32, the common layout above
    native_landmarks: np.ndarray | None = field(default=None, repr=False)  # backend's own points

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, np.float32).reshape(4)
        self.landmarks = np.asarray(self.landmarks, np.float32)
        if self.landmarks.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"landmarks must be ({NUM_LANDMARKS}, 2), got {self.landmarks.shape}")

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image-left and image-right eye centres of (..., 68, 2) landmarks."""
    return landmarks[..., LEFT_EYE, :].mean(-2), landmarks[..., RIGHT_EYE, :].mean(-2)


def interocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the eye centres (the scale faces are normalised by)."""
    left, right = eye_centres(landmarks)
    return np.linalg.norm(right - left, axis=-1)


class FaceBackend(ABC):
    """A face detector + landmarker. Construct once per worker: the constructor loads the models.

    ``detect`` is stateless (frame in, faces out) so one backend serves many
    clips in a row; temporal logic lives in ``pipeline.faces.track``.
    """

    name: str = "?"

    @abstractmethod
    def detect(self, frame_rgb: np.ndarray) -> list[Face]:
        """All faces in an (H, W, 3) uint8 RGB frame, each with 68 common landmarks."""

    def describe(self) -> dict[str, object]:
        """Settings that affect results (recorded in summaries and hashed into cache keys)."""
        return {"name": self.name}

    def close(self) -> None:
        """Release native resources (optional)."""

    def __enter__(self) -> FaceBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_frame(frame: np.ndarray) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
    return np.ascontiguousarray(frame)
