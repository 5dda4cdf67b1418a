"""What the benchmarks read from /proc: CPU used by the machine and by this process, and the
peak-RSS reset. Shared by bench/ingest.py, bench/ui.py and bench/export.py."""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every process of the machine has used (from /proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so later peaks are the measured phase's."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False
