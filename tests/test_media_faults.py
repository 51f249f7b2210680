"""Real-world media faults (issue 12): rotation metadata, corrupt bytes in the H.264 stream,
clips of video-only corpora without audio. Every file is made here by the real ffmpeg."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from generators.synthetic import make_talking_clip
from pipeline.clip import Clip
from pipeline.errors import ConfigError, MediaError
from pipeline.media import (
    SAMPLES_PER_FRAME,
    AudioCapture,
    DecodeReport,
    decode_audio,
    decode_video,
    iter_frames,
    probe,
    write_mp4,
)
from pipeline.preprocess_clip import PreprocessOptions, load_clip_arrays, preprocess_clip

SHORT_REAL = "Hangz-nju-cuhk_Talking-Face_PC-AVS__misc_Audio_Source_00086.mp4"  # 224 px square, 5.3 s


@pytest.fixture(scope="module")
def backend():
    from pipeline.faces import make_face_backend

    be = make_face_backend("mediapipe")
    yield be
    be.close()


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def _side_data_rotation(path: Path) -> float | None:
    """The rotation ffprobe reads from the display matrix (not through pipeline.media)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    for side in json.loads(out)["streams"][0].get("side_data_list", []):
        if "rotation" in side:
            return float(side["rotation"])
    return None


def set_rotation(src: Path, dst: Path, rotate: int) -> Path:
    """Store a rotation as phones do, without re-encoding (ffmpeg 5.1 turns the tag into a display matrix)."""
    _ffmpeg("-i", str(src), "-map", "0", "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(dst))
    assert _side_data_rotation(dst), f"{dst}: ffmpeg wrote no display matrix"
    return dst


def _asymmetric_frames(t: int = 12, h: int = 64, w: int = 96) -> np.ndarray:
    """Frames whose every rotation and flip differs: gradients plus a block in one corner."""
    y, x = np.mgrid[0:h, 0:w]
    frames = np.stack([np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 8 * i)], -1) for i in range(t)])
    frames[:, 4:20, 6:30] = 255
    return frames.astype(np.uint8)


# --- (a) rotation metadata ----------------------------------------------------------------


