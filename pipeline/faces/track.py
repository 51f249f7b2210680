"""Link per-frame detections into tracks, keep the main speaker's, fill short gaps, smooth.

Detections link frame to frame by box overlap (IoU) with the track's last box,
whatever its age, so a face that comes back where it left stays one track and
its absence shows up as a gap. The main speaker is the track with the best
product of persistence (share of frames), size (median box side relative to
the largest track's) and centrality; the choice and the figures behind it are
recorded. Missing frames of the main track are filled by linear interpolation
(held at the clip's ends); the caller decides which gaps are too long.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.faces.base import NUM_LANDMARKS, Face


@dataclass
class Track:
    id: int
    frames: list[int] = field(default_factory=list)
    faces: list[Face] = field(default_factory=list)

    @property
    def last_box(self) -> np.ndarray:
        return self.faces[-1].box


@dataclass
class TrackResult:
    """The main speaker's face over the whole clip (T frames)."""

    landmarks: np.ndarray  # (T, 68, 2) float32, gaps filled
    boxes: np.ndarray  # (T, 4) float32, gaps filled, smoothed
    found: np.ndarray  # (T,) bool: the main face was detected in this very frame
    detected_on: np.ndarray  # (T,) bool: detection ran on this frame (every k-th + the last)
    main_track: int | None
    tracks: list[dict[str, float | int]]
    reason: str
    gaps: list[tuple[int, int]]  # [start, stop) runs of frames without the main face

    @property
    def num_frames(self) -> int:
        return int(len(self.found))

    @property
    def face_fraction(self) -> float:
        """Share of the frames detection ran on in which the main face was found."""
        ran = int(self.detected_on.sum())
        return float((self.found & self.detected_on).sum() / ran) if ran else 0.0

    @property
    def longest_gap(self) -> tuple[int, int]:
        return max(self.gaps, key=lambda g: g[1] - g[0], default=(0, 0))

    def summary(self) -> dict[str, object]:
        start, stop = self.longest_gap
        return {
            "main_track": self.main_track,
            "num_tracks": len(self.tracks),
            "reason": self.reason,
            "tracks": self.tracks,
            "face_fraction": round(self.face_fraction, 4),
            "frames_without_face": int((self.detected_on & ~self.found).sum()),
            "longest_gap_frames": stop - start,
            "longest_gap_start": start,
        }


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def link_tracks(detections: list[list[Face] | None], min_iou: float = 0.3) -> list[Track]:
    """Greedy IoU linking; ``None`` marks frames detection did not run on."""
    tracks: list[Track] = []
    for t, faces in enumerate(detections):
        if not faces:
            continue
        pairs = sorted(
            ((iou(tr.last_box, f.box), ti, fi) for ti, tr in enumerate(tracks) for fi, f in enumerate(faces)),
            reverse=True,
        )
        used_tracks: set[int] = set()
        used_faces: set[int] = set()
        for overlap, ti, fi in pairs:
            if overlap < min_iou:
                break
            if ti in used_tracks or fi in used_faces:
                continue
            used_tracks.add(ti)
            used_faces.add(fi)
            tracks[ti].frames.append(t)
            tracks[ti].faces.append(faces[fi])
        for fi, f in enumerate(faces):
            if fi not in used_faces:
                tracks.append(Track(id=len(tracks), frames=[t], faces=[f]))
    return tracks


