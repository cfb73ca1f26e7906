"""The words the rules, the DIS client and the cards share: a task, its actions and states.

They live here, apart from the DIS client, so that the lifecycle rules and the Slack cards can
speak of tasks without depending on how DIS is called. (The DIS stand-in keeps its own copy on
purpose, so that it never shares code with the client it checks.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class TaskState(enum.StrEnum):
    """A dump task's state as DIS reports it; ``UNKNOWN`` stands for anything undocumented."""

    RUNNING = "RUNNING"
    STARTING = "STARTING"
    PAUSED = "PAUSED"
    ERROR = "ERROR"
    ABNORMAL = "ABNORMAL"
    DELETE = "DELETE"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def _missing_(cls, value: object) -> TaskState:  # noqa: ARG003 - any unknown value
        return cls.UNKNOWN


class TaskAction(enum.StrEnum):
    """The two verbs of the batch action call."""

    START = "start"
    STOP = "stop"

    @property
    def target_state(self) -> TaskState:
        """The state a task reaches when the action succeeded."""
        return TaskState.RUNNING if self is TaskAction.START else TaskState.PAUSED


@dataclass(frozen=True, slots=True)
class DumpTask:
    """One dump task of a stream."""

    task_id: str
    name: str
    state: TaskState
    destination_type: str | None
    created_at: datetime | None
    last_transfer_at: datetime | None


# DIS keeps a stream's data at least this long (24-72 hours on Open Telekom Cloud, up to 168 on
# Huawei Cloud), so it is the safe assumption when a stream's retention is not known.
MIN_RETENTION_HOURS = 24


@dataclass(frozen=True, slots=True)
class StreamDetails:
    """A stream: above all how long DIS keeps its data (``None`` when DIS did not say).

    ``status``, ``stream_type`` and ``data_type`` are as DIS reports them (e.g. RUNNING or
    FROZEN, COMMON or ADVANCED, BLOB): the bot shows them but takes no decision on them.
    """

    name: str
    stream_id: str | None
    status: str | None
    retention_hours: int | None
    partition_count: int | None
    stream_type: str | None
    data_type: str | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """How far a dump task has got in one partition of its stream."""

    partition_id: str | None
    state: TaskState | None
    last_transfer_at: datetime | None
    last_transfer_offset: int | None
    discarded: int | None


@dataclass(frozen=True, slots=True)
class DumpTaskDetails:
    """A dump task with its progress in each partition."""

    task: DumpTask
    partitions: tuple[PartitionProgress, ...]

    @property
    def oldest_transfer_at(self) -> datetime | None:
        """The earliest last transfer time of any partition, else the task's own, else ``None``.

        The slowest partition holds the oldest data not yet dumped, so it decides how long the
        task may stay paused.
        """
        known = [p.last_transfer_at for p in self.partitions if p.last_transfer_at is not None]
        return min(known) if known else self.task.last_transfer_at


def safe_pause_window(
    retention_hours: int | None, last_transfer_at: datetime | None, now: datetime
) -> timedelta:
    """How much longer a dump task may stay paused before DIS deletes data it has not dumped.

    DIS deletes data once it is older than the stream's retention period. The oldest data a
    task has not dumped yet arrived, approximately, when the task last transferred (use
    ``DumpTaskDetails.oldest_transfer_at``, the slowest partition's time): anything older was
    dumped, and the records just after it arrived no earlier. So the window is the retention
    minus the time since that transfer. It is an estimate: DIS batches dumps, and records that
    arrived a little before the last transfer may still be waiting.

    An unknown retention counts as ``MIN_RETENTION_HOURS``, the shortest DIS allows. An unknown
    last transfer counts as ``now`` (the full retention remains), which is only right for a task
    that was dumping until a moment ago. A transfer time in the future (clock skew) also counts
    as ``now``. The result is never negative: zero means data is already being deleted.
    """
    retention = timedelta(hours=MIN_RETENTION_HOURS if retention_hours is None else retention_hours)
    since = timedelta(0) if last_transfer_at is None else max(now - last_transfer_at, timedelta(0))
    return max(retention - since, timedelta(0))
