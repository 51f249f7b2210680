"""mediapipe backend: BlazeFace detection + the 468-point FaceMesh landmarks, mapped to the common 68.

mediapipe 0.10.x ships both models inside the wheel (legacy ``mp.solutions``
API), so nothing downloads. The landmark model runs on each detected face's
region, placed as FaceMesh itself places it from a detection (centred on the
box, 1.5 times its longer side, turned so the eyes are level), but from our
detection: FaceMesh's packaged graph runs its own short-range detector again
inside every crop (a third of its cost), and that detector misses small faces in
wide shots. One region per detected face gives one mesh per face when a frame
holds several.

Small faces in wide shots (DFDC, KoDF: 1920x1080, the face a twentieth of the
width) vanish when the whole frame shrinks to the detector's 128/192 px input;
frames where the whole-frame pass finds no face are searched again tile by tile,
and dark FaceMesh crops are contrast-normalised first (see ``MediapipeBackend``).
"""
from __future__ import annotations

import importlib.util
import math
import sys
import types
from typing import Any, NamedTuple

import numpy as np

from pipeline.errors import ConfigError
from pipeline.faces.base import Face, FaceBackend, check_frame
from pipeline.faces.track import iou

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


# Tiled search (the fallback for small faces): square tiles whose side is each of
# these shares of the frame's shorter side in turn (the next only when the previous
# finds no face), overlapping by a quarter of a tile so that a face up to a quarter
# of a tile wide lies whole in at least one. The short-range model finds faces down
# to ~15 % of its input, so the two levels reach faces of ~6 % of the shorter side
# (65 px at 1080p; smaller faces make no usable 224 px crop). Measured on the dim
# 1920x1080 DFDC clip in shared/media (face ~120 px): 720 px tiles with the
# short-range model find it in 100 of 100 frames (8 tiles, ~25 ms); 540 px tiles
# also 100/100 but 15 tiles; the full-range model on the 720 px tiles 69/100.
TILE_SHARES = (2 / 3, 0.4)
TILE_OVERLAP = 0.25
# The short-range model's input side: a tile smaller than this would be upscaled,
# which adds nothing the whole-frame pass has not seen already.
DETECTOR_INPUT = 128
# Boxes from neighbouring tiles overlapping more than this are one face.
NMS_IOU = 0.3
# FaceMesh crops darker than this mean luma (0-255) are contrast-normalised
# (CLAHE on luminance) before landmarking only; the frames themselves are untouched.
# Measured crop lumas: the dim DFDC clip 28-33 (FaceMesh fails on a fifth of its
# frames without this); every other clip of shared/media 52-156; studio faces >= 53.
# At 70 the two 640x320 clips (52-68) were normalised too and their jitter rose
# 14.4 -> 15.4 per mille IOD; normalising only after a plain FaceMesh failure mixes
# normalised and plain frames (dim DFDC jitter 21.6 -> 23.1). So: a fixed cut, low.
DARK_LUMA = 45.0


class _LazyModule(types.ModuleType):
    """A module whose code runs on the first lookup of a name it does not have yet.

    Unlike ``importlib.util.LazyLoader``, whose module loads on any attribute access, including
    the ``__spec__`` that every later ``import`` statement of it reads, this one stays unloaded
    through imports: only the module's own names (``plt.figure``) load it.
    """

    def __getattr__(self, name: str) -> Any:
        if name == "__path__":  # asked by the import system of every module; pyplot is no package
            raise AttributeError(name)
        self.__class__ = types.ModuleType
        self.__spec__.loader.exec_module(self)
        return getattr(self, name)


def _import_mediapipe() -> Any:
    """``import mediapipe``, with matplotlib.pyplot made lazy first.

    mediapipe's package imports its drawing helpers, and they import pyplot (0.2-0.3 s, over half
    of mediapipe's import, on the critical path of a cold ``avdf detect``), though nothing here
    draws. pyplot's code runs on its first use instead, so code in the same process that does
    plot is unaffected.
    """
    if "mediapipe" not in sys.modules and "matplotlib.pyplot" not in sys.modules:
        spec = importlib.util.find_spec("matplotlib.pyplot")
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            module.__class__ = _LazyModule
            sys.modules["matplotlib.pyplot"] = module
            sys.modules["matplotlib"].pyplot = module
    import mediapipe

    return mediapipe


