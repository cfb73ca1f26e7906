"""The DIS answers as they come over the wire, and the typed values made of them.

The raw JSON is validated at the edge with pydantic and turned into frozen dataclasses (the
shared ``DumpTask``, ``StreamDetails`` and ``DumpTaskDetails`` of ``bot.vocabulary``), so the
rest of the bot never handles dicts from the wire.

Where the shapes come from:

- Stream details, ``GET /v2/{project_id}/streams/{stream_name}``: the Open Telekom Cloud API
  reference (``opentelekomcloud-docs/data-ingestion-service``,
  ``api-ref/source/api_description/stream_management/querying_stream_details.rst``), Huawei
  Cloud's ``api-dis/dis_02_0025.html``, the Python SDK's ``ShowStreamResponse`` and the OTC Go
  SDK's ``streams.DescribeStreamResponse``. They agree: ``stream_name``, ``stream_id``,
  ``create_time`` and ``last_modified_time`` (epoch ms), ``retention_period`` (hours),
  ``status``, ``stream_type``, ``data_type``, ``writable_partition_count``,
  ``readable_partition_count``, ``partitions`` (``partition_id``, ``status``, ``hash_range``,
  ``sequence_number_range``) and ``has_more_partitions``. (OTC's example writes
  ``last_modified_time`` as the string ``"1599050091026,"``, so that field is not read.)
- Dump task details, ``GET .../transfer-tasks/{task_name}``: the field tables (OTC
  ``dump_task_management/querying_dump_task_details.rst``, Huawei ``ShowTransferTask``, the
  Python SDK's ``ShowTransferTaskResponse``, the Go SDK's ``dump.GetTransferTaskResponse``) give
  the task fields of the list answer plus ``stream_name`` and ``partitions``, but type the
  partitions as the stream's ``PartitionResult``, which has no transfer progress. Every example
  response (OTC and Huawei API references; Huawei SDK reference ``dis_06_0114`` and
  ``dis_06_0091``) and the Java SDK's ``PartitionTransferResult`` instead show
  ``{"partitionId", "discard", "state", "last_transfer_timestamp", "last_transfer_offset"}``
  (the Java SDK names the state ``transfer_state``). Both spellings of id and state are read,
  and every partition field is optional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from bot.vocabulary import (
    DumpTask,
    DumpTaskDetails,
    PartitionProgress,
    StreamDetails,
    TaskState,
)


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


class StreamListPayload(BaseModel):
    """The stream list answer: ``{"total_number": n, "stream_names": [...], "has_more_streams"}``.

    Documented in the API reference's "Querying Streams" (``GET /v2/{project_id}/streams``,
    paged with ``limit`` and ``start_stream_name``).
    """

    model_config = ConfigDict(extra="ignore")

    total_number: int | None = None
    stream_names: list[str] = []
    has_more_streams: bool = False


class PartitionProgressPayload(BaseModel):
    """One partition of a task-details answer; see the module docstring for its spellings."""

    model_config = ConfigDict(extra="ignore")

    partition_id: str | None = Field(
        default=None, validation_alias=AliasChoices("partitionId", "partition_id")
    )
    state: str | None = Field(
        default=None, validation_alias=AliasChoices("state", "transfer_state")
    )
    last_transfer_timestamp: int | None = None
    last_transfer_offset: int | None = None
    discard: int | None = None

    def to_progress(self) -> PartitionProgress:
        """Build the typed value."""
        return PartitionProgress(
            partition_id=self.partition_id,
            state=TaskState(self.state.upper()) if self.state else None,
            last_transfer_at=from_epoch_ms(self.last_transfer_timestamp),
            last_transfer_offset=self.last_transfer_offset,
            discarded=self.discard,
        )


class TaskDetailsPayload(TaskPayload):
    """The describe answer: the task as listed, plus its stream and per-partition progress."""

    stream_name: str | None = None
    partitions: list[PartitionProgressPayload] = []

    def to_details(self, task_id: str) -> DumpTaskDetails:
        """Build the typed value, given the id read from the JSON."""
        return DumpTaskDetails(
            task=self.to_task(task_id),
            partitions=tuple(partition.to_progress() for partition in self.partitions),
        )


class StreamPartitionPayload(BaseModel):
    """One partition of a stream-details answer; only its status is read."""

    model_config = ConfigDict(extra="ignore")

    status: str | None = None


class StreamPayload(BaseModel):
    """The stream-details answer (extra fields ignored); see the module docstring."""

    model_config = ConfigDict(extra="ignore")

    stream_name: str | None = None
    stream_id: str | None = None
    status: str | None = None
    retention_period: int | None = None
    stream_type: str | None = None
    data_type: str | None = None
    create_time: int | None = None
    writable_partition_count: int | None = None
    partitions: list[StreamPartitionPayload] = []
    has_more_partitions: bool = False

    def to_details(self, requested: str) -> StreamDetails:
        """Build the typed value for the stream asked for as ``requested``.

        The partition count is DIS's count of writable (ACTIVE) partitions or, without it, the
        ACTIVE partitions listed, when the list is complete.
        """
        count = self.writable_partition_count
        if count is None and not self.has_more_partitions:
            count = sum(1 for p in self.partitions if (p.status or "").upper() == "ACTIVE")
        return StreamDetails(
            name=self.stream_name or requested,
            stream_id=self.stream_id,
            status=self.status,
            retention_hours=self.retention_period,
            partition_count=count,
            stream_type=self.stream_type,
            data_type=self.data_type,
            created_at=from_epoch_ms(self.create_time),
        )
