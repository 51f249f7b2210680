"""probe() reads files in-process with libav, and describes them as ffprobe does."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

import pipeline.media as media
from pipeline.media import probe


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def test_probe_starts_no_program(make_clip, logged_on_path, monkeypatch):
    """No ffprobe (or other program) runs: an ``ffprobe`` first on PATH that logs its starts stays unused."""
    path = make_clip("clip.mp4", duration=1)
    starts = logged_on_path("ffprobe", shutil.which("ffprobe") or "false")
    monkeypatch.delenv("AVDF_FFPROBE", raising=False)
    info = probe(path)
    assert info.video.num_frames == 25 and info.audio.sample_rate == 16000
    assert starts() == []


def _rotated(make_clip, tmp_path: Path) -> Path:
    src = make_clip("upright.mp4", duration=1)
    dst = tmp_path / "rotated.mp4"
    # ffmpeg 5.1 turns the phone-style tag into a display matrix (what ffprobe and libav read).
    _ffmpeg("-i", str(src), "-map", "0", "-c", "copy", "-metadata:s:v:0", "rotate=90", str(dst))
    return dst


SINE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=1"]
TESTSRC = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1"]


def _wav(make_clip, tmp_path: Path) -> Path:
    _ffmpeg(*SINE, "-c:a", "pcm_s16le", str(tmp_path / "speech.wav"))
    return tmp_path / "speech.wav"


def _webm(make_clip, tmp_path: Path) -> Path:
    _ffmpeg(*TESTSRC, *SINE, "-c:v", "libvpx-vp9", "-c:a", "libopus", str(tmp_path / "a.webm"))
    return tmp_path / "a.webm"


def _cover_art_mp3(make_clip, tmp_path: Path) -> Path:
    dst = tmp_path / "song.mp3"
    _ffmpeg(*SINE, "-f", "lavfi", "-i", "color=red:size=32x32:duration=0.04", "-frames:v", "1", "-map", "0", "-map", "1",
            "-c:a", "libmp3lame", "-c:v", "png", "-disposition:v", "attached_pic", str(dst))
    return dst


FILES = {
    "mp4": lambda make_clip, tmp: make_clip("a.mp4"),
    "variable frame rate": lambda make_clip, tmp: make_clip("vfr.mp4", duration=3, vfr=True),
    "29.97 fps, 44.1 kHz stereo": lambda make_clip, tmp: make_clip("ntsc.mp4", rate="30000/1001", audio_rate=44100,
                                                                  channels=2),
    "no audio": lambda make_clip, tmp: make_clip("mute.mp4", audio=False),
    "wav": _wav,
    "webm": _webm,
    "rotated 90": _rotated,
}


@pytest.mark.parametrize("kind", FILES)
def test_libav_describes_files_as_ffprobe_does(kind, make_clip, tmp_path, monkeypatch):
    if shutil.which("ffprobe") is None:
        pytest.skip("no ffprobe to compare with")
    path = FILES[kind](make_clip, tmp_path)
    monkeypatch.setenv("AVDF_FFPROBE", "ffprobe")
    by_ffprobe = media._probe(path)  # the unmemoised probe: each backend reads the file itself
    monkeypatch.delenv("AVDF_FFPROBE")
    by_libav = media._probe(path)
    # Demuxers moved an Opus track's start by its pre-skip between ffmpeg 5.1 (Debian's ffprobe:
    # -0.003 s) and 8.1 (the wheel's libav: +0.004 s); the static ffmpeg that decodes is the newer.
    for a, b in ((by_libav.video, by_ffprobe.video), (by_libav.audio, by_ffprobe.audio)):
        if a is not None and b is not None and a.start_time_s is not None and b.start_time_s is not None:
            assert a.start_time_s == pytest.approx(b.start_time_s, abs=0.01)
    assert _without_start_times(by_libav) == _without_start_times(by_ffprobe)
    if kind == "rotated 90":
        assert by_libav.video.rotation == 90 and (by_libav.video.width, by_libav.video.height) == (120, 160)


def test_an_mp3_cover_picture_is_not_video_and_its_padding_not_duration(make_clip, tmp_path):
    info = probe(_cover_art_mp3(make_clip, tmp_path))
    assert info.video is None  # a cover picture is not the clip's video
    assert info.audio.codec == "mp3" and info.audio.sample_rate == 22050
    # 1 s was encoded. Debian's ffprobe (ffmpeg 5.1) also counts the encoder's delay and padding (1.071 s);
    # the wheel's libav trims them, as the static ffmpeg that decodes does.
    assert info.duration_s == pytest.approx(1.0, abs=0.001)


def _without_start_times(info: media.Probe) -> media.Probe:
    streams = {name: dataclasses.replace(stream, start_time_s=None) if stream is not None else None
               for name, stream in (("video", info.video), ("audio", info.audio))}
    return dataclasses.replace(info, **streams)
