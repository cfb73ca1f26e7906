"""The shared words: how long a paused task can wait before DIS deletes data it has not dumped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.vocabulary import (
    MIN_RETENTION_HOURS,
    DumpTask,
    DumpTaskDetails,
    PartitionProgress,
    TaskState,
    safe_pause_window,
)

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("retention_hours", "last_transfer_at", "expected"),
    [
        (24, NOW, 24 * HOUR),
        (24, NOW - 5 * HOUR, 19 * HOUR),
        (72, NOW - 5 * HOUR, 67 * HOUR),
        (24, NOW - timedelta(hours=23, minutes=59), timedelta(minutes=1)),
        (24, NOW - 24 * HOUR, timedelta(0)),
        (24, NOW - 30 * HOUR, timedelta(0)),
        (24, None, 24 * HOUR),
        (None, NOW - 5 * HOUR, (MIN_RETENTION_HOURS - 5) * HOUR),
        (None, None, MIN_RETENTION_HOURS * HOUR),
        (24, NOW + 2 * HOUR, 24 * HOUR),
    ],
    ids=[
        "just dumped",
        "paused five hours",
        "longer retention",
        "one minute left",
        "expiring now",
        "already expiring",
        "never dumped counts as now",
        "unknown retention counts as the minimum",
        "nothing known",
        "transfer in the future counts as now",
    ],
)
def test_safe_pause_window(
    retention_hours: int | None, last_transfer_at: datetime | None, expected: timedelta
) -> None:
    """The window is the retention minus the time since the last transfer, never below zero."""
    assert safe_pause_window(retention_hours, last_transfer_at, NOW) == expected


def _details(task_time: datetime | None, *partition_times: datetime | None) -> DumpTaskDetails:
    task = DumpTask(
        "As805BudhcH1lDs6gbn", "orders-to-obs", TaskState.PAUSED, "OBS", None, task_time
    )
    partitions = tuple(
        PartitionProgress(f"shardId-{index:010d}", TaskState.PAUSED, time, None, None)
        for index, time in enumerate(partition_times)
    )
    return DumpTaskDetails(task, partitions)


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        (_details(NOW, NOW - 2 * HOUR, NOW - HOUR), NOW - 2 * HOUR),
        (_details(NOW, None, NOW - HOUR), NOW - HOUR),
        (_details(NOW - HOUR, None, None), NOW - HOUR),
        (_details(NOW - HOUR), NOW - HOUR),
        (_details(None), None),
    ],
    ids=[
        "slowest partition",
        "partitions without a time are skipped",
        "no partition time: the task's",
        "no partitions: the task's",
        "nothing known",
    ],
)
def test_oldest_transfer_is_the_slowest_partitions(
    details: DumpTaskDetails, expected: datetime | None
) -> None:
    """The oldest transfer is the earliest partition time, else the task's own time."""
    assert details.oldest_transfer_at == expected
