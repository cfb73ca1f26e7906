"""The stand-in DIS's streams and dump tasks, and how a task's state moves after start or stop.

Nothing runs in the background: a start or stop records the state the task is heading for and
when it gets there, and every read first settles whatever is due by the injected clock. Tests
therefore step time forward instead of sleeping, and the outcome never depends on scheduling.

Each stream has a retention period (hours) and partitions; each task keeps, per partition, the
time it last dumped data. A RUNNING task dumps continuously, so its partitions' times follow the
wall clock at every read; any other task's times stay where they were when it stopped running.
Offsets are modelled as one record a second per partition: a partition's offset is the number of
whole seconds it has dumped since the stream was configured.
"""

from __future__ import annotations

import enum
import re
import secrets
import string
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from datetime import datetime

MAX_TASKS_PER_STREAM = 5
TASK_ID_LENGTH = 19
DEFAULT_RETENTION_HOURS = 24
# One stream-details answer lists at most 100 partitions unless asked for more; the stand-in
# keeps every stream within that page so it never has to paginate.
MAX_PARTITIONS = 100
MAX_HASH = 2**63 - 1
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ID_ALPHABET = string.ascii_letters + string.digits


class TaskState(enum.StrEnum):
    """The states DIS reports for a dump task."""

    RUNNING = "RUNNING"
    STARTING = "STARTING"
    PAUSED = "PAUSED"
    ERROR = "ERROR"
    ABNORMAL = "ABNORMAL"
    DELETE = "DELETE"


class Action(enum.StrEnum):
    """The two batch actions on ``.../transfer-tasks/action``."""

    START = "start"
    STOP = "stop"


class UnknownStreamError(LookupError):
    """The stream named in the path does not exist (DIS.4301)."""


class UnknownTaskError(LookupError):
    """A task named in the path, or an id in an action, does not exist (DIS.4354)."""


def random_task_id() -> str:
    """A task (or stream) id shaped like every documented example: 19 letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(TASK_ID_LENGTH))


def partition_id(index: int) -> str:
    """DIS names partitions ``shardId-`` and ten digits."""
    return f"shardId-{index:010d}"


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """How a dump task is configured; ``None`` times mean "now" and a ``None`` id a random one.

    ``sticky_error`` models a task whose destination is broken: starting it leaves it in ERROR,
    which is what the bot must detect by listing after its start call.
    ``partition_transfer_timestamps`` gives each partition its own last transfer time (one per
    partition of the stream); by default every partition starts at ``last_transfer_timestamp``.
    Either only matters while the task is not RUNNING: a running task dumps up to now.
    """

    name: str
    state: TaskState = TaskState.PAUSED
    task_id: str | None = None
    destination_type: str = "OBS"
    create_time: int | None = None
    last_transfer_timestamp: int | None = None
    sticky_error: bool = False
    partition_transfer_timestamps: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """How a stream is configured: its tasks, retention (hours) and number of partitions.

    ``omit_task_id`` overrides the stand-in's global switch for this stream (``None``: follow
    it). DIS itself keeps data 24 to 72 hours (168 on Huawei Cloud); the stand-in takes any whole
    number of hours from 1, so that tests can let data expire sooner.
    """

    tasks: tuple[TaskSpec, ...] = ()
    retention_period: int = DEFAULT_RETENTION_HOURS
    partition_count: int = 1
    omit_task_id: bool | None = None


@dataclass(frozen=True, slots=True)
class PartitionView:
    """How far a task has dumped one partition."""

    partition_id: str
    last_transfer_timestamp: int
    last_transfer_offset: int


@dataclass(frozen=True, slots=True)
class TaskView:
    """A snapshot of one dump task as the service would report it right now."""

    task_id: str
    name: str
    state: TaskState
    destination_type: str
    create_time: int
    last_transfer_timestamp: int
    sticky_error: bool
    partitions: tuple[PartitionView, ...]


@dataclass(frozen=True, slots=True)
class StreamView:
    """A snapshot of one stream as the service would report it right now.

    ``newest_offsets`` holds, per partition, the highest offset any of its tasks has dumped.
    """

    name: str
    stream_id: str
    create_time: int
    retention_period: int
    partition_count: int
    newest_offsets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Pending:
    state: TaskState
    due: float


@dataclass(slots=True)
class _Partition:
    last_transfer: int
    counted_from: int

    @property
    def offset(self) -> int:
        """One record a second: the whole seconds dumped since the stream was configured."""
        return max(0, (self.last_transfer - self.counted_from) // 1000)

    def view(self, index: int) -> PartitionView:
        return PartitionView(partition_id(index), self.last_transfer, self.offset)


@dataclass(slots=True)
class _Task:
    task_id: str
    name: str
    state: TaskState
    destination_type: str
    create_time: int
    partitions: list[_Partition]
    sticky_error: bool
    pending: _Pending | None = None

    def transferred(self, when_ms: int) -> None:
        """Record a dump of every partition at ``when_ms``; a dump time never moves back."""
        for partition in self.partitions:
            partition.last_transfer = max(partition.last_transfer, when_ms)

    def view(self) -> TaskView:
        return TaskView(
            self.task_id,
            self.name,
            self.state,
            self.destination_type,
            self.create_time,
            max(partition.last_transfer for partition in self.partitions),
            self.sticky_error,
            tuple(partition.view(index) for index, partition in enumerate(self.partitions)),
        )


@dataclass(slots=True)
class _Stream:
    tasks: list[_Task]
    omit_task_id: bool | None
    stream_id: str
    create_time: int
    retention_period: int
    partition_count: int

    def view(self, name: str) -> StreamView:
        newest = tuple(
            max((task.partitions[index].offset for task in self.tasks), default=0)
            for index in range(self.partition_count)
        )
        return StreamView(
            name,
            self.stream_id,
            self.create_time,
            self.retention_period,
            self.partition_count,
            newest,
        )


def epoch_ms(moment: datetime) -> int:
    """DIS reports times as integer milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


