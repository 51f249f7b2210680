"""DeeperForensics-1.0's frame distortions, on whole RGB frames (not face crops).

Each function follows the definition in DF's released ``perturbation/distortions.py``
(``color_saturation``, ``color_contrast``, ``block_wise``, ``gaussian_noise_color``,
``gaussian_blur``, ``jpeg_compression``), conventions included: uint8 results are
truncated, not rounded, as DF's ``astype(np.uint8)`` does. DF's random parts
(``random.randint``, ``np.random.randn``, unseeded) come here from the caller's
generator, drawn frame after frame, so that a seed gives the same bytes. Like DF,
block positions and noise are drawn anew for every frame.

DF works on OpenCV's BGR frames; these take RGB, and convert to YCbCr through BGR as
DF does. Given the same random draws, the results are DF's bytes (checked against its
code on random frames, every kind and level).
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from pipeline.perturb.spec import PerturbSpec

BLOCK = 8  # side of a BW block, pixels
BLOCK_GREY = 128


def _check_frame(frame: np.ndarray) -> None:
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"a frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    # DF truncates (astype); the clip guards float error just outside [0, 255] (and GNC's noise).
    return np.clip(values, 0, 255).astype(np.uint8)


def _df_ycbcr(frame: np.ndarray) -> np.ndarray:
    """DF's ``bgr2ycbcr``: OpenCV's float YCrCb of the 0..255 values (BT.601; chroma offset by
    OpenCV's float delta, 0.5), as Y, Cb, Cr, mapped by ``(v * 219 + 16) / 255`` (luma) and
    ``(v * 224 + 16) / 255`` (chroma). DF wrote that studio-range map for [0, 1] values and
    applies it to 0..255 ones; the steps are kept (float32, through BGR) so the truncated
    results are DF's bytes."""
    ycrcb = cv2.cvtColor(frame[..., ::-1].astype(np.float32), cv2.COLOR_BGR2YCrCb)
    ycbcr = ycrcb[..., (0, 2, 1)]
    ycbcr[..., 0] = (ycbcr[..., 0] * (235 - 16) + 16) / 255.0
    ycbcr[..., 1:] = (ycbcr[..., 1:] * (240 - 16) + 16) / 255.0
    return ycbcr


def _df_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """DF's ``ycbcr2bgr`` (the inverse of ``_df_ycbcr``), as float32 RGB."""
    ycbcr = ycbcr.astype(np.float32)
    ycbcr[..., 0] = (ycbcr[..., 0] * 255.0 - 16) / (235 - 16)
    ycbcr[..., 1:] = (ycbcr[..., 1:] * 255.0 - 16) / (240 - 16)
    return cv2.cvtColor(np.ascontiguousarray(ycbcr[..., (0, 2, 1)]), cv2.COLOR_YCrCb2BGR)[..., ::-1]


def color_saturation(frame: np.ndarray, factor: float) -> np.ndarray:
    """CS: DF's chroma (Cb, Cr) scaled by ``factor`` about 0.5 in ``_df_ycbcr``'s units; luma kept.

    In RGB this is ``Y + factor * (RGB - Y)`` with BT.601 luma ``Y``, truncated: DF's 0.5
    pivot sits about 0.002 of a level off neutral chroma, which only matters at truncation.
    YCbCr, not HSV: HSV saturation does not scale by ``factor``.
    """
    _check_frame(frame)
    ycbcr = _df_ycbcr(frame)
    ycbcr[..., 1:] = 0.5 + (ycbcr[..., 1:] - 0.5) * factor
    return _to_uint8(_df_rgb(ycbcr))


def color_contrast(frame: np.ndarray, factor: float) -> np.ndarray:
    """CC: every channel value times ``factor``, truncated (DF's "contrast" darkens toward 0,
    it does not pivot about the mean)."""
    _check_frame(frame)
    return (frame.astype(np.float32) * np.float32(factor)).astype(np.uint8)


def block_count(height: int, width: int, per_256: int) -> int:
    """BW's number of blocks: ``min(h, w) // 256 * per_256`` (integer division first, as DF),
    so a frame whose shorter side is under 256 px gets none."""
    return min(height, width) // 256 * per_256


def block_positions(height: int, width: int, per_256: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 2) top-left corners ``(x, y)`` of BW's blocks, each drawn uniformly from
    ``[0, w - 1 - 8]`` x ``[0, h - 1 - 8]`` (DF's inclusive ``randint`` bounds), x before y,
    block after block. Blocks may overlap, as in DF."""
    n = block_count(height, width, per_256)
    if n == 0:
        return np.zeros((0, 2), np.int64)
    # One (x, y) pair per row, in DF's draw order.
    return rng.integers(0, [width - BLOCK, height - BLOCK], size=(n, 2))


def block_wise(frame: np.ndarray, per_256: int, rng: np.random.Generator) -> np.ndarray:
    """BW: grey (128) 8x8 blocks at ``block_positions``."""
    _check_frame(frame)
    out = frame.copy()
    for x, y in block_positions(*frame.shape[:2], per_256, rng):
        out[y : y + BLOCK, x : x + BLOCK] = BLOCK_GREY
    return out


def gaussian_noise_color(frame: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """GNC: white Gaussian noise of ``variance`` added to each of Y, Cb, Cr of ``_df_ycbcr`` / 255
    (DF's [0, 1] scale); back to RGB, clipped to [0, 255], truncated.

    Undone, that is noise of standard deviation ``sqrt(variance) * 255 * 255 / 219`` on BT.601
    luma (0..255) and ``... / 224`` on chroma: variance ``variance`` on studio-range 8-bit Y
    over 255. The normals are drawn as DF draws them: one (H, W, 3) array, Y, Cb, Cr.
    """
    _check_frame(frame)
    noisy = (_df_ycbcr(frame) / 255 + np.sqrt(variance) * rng.standard_normal(frame.shape)) * 255
    return _to_uint8(_df_rgb(noisy))


def gaussian_blur(frame: np.ndarray, kernel: int) -> np.ndarray:
    """GB: ``cv2.GaussianBlur`` with a ``kernel`` x ``kernel`` window and sigma ``kernel / 6``
    (both axes; OpenCV's default reflect-101 border)."""
    _check_frame(frame)
    return cv2.GaussianBlur(frame, (kernel, kernel), kernel / 6)


def pixelation_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """(h, w) that DF's "JPEG" shrinks a frame to: ``h // factor``, ``w // factor``."""
    h, w = height // factor, width // factor
    if h == 0 or w == 0:
        raise ValueError(f"a {width}x{height} frame is too small to pixelate by {factor}")
    return h, w


def pixelate(frame: np.ndarray, factor: int) -> np.ndarray:
    """JPEG (DF's name; no JPEG codec is involved): bilinear resize down to
    ``pixelation_size`` and back up to the frame size (``cv2.resize``'s default INTER_LINEAR)."""
    _check_frame(frame)
    height, width = frame.shape[:2]
    h, w = pixelation_size(height, width, factor)
    return cv2.resize(cv2.resize(frame, (w, h)), (width, height))


FrameFn = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]
FRAME_PERTURBATIONS: dict[str, FrameFn] = {
    "CS": lambda f, v, rng: color_saturation(f, v),
    "CC": lambda f, v, rng: color_contrast(f, v),
    "BW": lambda f, v, rng: block_wise(f, int(v), rng),
    "GNC": gaussian_noise_color,
    "GB": lambda f, v, rng: gaussian_blur(f, int(v)),
    "JPEG": lambda f, v, rng: pixelate(f, int(v)),
}
# The function of DF's distortions.py each kind follows (recorded in provenance).
DF_FUNCTIONS: dict[str, str] = {
    "CS": "color_saturation",
    "CC": "color_contrast",
    "BW": "block_wise",
    "GNC": "gaussian_noise_color",
    "GB": "gaussian_blur",
    "JPEG": "jpeg_compression",
    "VC": "video_compression",
}
# Applied when the video is encoded (see pipeline.perturb.file), not to frames.
AT_ENCODE = frozenset({"VC", "none"})


def apply_video(frames: np.ndarray, kind: str, level: int | None, rng: np.random.Generator) -> np.ndarray:
    """Apply video perturbation ``kind`` at ``level`` (1..5) to (T, H, W, 3) uint8 RGB frames.

    Frames are processed in order, each drawing its random parts from ``rng``. ``VC`` (and
    ``none``) return ``frames`` itself: they act at the encode. A mixed spec must be
    ``resolve``-d first. Raises PerturbSpecError for an unknown kind or level.
    """
    spec = PerturbSpec(kind, level)
    if spec.modality != "video" and spec.kind not in AT_ENCODE:
        raise ValueError(f"{spec} is not a video perturbation (resolve a mixed spec first)")
    if frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
    if spec.kind in AT_ENCODE:
        return frames
    fn, value = FRAME_PERTURBATIONS[spec.kind], spec.value
    return np.stack([fn(frame, value, rng) for frame in frames])  # type: ignore[arg-type]
