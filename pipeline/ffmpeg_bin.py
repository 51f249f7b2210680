"""Which ffmpeg program every stage runs, and whether files are probed by an ffprobe program.

ffmpeg: ``$AVDF_FFMPEG`` if set, else the static build that the pinned ``imageio-ffmpeg`` wheel
ships, else ``ffmpeg`` on PATH. The static build is the default for two reasons:
- it starts in ~10 ms where a distribution's shared-library build (Debian 12's links 215
  libraries) takes 80-90 ms before it reads a byte, and the DAG starts ffmpeg thousands of
  times on 2 s clips (3,553 runs in the default DAG, with 3,254 of ffprobe);
- its version comes with the Python environment, so two machines installed from the same
  pyproject.toml encode the same bytes (x264 and the AAC encoder change between ffmpeg releases).

Probing: in-process through the libav libraries of the pinned PyAV wheel
(``pipeline.libav_probe``, ~2 ms a file where Debian's ffprobe takes 80-90 ms to start), or,
when ``$AVDF_FFPROBE`` names one, that ffprobe program.
"""
from __future__ import annotations

import os
from functools import lru_cache

FFMPEG_ENV = "AVDF_FFMPEG"
FFPROBE_ENV = "AVDF_FFPROBE"


def ffmpeg_exe() -> str:
    """The ffmpeg program to run (a path, or a name looked up on PATH)."""
    return os.environ.get(FFMPEG_ENV) or _packaged_ffmpeg() or "ffmpeg"


def ffprobe_exe() -> str | None:
    """The ffprobe program ``$AVDF_FFPROBE`` names (a path, or a name looked up on PATH); None: probe in-process."""
    return os.environ.get(FFPROBE_ENV) or None


@lru_cache(maxsize=1)
def _packaged_ffmpeg() -> str | None:
    # get_ffmpeg_exe honours $IMAGEIO_FFMPEG_EXE, and falls back to a conda or system ffmpeg on a
    # platform the wheel has no build for. It runs the program once (-version) to check it.
    try:
        from imageio_ffmpeg import get_ffmpeg_exe

        return get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None
