"""Face geometry shared by the built-in generators: landmark tracks, mouth poses, warps, masks.

Landmarks are the 68-point iBUG layout of ``pipeline.faces`` (any backend).
Warps are piecewise affine over a Delaunay triangulation (the way
landmark-driven talking heads such as MakeItTalk move a face), with a ring of
fixed anchor points so that everything outside the face stays put.
"""
from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.errors import MediaError
from pipeline.faces.base import INNER_LIP, JAW, OUTER_LIP, interocular

# Outer-lip points below the corners (lower lip) and the chin part of the jaw.
LOWER_OUTER = np.array([55, 56, 57, 58, 59])
UPPER_OUTER = np.array([49, 50, 51, 52, 53])
LOWER_INNER = np.array([65, 66, 67])
UPPER_INNER = np.array([61, 62, 63])
CHIN = np.arange(4, 13)


@lru_cache(maxsize=None)
def shared_face_backend(name: str = "mediapipe"):
    """One face backend per name per process, shared by every generator in it.

    Loading a backend costs a second or more (mediapipe graphs); a Ray worker
    that runs four generators would otherwise pay it four times. The built-in
    backends run in static-image mode (no state between frames), so sharing
    is safe; a process runs one task at a time.
    """
    from pipeline.faces import make_face_backend

    return make_face_backend(name)


def track_landmarks(frames: np.ndarray, backend, path: Path | str, every: int = 1, *,
                    frame_ids: Sequence[int] | np.ndarray | None = None,
                    memo: MutableMapping[int, np.ndarray | None] | None = None) -> np.ndarray:
    """(T, 68, 2) landmarks of the largest face in each frame.

    Frames where no face is found take the nearest detected frame's landmarks;
    a clip with no face at all is a MediaError (as Wav2Lip aborts on it).
    ``every`` > 1 detects on every n-th frame and interpolates between them.

    ``frame_ids`` names the picture each frame shows (default: its index):
    frames with one id hold the same pixels, such as the repeats of a clip
    played back and forth to fit a longer audio, or the same decoded file in
    another fake. ``memo`` maps an id to what detection found in it (None: no
    face); ids already there are not detected again, and new ones are added.
    Detection is a pure function of the pixels, so the result is the same
    with or without a memo.
    """
    t = len(frames)
    ids = np.arange(t) if frame_ids is None else np.asarray(frame_ids)
    memo = {} if memo is None else memo
    found: dict[int, np.ndarray] = {}
    idx = list(range(0, t, max(1, every)))
    if idx[-1] != t - 1:
        idx.append(t - 1)
    for i in idx:
        fid = int(ids[i])
        if fid not in memo:
            faces = backend.detect(np.ascontiguousarray(frames[i]))
            memo[fid] = max(faces, key=lambda f: f.area).landmarks if faces else None
        if memo[fid] is not None:
            found[i] = memo[fid]
    if not found:
        raise MediaError(path, f"no face found in any of {len(idx)} checked frames", "no_face")
    keys = np.array(sorted(found))
    stack = np.stack([found[k] for k in keys])
    out = np.empty((t, 68, 2), np.float32)
    flat = stack.reshape(len(keys), -1)
    for j in range(flat.shape[1]):
        out.reshape(t, -1)[:, j] = np.interp(np.arange(t), keys, flat[:, j])
    return out


