"""Aligned face and mouth crops from tracked 68-point landmarks.

One similarity transform per frame maps four anchors (the two eye centres and
the two mouth corners) onto a fixed template; the anchors are smoothed over
time first, so the crops follow the head but not the landmark noise, while
the lips move freely inside the crop (their motion is the signal).

Template (measured on dlib's landmarks of the real still faces: mouth corners
1.11 inter-ocular distances (IOD) below the eye line, 0.84 IOD apart; chin at
1.84 IOD): in a square face crop of side S the eyes sit at y = 0.40 S, 0.28 S
apart, which leaves the brows and forehead above and the chin inside with a
margin — the loose framing CLIP-style backbones and FaceForensics-style crops
use. The 112 px grayscale face (ECL) is the same framing; the 96 px mouth ROI
(lip-reading style) is a square of 1.6 IOD centred on the mouth-corner midpoint,
with the face's rotation and scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.faces.base import LEFT_EYE, LEFT_MOUTH_CORNER, RIGHT_EYE, RIGHT_MOUTH_CORNER
from pipeline.faces.track import gaussian_smooth

EYE_Y = 0.40  # eye line, fraction of the face crop's side
FACE_IOD = 0.28  # inter-ocular distance, fraction of the face crop's side
MOUTH_Y_IOD = 1.11  # mouth corners below the eye line, in IOD
MOUTH_W_IOD = 0.84  # mouth width, in IOD
MOUTH_ROI_IOD = 1.6  # mouth ROI side, in IOD

# Anchors in unit face-crop coordinates: image-left eye, image-right eye, left and right mouth corner.
TEMPLATE = np.array(
    [
        [0.5 - FACE_IOD / 2, EYE_Y],
        [0.5 + FACE_IOD / 2, EYE_Y],
        [0.5 - FACE_IOD * MOUTH_W_IOD / 2, EYE_Y + FACE_IOD * MOUTH_Y_IOD],
        [0.5 + FACE_IOD * MOUTH_W_IOD / 2, EYE_Y + FACE_IOD * MOUTH_Y_IOD],
    ],
    np.float64,
)


@dataclass(frozen=True)
class CropSizes:
    face: int = 224
    gray_face: int = 112
    mouth: int = 96


def anchors(landmarks: np.ndarray) -> np.ndarray:
    """(..., 4, 2) alignment anchors of (..., 68, 2) landmarks (order of ``TEMPLATE``)."""
    return np.stack(
        [
            landmarks[..., LEFT_EYE, :].mean(-2),
            landmarks[..., RIGHT_EYE, :].mean(-2),
            landmarks[..., LEFT_MOUTH_CORNER, :],
            landmarks[..., RIGHT_MOUTH_CORNER, :],
        ],
        axis=-2,
    )


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking ``src`` (n,2) onto ``dst`` (n,2), as 2x3."""
    zs = src[:, 0] + 1j * src[:, 1]
    zd = dst[:, 0] + 1j * dst[:, 1]
    ms, md = zs.mean(), zd.mean()
    a = np.vdot(zs - ms, zd - md) / max(np.vdot(zs - ms, zs - ms).real, 1e-12)  # complex scale * rotation
    t = md - a * ms
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]], np.float64)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2x3 affine ``outer`` after 2x3 affine ``inner``."""
    return (np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]]))[:2]


def alignment_transforms(landmarks: np.ndarray, sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (T, 2, 3) source -> unit-face-crop transforms and (T, 2) unit-crop mouth centres.

    Anchors are Gaussian-smoothed over time (``sigma`` frames) before fitting.
    """
    anc = gaussian_smooth(anchors(landmarks).astype(np.float64), sigma).astype(np.float64)
    transforms = np.stack([similarity(a, TEMPLATE) for a in anc])
    mouth_src = anc[:, 2:4].mean(1)  # mouth-corner midpoint: hardly moves when the jaw opens
    mouth_unit = np.einsum("tij,tj->ti", transforms[:, :, :2], mouth_src) + transforms[:, :, 2]
    return transforms, mouth_unit


def crop_frame(
    frame: np.ndarray, transform: np.ndarray, mouth_centre: np.ndarray, sizes: CropSizes
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB face, grayscale face, grayscale mouth ROI) of one RGB frame."""
    import cv2

    face_m = np.diag([sizes.face, sizes.face]) @ transform
    face = cv2.warpAffine(frame, face_m, (sizes.face, sizes.face), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    if sizes.gray_face == sizes.face:
        gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    else:
        # Same framing as the RGB face: resampling the crop is cheaper than a second warp.
        gray = cv2.cvtColor(cv2.resize(face, (sizes.gray_face, sizes.gray_face), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_RGB2GRAY)
    side = FACE_IOD * MOUTH_ROI_IOD  # in unit face-crop coordinates
    k = sizes.mouth / side
    roi = np.array([[k, 0, sizes.mouth / 2 - k * mouth_centre[0]], [0, k, sizes.mouth / 2 - k * mouth_centre[1]]])
    mouth_rgb = cv2.warpAffine(frame, _compose(roi, transform), (sizes.mouth, sizes.mouth),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return face, gray, cv2.cvtColor(mouth_rgb, cv2.COLOR_RGB2GRAY)


class CropWriter:
    """Fills preallocated (T, ...) crop arrays frame by frame (frames may stream in)."""

    def __init__(self, landmarks: np.ndarray, sizes: CropSizes = CropSizes(), sigma: float = 2.0) -> None:
        self.sizes = sizes
        self.transforms, self.mouth_centres = alignment_transforms(landmarks, sigma)
        t = len(landmarks)
        self.face = np.zeros((t, sizes.face, sizes.face, 3), np.uint8)
        self.face_gray = np.zeros((t, sizes.gray_face, sizes.gray_face), np.uint8)
        self.mouth = np.zeros((t, sizes.mouth, sizes.mouth), np.uint8)

    def add(self, index: int, frame: np.ndarray) -> None:
        self.face[index], self.face_gray[index], self.mouth[index] = crop_frame(
            frame, self.transforms[index], self.mouth_centres[index], self.sizes
        )
