"""Small measuring helpers shared by the benchmarks."""
from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def rss_mb() -> float:
    """Current resident memory of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    start_rss_mb: float = 0.0

    @property
    def peak_increase_mb(self) -> float:
        return self.peak_rss_mb - self.start_rss_mb


@contextmanager
def measure(poll_s: float = 0.01) -> Iterator[Measurement]:
    """Wall time and peak RSS (sampled on a thread) of the enclosed block."""
    m = Measurement(start_rss_mb=rss_mb())
    m.peak_rss_mb = m.start_rss_mb
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            m.peak_rss_mb = max(m.peak_rss_mb, rss_mb())
            stop.wait(poll_s)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - t0
        stop.set()
        thread.join()
        m.peak_rss_mb = max(m.peak_rss_mb, rss_mb())