def smooth_track(landmarks: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Gaussian smoothing along time (temporal consistency of warps)."""
    if sigma <= 0 or len(landmarks) < 3:
        return landmarks
    radius = int(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(landmarks, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    out = np.zeros_like(landmarks)
    for i, w in enumerate(k):
        out += w * padded[i : i + len(landmarks)]
    return out


# How far a fully open driven mouth drops its lower lip, in inter-ocular distances (IOD), and how much
# of that the chin follows. Measured on the studio reals' landmarks: their inner-lip gap reaches
# 0.146 IOD (95th percentile) and their jaw line stays put; the first built-ins dropped the lip by
# 0.45 IOD with the chin following at 0.6, and the face detector's box then jittered 2.3 times as
# much as in the reals (box-size CV 0.018 vs 0.008): a face-box shortcut, not a forgery trace.
MAX_LIP_DROP_IOD = 0.15
JAW_GAIN = 0.0


def mouth_pose(landmarks: np.ndarray, opening: float, width: float, jaw_gain: float = JAW_GAIN) -> np.ndarray:
    """Landmarks with the mouth re-posed: ``opening`` in [0, 1], ``width`` in [-1, 1].

    The target's own mouth is first closed (inner lips meet) and then opened by
    the audio-driven amount, so the result does not depend on what the
    original mouth was saying.
    """
    lm = landmarks.astype(np.float32).copy()
    scale = float(interocular(lm))
    centre = lm[OUTER_LIP].mean(0)
    # Close: move lower inner/outer lips up by the current inner gap.
    gap = float(np.mean(lm[LOWER_INNER, 1] - lm[UPPER_INNER, 1]))
    lm[LOWER_INNER, 1] -= gap
    lm[LOWER_OUTER, 1] -= gap
    lm[CHIN, 1] -= gap * jaw_gain * np.hanning(len(CHIN) + 2)[1:-1]
    # Open by the audio, up to MAX_LIP_DROP_IOD.
    drop = opening * MAX_LIP_DROP_IOD * scale
    lm[LOWER_INNER, 1] += drop
    lm[LOWER_OUTER, 1] += drop * 1.05
    lm[UPPER_INNER, 1] -= drop * 0.12
    lm[UPPER_OUTER, 1] -= drop * 0.08
    lm[CHIN, 1] += drop * jaw_gain * np.hanning(len(CHIN) + 2)[1:-1]
    # Corners: spread vowels widen, rounded ones narrow (and open mouths narrow a bit).
    stretch = 1.0 + 0.12 * width - 0.08 * opening
    lm[OUTER_LIP, 0] = centre[0] + (lm[OUTER_LIP, 0] - centre[0]) * stretch
    lm[INNER_LIP, 0] = centre[0] + (lm[INNER_LIP, 0] - centre[0]) * stretch
    return lm


def lower_face_box(landmarks: np.ndarray, shape: tuple[int, int], margin: float = 0.25) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the lower half of the face: nose tip to below the chin,
    jaw side to jaw side (the region Wav2Lip regenerates)."""
    h, w = shape
    jaw = landmarks[JAW]
    x0, x1 = jaw[:, 0].min(), jaw[:, 0].max()
    y0 = landmarks[29, 1]
    y1 = jaw[:, 1].max()
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    return (int(max(x0 - mx * 0.3, 0)), int(max(y0, 0)), int(min(x1 + mx * 0.3, w)), int(min(y1 + my, h)))


def face_hull_mask(landmarks: np.ndarray, shape: tuple[int, int], points: np.ndarray | slice = slice(None),
                   feather: float = 0.0, dilate: float = 0.0) -> np.ndarray:
    """float32 (H, W) mask of the convex hull of some landmarks, optionally grown and feathered."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(landmarks[points].astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    if dilate > 0:
        k = max(1, int(dilate)) * 2 + 1
        mask = cv2.dilate(mask, np.ones((k, k), np.uint8))
    out = mask.astype(np.float32) / 255.0
    if feather > 0:
        k = max(1, int(feather)) * 2 + 1
        out = cv2.GaussianBlur(out, (k, k), 0)
    return out


def _anchors(shape: tuple[int, int], landmarks: np.ndarray, pad: float = 0.35) -> np.ndarray:
    """Fixed points: the frame corners/edges and a ring around the face."""
    h, w = shape
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    px, py = pad * (x1 - x0), pad * (y1 - y0)
    ring = []
    for fx in (0.0, 0.5, 1.0):
        for fy in (0.0, 0.5, 1.0):
            if fx == 0.5 and fy == 0.5:
                continue
            ring.append((x0 - px + fx * (x1 - x0 + 2 * px), y0 - py + fy * (y1 - y0 + 2 * py)))
    edges = [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1), (w / 2, 0), (w / 2, h - 1), (0, h / 2), (w - 1, h / 2)]
    pts = np.array(ring + edges, np.float32)
    pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
    return pts


def triangulate(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(K, 3) Delaunay triangles over ``points`` (indices).

    Points that round to the same 1/1000 px are inserted once (the first one
    names the vertex). Runs once per warped frame, so each distinct vertex of
    the triangle list is resolved to its point index once, not once per
    triangle corner (each vertex is a corner of ~6 triangles).
    """
    import cv2

    h, w = shape
    subdiv = cv2.Subdiv2D((0, 0, w + 1, h + 1))
    pts = np.clip(points, 0, [w - 1, h - 1])
    lookup: dict[tuple[float, float], int] = {}  # rounded position -> the point that names it
    inserted: dict[tuple[float, float], int] = {}  # exact position -> that point
    for i, (x, y) in enumerate(pts.tolist()):
        key = (round(x, 3), round(y, 3))
        if key not in lookup:
            lookup[key] = inserted[(x, y)] = i
    subdiv.insert(list(inserted))
    corners = np.asarray(subdiv.getTriangleList(), np.float32).reshape(-1, 2)  # () when there are none
    # Distinct vertices by their bits (a 1-D unique; np.unique(axis=0) costs ~10x more).
    codes, which = np.unique(np.ascontiguousarray(corners).view(np.uint64).ravel(), return_inverse=True)
    index = np.empty(len(codes), np.int64)
    for j, (x, y) in enumerate(codes.view(np.float32).reshape(-1, 2).tolist()):
        if (x, y) in inserted:  # Subdiv2D keeps float32 points: exactly an inserted one, which named its key
            index[j] = inserted[(x, y)]
            continue
        key = (round(x, 3), round(y, 3))
        # Subdiv2D may return slightly moved points: match the nearest.
        index[j] = lookup[key] if key in lookup else int(np.abs(pts - np.array(key, np.float32)).sum(1).argmin())
    tris = index[which.reshape(-1)].reshape(-1, 3)
    distinct = (tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])
    return tris[distinct]