@pytest.mark.parametrize("rotate,rotation", [(90, 90), (270, -90), (180, 180)])
def test_rotated_clip_decodes_upright(tmp_path: Path, rotate: int, rotation: int):
    frames = _asymmetric_frames()
    plain = write_mp4(tmp_path / "plain.mp4", frames)
    rotated = set_rotation(plain, tmp_path / "rotated.mp4", rotate)

    info = probe(rotated)
    assert info.video.rotation == rotation and _side_data_rotation(rotated) % 360 == rotation % 360
    k = rotation // 90  # the display matrix turns counter-clockwise, as np.rot90
    expected_hw = (96, 64) if rotation % 180 else (64, 96)
    assert (info.video.height, info.video.width) == expected_hw
    assert probe(plain).video.rotation == 0

    video = decode_video(rotated)
    assert video.shape == (len(frames), *expected_hw, 3)
    # The very same bitstream, turned: equal to the plain decode rotated, and to the input within codec loss.
    upright = np.rot90(decode_video(plain), k, axes=(1, 2))
    assert np.abs(video.astype(int) - upright.astype(int)).mean() < 1.0
    assert np.abs(video.astype(int) - np.rot90(frames, k, axes=(1, 2)).astype(int)).mean() < 6
    # Crops and sizes are in upright pixels.
    h, w = expected_hw
    crop = next(iter_frames(rotated, crop=(2, 4, w // 2, h // 2)))
    assert crop.shape == (h // 2, w // 2, 3)
    assert np.abs(crop.astype(int) - video[0, 4 : 4 + h // 2, 2 : 2 + w // 2].astype(int)).mean() < 1.0
    assert next(iter_frames(rotated, size=(20, 30))).shape == (30, 20, 3)


def _landscape(upright: np.ndarray) -> np.ndarray:
    """Pad square face frames to a landscape frame (a rotated square would hide a size mix-up)."""
    return np.pad(upright, ((0, 0), (0, 0), (upright.shape[2] // 4, upright.shape[2] // 4), (0, 0)), mode="edge")


def _phone_clip(src: Path, tmp_path: Path, num_frames: int) -> tuple[Path, np.ndarray]:
    """``src`` as a phone stores it: frames coded sideways plus a display rotation of 90 degrees."""
    upright = _landscape(decode_video(src, num_frames=num_frames))
    coded = np.ascontiguousarray(np.rot90(upright, -1, axes=(1, 2)))
    audio = decode_audio(src, num_samples=num_frames * SAMPLES_PER_FRAME)
    sideways = write_mp4(tmp_path / "sideways.mp4", coded, audio)
    return set_rotation(sideways, tmp_path / "phone.mp4", 90), upright


def _check_rotated_face(phone: Path, upright: np.ndarray, backend, tmp_path: Path) -> None:
    summary = preprocess_clip(phone, tmp_path / "phone.npz", PreprocessOptions(), backend=backend)
    assert summary["face_fraction"] >= 0.9, summary["track"]
    h, w = upright.shape[1:3]
    assert (summary["source"]["width"], summary["source"]["height"]) == (w, h)
    assert summary["source"]["rotation"] == 90
    assert any("rotation metadata 90 degrees" in r for r in summary["repairs"])
    landmarks = load_clip_arrays(tmp_path / "phone.npz")["landmarks"]
    assert landmarks[..., 0].max() < w and landmarks[..., 1].max() < h  # in upright pixels


def test_rotated_drawn_face_keeps_its_face(backend, tmp_path: Path):
    src = make_talking_clip(tmp_path / "talk.mp4", seconds=1.6, size=160)
    phone, upright = _phone_clip(src, tmp_path, 40)
    _check_rotated_face(phone, upright, backend, tmp_path)


@pytest.mark.realmedia
def test_rotated_real_face_keeps_its_face(backend, shared_media: Path, tmp_path: Path):
    src = shared_media / "real_talking" / SHORT_REAL
    if not src.exists():
        pytest.skip(f"{src} is absent")
    phone, upright = _phone_clip(src, tmp_path, 50)
    _check_rotated_face(phone, upright, backend, tmp_path)


# --- (b) corrupt bytes inside the stream ---------------------------------------------------


def corrupt_video_packets(src: Path, dst: Path, every: int = 5, run: int = 16, stream: str = "v") -> Path:
    """Overwrite ``run`` bytes in the middle of every ``every``-th video packet that is not a keyframe
    (media data, not headers; a broken keyframe would grey out its whole group of pictures); with
    ``stream="a"``, of every ``every``-th audio packet instead (each of them is a keyframe)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", f"{stream}:0", "-show_entries",
                          "packet=pos,size,flags", "-of", "json", str(src)], capture_output=True, text=True,
                         check=True).stdout
    data = bytearray(src.read_bytes())
    for packet in json.loads(out)["packets"][1::every]:
        pos, size = int(packet["pos"]), int(packet["size"])
        if size > 2 * run and (stream == "a" or "K" not in packet["flags"]):
            mid = pos + size // 2
            data[mid : mid + run] = b"\xff\x00" * (run // 2)
    assert data != src.read_bytes(), f"{src}: no packet to corrupt"
    dst.write_bytes(bytes(data))
    return dst


def test_clean_clip_reports_no_decode_errors(tmp_path: Path):
    clip = make_talking_clip(tmp_path / "talk.mp4", seconds=1.6, size=128)
    report = DecodeReport()
    video = decode_video(clip, report=report)
    assert report.complete and report.errors == 0 and report.first_error is None
    assert report.frames == len(video) == 40


def test_corrupt_stream_errors_are_counted(tmp_path: Path):
    clip = make_talking_clip(tmp_path / "talk.mp4", seconds=1.6, size=128)
    bad = corrupt_video_packets(clip, tmp_path / "bad.mp4")
    report = DecodeReport()
    video = decode_video(bad, report=report)
    assert len(video) == 40  # ffmpeg still outputs every frame: only the count tells
    assert report.complete and report.errors > 0
    assert "0x" not in report.first_error and report.first_error.startswith("[h264]")


def test_many_decode_errors_do_not_block_the_pipe(tmp_path: Path):
    """Far more than a pipe buffer (64 KiB) of error lines: ffmpeg must not stall while frames are read."""
    clip = tmp_path / "long.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=60", "-c:v", "libx264", "-g", "25",
            "-pix_fmt", "yuv420p", str(clip))
    bad = corrupt_video_packets(clip, tmp_path / "long_bad.mp4", every=1, run=4)
    report, counted = DecodeReport(), []
    # On a thread: a stalled decode stays stuck (ffmpeg never exits), so the test fails instead of hanging.
    worker = threading.Thread(target=lambda: counted.append(sum(1 for _ in iter_frames(bad, size=(16, 12),
                                                                                       report=report))), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "decoding stalled: ffmpeg blocked on a full stderr pipe"
    assert counted == [1500] and report.errors > 1000 and len(report.lines) <= 20


@pytest.mark.parametrize("corrupt", [None, "a", "v"])
def test_audio_from_the_frames_run_equals_decode_audio(tmp_path: Path, corrupt: str | None):
    """``iter_frames(..., audio=AudioCapture())`` (one ffmpeg run for frames and audio) gives
    ``decode_audio``'s samples and, with corrupt audio or video packets, the frames' error count of
    a run without audio: audio errors never count as video decode errors."""
    clip = make_talking_clip(tmp_path / "talk.mp4", seconds=1.6, size=128)
    if corrupt:
        clip = corrupt_video_packets(clip, tmp_path / f"bad_{corrupt}.mp4", every=3, stream=corrupt)
    alone = DecodeReport()
    frames = sum(1 for _ in iter_frames(clip, report=alone))
    capture, shared = AudioCapture(), DecodeReport()
    assert sum(1 for _ in iter_frames(clip, report=shared, audio=capture)) == frames == 40
    assert np.array_equal(capture.samples, decode_audio(clip))
    if corrupt is None:
        assert capture.samples.shape == (40 * SAMPLES_PER_FRAME,)
    assert shared.complete and shared.errors == alone.errors and shared.first_error == alone.first_error
    assert (shared.errors > 0) == (corrupt == "v")
    if corrupt == "a":  # the shared run did see the audio errors: the case is exercised
        errors = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clip), "-f", "null", "-"],
                                capture_output=True, text=True).stderr
        assert "[aac" in errors


def test_audio_from_the_frames_run_needs_an_audio_stream(tmp_path: Path):
    mute = strip_audio(make_talking_clip(tmp_path / "talk.mp4", seconds=1.6, size=128), tmp_path / "mute.mp4")
    with pytest.raises(MediaError, match="no audio stream") as exc:
        next(iter_frames(mute, audio=AudioCapture()))
    assert exc.value.error_type == "no_audio"


def test_corrupt_clip_fails_preprocess_unless_tolerated(backend, tmp_path: Path):
    clip = make_talking_clip(tmp_path / "talk.mp4", seconds=1.6, size=160)
    bad = corrupt_video_packets(clip, tmp_path / "bad.mp4")
    errors = DecodeReport()
    decode_video(bad, report=errors)
    assert errors.errors > 0

    with pytest.raises(MediaError, match=rf"bad\.mp4: corrupt video stream: ffmpeg reported {errors.errors} "
                                         r"decode errors \(max_decode_errors 0\); first: \[h264\]") as exc:
        preprocess_clip(bad, tmp_path / "bad.npz", backend=backend)
    assert exc.value.error_type == "decode_errors"
    assert not (tmp_path / "bad.npz").exists()

    # Under the limit the clip is kept (its face is still there) and the count is recorded.
    summary = preprocess_clip(bad, tmp_path / "bad.npz", PreprocessOptions(max_decode_errors=errors.errors),
                              backend=backend)
    assert summary["decode_errors"] == errors.errors and summary["first_decode_error"] == errors.first_error
    assert any(f"{errors.errors} video decode errors tolerated (max_decode_errors {errors.errors})" in r
               for r in summary["repairs"])
    assert (tmp_path / "bad.npz").exists()
    clean = preprocess_clip(clip, tmp_path / "clean.npz", backend=backend)
    assert clean["decode_errors"] == 0 and clean["first_decode_error"] is None


def test_max_decode_errors_is_a_checked_param(tmp_path: Path):
    from pipeline.config import load_section

    repo_params = Path(__file__).resolve().parents[1] / "params.yaml"
    assert load_section("preprocess", repo_params).max_decode_errors == 0
    params = tmp_path / "params.yaml"
    params.write_text("preprocess:\n  max_decode_errors: 3\n")
    assert load_section("preprocess", params).max_decode_errors == 3
    params.write_text("preprocess:\n  max_decode_error: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['max_decode_error'\]"):
        load_section("preprocess", params)
    with pytest.raises(ValueError, match="max_decode_errors"):
        PreprocessOptions(max_decode_errors=-1)


# --- (c) clips of video-only corpora -------------------------------------------------------


def strip_audio(src: Path, dst: Path) -> Path:
    _ffmpeg("-i", str(src), "-map", "0:v", "-c", "copy", str(dst))
    assert probe(dst).audio is None
    return dst


def test_video_only_clip_gets_a_silent_track(backend, tmp_path: Path):
    mute = strip_audio(make_talking_clip(tmp_path / "talk.mp4", seconds=1.6, size=160), tmp_path / "mute.mp4")
    with pytest.raises(MediaError, match=r"mute\.mp4: no audio stream") as exc:
        preprocess_clip(mute, tmp_path / "x.npz", backend=backend)
    assert exc.value.error_type == "no_audio"

    summary = preprocess_clip(mute, tmp_path / "mute.npz", backend=backend, allow_silent=True)
    audio = load_clip_arrays(tmp_path / "mute.npz")["audio"]
    assert summary["num_frames"] == 40 and audio.shape == (40 * SAMPLES_PER_FRAME,) and not audio.any()
    assert "no audio stream: silent track (video-only corpus)" in summary["repairs"]
    assert summary["silent_audio"] and summary["source"]["sample_rate"] is None


def _clip(key: str, path: str, **extra) -> Clip:
    name = key.split("/")[1]
    return Clip(key=key, corpus="t", identity=name, video_id=name, path=path,
                extra=json.dumps(extra) if extra else None)


def test_preprocess_stage_faulty_clips(ray_session, tmp_path: Path):
    """One manifest: a clean clip, a corrupt one, a video-only clip without audio and an audio-less
    clip of an audio-visual corpus. Failures are rows with their type; inputs = outputs + failures."""
    from pipeline.manifest import read_failures, read_manifest, write_manifest
    from pipeline.preprocess import PreprocessParams, preprocess_manifest
    from pipeline.raycluster import RayParams

    root = tmp_path / "corpus"
    root.mkdir()
    make_talking_clip(root / "clean.mp4", seconds=1.6, size=160, seed=1)
    corrupt_video_packets(make_talking_clip(tmp_path / "c.mp4", seconds=1.6, size=160, seed=2), root / "corrupt.mp4")
    talk = make_talking_clip(tmp_path / "v.mp4", seconds=1.6, size=160, seed=3)
    strip_audio(talk, root / "videoonly.mp4")
    shutil.copy(root / "videoonly.mp4", root / "mute.mp4")
    write_manifest([
        _clip("t/clean", "clean.mp4"),
        _clip("t/corrupt", "corrupt.mp4"),
        _clip("t/videoonly", "videoonly.mp4", video_only=True, corpus_note="FaceForensics++-style"),
        _clip("t/mute", "mute.mp4"),
    ], root / "manifest.parquet")

    out = tmp_path / "pre"
    result = preprocess_manifest(root / "manifest.parquet", out, PreprocessParams(detect_every=2), RayParams())
    rows = {r["key"]: r for r in read_manifest(out / "manifest.parquet").to_pylist()}
    failures = {f.key: f for f in read_failures(out / "failures.parquet")}
    assert set(rows) == {"t/clean", "t/videoonly"} and set(failures) == {"t/corrupt", "t/mute"}
    assert len(rows) + len(failures) == 4 and "4 inputs -> 2 done" in result.summary()

    assert failures["t/corrupt"].error_type == "decode_errors"
    assert "corrupt.mp4: corrupt video stream: ffmpeg reported" in failures["t/corrupt"].message
    assert "first: [h264]" in failures["t/corrupt"].message
    assert failures["t/mute"].error_type == "no_audio"

    video_only = rows["t/videoonly"]
    audio = np.load(out / video_only["path"])["audio"]
    assert video_only["num_frames"] == 40 and audio.shape == (40 * SAMPLES_PER_FRAME,) and not audio.any()
    extra = json.loads(video_only["extra"])
    assert extra["video_only"] is True and extra["preprocess"]["silent_audio"] is True
    assert "no audio stream: silent track (video-only corpus)" in extra["preprocess"]["repairs"]
    clean = json.loads(rows["t/clean"]["extra"])["preprocess"]
    assert clean["decode_errors"] == 0 and clean["silent_audio"] is False


@pytest.fixture(scope="module")
def audio_checkpoint(tmp_path_factory) -> Path:
    """An audio-baseline checkpoint from one epoch through the one training loop (it reads the silent track)."""
    from loop_data import SyntheticSource

    from detectors.baselines import AudioBaseline, AudioBaselineConfig
    from detectors.loop import LoopParams, fit

    out = tmp_path_factory.mktemp("audio-ckpt")
    model = AudioBaseline(AudioBaselineConfig(num_frames=16, width=8, depth=2))
    fit(model, SyntheticSource(n=8, frames=16), out, LoopParams(epochs=1, device="cpu"), progress=False)
    return out / "best.pt"


def test_detect_scores_a_video_without_audio(audio_checkpoint: Path, tmp_path: Path, capsys):
    from benchmark.detect import DetectParams, detect_video, run
    from pipeline.preprocess import PreprocessParams

    mute = strip_audio(make_talking_clip(tmp_path / "talk.mp4", seconds=1.6, size=160), tmp_path / "mute.mp4")
    result = detect_video(mute, audio_checkpoint, DetectParams(device="cpu"), PreprocessParams())
    assert 0.0 <= result["scores"]["score"] <= 1.0 and result["segments"] == 2
    assert any("silent track" in n for n in result["notes"])
    assert "no audio stream: silent track (the video has none)" in result["repairs"]

    args = argparse.Namespace(video=mute, checkpoint=audio_checkpoint, detector=None, json=False,
                              params=tmp_path / "absent.yaml")
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "P(fake) = " in printed and "note: no audio stream: scored with a silent track" in printed
