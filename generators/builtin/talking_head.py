"""One-shot talking heads: ONE frame of the target animated by the driving audio.

``audio2head``: Audio2Head-like. The image gets audio-driven head motion
(rotation and translation that follow the speech rhythm) and an
audio-driven mouth; output at 25 fps.

``makeittalk``: MakeItTalk-like, landmark-driven. A landmark sequence is
predicted from the audio first (mouth opening/width plus head motion, lips
amplified like MakeItTalk's ``--amp_lip_x/y``), then the single image is
warped triangle by triangle (Delaunay) onto each landmark frame. Rendered at
62.5 fps like the real tool and resampled to 25 fps by frame blending.

Both animate the target's first face frame at its own size and framing by
default. The real tools take a 256 px square face crop (``crop_size=256``
reproduces that), but a fake whose frame size and face framing differ from
its real clip's is told apart by those facts alone: on the studio corpus the
face filled 0.56 of a 256 px fake's width against 0.45 in the reals, and a
probe on the frame size reached AUC 100.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.audio_features import mouth_drive, rhythm
from generators.builtin.common import BuiltinGenerator, frames_for
from generators.face_geometry import mouth_interior, mouth_pose, piecewise_affine, triangulate, _anchors
from pipeline.errors import MediaError
from pipeline.media import FPS, SAMPLE_RATE, iter_frames

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
CROP_SIZE = 256


def first_face_frame(target: Path, backend, max_frames: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """(frame, landmarks) of the first of the target's frames with a face (a still image works too)."""
    if target.suffix.lower() in IMAGE_SUFFIXES:
        import cv2

        bgr = cv2.imread(str(target), cv2.IMREAD_COLOR)
        if bgr is None:
            raise MediaError(target, "not a readable image", "not_media")
        candidates = [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)]
    else:
        candidates = []
        for i, frame in enumerate(iter_frames(target, FPS)):
            candidates.append(frame)
            if i + 1 >= max_frames:
                break
    for frame in candidates[::3] + candidates:
        faces = backend.detect(np.ascontiguousarray(frame))
        if faces:
            return frame, max(faces, key=lambda f: f.area).landmarks
    raise MediaError(target, f"no face found in the first {len(candidates)} frame(s)", "no_face")


def square_face_crop(frame: np.ndarray, lm: np.ndarray, size: int = CROP_SIZE, scale: float = 1.9):
    """Audio2Head's input: a square crop centred on the face, resized to ``size``; landmarks follow."""
    import cv2

    lo, hi = lm.min(0), lm.max(0)
    centre = (lo + hi) / 2 - [0, 0.08 * (hi[1] - lo[1])]
    half = scale * max(hi - lo) / 2
    s = size / (2 * half)
    m = np.array([[s, 0, size / 2 - s * centre[0]], [0, s, size / 2 - s * centre[1]]], np.float32)
    crop = cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return crop, (lm * s + m[:, 2]).astype(np.float32)


class _OneShot(BuiltinGenerator):
    kind = "talking_head"
    lip_sync = False  # the released CMDFD labels one-shot talking heads Sync_Label 0
    version = "3"  # 3: the target's own frame size and framing, not a 256 px face crop (and see BuiltinGenerator)

    def __init__(self, crop_size: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.crop_size = crop_size

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "crop_size": self.crop_size}

    def _source(self, target_video: Path, driving_audio: Path | None):
        audio = self.decode_audio(driving_audio if driving_audio is not None else target_video)
        frame, lm = first_face_frame(Path(target_video), self.backend)
        if self.crop_size is None:
            return audio, frame, lm.astype(np.float32)
        crop, clm = square_face_crop(frame, lm, self.crop_size)
        return audio, crop, clm


