"""preprocess_clip: arrays, sizes, exact audio length, repairs, and one error type per kind of bad input."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import MediaError
from pipeline.faces import make_face_backend
from pipeline.media import SAMPLES_PER_FRAME, decode_audio, decode_video, write_mp4
from pipeline.preprocess_clip import ARRAY_NAMES, PreprocessOptions, load_clip_arrays, preprocess_clip

SHORT_REAL = "Hangz-nju-cuhk_Talking-Face_PC-AVS__misc_Audio_Source_00086.mp4"  # 224 px, 5.3 s, 16 kHz mono
VFR_REAL = "OpenTalker_video-retalking__examples_face_5.mp4"  # 524 px, 4.9 s, 44.1 kHz stereo
LONG_REAL = "Hangz-nju-cuhk_Talking-Face_PC-AVS__misc_Audio_Source_00104.mp4"  # 224 px, 12 s


@pytest.fixture(scope="module")
def backend():
    be = make_face_backend("mediapipe")
    yield be
    be.close()


def real(shared_media: Path, name: str) -> Path:
    path = shared_media / "real_talking" / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def check_arrays(out: Path, summary: dict, sizes=(224, 112, 96)) -> dict[str, np.ndarray]:
    arrays = load_clip_arrays(out)
    t = summary["num_frames"]
    face, gray, mouth = sizes
    assert arrays["face"].shape == (t, face, face, 3) and arrays["face"].dtype == np.uint8
    assert arrays["face_gray"].shape == (t, gray, gray) and arrays["face_gray"].dtype == np.uint8
    assert arrays["mouth"].shape == (t, mouth, mouth) and arrays["mouth"].dtype == np.uint8
    assert arrays["audio"].shape == (t * SAMPLES_PER_FRAME,) and arrays["audio"].dtype == np.float32
    assert arrays["landmarks"].shape == (t, 68, 2) and arrays["landmarks"].dtype == np.float32
    assert arrays["boxes"].shape == (t, 4)
    assert arrays["face_found"].shape == (t,) and arrays["face_found"].dtype == bool
    assert summary["num_samples"] == t * SAMPLES_PER_FRAME
    # Crops hold picture, not padding.
    assert arrays["face"].std() > 10 and arrays["mouth"].std() > 5
    assert not list(out.parent.glob(f".{out.name}*")), "no temp file left behind"
    return arrays


@pytest.mark.realmedia
def test_real_talking_clip_end_to_end(backend, shared_media: Path, tmp_path: Path):
    clip = real(shared_media, SHORT_REAL)
    out = tmp_path / "clip.npz"
    summary = preprocess_clip(clip, out, PreprocessOptions(), backend=backend)
    arrays = check_arrays(out, summary)
    assert abs(summary["num_frames"] - 132) <= 3  # 5.26 s at 25 fps
    assert summary["face_fraction"] >= 0.95
    assert arrays["face_found"].mean() >= 0.95
    assert summary["backend"]["name"] == "mediapipe"
    assert summary["track"]["num_tracks"] >= 1 and "track" in summary["track"]["reason"]
    assert set(summary["timings"]) >= {"decode_detect_s", "detect_s", "crop_s", "write_s", "total_s"}
    # Landmarks are in source-frame pixels.
    assert arrays["landmarks"][..., 0].max() < 224 * 1.1 and arrays["landmarks"].min() > -0.1 * 224
    # The audio is the clip's own, sample for sample.
    np.testing.assert_allclose(arrays["audio"], decode_audio(clip, num_samples=summary["num_samples"]), atol=1e-6)


@pytest.mark.realmedia
def test_odd_rates_are_repaired_by_resampling(backend, shared_media: Path, tmp_path: Path):
    """A variable-frame-rate 44.1 kHz stereo clip comes out 25 fps / 16 kHz mono, with the repairs listed."""
    clip = real(shared_media, VFR_REAL)
    out = tmp_path / "vfr.npz"
    summary = preprocess_clip(clip, out, PreprocessOptions(crop_smoothing=1.0), backend=backend)
    check_arrays(out, summary)
    assert abs(summary["num_frames"] - round(4.897 * 25)) <= 1
    assert summary["face_fraction"] >= 0.95
    repairs = " ".join(summary["repairs"])
    assert "44100 Hz to 16000 Hz" in repairs and "2 channels to mono" in repairs


@pytest.mark.realmedia
def test_30fps_stereo_48k_reencode(backend, shared_media: Path, tmp_path: Path):
    src = real(shared_media, SHORT_REAL)
    odd = tmp_path / "odd.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), "-t", "2", "-r", "30", "-ar", "48000",
         "-ac", "2", "-c:v", "libx264", "-c:a", "aac", str(odd)],
        check=True,
    )
    summary = preprocess_clip(odd, tmp_path / "odd.npz", PreprocessOptions(face_size=160, mouth_size=64),
                              backend=backend)
    check_arrays(tmp_path / "odd.npz", summary, sizes=(160, 112, 64))
    assert summary["num_frames"] == 50
    assert any("30.000 fps resampled to 25 fps" in r for r in summary["repairs"])


def test_no_face_in_a_test_pattern(backend, make_clip, tmp_path: Path):
    clip = make_clip("pattern.mp4", duration=1.0)
    with pytest.raises(MediaError, match=r"no face found in any of 25 frames") as exc:
        preprocess_clip(clip, tmp_path / "x.npz", backend=backend)
    assert exc.value.error_type == "no_face"
    assert not (tmp_path / "x.npz").exists()


def test_no_audio_stream(backend, make_clip, tmp_path: Path):
    clip = make_clip("silent.mp4", duration=1.0, audio=False)
    with pytest.raises(MediaError, match="no audio stream") as exc:
        preprocess_clip(clip, tmp_path / "x.npz", backend=backend)
    assert exc.value.error_type == "no_audio"


def test_too_short_for_one_segment(backend, make_clip, tmp_path: Path):
    clip = make_clip("short.mp4", duration=0.4)  # 10 frames < 16
    with pytest.raises(MediaError, match=r"too short: .*10 frames.*at least 16") as exc:
        preprocess_clip(clip, tmp_path / "x.npz", backend=backend)
    assert exc.value.error_type == "too_short"


def test_truncated_file(backend, make_clip, tmp_path: Path):
    clip = make_clip("whole.mp4", duration=2.0)
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError) as exc:
        preprocess_clip(cut, tmp_path / "x.npz", backend=backend)
    assert exc.value.error_type in {"truncated", "not_media", "decode"}
    assert str(cut) in str(exc.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(MediaError) as exc:
        preprocess_clip(tmp_path / "nope.mp4", tmp_path / "x.npz", backend=object())
    assert exc.value.error_type == "missing"


@pytest.fixture(scope="module")
def real_frames(shared_media: Path) -> tuple[np.ndarray, np.ndarray]:
    """The first 100 frames (4 s) of a real talking clip and their audio, decoded once."""
    src = real(shared_media, SHORT_REAL)
    return decode_video(src)[:100], decode_audio(src, num_samples=100 * SAMPLES_PER_FRAME)


@pytest.mark.realmedia
def test_face_lost_for_a_long_stretch(backend, real_frames, tmp_path: Path):
    """16 frames blanked (more than the 12 that may be filled): face_lost, even though found often enough."""
    frames, audio = real_frames[0].copy(), real_frames[1]
    frames[50:66] = 40  # a flat dark stretch: no face
    clip = write_mp4(tmp_path / "lost.mp4", frames, audio)
    options = PreprocessOptions(min_face_fraction=0.8)  # 84% found: enough, so the gap is what fails
    with pytest.raises(MediaError, match=r"face lost for 16 frames \(0.64 s, frames 50-65\)") as exc:
        preprocess_clip(clip, tmp_path / "x.npz", options, backend=backend)
    assert exc.value.error_type == "face_lost"
    # With the default 90% it is reported as too few frames with a face, saying how many.
    with pytest.raises(MediaError, match=r"face found in only 84 of 100 frames") as exc:
        preprocess_clip(clip, tmp_path / "x.npz", backend=backend)
    assert exc.value.error_type == "no_face"


@pytest.mark.realmedia
def test_short_face_loss_is_interpolated(backend, real_frames, tmp_path: Path):
    frames, audio = real_frames[0][:50].copy(), real_frames[1][: 50 * SAMPLES_PER_FRAME]
    frames[20:26] = 40
    clip = write_mp4(tmp_path / "blink.mp4", frames, audio)
    summary = preprocess_clip(clip, tmp_path / "blink.npz", PreprocessOptions(min_face_fraction=0.85),
                              backend=backend)
    arrays = check_arrays(tmp_path / "blink.npz", summary)
    assert not arrays["face_found"][20:26].any() and arrays["face_found"][:20].all()
    assert summary["track"]["longest_gap_frames"] == 6
    # Interpolated landmarks lie between their neighbours.
    lm = arrays["landmarks"]
    lo, hi = np.minimum(lm[19], lm[26]), np.maximum(lm[19], lm[26])
    assert np.all((lm[22] >= lo - 1e-3) & (lm[22] <= hi + 1e-3))


@pytest.mark.realmedia
def test_detect_every_k_frames(backend, real_frames, tmp_path: Path):
    clip = write_mp4(tmp_path / "k.mp4", real_frames[0][:48], real_frames[1][: 48 * SAMPLES_PER_FRAME])
    summary = preprocess_clip(clip, tmp_path / "k.npz", PreprocessOptions(detect_every=4), backend=backend)
    arrays = check_arrays(tmp_path / "k.npz", summary)
    assert summary["face_fraction"] >= 0.95
    assert arrays["face_found"].sum() <= summary["num_frames"] // 4 + 2


def test_options_are_validated():
    with pytest.raises(ValueError, match="detect_every"):
        PreprocessOptions(detect_every=0)


def test_arrays_file_lacking_names_is_reported(tmp_path: Path):
    np.savez(tmp_path / "bad.npz", face=np.zeros(1))
    with pytest.raises(MediaError, match="lacks arrays"):
        load_clip_arrays(tmp_path / "bad.npz")
    assert "face" in ARRAY_NAMES


@pytest.mark.slow
@pytest.mark.realmedia
def test_every_real_talking_clip_keeps_its_face(backend, shared_media: Path, tmp_path: Path):
    clips = sorted((shared_media / "real_talking").glob("*.mp4"))
    assert clips
    for clip in clips:
        out = tmp_path / f"{clip.stem}.npz"
        summary = preprocess_clip(clip, out, backend=backend)
        assert summary["face_fraction"] >= 0.95, (clip.name, summary["track"])
        check_arrays(out, summary)
        out.unlink()


def test_an_idforge_v2_frame_folder_keeps_its_groups_and_their_audio(tmp_path):
    """IDForge v2 stores 16 frames (4 evenly spaced groups of 4) and the clip's mp3: each stored
    frame gets the audio that played under it, and the face is found in all 16."""
    import subprocess

    from generators.synthetic import make_talking_clip
    from pipeline.frame_folders import FRAMES_NAME, group_frame_indices
    from pipeline.media import decode_audio, decode_video

    clip = make_talking_clip(tmp_path / "clip.mp4", seconds=3.2, size=160)
    frames, audio = decode_video(clip), decode_audio(clip)
    kept = group_frame_indices(len(frames))
    assert kept[:5] == [0, 1, 2, 3, kept[4]] and kept[4] > 3 and kept[-1] == len(frames) - 1
    folder = tmp_path / "pristine" / "id01" / "id01_01" / "00001.mp4"
    folder.mkdir(parents=True)
    np.save(folder / FRAMES_NAME, frames[kept])
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clip), "-vn", "-ac", "1", "-ar", "16000",
                    "-c:a", "libmp3lame", "-b:a", "128k", str(folder / "00001.mp3")], check=True)
    out = tmp_path / "out.npz"
    summary = preprocess_clip(folder, out, PreprocessOptions(face_size=64, gray_face_size=32, mouth_size=32))
    arrays = load_clip_arrays(out)
    assert summary["num_frames"] == 16 and arrays["face"].shape[0] == 16 and arrays["face_found"].all()
    assert any("4 evenly spaced groups" in r for r in summary["repairs"])
    # Each group's audio is the window under its frames (mp3 is lossy: correlate; its padding
    # makes the clip's length, hence a group's start, uncertain by one frame).
    assert arrays["audio"].shape == (16 * 640,)
    for g in range(4):
        got = arrays["audio"][g * 4 * 640:(g + 1) * 4 * 640]
        start = kept[4 * g]
        best = max(np.corrcoef(got, audio[(start + d) * 640:(start + d + 4) * 640])[0, 1]
                   for d in (-1, 0, 1) if 0 <= start + d <= len(frames) - 4)
        assert best > 0.9, g
    consecutive = audio[: 16 * 640]
    assert np.corrcoef(arrays["audio"], consecutive)[0, 1] < 0.5  # not simply the first 0.64 s


def test_source_facts_are_recorded_and_reach_the_manifest_row(backend, tmp_path):
    """Container, codecs, bitrates and each stream's start and duration (the shortcut probes' source facts)
    are kept in the summary and in the row's ``extra.preprocess.source``: here an H.264 + AAC mp4 whose video
    starts 0.4 s after its audio (-itsoffset), with the audio re-encoded at 32 kbit/s."""
    from generators.synthetic import make_talking_clip
    from pipeline.preprocess import PreprocessWorker

    clip = make_talking_clip(tmp_path / "clip.mp4", seconds=2.0, size=160)
    late = tmp_path / "late.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-itsoffset", "0.4", "-i", str(clip), "-i", str(clip),
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "32k", str(late)], check=True)
    source = preprocess_clip(late, tmp_path / "late.npz", backend=backend)["source"]
    assert source["format"].split(",")[:2] == ["mov", "mp4"]
    assert (source["video_codec"], source["audio_codec"]) == ("h264", "aac")
    assert source["video_start_s"] == pytest.approx(0.4, abs=1e-3) and source["audio_start_s"] == pytest.approx(0.0)
    assert source["video_duration_s"] == pytest.approx(2.0, abs=1e-3)  # 50 frames at 25 fps
    assert source["audio_duration_s"] == pytest.approx(2.0, abs=0.07)  # AAC rounds up to whole 1024-sample frames
    assert source["duration_s"] == pytest.approx(2.4, abs=1e-3)  # the video's end
    assert source["bit_rate_kbps"] == pytest.approx(late.stat().st_size * 8 / 1000 / 2.4, rel=1e-3)
    assert source["audio_bit_rate_kbps"] == pytest.approx(32, rel=0.1)
    # the streams' bytes are most of the file's (the rest: the container's tables)
    stream_kbit = source["video_bit_rate_kbps"] * 2.0 + source["audio_bit_rate_kbps"] * source["audio_duration_s"]
    assert 0.6 * late.stat().st_size * 8 / 1000 < stream_kbit < late.stat().st_size * 8 / 1000

    worker = PreprocessWorker(face_backend="mediapipe")
    row = worker({"key": "t/late", "path": "late.mp4", "media_path": str(late), "extra": None}, tmp_path / "out")
    assert json.loads(row["extra"])["preprocess"]["source"] == source