def choose_main_track(
    tracks: list[Track], num_run_frames: int, frame_size: tuple[int, int]
) -> tuple[int | None, list[dict[str, float | int]], str]:
    """(index of the main track, per-track figures, a sentence saying why)."""
    if not tracks:
        return None, [], "no face detected in any frame"
    w, h = frame_size
    half_diag = 0.5 * float(np.hypot(w, h))
    sides = [float(np.median([np.sqrt(f.area) for f in tr.faces])) for tr in tracks]
    largest = max(sides) or 1.0
    stats: list[dict[str, float | int]] = []
    for tr, side in zip(tracks, sides):
        boxes = np.stack([f.box for f in tr.faces])
        cx, cy = np.median((boxes[:, 0] + boxes[:, 2]) / 2), np.median((boxes[:, 1] + boxes[:, 3]) / 2)
        off_centre = float(np.hypot(cx - w / 2, cy - h / 2) / half_diag)
        persistence = len(tr.frames) / max(num_run_frames, 1)
        # Centrality only tempers the score: an off-centre speaker who is big and always there still wins.
        score = persistence * (side / largest) * (1.0 - 0.5 * off_centre)
        stats.append(
            {
                "track": tr.id,
                "frames": len(tr.frames),
                "first_frame": tr.frames[0],
                "persistence": round(persistence, 4),
                "median_side_px": round(side, 1),
                "off_centre": round(off_centre, 4),
                "score": round(score, 4),
            }
        )
    order = sorted(range(len(tracks)), key=lambda i: stats[i]["score"], reverse=True)
    best = order[0]
    s = stats[best]
    reason = (
        f"track {best}: in {s['persistence']:.0%} of frames, median size {s['median_side_px']:.0f} px, "
        f"{s['off_centre']:.2f} of the half-diagonal from the centre; score {s['score']:.3f}"
    )
    if len(order) > 1:
        r = stats[order[1]]
        why = [
            word
            for word, key, better in (
                ("more persistent", "persistence", s["persistence"] > r["persistence"]),
                ("larger", "median_side_px", s["median_side_px"] > r["median_side_px"]),
                ("more central", "off_centre", s["off_centre"] < r["off_centre"]),
            )
            if better
        ]
        reason += f" vs {r['score']:.3f} for runner-up track {order[1]}" + (f" ({', '.join(why)})" if why else "")
    return best, stats, reason


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 (edges held), float32."""
    if sigma <= 0 or len(x) < 2:
        return x.astype(np.float32, copy=True)
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x.astype(np.float64), sigma, axis=0, mode="nearest").astype(np.float32)


def _interpolate(frames: np.ndarray, values: np.ndarray, num_frames: int) -> np.ndarray:
    """Linear interpolation of (n, ...) values known at ``frames`` onto 0..T-1 (held at the ends)."""
    flat = values.reshape(len(values), -1)
    out = np.empty((num_frames, flat.shape[1]), np.float32)
    grid = np.arange(num_frames)
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(grid, frames, flat[:, j])
    return out.reshape((num_frames, *values.shape[1:]))


def _gaps(found_frames: np.ndarray, detected_on: np.ndarray, num_frames: int) -> list[tuple[int, int]]:
    """Runs of frames with no main face, counting frames between a miss and the next hit."""
    if len(found_frames) == 0:
        return [(0, num_frames)] if num_frames else []
    gaps = []
    if found_frames[0] > 0:
        gaps.append((0, int(found_frames[0])))
    for a, b in zip(found_frames[:-1], found_frames[1:]):
        # Frames between two hits are only missing if detection ran on one of them and failed.
        if b - a > 1 and detected_on[a + 1 : b].any():
            gaps.append((int(a) + 1, int(b)))
    if found_frames[-1] < num_frames - 1:
        gaps.append((int(found_frames[-1]) + 1, num_frames))
    return gaps


def given_track(landmarks: np.ndarray, boxes: np.ndarray, found: np.ndarray) -> TrackResult:
    """A face track recorded earlier (e.g. a clean clip's, for a perturbed copy of it): nothing is
    detected now, so ``detected_on`` is all False and the frames where the face was found keep
    their flags."""
    found = np.asarray(found, bool)
    return TrackResult(
        landmarks=np.asarray(landmarks, np.float32), boxes=np.asarray(boxes, np.float32), found=found,
        detected_on=np.zeros(len(found), bool), main_track=None, tracks=[], reason="given", gaps=[],
    )


def track_faces(
    detections: list[list[Face] | None],
    frame_size: tuple[int, int],
    min_iou: float = 0.3,
    box_sigma: float = 1.5,
    landmark_sigma: float = 0.0,
) -> TrackResult:
    """Track the main speaker through per-frame detections (``None`` = not run on that frame).

    ``frame_size`` is (width, height). Landmarks are not smoothed by default:
    mouth motion is the signal the detectors look at, and the crops smooth
    their own alignment (see ``pipeline.faces.crops``).
    """
    num_frames = len(detections)
    detected_on = np.array([d is not None for d in detections], bool)
    tracks = link_tracks(detections, min_iou)
    main, stats, reason = choose_main_track(tracks, int(detected_on.sum()), frame_size)
    found = np.zeros(num_frames, bool)
    if main is None:
        return TrackResult(
            landmarks=np.zeros((num_frames, NUM_LANDMARKS, 2), np.float32),
            boxes=np.zeros((num_frames, 4), np.float32),
            found=found,
            detected_on=detected_on,
            main_track=None,
            tracks=stats,
            reason=reason,
            gaps=_gaps(np.array([], int), detected_on, num_frames),
        )
    track = tracks[main]
    frames = np.asarray(track.frames)
    found[frames] = True
    landmarks = _interpolate(frames, np.stack([f.landmarks for f in track.faces]), num_frames)
    boxes = _interpolate(frames, np.stack([f.box for f in track.faces]), num_frames)
    return TrackResult(
        landmarks=gaussian_smooth(landmarks, landmark_sigma),
        boxes=gaussian_smooth(boxes, box_sigma),
        found=found,
        detected_on=detected_on,
        main_track=main,
        tracks=stats,
        reason=reason,
        gaps=_gaps(frames, detected_on, num_frames),
    )
