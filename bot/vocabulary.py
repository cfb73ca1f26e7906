"""The words the rules, the DIS client and the cards share: a task, its actions and states.

They live here, apart from the DIS client, so that the lifecycle rules and the Slack cards can
speak of tasks without depending on how DIS is called. (The DIS stand-in keeps its own copy on
purpose, so that it never shares code with the client it checks.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


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