def _clahe_luma(rgb: np.ndarray) -> np.ndarray:
    """Contrast-limited histogram equalisation of the luminance only (colours kept)."""
    import cv2

    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    ycc[..., 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(np.ascontiguousarray(ycc[..., 0]))
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def _luma(rgb: np.ndarray) -> float:
    r, g, b = (rgb[..., i].mean() for i in range(3))
    return float(0.299 * r + 0.587 * g + 0.114 * b)


def tile_grid(height: int, width: int, share: float) -> list[tuple[int, int, int]]:
    """(x, y, side) of the overlapping square tiles of ``share`` of the shorter side covering a frame;
    empty when such tiles would be smaller than the detector's input."""
    side = int(round(share * min(height, width)))
    if side < DETECTOR_INPUT:
        return []
    step = side * (1 - TILE_OVERLAP)

    def starts(extent: int) -> np.ndarray:
        n = int(np.ceil(max(extent - side, 0) / step)) + 1
        return np.linspace(0, extent - side, n).round().astype(int)

    return [(int(x), int(y), side) for y in starts(height) for x in starts(width)]


# FaceMesh's landmark subgraph alone (registered inside mediapipe's native library), fed an image and the
# face's region: what FaceMesh runs after its own detector, without that detector.
LANDMARK_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
output_stream: "LANDMARKS:landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
}
"""
# FaceMesh's region around a detection (its FaceDetectionFrontDetectionToRoi subgraph): a square of this
# many times the box's longer side, centred on the box.
ROI_SCALE = 1.5
# Input side of the full-range detector (the short-range one's is DETECTOR_INPUT).
FULL_RANGE_INPUT = 192
# A face that the detector saw smaller than this (its box's longer side, in the detector's input pixels:
# a 720p frame shrinks 10-fold) gets a box too coarse to place the landmark region: rotation and centre
# wobble from frame to frame. It is detected again by the short-range model in the face's crop, where
# it fills half the view, as FaceMesh's own graph did for every face, and that box places the region;
# not found again, it is no face (a blob the whole-frame pass took for a small face: one frame of
# ffmpeg's 96 px test pattern, score 0.52, passes the landmark model's own face-presence check). Measured with ``avdf bench faces`` (rigid-landmark jitter,
# per mille IOD, FaceMesh's graph in each crop -> region from the whole-frame box alone): faces seen at
# 19-20 px got noisier (720p HyperLips 12.6 -> 17.4, 640x320 clips 14 -> 16-18, a 1080p DFDC clip
# 14 -> 121 with its main track 99 -> 79 %), at 22-23 px unchanged (11.2 -> 11.6, 14.0 -> 13.7), at
# 30 px and more equal or better (224-844 px close-ups: 14.4 -> 13.9 on average; studio faces are seen
# at ~55 px). With this refinement every clip of shared/media is back to its old figures or better
# (all 30: jitter 14.0 -> 13.8, main track 99.9 % both), and close-ups cost 12 instead of 18 ms/frame.
REFINE_BELOW_PX = 32.0
# The score that detection in the crop must reach: FaceMesh's threshold for its own detector there, before.
CROP_DETECTION_CONFIDENCE = 0.3


class Candidate(NamedTuple):
    """One detection in frame pixels: box (x0, y0, x1, y1), detector score, the eye keypoints (2, 2):
    image-left eye then image-right eye, which set the landmark region's rotation, and the box's
    longer side as the detector saw it (in its input's pixels)."""

    box: np.ndarray
    score: float
    eyes: np.ndarray
    detector_px: float


def non_max_suppression(candidates: list[Any], max_iou: float = NMS_IOU) -> list[Any]:
    """Best-scoring first; a candidate (box, score, ...) whose box overlaps a kept one's by more than
    ``max_iou`` is dropped."""
    kept: list[Any] = []
    for candidate in sorted(candidates, key=lambda c: -c[1]):
        if all(iou(candidate[0], k[0]) <= max_iou for k in kept):
            kept.append(candidate)
    return kept


def landmark_region(
    box: np.ndarray, eyes: np.ndarray, width: int, height: int
) -> tuple[float, float, float, float, float]:
    """FaceMesh's landmark region for a detection, normalised to a ``width`` x ``height`` image:
    (x_center, y_center, width, height, rotation in radians), as its DetectionsToRects (rotation that
    levels the eyes) and RectTransformation (square of ``ROI_SCALE`` times the longer side) compute it."""
    (lx, ly), (rx, ry) = eyes
    rotation = -math.atan2(-(ry - ly), rx - lx)
    rotation -= 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    side = ROI_SCALE * float(max(box[2] - box[0], box[3] - box[1]))
    cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
    return cx / width, cy / height, side / width, side / height, rotation


def _centre_inside(points: np.ndarray, box: np.ndarray) -> bool:
    """Whether the centre of ``points`` ((N, 2), or a box's two corners as (4,)) lies in ``box``."""
    cx, cy = np.asarray(points, np.float32).reshape(-1, 2).mean(0)
    return bool(box[0] <= cx <= box[2] and box[1] <= cy <= box[3])


class MediapipeBackend(FaceBackend):
    """Options: ``min_confidence`` (detector score threshold), ``model_selection``
    ("auto", default: the short-range model, and the full-range one on frames where it
    finds nothing; 0 = short range only; 1 = full range only), ``crop_scale`` (side of
    the square FaceMesh crop relative to the detection box), ``max_faces``,
    ``tiles`` (default True: when the whole frame yields no landmarked face, search
    overlapping tiles of it with the short-range model, for small faces in wide shots),
    ``dark_luma`` (FaceMesh crops darker than this mean luma are contrast-normalised
    first; 0 = never).

    Measured on shared/media/real_talking: the full-range model alone misses faces
    that fill the frame (VoxCeleb-style 224 px crops: 12 of 20 frames found), the
    short-range model alone misses small faces in wide shots; "auto" finds both.
    Neither finds the ~120 px face of the dim 1920x1080 DFDC clip in shared/media in
    more than 21 % of frames (the frame shrinks to the detector's 128/192 px input);
    with the tiles 79 %, with the tiles and dark crops normalised 100 %. The tiles run
    only where the whole-frame pass finds nothing, and the normalisation only on crops
    darker than any close-up clip there, so close-up clips cost and give what they
    did (``avdf bench faces`` prints the figures per clip). Looking first around
    the previous frame's face would halve the cost on such wide shots (measured 78 ->
    37 ms/frame) but would make ``detect`` depend on the frames before it; not done.
    """

    name = "mediapipe"

    def __init__(
        self,
        min_confidence: float = 0.5,
        model_selection: int | str = "auto",
        crop_scale: float = 1.8,
        max_faces: int = 4,
        tiles: bool = True,
        dark_luma: float = DARK_LUMA,
    ) -> None:
        mp = _import_mediapipe()  # heavy: import only when a backend is built
        from mediapipe.python.solution_base import SolutionBase

        if model_selection not in ("auto", 0, 1):
            raise ConfigError(f"mediapipe face backend: model_selection must be 'auto', 0 or 1, got {model_selection!r}")
        if not isinstance(tiles, bool):
            raise ConfigError(f"mediapipe face backend: tiles must be true or false, got {tiles!r}")
        self.min_confidence = min_confidence
        self.model_selection = model_selection
        self.crop_scale = crop_scale
        self.max_faces = max_faces
        self.tiles = tiles
        self.dark_luma = float(dark_luma)
        detection = mp.solutions.face_detection.FaceDetection
        self._short = detection(model_selection=0, min_detection_confidence=min_confidence)
        self._full = detection(model_selection=1, min_detection_confidence=min_confidence)
        self._in_crop = detection(model_selection=0, min_detection_confidence=CROP_DETECTION_CONFIDENCE)
        short, full = (self._short, DETECTOR_INPUT), (self._full, FULL_RANGE_INPUT)
        self._whole_frame = {"auto": (short, full), 0: (short,), 1: (full,)}[model_selection]
        self._landmarker = SolutionBase(graph_config=LANDMARK_GRAPH)

    def describe(self) -> dict[str, object]:
        import mediapipe as mp

        return {
            "name": self.name,
            "version": mp.__version__,
            "min_confidence": self.min_confidence,
            "model_selection": self.model_selection,
            "crop_scale": self.crop_scale,
            "tiles": self.tiles,
            "dark_luma": self.dark_luma,
            # How landmarks are placed (a cache of detections made otherwise must not be reused).
            "landmark_region": "detection",
            "refine_below_px": REFINE_BELOW_PX,
            "crop_detection_confidence": CROP_DETECTION_CONFIDENCE,
        }

    def detect(self, frame_rgb: np.ndarray) -> list[Face]:
        frame = check_frame(frame_rgb)
        faces = self._landmarked(frame, self._detect_whole(frame))
        # The expensive path, only for frames the whole-frame pass leaves without a face.
        for share in TILE_SHARES if self.tiles else ():
            if faces:
                break
            faces = self._landmarked(frame, self._detect_tiled(frame, share))
        return faces

    def _run(
        self, detector: object, input_side: int, image: np.ndarray, x0: int = 0, y0: int = 0
    ) -> list[Candidate]:
        """Each detection in ``image``, placed at (x0, y0) in the frame; ``input_side``: the detector's."""
        h, w = image.shape[:2]
        scale, offset = np.array([w, h], np.float32), np.array([x0, y0], np.float32)
        out = []
        for det in detector.process(image).detections or []:
            rb = det.location_data.relative_bounding_box
            corners = np.array([[rb.xmin, rb.ymin], [rb.xmin + rb.width, rb.ymin + rb.height]], np.float32)
            # BlazeFace's keypoints 0 and 1: the eyes (image left, image right).
            eyes = np.array([[k.x, k.y] for k in det.location_data.relative_keypoints[:2]], np.float32)
            # The detector letterboxes the image into its square input.
            seen = max(rb.width * w, rb.height * h) * input_side / max(w, h)
            out.append(Candidate((corners * scale + offset).reshape(4), float(det.score[0]), eyes * scale + offset,
                                 seen))
        return out

    def _detect_whole(self, frame: np.ndarray) -> list[Candidate]:
        for detector, input_side in self._whole_frame:
            found = self._run(detector, input_side, frame)
            if found:
                return found
        return []

    def _detect_tiled(self, frame: np.ndarray, share: float) -> list[Candidate]:
        found = []
        for x, y, side in tile_grid(*frame.shape[:2], share):
            tile = np.ascontiguousarray(frame[y : y + side, x : x + side])
            found += self._run(self._short, DETECTOR_INPUT, tile, x, y)
        return non_max_suppression(found)

    def _landmarked(self, frame: np.ndarray, candidates: list[Candidate]) -> list[Face]:
        faces: list[Face] = []
        for candidate in candidates[: self.max_faces]:
            mesh = self._mesh_in_box(frame, candidate)
            if mesh is None:
                # A face that cannot be landmarked cannot be aligned: treat it as not found.
                continue
            faces.append(Face(box=candidate.box, score=candidate.score, landmarks=mesh[MESH_TO_68],
                              native_landmarks=mesh))
        return faces

    def _mesh_in_box(self, frame: np.ndarray, candidate: Candidate) -> np.ndarray | None:
        import cv2
        from mediapipe.framework.formats.rect_pb2 import NormalizedRect

        box = candidate.box
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
        dark = _luma(crop) < self.dark_luma
        top, left = max(-y0, 0), max(-x0, 0)
        crop = cv2.copyMakeBorder(
            crop, top, side - top - crop.shape[0], left, side - left - crop.shape[1], cv2.BORDER_CONSTANT, value=0
        )
        if dark:
            crop = _clahe_luma(crop)
        crop = np.ascontiguousarray(crop)
        origin = np.array([x0, y0, x0, y0], np.float32)
        region_box, eyes = box - origin, candidate.eyes - origin[:2]
        if candidate.detector_px < REFINE_BELOW_PX:
            # The best box centred inside the first one (a neighbour's face is not this one).
            inside = [c for c in self._run(self._in_crop, DETECTOR_INPUT, crop) if _centre_inside(c.box, region_box)]
            if not inside:
                return None
            best = max(inside, key=lambda c: c.score)
            region_box, eyes = best.box, best.eyes
        xc, yc, rw, rh, rotation = landmark_region(region_box, eyes, side, side)
        roi = NormalizedRect(x_center=xc, y_center=yc, width=rw, height=rh, rotation=rotation)
        result = self._landmarker.process({"image": crop, "roi": roi})
        # No landmarks: the model's face-presence score is under its threshold (not a face).
        if result.landmarks is None:
            return None
        mesh = np.array([(p.x, p.y) for p in result.landmarks.landmark], np.float32) * side
        mesh += np.array([x0, y0], np.float32)
        # A mesh whose centre leaves the box fitted something beside it, not this box's face
        # (kept from when FaceMesh re-detected inside the crop and could land on a neighbour,
        # e.g. the real face above a false detection on the chest in the dim DFDC clip).
        return mesh if _centre_inside(mesh, box) else None

    def close(self) -> None:
        self._short.close()
        self._full.close()
        self._in_crop.close()
        self._landmarker.close()
