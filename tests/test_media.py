"""Media I/O on files made by the real ffmpeg: round trips, resampling, bad inputs."""
import json
import subprocess

import numpy as np
import pytest

from pipeline.errors import MediaError
from pipeline.media import (
    SAMPLES_PER_FRAME,
    decode_audio,
    decode_video,
    expected_frames,
    fit_length,
    iter_frames,
    probe,
    read_ahead,
    read_tags,
    write_mp4,
)


def _moving_frames(t: int, h: int = 64, w: int = 96) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack(
        [np.stack([(x * 2 + 5 * i) % 256, (y * 3) % 256, np.full_like(x, (10 * i) % 256)], -1) for i in range(t)]
    ).astype(np.uint8)


def test_round_trip_exact_counts(tmp_path):
    t = 37
    frames = _moving_frames(t)
    audio = (0.3 * np.sin(2 * np.pi * 300 * np.arange(t * SAMPLES_PER_FRAME) / 16000)).astype(np.float32)
    path = write_mp4(tmp_path / "rt.mp4", frames, audio, metadata={"avdf_synthetic": "1"})
    info = probe(path)
    assert info.video.fps == 25 and not info.video.vfr and info.video.num_frames == t
    assert (info.video.width, info.video.height) == (96, 64)
    assert info.audio.sample_rate == 16000 and info.audio.channels == 1
    video = decode_video(path)
    assert video.shape == (t, 64, 96, 3) and video.dtype == np.uint8
    # H.264 at crf 18 is lossy but close.
    assert np.abs(video.astype(int) - frames.astype(int)).mean() < 6
    decoded = decode_audio(path)
    assert decoded.dtype == np.float32 and decoded.shape == (t * SAMPLES_PER_FRAME,)
    # AAC priming and padding are trimmed: the waveform lines up with the input.
    assert np.corrcoef(decoded[1000:-1000], audio[1000:-1000])[0, 1] > 0.95
    assert read_tags(path)["avdf_synthetic"] == "1"


def test_odd_sizes_are_padded_and_explicit_lengths(tmp_path):
    path = write_mp4(tmp_path / "odd.mp4", _moving_frames(10, 31, 45))
    assert decode_video(path).shape == (10, 32, 46, 3)
    assert decode_video(path, num_frames=14).shape[0] == 14
    assert decode_video(path, num_frames=4, size=(20, 16)).shape == (4, 16, 20, 3)
    assert decode_video(path, crop=(2, 4, 10, 8)).shape == (10, 8, 10, 3)


@pytest.mark.parametrize("rate", ["30", "30000/1001", "50"])
def test_constant_rates_resample_to_25(make_clip, rate):
    path = make_clip(f"r{rate.replace('/', '_')}.mp4", duration=3, rate=rate)
    info = probe(path)
    assert not info.video.vfr
    video = decode_video(path)
    assert len(video) == expected_frames(info.video.duration_s) == 75


def test_variable_frame_rate_is_detected_and_resampled(make_clip):
    path = make_clip("vfr.mp4", duration=3, rate="30", vfr=True, audio=False)
    info = probe(path)
    assert info.video.vfr and info.video.fps < info.video.nominal_fps
    video = decode_video(path)
    # The last kept frame lasts until the container ends (2.93 s here: ffmpeg 5) or until its own end
    # (3 s, the source's length: ffmpeg 7 and later keep each frame's duration through the fps filter).
    assert expected_frames(info.duration_s) - 1 <= len(video) <= expected_frames(3.0)
    # Dropped frames are filled by repeating, so 25 fps timing is kept.
    assert all(f.shape == video[0].shape for f in video)


@pytest.mark.parametrize("audio_rate,channels", [(44100, 2), (48000, 2), (22050, 1), (8000, 1)])
def test_audio_resampled_to_16k_mono(make_clip, audio_rate, channels):
    path = make_clip(f"a{audio_rate}.mp4", duration=2, audio_rate=audio_rate, channels=channels)
    info = probe(path)
    assert info.audio.sample_rate == audio_rate and info.audio.channels == channels
    audio = decode_audio(path)
    assert audio.shape == (32000,) and audio.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(audio[4000:20000]))
    assert abs(np.argmax(spectrum) - 440) <= 2  # 16000-sample window: 1 Hz bins; the 440 Hz tone survives
    assert decode_audio(path, num_samples=40 * SAMPLES_PER_FRAME).shape == (25600,)


def test_iter_frames_streams_in_constant_memory(make_clip):
    path = make_clip("stream.mp4", duration=2, size="320x240")
    first = next(iter_frames(path, size=(32, 24)))
    assert first.shape == (24, 32, 3)


