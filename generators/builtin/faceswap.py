"""Landmark face swap: a source identity's face onto the target video, seamlessly blended.

``faceswap``: FaceSwap-like. Each target frame gets the source's face (the
source video's frame at the same time) aligned by a similarity transform on
stable landmarks, colour-matched, and Poisson-blended (``cv2.seamlessClone``)
inside the target's face hull. The source's own mouth comes along, so the
result is usually lip-synced afterwards (``faceswap-wav2lip``).

``faceswap-smooth``: the FSGAN stand-in (no GAN here): the source face is
warped triangle by triangle onto the target's landmarks, so it takes the
target's expression and pose (a reenactment), with temporally smoothed
landmarks and a feathered blend on top of the seamless clone.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.builtin.common import BuiltinGenerator, ping_pong, ping_pong_index
from generators.face_geometry import piecewise_affine, smooth_track
from pipeline.errors import MediaError
from pipeline.faces.base import JAW, RIGID

# The swapped region: jaw line and brows (the face proper, no hair or ears).
HULL = np.r_[0:27]
# The source face is aligned by an affine map fitted on the jaw line, brows, nose and eyes. A
# similarity fitted on the inner face alone left the source's own head turns in the outline, and the
# face detector's box jittered 1.3 times as much as in the real clips (box-size CV 0.0097 vs 0.0074
# on 12 studio clips; with this fit 0.0087): a face-box shortcut.
ALIGNED = np.r_[JAW, RIGID]


def _colour_transfer(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match the source's colour statistics inside ``mask`` to the reference's (LAB mean/std)."""
    import cv2

    m = mask > 0.5
    if m.sum() < 16:
        return src
    s = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    r = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    for c in range(3):
        sm, ss = s[..., c][m].mean(), s[..., c][m].std() + 1e-3
        rm, rs = r[..., c][m].mean(), r[..., c][m].std() + 1e-3
        s[..., c] = (s[..., c] - sm) * (rs / ss) + rm
    return cv2.cvtColor(np.clip(s, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


class FaceSwapLike(BuiltinGenerator):
    name = "faceswap"
    kind = "faceswap"
    version = "3"  # 3: aligned by an affine fit on the outline too (ALIGNED)
    lip_sync = False  # the source's mouth, not the audio, moves the lips
    reenact = False

    def __call__(self, target_video: Path, driving_audio: Path | None, workdir: Path, *,
                 source_keys: Sequence[str] = (), source_video: Path | None = None, **kw: Any) -> Path:
        import cv2

        if source_video is None:
            raise ValueError(f"{self.name} needs source_video= (the identity whose face is swapped in)")
        inp = self.load(target_video, driving_audio)
        src = self.decode_video(source_video)
        src_frames = ping_pong(src, inp.num_frames)
        t_lms = self.track(inp.frames, inp.frame_ids, target_video)
        s_lms = self.track(src_frames, ping_pong_index(len(src), inp.num_frames), source_video)
        if self.reenact:
            t_lms, s_lms = smooth_track(t_lms, 1.5), smooth_track(s_lms, 1.5)
        h, w = inp.frames.shape[1:3]
        out = np.empty_like(inp.frames)
        for t in range(inp.num_frames):
            frame, src, tl, sl = inp.frames[t], src_frames[t], t_lms[t], s_lms[t]
            m, _ = cv2.estimateAffine2D(sl[ALIGNED], tl[ALIGNED])
            if m is None:
                raise MediaError(source_video, f"cannot align the source face to the target at frame {t}", "align")
            aligned = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            a_lm = sl @ m[:, :2].T + m[:, 2]
            if self.reenact:
                aligned = piecewise_affine(aligned, a_lm, tl)
            mask = np.zeros((h, w), np.uint8)
            cv2.fillConvexPoly(mask, cv2.convexHull(tl[HULL].astype(np.int32)), 255)
            erode = max(1, int(0.02 * w))
            mask = cv2.erode(mask, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
            mask[:1, :] = mask[-1:, :] = 0
            mask[:, :1] = mask[:, -1:] = 0
            if mask.sum() < 255 * 16:
                out[t] = frame
                continue
            aligned = _colour_transfer(aligned, frame, mask.astype(np.float32) / 255)
            out[t] = self._blend(aligned, frame, mask)
        return self.write(out, inp.audio, workdir, source_keys, like=target_video, source_video=Path(source_video).name)

    def _blend(self, face: np.ndarray, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Poisson-blend ``face`` into ``frame`` inside ``mask`` (uint8, 0/255); the smooth
        variant then feathers the seam with a soft alpha."""
        import cv2

        bx, by, bw, bh = cv2.boundingRect(mask)
        try:
            # seamlessClone writes into the mask it is given (OpenCV 4.11): hand it a copy,
            # or the feather below is built from a mostly erased mask and keeps the target.
            blended = cv2.seamlessClone(np.ascontiguousarray(face), np.ascontiguousarray(frame), mask.copy(),
                                        (bx + bw // 2, by + bh // 2), cv2.NORMAL_CLONE)
        except cv2.error:
            return frame
        if not self.reenact:
            return blended
        feather = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), max(1.0, 0.02 * frame.shape[1]))[..., None]
        return np.clip(blended * feather + frame * (1 - feather), 0, 255).astype(np.uint8)


class FaceSwapSmooth(FaceSwapLike):
    name = "faceswap-smooth"
    # 2: the feathered blend no longer reads the mask seamlessClone clobbered (version 1
    # left the target's face nearly unchanged). 3: see BuiltinGenerator.version. 4: see FaceSwapLike.
    version = "4"
    reenact = True
