"""Frame-folder clips (IDForge v2): ``<name>.mp4/`` holding ``frames_ndarray.npy`` and ``<name>.mp3``.

IDForge v2 keeps 16 frames of each clip, in 4 groups of 4 consecutive frames at
equal intervals over the clip, beside the clip's whole audio track. This reads
such a folder as the rest of avdf sees a clip: 16 RGB frames and the 16 x 640
samples that play under them (each group's own audio window, the windows
concatenated), so frame t still pairs with samples [640 t, 640 (t + 1)) and a
16-frame segment is the whole clip in its four groups. Where the groups start
is not published: like the replica writer, avdf takes the four starts evenly
spaced from the first frame to the last full group (``group_frame_indices``),
with the clip's length taken from its audio at 25 fps (an mp3's padding makes
that length, hence a group's audio window, uncertain by about one frame); the
frames are taken to be RGB.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import MediaError

FRAMES_NAME = "frames_ndarray.npy"
GROUPS, PER_GROUP = 4, 4


def is_frame_folder(path: Path) -> bool:
    return path.is_dir() and (path / FRAMES_NAME).is_file()


def group_frame_indices(num_frames: int, groups: int = GROUPS, per_group: int = PER_GROUP) -> list[int]:
    """The frame numbers kept from a clip of ``num_frames``: ``groups`` runs of ``per_group``
    consecutive frames starting at evenly spaced frames (repeating the last frame of a short clip)."""
    last_start = max(0, num_frames - per_group)
    starts = np.linspace(0, last_start, groups).round().astype(int)
    return [min(int(s) + j, max(num_frames - 1, 0)) for s in starts for j in range(per_group)]


def check_frames(frames: np.ndarray, path: Path) -> None:
    """A frame folder's array is (16, H, W, 3) uint8 (MediaError ``bad_frames`` naming the file otherwise)."""
    if frames.ndim != 4 or frames.shape[0] != GROUPS * PER_GROUP or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise MediaError(path, f"expected ({GROUPS * PER_GROUP}, H, W, 3) uint8 frames, got {frames.dtype} "
                         f"{tuple(frames.shape)}", "bad_frames")


def read_frame_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frames (16, H, W, 3) uint8 RGB, audio (16 * 640,) float32 16 kHz) of a frame folder."""
    from pipeline.media import SAMPLES_PER_FRAME, decode_audio, fit_length

    try:
        frames = np.load(path / FRAMES_NAME, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise MediaError(path / FRAMES_NAME, f"not a readable .npy array ({exc})", "not_media") from None
    check_frames(frames, path / FRAMES_NAME)
    mp3 = path / f"{path.stem}.mp3"
    if not mp3.is_file():
        raise MediaError(path, f"no {mp3.name} in the clip folder", "no_audio")
    track = decode_audio(mp3)
    num_frames = max(1, len(track) // SAMPLES_PER_FRAME)
    audio = np.concatenate([fit_length(track[i * SAMPLES_PER_FRAME:(i + 1) * SAMPLES_PER_FRAME], SAMPLES_PER_FRAME)
                            for i in group_frame_indices(num_frames)])
    return np.ascontiguousarray(frames), audio.astype(np.float32, copy=False)
