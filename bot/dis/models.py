"""The DIS answers as they come over the wire, and the typed values made of them.

The raw JSON is validated at the edge with pydantic and turned into frozen dataclasses (the
shared ``DumpTask`` of ``bot.vocabulary``), so the rest of the bot never handles dicts from the
wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from bot.vocabulary import DumpTask, TaskState


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What DIS said to a batch start/stop call: nothing but its request id."""

    request_id: str | None


def from_epoch_ms(value: int | None) -> datetime | None:
    """DIS reports times as epoch milliseconds; 0 or absent means never."""
    if not value:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class TaskPayload(BaseModel):
    """One task as it appears in list and describe answers (extra fields ignored)."""

    model_config = ConfigDict(extra="ignore")

    task_id: str | None = None
    task_name: str
    state: str = "UNKNOWN"
    destination_type: str | None = None
    create_time: int | None = None
    last_transfer_timestamp: int | None = None

    def to_task(self, task_id: str) -> DumpTask:
        """Build the typed value, given the id (read from the JSON or found by describe)."""
        return DumpTask(
            task_id=task_id,
            name=self.task_name,
            state=TaskState(self.state.upper()),
            destination_type=self.destination_type,
            created_at=from_epoch_ms(self.create_time),
            last_transfer_at=from_epoch_ms(self.last_transfer_timestamp),
        )


class TaskListPayload(BaseModel):
    """The list answer: ``{"total_number": n, "quota": 5, "tasks": [...]}``."""

    model_config = ConfigDict(extra="ignore")

    total_number: int | None = None
    tasks: list[TaskPayload] = []
