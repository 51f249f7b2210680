"""Audio-driven lip-sync of a target video: the lower face re-rendered from the driving audio.

``wav2lip``: Wav2Lip-like. Each frame's mouth is re-posed from the audio
(piecewise-affine warp of the lower face to an audio-driven mouth shape, dark
interior painted in), then the lower-face box is regenerated at low
resolution (Wav2Lip works on 96 px faces) and pasted back with a rectangular,
lightly feathered blend — its tell-tale blur and box seam.

``videoretalking``: VideoReTalking-like, smoother. The target's own mouth is
warped along temporally smoothed landmarks and audio features and blended
with Poisson (seamless) cloning inside a mouth-shaped mask, at full
resolution: no box seam, fewer frame-to-frame jumps.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.audio_features import mouth_drive
from generators.builtin.common import BuiltinGenerator
from generators.face_geometry import (
    face_hull_mask,
    lower_face_box,
    mouth_interior,
    mouth_pose,
    piecewise_affine,
    smooth_track,
)
from pipeline.faces.base import JAW, MOUTH, NOSE


def _face_window(lm: np.ndarray, shape: tuple[int, int], pad: float = 0.45) -> tuple[int, int, int, int]:
    h, w = shape
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    px, py = pad * (x1 - x0), pad * (y1 - y0)
    return int(max(x0 - px, 0)), int(max(y0 - py, 0)), int(min(x1 + px, w)), int(min(y1 + py, h))


def repose_mouth(frame: np.ndarray, lm: np.ndarray, opening: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The frame with its mouth warped to the audio-driven pose (work done in a window
    around the face only); returns (frame, new landmarks)."""
    target = mouth_pose(lm, opening, width)
    x0, y0, x1, y1 = _face_window(lm, frame.shape[:2])
    crop = frame[y0:y1, x0:x1]
    off = np.array([x0, y0], np.float32)
    # Only the lower face moves: jaw, nose base and mouth points drive the warp.
    idx = np.r_[JAW, NOSE, MOUTH]
    warped = piecewise_affine(crop, lm[idx] - off, target[idx] - off)
    warped = mouth_interior(warped, target - off)
    out = frame.copy()
    out[y0:y1, x0:x1] = warped
    return out, target


class Wav2LipLike(BuiltinGenerator):
    name = "wav2lip"
    kind = "lipsync"
    lip_sync = True

    def __init__(self, patch_size: int = 96, feather: int = 3, **kw: Any) -> None:
        super().__init__(**kw)
        self.patch_size = patch_size
        self.feather = feather

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "patch_size": self.patch_size, "feather": self.feather}

    def __call__(self, target_video: Path, driving_audio: Path | None, workdir: Path, *,
                 source_keys: Sequence[str] = (), source_video: Path | None = None, **kw: Any) -> Path:
        import cv2

        inp = self.load(target_video, driving_audio)
        lms = self.track(inp.frames, inp.frame_ids, target_video)
        drive = mouth_drive(inp.audio, inp.num_frames, smooth=1)  # Wav2Lip: per-frame, jittery
        out = np.empty_like(inp.frames)
        h, w = inp.frames.shape[1:3]
        for t, frame in enumerate(inp.frames):
            reposed, _ = repose_mouth(frame, lms[t], float(drive.opening[t]), float(drive.width[t]))
            x0, y0, x1, y1 = lower_face_box(lms[t], (h, w))
            bw, bh = x1 - x0, y1 - y0
            result = frame.copy()
            if bw > 4 and bh > 4:
                patch = reposed[y0:y1, x0:x1]
                # Regenerated at Wav2Lip's working resolution, then upsampled: the blur.
                small = (self.patch_size, max(2, int(self.patch_size * bh / bw)))
                low = cv2.resize(cv2.resize(patch, small, interpolation=cv2.INTER_AREA), (bw, bh),
                                 interpolation=cv2.INTER_LINEAR)
                # A rectangular paste with a narrow feather: the box seam.
                alpha = np.zeros((bh, bw), np.float32)
                f = self.feather
                alpha[f: bh - f, f: bw - f] = 1.0
                if f:
                    alpha = cv2.blur(alpha, (2 * f + 1, 2 * f + 1))
                alpha = alpha[..., None]
                result[y0:y1, x0:x1] = np.clip(low * alpha + frame[y0:y1, x0:x1] * (1 - alpha), 0, 255).astype(np.uint8)
            out[t] = result
        return self.write(out, inp.audio, workdir, source_keys, like=target_video)


class VideoReTalkingLike(BuiltinGenerator):
    name = "videoretalking"
    kind = "lipsync"
    lip_sync = True

    def __init__(self, landmark_sigma: float = 1.5, drive_smooth: int = 5, **kw: Any) -> None:
        super().__init__(**kw)
        self.landmark_sigma = landmark_sigma
        self.drive_smooth = drive_smooth

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "landmark_sigma": self.landmark_sigma, "drive_smooth": self.drive_smooth}

    def __call__(self, target_video: Path, driving_audio: Path | None, workdir: Path, *,
                 source_keys: Sequence[str] = (), source_video: Path | None = None, **kw: Any) -> Path:
        import cv2

        inp = self.load(target_video, driving_audio)
        lms = smooth_track(self.track(inp.frames, inp.frame_ids, target_video), self.landmark_sigma)
        drive = mouth_drive(inp.audio, inp.num_frames, smooth=self.drive_smooth)
        out = np.empty_like(inp.frames)
        h, w = inp.frames.shape[1:3]
        for t, frame in enumerate(inp.frames):
            reposed, target = repose_mouth(frame, lms[t], float(drive.opening[t]), float(drive.width[t]))
            # Mask: the mouth and chin region, grown so the seam falls on smooth skin.
            pts = np.concatenate([lms[t][np.r_[3:14, 48:68]], target[np.r_[3:14, 48:68]]])
            mask = face_hull_mask(pts, (h, w), dilate=max(2, int(0.03 * w)))
            ys, xs = np.nonzero(mask > 0.5)
            if len(xs) < 16:
                out[t] = reposed
                continue
            m8 = (mask > 0.5).astype(np.uint8) * 255
            # seamlessClone needs the mask strictly inside the frame.
            m8[:1, :] = m8[-1:, :] = 0
            m8[:, :1] = m8[:, -1:] = 0
            bx, by, bw, bh = cv2.boundingRect(m8)
            centre = (bx + bw // 2, by + bh // 2)
            try:
                blended = cv2.seamlessClone(np.ascontiguousarray(reposed), np.ascontiguousarray(frame), m8, centre,
                                            cv2.NORMAL_CLONE)
            except cv2.error:
                blended = reposed
            out[t] = blended
        return self.write(out, inp.audio, workdir, source_keys, like=target_video)
