"""What the stand-in DIS answers: its five routes, their JSON, both error shapes.

Only the calls the bot makes are served (list streams, stream details, list tasks, describe a
task by name, batch start/stop); any other path or method gets the gateway's APIGW.0101, as an
unpublished API would. Messages follow the error-code appendix of the DIS API reference, with
the offending value appended in brackets.

The bodies follow the API reference's example responses (Open Telekom Cloud
``api-ref/source/api_description/stream_management/querying_stream_details.rst`` and
``dump_task_management/querying_dump_task_details.rst``; Huawei Cloud ``dis_02_0025`` and
``ShowTransferTask``). Where a field table and the examples disagree, the examples win: a task's
partitions carry ``partitionId`` (camel case), ``discard``, ``state``,
``last_transfer_timestamp`` and ``last_transfer_offset``, as every published example and the
Java SDK's ``PartitionTransferResult`` show, not the stream partition fields the table lists.
The stream-details query parameters (``start_partitionId``, ``limit_partitions``) are ignored:
a stand-in stream has at most 100 partitions, the default page, so every answer lists them all.

Listing streams (``GET /v2/{project_id}/streams``, OTC ``querying_streams.rst``, Huawei Cloud
``dis_02_0024``) pages through the names in alphabetical order: ``limit`` (1 to 100, default 10)
names at most, after ``start_stream_name`` (exclusive, as the reference says), with
``total_number`` counting every stream, ``has_more_streams`` whether a next page exists, and
``stream_info_list`` each listed stream's summary. A ``limit`` outside 1-100 is refused with
DIS.4200, as the stand-in's choice where the reference says nothing.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from bot.sim.dis_state import (
    MAX_HASH,
    MAX_TASKS_PER_STREAM,
    Action,
    DisState,
    StreamView,
    TaskView,
    UnknownStreamError,
    UnknownTaskError,
    partition_id,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

DIS_CONTENT_TYPE = "application/json;charset=UTF-8"
GATEWAY_CONTENT_TYPE = "application/json"
API_NOT_FOUND = "The API does not exist or has not been published in the environment"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer before the request id header is added."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_reply(payload: object, status: int = 200) -> Reply:
    """A DIS success body."""
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": DIS_CONTENT_TYPE})


def dis_error(status: int, code: str, message: str) -> Reply:
    """An error from DIS itself: ``{"errorCode": ..., "message": ...}``."""
    return json_reply({"errorCode": code, "message": message}, status)


def gateway_error(
    status: int,
    code: str,
    message: str,
    request_id: str,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """An error from the API gateway: ``{"error_code", "error_msg", "request_id"}``."""
    body = json.dumps({"error_code": code, "error_msg": message, "request_id": request_id})
    return Reply(status, body.encode(), {"Content-Type": GATEWAY_CONTENT_TYPE, **(headers or {})})


class Operation(enum.Enum):
    """The calls the stand-in serves."""

    LIST_STREAMS = "list streams"
    DESCRIBE_STREAM = "describe stream"
    LIST = "list"
    DESCRIBE = "describe"
    ACTION = "action"


@dataclass(frozen=True, slots=True)
class Route:
    """A request matched to an operation, with its decoded path parameters."""

    operation: Operation
    project_id: str
    stream: str
    task_name: str | None = None


DEFAULT_STREAM_PAGE = 10
MAX_STREAM_PAGE = 100


def match_route(method: str, raw_path: str) -> Route | None:
    """Match ``/v2/{project}/streams[/{stream}[/transfer-tasks[/{name}|/action]]]``, or ``None``.

    The stream list's route has an empty ``stream``.
    """
    segments = raw_path.split("/")
    if len(segments) == 4 and segments[:2] == ["", "v2"] and segments[3] == "streams":
        if method == "GET" and segments[2]:
            return Route(Operation.LIST_STREAMS, unquote(segments[2]), "")
        return None
    if not (
        len(segments) in (5, 6, 7)
        and segments[:2] == ["", "v2"]
        and segments[3] == "streams"
        and segments[5:6] in ([], ["transfer-tasks"])
        and all(segments[2:])
    ):
        return None
    project_id, stream = unquote(segments[2]), unquote(segments[4])
    if len(segments) == 5:
        return Route(Operation.DESCRIBE_STREAM, project_id, stream) if method == "GET" else None
    if len(segments) == 6:
        return Route(Operation.LIST, project_id, stream) if method == "GET" else None
    name = unquote(segments[6])
    if method == "GET":
        return Route(Operation.DESCRIBE, project_id, stream, name)
    if method == "POST" and name == "action":
        return Route(Operation.ACTION, project_id, stream)
    return None


def answer(route: Route, body: bytes, state: DisState, project_id: str, query: str = "") -> Reply:
    """Serve an authenticated request for ``route`` (with its raw ``query``) from ``state``."""
    if route.project_id != project_id:
        return dis_error(400, "DIS.4117", f"Invalid Project Id. [{route.project_id}]")
    try:
        if route.operation is Operation.LIST_STREAMS:
            return _list_streams(state, query)
        if route.operation is Operation.DESCRIBE_STREAM:
            return json_reply(_stream_detail(state.stream(route.stream)))
        if route.operation is Operation.LIST:
            return _list(route.stream, state)
        if route.operation is Operation.DESCRIBE:
            assert route.task_name is not None
            view = state.describe(route.stream, route.task_name)
            return json_reply(_detail(route.stream, view))
        return _action(route.stream, body, state)
    except UnknownStreamError:
        return dis_error(400, "DIS.4301", f"The stream does not exist. [{route.stream}]")
    except UnknownTaskError as exc:
        return dis_error(400, "DIS.4354", f"The transfer task does not exist. [{exc.args[0]}]")


def parse_action(body: bytes) -> tuple[Action, tuple[str, ...]] | Reply:
    """Read ``{"action": "start"|"stop", "tasks": [{"id": ...}, ...]}``, or the error DIS gives."""
    if not body.strip():
        return dis_error(400, "DIS.4202", "Empty request.")
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return dis_error(400, "DIS.4200", "Invalid request. [Invalid request body]")
    if not isinstance(payload, dict):
        return dis_error(400, "DIS.4300", "Request error. [the body must be a JSON object]")
    action = payload.get("action")
    if action is None:
        return dis_error(400, "DIS.4300", "Request error. [action is required]")
    if action not in tuple(Action):
        return dis_error(400, "DIS.4200", f"Invalid request. [action: {action}]")
    tasks = payload.get("tasks")
    if not tasks:
        return dis_error(400, "DIS.4202", "Empty request. [tasks]")
    if not isinstance(tasks, list) or not all(
        isinstance(task, dict) and isinstance(task.get("id"), str) and task["id"] for task in tasks
    ):
        return dis_error(400, "DIS.4300", 'Request error. [tasks must be a list of {"id": ...}]')
    return Action(action), tuple(task["id"] for task in tasks)


def _list_streams(state: DisState, query: str) -> Reply:
    params = {name: values[-1] for name, values in parse_qs(query).items()}
    raw_limit = params.get("limit", str(DEFAULT_STREAM_PAGE))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_STREAM_PAGE:
        return dis_error(400, "DIS.4200", f"Invalid request. [limit: {raw_limit}]")
    names = state.stream_names()
    start = params.get("start_stream_name", "")
    after = [name for name in names if name > start] if start else names
    page = after[: int(raw_limit)]
    return json_reply(
        {
            "total_number": len(names),
            "stream_names": page,
            "has_more_streams": len(after) > len(page),
            "stream_info_list": [_stream_info(state.stream(name)) for name in page],
        }
    )


def _stream_info(view: StreamView) -> dict[str, object]:
    """A stream's summary, as listed and at the head of its details."""
    return {
        "stream_id": view.stream_id,
        "stream_name": view.name,
        "create_time": view.create_time,
        "retention_period": view.retention_period,
        "status": "RUNNING",
        "stream_type": "COMMON",
        "data_type": "BLOB",
        "partition_count": view.partition_count,
        "tags": [],
        "auto_scale_enabled": False,
        "auto_scale_min_partition_count": 0,
        "auto_scale_max_partition_count": 0,
    }