def test_read_ahead_gives_every_frame_and_the_decode_report(tmp_path):
    from pipeline.media import AudioCapture, DecodeReport

    path = write_mp4(tmp_path / "a.mp4", _moving_frames(30), np.zeros(30 * SAMPLES_PER_FRAME, np.float32))
    report, audio = DecodeReport(), AudioCapture()
    ahead = list(read_ahead(iter_frames(path, report=report, audio=audio), depth=2))
    assert np.array_equal(np.stack(ahead), np.stack(list(iter_frames(path))))
    assert report.errors == 0 and audio.samples is not None and len(audio.samples) == 30 * SAMPLES_PER_FRAME


def test_read_ahead_raises_the_producers_error_and_stops_it_when_the_consumer_stops():
    def failing():
        yield 1
        raise MediaError("x.mp4", "corrupt", "decode")

    with pytest.raises(MediaError, match="corrupt"):
        list(read_ahead(failing()))
    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)  # iter_frames ends ffmpeg here

    frames = read_ahead(endless(), depth=3)
    assert [next(frames) for _ in range(5)] == [0, 1, 2, 3, 4]
    frames.close()
    assert closed == [True]


def test_fit_length():
    assert fit_length(np.ones(3, np.float32), 5).tolist() == [1, 1, 1, 0, 0]
    v = np.arange(2 * 2 * 2 * 3).reshape(2, 2, 2, 3)
    assert (fit_length(v, 4)[3] == v[1]).all()


# --- bad input: one clear error naming the file and the problem -------------------------


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match=r"nope\.mp4: file does not exist") as exc:
        probe(tmp_path / "nope.mp4")
    assert exc.value.error_type == "missing"


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match=r"empty\.mp4: file is empty"):
        probe(tmp_path / "empty.mp4")


def test_non_media_file(tmp_path):
    (tmp_path / "notes.mp4").write_text("hello, I am not a video\n" * 100)
    with pytest.raises(MediaError, match=r"notes\.mp4: not a readable media file") as exc:
        probe(tmp_path / "notes.mp4")
    assert exc.value.error_type == "not_media"


def test_truncated_file_moov_at_end(make_clip, tmp_path):
    good = make_clip("good.mp4", duration=3)
    data = good.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=r"cut\.mp4: truncated") as exc:
        decode_video(cut)
    assert exc.value.error_type == "truncated"
    assert "moov atom not found" in str(exc.value)  # libav's own log line, not only its error code


def test_truncated_file_faststart(tmp_path):
    path = write_mp4(tmp_path / "fs.mp4", _moving_frames(100, 120, 160))
    data = path.read_bytes()
    cut = tmp_path / "fs_cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])  # moov is at the start: only media data is lost
    with pytest.raises(MediaError, match=r"fs_cut\.mp4: truncated") as exc:
        decode_video(cut)
    assert exc.value.error_type == "truncated"


def test_no_audio_stream(make_clip):
    path = make_clip("silent.mp4", audio=False)
    assert probe(path).audio is None
    with pytest.raises(MediaError, match=r"silent\.mp4: no audio stream"):
        decode_audio(path)


def test_no_video_stream(make_clip):
    path = make_clip("audio_only.m4a", video=False)
    assert probe(path).video is None
    with pytest.raises(MediaError, match=r"audio_only\.m4a: no video stream"):
        decode_video(path)


def test_probe_json_is_serialisable(make_clip):
    data = json.loads(probe(make_clip()).to_json())
    assert data["video"]["fps"] == 25 and data["audio"]["sample_rate"] == 16000


def test_ffmpeg_present():
    assert subprocess.run(["ffmpeg", "-version"], capture_output=True).returncode == 0


def test_probe_describes_an_unchanged_file_from_memory(make_clip, logged_program):
    starts = logged_program("AVDF_FFPROBE", "ffprobe")
    path = make_clip("memo.mp4", duration=2)
    first = probe(path)
    assert len(starts()) == 1
    assert probe(path) == first and probe(str(path)) == first
    decode_video(path)  # probes inside
    assert len(starts()) == 1


def test_probe_sees_a_file_rewritten_in_place(make_clip, logged_program):
    starts = logged_program("AVDF_FFPROBE", "ffprobe")
    short, long = make_clip("short.mp4", duration=1), make_clip("long.mp4", duration=3)
    assert probe(short).video.num_frames == 25
    short.write_bytes(long.read_bytes())  # same path and inode, other content
    assert probe(short).video.num_frames == 75
    assert len(starts()) == 2
