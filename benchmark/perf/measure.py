"""Small measuring helpers shared by the benchmarks."""
from __future__ import annotations

import os
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


def children_cpu_s() -> float:
    """CPU seconds of this process's finished (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_cpu_s() -> float:
    """CPU seconds the machine has been busy, all processes (Linux ``/proc/stat``): counts work of
    processes that are not this one's children, such as Ray workers. Elsewhere ``children_cpu_s``."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
        return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return children_cpu_s()


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
