"""Which ffmpeg every stage runs: the pinned wheel's static build, or the one AVDF_FFMPEG names."""
import shutil
import subprocess

import numpy as np
import pytest

from pipeline.ffmpeg_bin import ffmpeg_exe
from pipeline.media import decode_video, write_mp4


def test_the_default_ffmpeg_is_the_static_build_the_wheel_ships(monkeypatch):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    monkeypatch.delenv("AVDF_FFMPEG", raising=False)
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    exe = ffmpeg_exe()
    assert exe == imageio_ffmpeg.get_ffmpeg_exe() and "imageio_ffmpeg" in exe
    version = subprocess.run([exe, "-version"], capture_output=True, text=True, check=True).stdout
    assert "--enable-libx264" in version  # write_mp4 encodes H.264 with it
    # Statically linked: no libavcodec to load at each start (the point of using it).
    linked = subprocess.run(["ldd", exe], capture_output=True, text=True).stdout
    assert "libavcodec" not in linked


def test_media_io_runs_the_ffmpeg_avdf_ffmpeg_names(tmp_path, logged_program):
    system = shutil.which("ffmpeg")
    if system is None:
        pytest.skip("no ffmpeg on PATH to wrap")
    starts = logged_program("AVDF_FFMPEG", system)
    frames = np.random.default_rng(0).integers(0, 255, (10, 32, 48, 3), dtype=np.uint8)
    path = write_mp4(tmp_path / "clip.mp4", frames, np.zeros(10 * 640, np.float32))
    assert decode_video(path).shape == (10, 32, 48, 3)
    lines = starts()
    assert len(lines) == 2 and "libx264" in lines[0] and "rawvideo" in lines[1]