class Audio2HeadLike(_OneShot):
    name = "audio2head"

    def __call__(self, target_video: Path, driving_audio: Path | None, workdir: Path, *,
                 source_keys: Sequence[str] = (), source_video: Path | None = None, **kw: Any) -> Path:
        import cv2

        audio, image, lm = self._source(target_video, driving_audio)
        n = frames_for(len(audio))
        drive = mouth_drive(audio, n, smooth=3)
        pose = rhythm(audio, n, seed=self.seed)
        centre = lm[27:36].mean(0)
        # Head translation per degree: 0.8 px for a face as wide as in a 256 px crop (1.9 face widths).
        px_per_degree = 0.8 * float(np.ptp(lm, axis=0).max()) * 1.9 / CROP_SIZE
        h, w = image.shape[:2]
        out = np.empty((n, h, w, 3), np.uint8)
        for t in range(n):
            target = mouth_pose(lm, float(drive.opening[t]), float(drive.width[t]))
            mouthed = mouth_interior(piecewise_affine(image, lm, target), target)
            yaw, pitch, roll = pose[t]
            m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(roll), 1.0)
            m[0, 0] *= np.cos(np.radians(yaw))  # a flat stand-in for turning the head
            m[0, 2] += px_per_degree * yaw + (1 - np.cos(np.radians(yaw))) * centre[0]
            m[1, 2] += px_per_degree * pitch
            out[t] = cv2.warpAffine(mouthed, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return self.write(out, audio, workdir, source_keys, like=target_video)


class MakeItTalkLike(_OneShot):
    name = "makeittalk"
    render_fps = 62.5

    def __init__(self, amp_lip: float = 1.6, amp_pos: float = 0.5, **kw: Any) -> None:
        super().__init__(**kw)
        self.amp_lip = amp_lip
        self.amp_pos = amp_pos

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "amp_lip": self.amp_lip, "amp_pos": self.amp_pos}

    def predict_landmarks(self, lm: np.ndarray, audio: np.ndarray) -> np.ndarray:
        """(T62, 68, 2): the landmark sequence at 62.5 fps predicted from the audio."""
        n25 = frames_for(len(audio))
        n62 = int(round(len(audio) / SAMPLE_RATE * self.render_fps))
        drive = mouth_drive(audio, n25, smooth=3)
        pose = rhythm(audio, n25, seed=self.seed + 1)
        t62 = np.arange(n62) / self.render_fps * FPS
        opening = np.interp(t62, np.arange(n25), drive.opening)
        width = np.interp(t62, np.arange(n25), drive.width)
        yaw, pitch, roll = (np.interp(t62, np.arange(n25), pose[:, k]) * self.amp_pos for k in range(3))
        centre = lm.mean(0)
        px_per_degree = 1.2 * float(np.ptp(lm, axis=0).max()) * 1.9 / CROP_SIZE  # 1.2 px in a 256 px crop
        seq = np.empty((n62, 68, 2), np.float32)
        for i in range(n62):
            p = mouth_pose(lm, min(1.0, opening[i] * self.amp_lip), width[i])
            r = np.radians(roll[i])
            rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]], np.float32)
            p = (p - centre) @ rot.T
            p[:, 0] *= np.cos(np.radians(yaw[i] * 2))
            seq[i] = p + centre + px_per_degree * np.array([yaw[i], pitch[i]])
        return seq

    def __call__(self, target_video: Path, driving_audio: Path | None, workdir: Path, *,
                 source_keys: Sequence[str] = (), source_video: Path | None = None, **kw: Any) -> Path:
        audio, image, lm = self._source(target_video, driving_audio)
        seq = self.predict_landmarks(lm, audio)
        fixed = _anchors(image.shape[:2], np.concatenate([lm, seq.reshape(-1, 2)]))
        tris = triangulate(np.concatenate([lm, fixed]), image.shape[:2])
        rendered = []
        for p in seq:
            warped = piecewise_affine(image, np.concatenate([lm, fixed]), np.concatenate([p, fixed]), tris,
                                      anchors=False)
            rendered.append(mouth_interior(warped, p))
        # 62.5 -> 25 fps: blend the two nearest rendered frames (the resampling ghost).
        n = frames_for(len(audio))
        pos = np.arange(n) * self.render_fps / FPS
        lo = np.clip(np.floor(pos).astype(int), 0, len(rendered) - 1)
        hi = np.clip(lo + 1, 0, len(rendered) - 1)
        frac = (pos - lo)[:, None, None, None].astype(np.float32)
        stack = np.stack(rendered).astype(np.float32)
        out = np.clip(stack[lo] * (1 - frac) + stack[hi] * frac, 0, 255).astype(np.uint8)
        return self.write(out, audio, workdir, source_keys, like=target_video, render_fps=str(self.render_fps))
