"""What ``/proc`` says about a process tree, and the statistics the report prints.

The bot may spawn workers (a separate process for the work after the ack, say), so CPU and
memory are summed over the whole tree below the process the benchmark started, found through
``/proc/<pid>/task/*/children``. CPU counts ``cutime``/``cstime`` too: a child that exited and
was reaped moves its time there, so nothing it did goes missing between two readings.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        with contextlib.suppress(OSError):
            for task in (PROC / str(current) / "task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the tree, reaped children included, in seconds."""
    ticks = 0
    for member in tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Fields after the command name, which may hold spaces: utime is the 12th.
            fields = (PROC / str(member) / "stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / TICKS_PER_SECOND


def rss_bytes(pid: int) -> int:
    """Resident memory of the tree, in bytes (shared pages counted in each process)."""
    total = 0
    for member in tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((PROC / str(member) / "statm").read_text().split()[1]) * PAGE_BYTES
    return total


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.99 for p99); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    """The median of the values that are numbers; NaN when there are none."""
    present = [value for value in values if not math.isnan(value)]
    return statistics.median(present) if present else math.nan


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when either is missing or the denominator is zero."""
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator
