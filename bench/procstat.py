"""CPU and memory of a process, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    cpu_seconds: float  # user + system, children excluded
    rss_bytes: int
    peak_rss_bytes: int


def sample(pid: int) -> Sample:
    with open(f"/proc/{pid}/stat") as f:
        # The command name may contain spaces; fields after the closing paren are fixed.
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    rss = peak = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return Sample((utime + stime) / _TICKS, rss, peak)
