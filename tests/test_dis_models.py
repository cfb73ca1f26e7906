"""Reading stream and task-details answers in every shape the DIS references show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.dis.models import StreamPayload, TaskDetailsPayload
from bot.vocabulary import TaskState

TASK = {
    "task_id": "As805BudhcH1lDs6gbn",
    "task_name": "orders-to-obs",
    "stream_name": "orders-stream",
    "destination_type": "OBS",
    "state": "RUNNING",
    "create_time": 1717056000000,
    "last_transfer_timestamp": 1719830460000,
}


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


@pytest.mark.parametrize(
    ("partition", "expected"),
    [
        (
            {
                "partitionId": "shardId-0000000000",
                "discard": 3,
                "state": "RUNNING",
                "last_transfer_timestamp": 1719830400000,
                "last_transfer_offset": 4242,
            },
            ("shardId-0000000000", TaskState.RUNNING, _at(1719830400000), 4242, 3),
        ),
        (
            {
                "partition_id": "shardId-0000000001",
                "transfer_state": "paused",
                "last_transfer_timestamp": 1719830400000,
            },
            ("shardId-0000000001", TaskState.PAUSED, _at(1719830400000), None, None),
        ),
        (
            {"partition_id": "shardId-0000000002", "status": "ACTIVE", "hash_range": "[0 : 9]"},
            ("shardId-0000000002", None, None, None, None),
        ),
        ({"state": "SOMETHING_NEW"}, (None, TaskState.UNKNOWN, None, None, None)),
        (
            {"partitionId": "shardId-0000000003", "last_transfer_timestamp": 0},
            (
                "shardId-0000000003",
                None,
                None,
                None,
                None,
            ),
        ),
    ],
    ids=[
        "API reference examples",
        "Java SDK names",
        "field-table shape, no progress",
        "undocumented state",
        "zero means never",
    ],
)
def test_task_details_partitions_are_read_in_every_documented_shape(
    partition: dict[str, object], expected: tuple[object, ...]
) -> None:
    """Partition id, state, last transfer, offset and discards are read from either spelling."""
    details = TaskDetailsPayload.model_validate({**TASK, "partitions": [partition]}).to_details(
        "As805BudhcH1lDs6gbn"
    )
    [progress] = details.partitions
    assert (
        progress.partition_id,
        progress.state,
        progress.last_transfer_at,
        progress.last_transfer_offset,
        progress.discarded,
    ) == expected
    assert details.task.name == "orders-to-obs"
    assert details.task.last_transfer_at == _at(1719830460000)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "stream_name": "orders-stream",
                "stream_id": "Kq3ZtV8mYw2Lp0Rc7Hd",
                "create_time": 1717056000000,
                "last_modified_time": "1717056000000,",
                "retention_period": 72,
                "status": "RUNNING",
                "stream_type": "ADVANCED",
                "data_type": "JSON",
                "writable_partition_count": 2,
                "readable_partition_count": 3,
                "partitions": [{"status": "ACTIVE", "partition_id": "shardId-0000000000"}],
                "has_more_partitions": True,
            },
            ("orders-stream", "RUNNING", 72, 2, "ADVANCED", _at(1717056000000)),
        ),
        (
            {
                "stream_name": "orders-stream",
                "status": "FROZEN",
                "partitions": [{"status": "ACTIVE"}, {"status": "EXPIRED"}],
            },
            ("orders-stream", "FROZEN", None, 1, None, None),
        ),
        (
            {"partitions": [{"status": "ACTIVE"}], "has_more_partitions": True},
            ("orders-stream", None, None, None, None, None),
        ),
    ],
    ids=["full answer", "counted from the partitions", "incomplete partition list"],
)
def test_stream_answers_are_read_with_missing_fields(
    body: dict[str, object], expected: tuple[object, ...]
) -> None:
    """Name, status, retention, partition count, type and creation are read; absent ones are None."""
    stream = StreamPayload.model_validate(body).to_details("orders-stream")
    assert (
        stream.name,
        stream.status,
        stream.retention_hours,
        stream.partition_count,
        stream.stream_type,
        stream.created_at,
    ) == expected