def _list(stream: str, state: DisState) -> Reply:
    views = state.list_tasks(stream)
    omit_id = state.omits_task_id(stream)
    return json_reply(
        {
            "total_number": len(views),
            "quota": MAX_TASKS_PER_STREAM,
            "tasks": [_summary(view, include_id=not omit_id) for view in views],
        }
    )


def _action(stream: str, body: bytes, state: DisState) -> Reply:
    parsed = parse_action(body)
    if isinstance(parsed, Reply):
        return parsed
    action, task_ids = parsed
    state.apply(stream, action, task_ids)
    return Reply(200)


def _summary(view: TaskView, *, include_id: bool) -> dict[str, object]:
    summary: dict[str, object] = {"task_id": view.task_id} if include_id else {}
    summary |= {
        "task_name": view.name,
        "destination_type": view.destination_type,
        "state": str(view.state),
        "create_time": view.create_time,
        "last_transfer_timestamp": view.last_transfer_timestamp,
    }
    return summary


def _stream_detail(view: StreamView) -> dict[str, object]:
    """The stream-details body: retention in hours, counts, and every partition (all ACTIVE)."""
    step = MAX_HASH // view.partition_count
    partitions = [
        {
            "status": "ACTIVE",
            "partition_id": partition_id(index),
            "hash_range": (
                f"[{index * step} : "
                f"{MAX_HASH if index == view.partition_count - 1 else (index + 1) * step - 1}]"
            ),
            "sequence_number_range": f"[0 : {newest}]",
        }
        for index, newest in enumerate(view.newest_offsets)
    ]
    detail = _stream_info(view)
    del detail["partition_count"]
    return detail | {
        "last_modified_time": view.create_time,
        "writable_partition_count": view.partition_count,
        "readable_partition_count": view.partition_count,
        "partitions": partitions,
        "has_more_partitions": False,
    }


def _detail(stream: str, view: TaskView) -> dict[str, object]:
    """The describe body: the summary, the stream, each partition's progress, the destination."""
    detail: dict[str, object] = {"stream_name": stream, **_summary(view, include_id=True)}
    detail["partitions"] = [
        {
            "partitionId": partition.partition_id,
            "discard": 0,
            "state": str(view.state),
            "last_transfer_timestamp": partition.last_transfer_timestamp,
            "last_transfer_offset": partition.last_transfer_offset,
        }
        for partition in view.partitions
    ]
    if view.destination_type == "OBS":
        detail["obs_destination_description"] = {
            "task_name": view.name,
            "agency_name": "dis_admin_agency",
            "obs_bucket_path": "dis-dumps",
            "file_prefix": "",
            "partition_format": "yyyy/MM/dd",
            "destination_file_type": "text",
            "deliver_time_interval": 300,
            "consumer_strategy": "LATEST",
        }
    return detail