class DisState:
    """Streams and dump tasks behind one lock, because the server thread and tests share them.

    ``clock`` returns monotonic seconds and drives the delays; ``wall_clock`` supplies the
    epoch times DIS reports.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        start_delay: float = 0.0,
        stop_delay: float = 0.0,
        omit_task_id: bool = False,
    ) -> None:
        if start_delay < 0 or stop_delay < 0:
            raise ValueError("start_delay and stop_delay must not be negative")
        self._clock = clock
        self._wall_clock = wall_clock
        self._start_delay = start_delay
        self._stop_delay = stop_delay
        self._omit_task_id = omit_task_id
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.RLock()

    def add_stream(self, name: str, spec: StreamSpec) -> tuple[str, ...]:
        """Create a stream as ``spec`` says and return its tasks' ids, in order.

        Raises ``ValueError`` for a bad or duplicate name, a duplicate task, more than five
        tasks, a retention under an hour, or a partition count outside 1-100.
        """
        _check_name("stream", name)
        specs = list(spec.tasks)
        if len(specs) > MAX_TASKS_PER_STREAM:
            raise ValueError(
                f"stream {name!r} has {len(specs)} dump tasks; DIS allows at most "
                f"{MAX_TASKS_PER_STREAM}"
            )
        if spec.retention_period < 1:
            raise ValueError(f"stream {name!r}: retention_period must be at least 1 hour")
        if not 1 <= spec.partition_count <= MAX_PARTITIONS:
            raise ValueError(
                f"stream {name!r}: partition_count must be between 1 and {MAX_PARTITIONS}"
            )
        now_ms = epoch_ms(self._wall_clock())
        built = [self._build(task, now_ms, spec.partition_count) for task in specs]
        for label, values in (
            ("task name", [task.name for task in built]),
            ("task id", [task.task_id for task in built]),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"stream {name!r} has a duplicate {label}")
        with self._lock:
            if name in self._streams:
                raise ValueError(f"stream {name!r} already exists")
            self._streams[name] = _Stream(
                built,
                spec.omit_task_id,
                stream_id=random_task_id(),
                create_time=now_ms,
                retention_period=spec.retention_period,
                partition_count=spec.partition_count,
            )
        return tuple(task.task_id for task in built)

    def stream_names(self) -> list[str]:
        """Every stream's name, in alphabetical order as DIS lists them."""
        with self._lock:
            return sorted(self._streams)

    def task_ids(self, stream: str, keys: Iterable[str]) -> tuple[str, ...]:
        """The ids of the tasks named by id or by name; ``UnknownTaskError`` for any other."""
        with self._lock:
            return tuple(self._find(stream, key).task_id for key in keys)

    def stream(self, name: str) -> StreamView:
        """One stream, with its tasks' progress settled first."""
        with self._lock:
            stream = self._stream(name)
            self._settle(stream.tasks)
            return stream.view(name)

    def omits_task_id(self, stream: str) -> bool:
        """Whether list responses for ``stream`` leave ``task_id`` out, as the docs' tables do."""
        with self._lock:
            override = self._stream(stream).omit_task_id
            return self._omit_task_id if override is None else override

    def list_tasks(self, stream: str) -> tuple[TaskView, ...]:
        """Every task of ``stream`` after settling what is due."""
        with self._lock:
            tasks = self._stream(stream).tasks
            self._settle(tasks)
            return tuple(task.view() for task in tasks)

    def task(self, stream: str, key: str) -> TaskView:
        """One task, found by name or by id, after settling what is due."""
        with self._lock:
            task = self._find(stream, key)
            self._settle([task])
            return task.view()

    def describe(self, stream: str, name: str) -> TaskView:
        """One task found by name only, as the describe call does."""
        with self._lock:
            tasks = self._stream(stream).tasks
            self._settle(tasks)
            for task in tasks:
                if task.name == name:
                    return task.view()
            raise UnknownTaskError(name)

    def apply(self, stream: str, action: Action, task_ids: Sequence[str]) -> None:
        """Start or stop the tasks with these ids; nothing changes if any id is unknown."""
        with self._lock:
            tasks = self._stream(stream).tasks
            by_id = {task.task_id: task for task in tasks}
            for task_id in task_ids:
                if task_id not in by_id:
                    raise UnknownTaskError(task_id)
            self._settle(tasks)
            now = self._clock()
            for task_id in dict.fromkeys(task_ids):
                if action is Action.START:
                    self._start(by_id[task_id], now)
                else:
                    self._stop(by_id[task_id], now)

    def set_state(
        self, stream: str, key: str, state: TaskState, *, sticky_error: bool | None = None
    ) -> None:
        """Force a task into ``state`` at once, dropping any change under way."""
        with self._lock:
            task = self._find(stream, key)
            self._settle([task])
            task.state = TaskState(state)
            task.pending = None
            if sticky_error is not None:
                task.sticky_error = sticky_error

    def _build(self, spec: TaskSpec, now_ms: int, partition_count: int) -> _Task:
        _check_name("task", spec.name)
        task_id = random_task_id() if spec.task_id is None else spec.task_id
        if not task_id:
            raise ValueError(f"task {spec.name!r} has an empty id")
        start = now_ms if spec.last_transfer_timestamp is None else spec.last_transfer_timestamp
        times = spec.partition_transfer_timestamps or (start,) * partition_count
        if len(times) != partition_count:
            raise ValueError(
                f"task {spec.name!r} gives {len(times)} partition transfer times for "
                f"{partition_count} partitions"
            )
        return _Task(
            task_id=task_id,
            name=spec.name,
            state=TaskState(spec.state),
            destination_type=spec.destination_type,
            create_time=now_ms if spec.create_time is None else spec.create_time,
            partitions=[_Partition(time, max(time, now_ms)) for time in times],
            sticky_error=spec.sticky_error,
        )

    def _stream(self, name: str) -> _Stream:
        try:
            return self._streams[name]
        except KeyError:
            raise UnknownStreamError(name) from None

    def _find(self, stream: str, key: str) -> _Task:
        for task in self._stream(stream).tasks:
            if key in (task.task_id, task.name):
                return task
        raise UnknownTaskError(key)

    def _settle(self, tasks: Iterable[_Task]) -> None:
        """Apply the changes that are due, and let RUNNING tasks dump up to now.

        A task that stopped running since the last read dumped until the change took effect,
        which may be a while before this read: its time is set back by that while (on the wall
        clock), never before a time it had already reached.
        """
        now = self._clock()
        now_ms = epoch_ms(self._wall_clock())
        for task in tasks:
            pending = task.pending
            if pending is not None and now >= pending.due:
                if task.state is TaskState.RUNNING:
                    task.transferred(now_ms - int((now - pending.due) * 1000))
                task.state = pending.state
                task.pending = None
            if task.state is TaskState.RUNNING:
                task.transferred(now_ms)

    def _start(self, task: _Task, now: float) -> None:
        """PAUSED, ERROR and ABNORMAL tasks go through STARTING; a sticky ERROR stays put.

        Starting a task that is being stopped cancels the stop, as a second click on "start"
        would in the console; a task forced into STARTING by ``set_state`` starts moving.
        """
        if task.state is TaskState.ERROR and task.sticky_error:
            return
        heading_for_running = task.pending is not None and task.pending.state is TaskState.RUNNING
        if task.state in (TaskState.PAUSED, TaskState.ERROR, TaskState.ABNORMAL):
            task.state = TaskState.STARTING
            task.pending = _Pending(TaskState.RUNNING, now + self._start_delay)
            self._settle([task])
        elif task.state is TaskState.STARTING and not heading_for_running:
            task.pending = _Pending(TaskState.RUNNING, now + self._start_delay)
            self._settle([task])
        elif task.state is TaskState.RUNNING:
            task.pending = None

    def _stop(self, task: _Task, now: float) -> None:
        """RUNNING and STARTING tasks pause after the stop delay, showing their old state until."""
        if task.state not in (TaskState.RUNNING, TaskState.STARTING):
            return
        if task.pending is None or task.pending.state is not TaskState.PAUSED:
            task.pending = _Pending(TaskState.PAUSED, now + self._stop_delay)
            self._settle([task])


def _check_name(kind: str, name: str) -> None:
    """DIS names are 1-64 letters, digits, ``_`` or ``-``; refuse others when configuring."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid {kind} name {name!r}: use 1-64 letters, digits, '_' or '-'")
