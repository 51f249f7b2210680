"""Shared fixtures: a session-scoped local Ray, media files made with the real ffmpeg, real-media paths,
studio-shaped shards, one torch thread."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

SHARED_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory) -> Path:
    """avdf's user cache (traced detectors, the joined packaged Whisper) in a folder of the session,
    never the tester's ~/.cache: the tests leave nothing there and find nothing left by earlier runs."""
    folder = tmp_path_factory.mktemp("user-cache")
    os.environ["AVDF_CACHE_DIR"] = str(folder)  # inherited by subprocesses and Ray workers
    return folder


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (2 CPUs, loopback, small object store)."""
    from pipeline.raycluster import init_ray

    # Ray workers inherit the driver's environment, not its sys.path: let them
    # import the stage workers that tests define in tests/.
    tests_dir = str(Path(__file__).parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
    ray = init_ray(num_cpus=2, object_store_mb=256)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """``../shared/media`` beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip(f"real media folder {SHARED_MEDIA} is absent")
    return SHARED_MEDIA


MakeClip = Callable[..., Path]


@pytest.fixture
def make_clip(tmp_path: Path) -> MakeClip:
    """Make a test clip with the real ffmpeg from lavfi sources.

    make_clip(name, duration=2, size="160x120", rate="25", audio_rate=16000,
              channels=1, video=True, audio=True, vfr=False, vcodec="libx264")
    """

    def make(
        name: str = "clip.mp4",
        duration: float = 2.0,
        size: str = "160x120",
        rate: str = "25",
        audio_rate: int = 16000,
        channels: int = 1,
        video: bool = True,
        audio: bool = True,
        vfr: bool = False,
        vcodec: str = "libx264",
    ) -> Path:
        out = tmp_path / name
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
        maps = []
        if video:
            cmd += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={duration}"]
            maps.append("v")
        if audio:
            layout = "mono" if channels == 1 else "stereo"
            cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={audio_rate}:duration={duration}"]
            cmd += ["-af", f"aformat=channel_layouts={layout}"]
            maps.append("a")
        for i, _ in enumerate(maps):
            cmd += ["-map", str(i)]
        if video:
            if vfr:
                # Drop two of every three frames after the first second: a variable frame rate.
                cmd += ["-vf", "select='lt(t\\,1)+not(mod(n\\,3))'", "-fps_mode", "vfr"]
            cmd += ["-c:v", vcodec, "-pix_fmt", "yuv420p"]
        if audio:
            cmd += ["-c:a", "aac", "-ac", str(channels)]
        cmd.append(str(out))
        subprocess.run(cmd, check=True)
        return out

    return make


@pytest.fixture
def logged_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Callable[[], list[str]]]:
    """logged_program(ENV, PROGRAM): point ENV (AVDF_FFMPEG, AVDF_FFPROBE) at a script that logs each
    start's arguments, then runs PROGRAM; returns a function giving the logged starts so far."""

    def wrap(env: str, program: str) -> Callable[[], list[str]]:
        script, starts = _logging_script(tmp_path / f"{env}-logging", program)
        monkeypatch.setenv(env, str(script))
        return starts

    return wrap


@pytest.fixture
def logged_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Callable[[], list[str]]]:
    """logged_on_path(NAME, PROGRAM): put a script called NAME first on PATH that logs each start's
    arguments, then runs PROGRAM; returns a function giving the logged starts so far."""

    def wrap(name: str, program: str) -> Callable[[], list[str]]:
        bin_dir = tmp_path / "logged-bin"
        bin_dir.mkdir(exist_ok=True)
        _script, starts = _logging_script(bin_dir / name, program)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        return starts

    return wrap


def _logging_script(script: Path, program: str) -> tuple[Path, Callable[[], list[str]]]:
    log = script.with_name(f"{script.name}.log")
    script.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{program}" "$@"\n')
    script.chmod(0o755)
    return script, lambda: log.read_text().splitlines() if log.exists() else []


@pytest.fixture(scope="session")
def studio_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shards of studio-shaped synthetic clips (tests/studio_like.py), read-only for the tests."""
    from studio_like import write_studio_shards

    return write_studio_shards(tmp_path_factory.mktemp("studio-like"))


@pytest.fixture
def one_torch_thread():
    """2 shared cores: one torch thread avoids oversubscription with the other test processes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
