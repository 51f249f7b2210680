"""Keep third-party native log lines (TensorFlow Lite, absl, glog) off a user's terminal.

mediapipe's C++ graphs write start-up notes straight to file descriptor 2 from
their own threads ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
absl's "W0000 ... inference_feedback_manager.cc:114] ..."). No environment
variable reaches them (absl ignores GLOG_minloglevel and TF_CPP_MIN_LOG_LEVEL in
mediapipe 0.10), and they can come at any time a graph first runs, not only
while it is built. So ``filtered_stderr`` points descriptor 2 at a pipe for the
enclosed block and a thread forwards every line except those notes to the real
stderr: Python's own warnings, tracebacks and errors, and the native errors
(absl ``E``/``F`` lines), still get through.
"""
from __future__ import annotations

import contextlib
import os
import re
import select
import sys
import threading
from collections.abc import Iterator

# Lines that only narrate a library's start-up: absl/glog INFO and WARNING lines
# ("W0000 00:00:1796192946.426481   17822 file.cc:114] ...": uninitialised absl
# writes seconds since the epoch where glog writes hh:mm:ss), TensorFlow Lite's
# minimal logger at INFO, and absl's note that logging is not initialised.
NATIVE_NOISE = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] "
    rb"|INFO: "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$)"
)


def is_native_noise(line: bytes) -> bool:
    """True for a third-party native start-up/log line that a user need not see."""
    return NATIVE_NOISE.match(line.rstrip(b"\r\n")) is not None


@contextlib.contextmanager
def filtered_stderr(enabled: bool = True) -> Iterator[None]:
    """Within the block, drop third-party native log lines from file descriptor 2.

    With ``enabled=False`` (``--debug``) nothing changes. On exit descriptor 2 is
    restored and every pending line is forwarded before the block's exception,
    if any, propagates (so a traceback prints after, not inside, the filter).
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    stop_r, stop_w = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    os.set_blocking(read_end, False)

    def forward() -> None:
        pending = b""
        stopping = False
        while True:
            ready, _, _ = select.select([read_end, stop_r], [], [])
            stopping = stopping or stop_r in ready
            try:
                chunk = os.read(read_end, 65536)
            except BlockingIOError:  # nothing left: done once told to stop
                if stopping:
                    break
                continue
            if not chunk:  # every writer is gone
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not is_native_noise(line))
            if out:
                os.write(real, out)
        if pending and not is_native_noise(pending):
            os.write(real, pending)

    thread = threading.Thread(target=forward, name="avdf-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)
        # Children (ffmpeg, a multiprocessing helper) may still hold the pipe open, so the thread is not
        # left waiting for end-of-file: it forwards what is already written, then stops.
        os.write(stop_w, b"x")
        thread.join(timeout=5.0)
        if not thread.is_alive():  # (else leave its descriptors open rather than pull them from under it)
            for fd in (stop_r, stop_w, read_end, real):
                os.close(fd)