def piecewise_affine(image: np.ndarray, src: np.ndarray, dst: np.ndarray, triangles: np.ndarray | None = None,
                     anchors: bool = True) -> np.ndarray:
    """Warp ``image`` so that points ``src`` move to ``dst`` (triangle by triangle).

    One ``cv2.remap`` over the bounding box of the triangles that move: each
    pixel there looks up its triangle (rasterised ids) and samples the source
    through that triangle's inverse affine map; every other pixel maps to
    itself. (A warpAffine per triangle costs ~10x more in Python overhead.)
    """
    import cv2

    h, w = image.shape[:2]
    src = np.asarray(src, np.float32)
    dst = np.asarray(dst, np.float32)
    if anchors:
        fixed = _anchors((h, w), np.concatenate([src, dst]))
        src = np.concatenate([src, fixed])
        dst = np.concatenate([dst, fixed])
    if triangles is None:
        triangles = triangulate(dst, (h, w))
    moved = np.abs(src - dst).max(1) > 0.05
    tris = np.asarray(triangles, np.int64).reshape(-1, 3)
    tris = tris[moved[tris].any(1)]
    if len(tris) == 0:
        return image.copy()
    d, s = dst[tris], src[tris]  # (K, 3, 2)
    x0, y0 = np.maximum(np.floor(d.reshape(-1, 2).min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(d.reshape(-1, 2).max(0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return image.copy()
    # Triangle id per pixel of the box (-1: outside every moving triangle; later triangles win on shared edges).
    label = np.full((y1 - y0, x1 - x0), -1, np.int32)
    for k, tri in enumerate(np.round(d - [x0, y0]).astype(np.int32)):
        cv2.fillConvexPoly(label, tri, int(k))
    # Inverse maps dst -> src for all triangles at once: [x y 1] @ A = [x' y'] (pinv: degenerate ones are harmless).
    ones = np.ones((len(tris), 3, 1), np.float64)
    a = np.linalg.pinv(np.concatenate([d.astype(np.float64), ones], axis=2)) @ s.astype(np.float64)  # (K, 3, 2)
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    map_x, map_y = gx.copy(), gy.copy()
    inside = label >= 0
    k = label[inside]
    px, py = gx[inside], gy[inside]
    map_x[inside] = px * a[k, 0, 0] + py * a[k, 1, 0] + a[k, 2, 0]
    map_y[inside] = px * a[k, 0, 1] + py * a[k, 1, 1] + a[k, 2, 1]
    out = image.copy()
    out[y0:y1, x0:x1] = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def mouth_interior(frame: np.ndarray, landmarks: np.ndarray, shade: float = 0.25) -> np.ndarray:
    """Paint the inner-lip polygon dark (an open mouth's interior, with a hint of teeth)."""
    import cv2

    gap = float(landmarks[66, 1] - landmarks[62, 1])
    if gap < 1.5:
        return frame
    h, w = frame.shape[:2]
    # Work in the mouth's bounding box only.
    x0, y0 = np.floor(landmarks[INNER_LIP].min(0)).astype(int) - 3
    x1, y1 = np.ceil(landmarks[INNER_LIP].max(0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return frame
    off = np.array([x0, y0])
    inner = (landmarks[INNER_LIP] - off).astype(np.int32)
    box = frame[y0:y1, x0:x1].astype(np.float32)
    mask = np.zeros(box.shape[:2], np.uint8)
    cv2.fillPoly(mask, [inner], 255)
    mask = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[..., None] / 255.0
    dark = box * shade + np.array([40, 8, 10], np.float32) * (1 - shade)
    # Upper teeth: a light band under the upper lip.
    teeth = np.zeros(box.shape[:2], np.uint8)
    top = (landmarks[[60, 61, 62, 63, 64]] - off).astype(np.int32)
    band = np.concatenate([top, top[::-1] + [0, max(1, int(gap * 0.25))]])
    cv2.fillPoly(teeth, [band], 255)
    teeth_m = (cv2.GaussianBlur(teeth, (3, 3), 0).astype(np.float32) / 255.0)[..., None] * mask
    dark = dark * (1 - teeth_m) + np.array([225, 220, 210], np.float32) * teeth_m
    out = frame.copy()
    out[y0:y1, x0:x1] = np.clip(box * (1 - mask) + dark * mask, 0, 255).astype(np.uint8)
    return out
