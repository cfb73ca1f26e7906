"""Reads a stand-in DIS data file (see ``dis_sample.json``) into typed, validated values.

Unknown keys and wrong types are refused with the path of the offending value, because a typo
in a demo or test data file would otherwise show up much later as a puzzling DIS answer.

The file holds ``project_id``, ``credentials`` (``access_key``, ``secret_key``, optional
``security_token``), optional ``start_delay``/``stop_delay`` (seconds) and ``omit_task_id``, and
``streams``: one object per stream name with

- ``tasks``: at most five, each with ``task_name`` and optional ``task_id``, ``state``
  (default PAUSED), ``destination_type`` (OBS), ``create_time`` and ``last_transfer_timestamp``
  (epoch milliseconds, default: when loaded), ``partition_transfer_timestamps`` (one epoch-ms
  time per partition) and ``sticky_error``;
- ``retention_period``: how many hours DIS keeps the stream's data (whole hours from 1; default
  24, the service's minimum);
- ``partition_count``: 1 to 100 (default 1);
- ``omit_task_id``: this stream's own switch, overriding the global one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.sim.dis_auth import Credential
from bot.sim.dis_state import DEFAULT_RETENTION_HOURS, StreamSpec, TaskSpec, TaskState

if TYPE_CHECKING:
    from collections.abc import Mapping

_TOP_KEYS = {"project_id", "credentials", "streams", "start_delay", "stop_delay", "omit_task_id"}
_CREDENTIAL_KEYS = {"access_key", "secret_key", "security_token"}
_STREAM_KEYS = {"tasks", "omit_task_id", "retention_period", "partition_count"}
_TASK_KEYS = {
    "task_id",
    "task_name",
    "state",
    "destination_type",
    "create_time",
    "last_transfer_timestamp",
    "partition_transfer_timestamps",
    "sticky_error",
}


class DataFileError(ValueError):
    """The data file is unreadable or wrong; the message names the offending value's path."""


@dataclass(frozen=True, slots=True)
class DisData:
    """Everything a data file configures."""

    project_id: str
    credentials: tuple[Credential, ...]
    streams: Mapping[str, StreamSpec]
    start_delay: float = 0.0
    stop_delay: float = 0.0
    omit_task_id: bool = False


def load_data(path: str | Path) -> DisData:
    """Read and validate the JSON data file at ``path``; raises ``DataFileError`` if it is wrong."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{path}: not valid JSON: {exc}") from exc
    return parse_data(raw)


def parse_data(raw: object) -> DisData:
    """Validate an already decoded data file."""
    top = _object(raw, "data", required={"project_id", "credentials"}, allowed=_TOP_KEYS)
    credentials = tuple(
        _credential(item, f"credentials[{index}]")
        for index, item in enumerate(_list(top["credentials"], "credentials"))
    )
    streams_raw = _object(top.get("streams", {}), "streams", required=set(), allowed=None)
    streams = {name: _stream(value, f"streams.{name}") for name, value in streams_raw.items()}
    return DisData(
        project_id=_str(top["project_id"], "project_id"),
        credentials=credentials,
        streams=streams,
        start_delay=_seconds(top.get("start_delay", 0.0), "start_delay"),
        stop_delay=_seconds(top.get("stop_delay", 0.0), "stop_delay"),
        omit_task_id=_bool(top.get("omit_task_id", False), "omit_task_id"),
    )


def _credential(raw: object, where: str) -> Credential:
    item = _object(raw, where, required={"access_key", "secret_key"}, allowed=_CREDENTIAL_KEYS)
    token = item.get("security_token")
    return Credential(
        access_key=_str(item["access_key"], f"{where}.access_key"),
        secret_key=_str(item["secret_key"], f"{where}.secret_key"),
        security_token=None if token is None else _str(token, f"{where}.security_token"),
    )


def _stream(raw: object, where: str) -> StreamSpec:
    item = _object(raw, where, required={"tasks"}, allowed=_STREAM_KEYS)
    omit = item.get("omit_task_id")
    tasks = tuple(
        _task(task, f"{where}.tasks[{index}]")
        for index, task in enumerate(_list(item["tasks"], f"{where}.tasks"))
    )
    return StreamSpec(
        tasks,
        retention_period=_int(
            item.get("retention_period", DEFAULT_RETENTION_HOURS), f"{where}.retention_period"
        ),
        partition_count=_int(item.get("partition_count", 1), f"{where}.partition_count"),
        omit_task_id=None if omit is None else _bool(omit, f"{where}.omit_task_id"),
    )


def _task(raw: object, where: str) -> TaskSpec:
    item = _object(raw, where, required={"task_name"}, allowed=_TASK_KEYS)
    state = _str(item.get("state", "PAUSED"), f"{where}.state")
    if state not in TaskState.__members__:
        raise DataFileError(f"{where}.state: {state!r} is not one of {', '.join(TaskState)}")
    task_id = item.get("task_id")
    create_time = item.get("create_time")
    last_transfer = item.get("last_transfer_timestamp")
    partition_times = _list(
        item.get("partition_transfer_timestamps", []), f"{where}.partition_transfer_timestamps"
    )
    return TaskSpec(
        name=_str(item["task_name"], f"{where}.task_name"),
        state=TaskState(state),
        task_id=None if task_id is None else _str(task_id, f"{where}.task_id"),
        destination_type=_str(item.get("destination_type", "OBS"), f"{where}.destination_type"),
        create_time=None if create_time is None else _int(create_time, f"{where}.create_time"),
        last_transfer_timestamp=(
            None
            if last_transfer is None
            else _int(last_transfer, f"{where}.last_transfer_timestamp")
        ),
        sticky_error=_bool(item.get("sticky_error", False), f"{where}.sticky_error"),
        partition_transfer_timestamps=tuple(
            _int(time, f"{where}.partition_transfer_timestamps[{index}]")
            for index, time in enumerate(partition_times)
        ),
    )


def _object(
    raw: object, where: str, *, required: set[str], allowed: set[str] | None
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DataFileError(f"{where}: expected an object")
    missing = sorted(required - raw.keys())
    if missing:
        raise DataFileError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(raw.keys() - allowed) if allowed is not None else []
    if unknown:
        raise DataFileError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return raw


def _list(raw: object, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise DataFileError(f"{where}: expected a list")
    return raw


def _str(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise DataFileError(f"{where}: expected a non-empty string")
    return raw


def _bool(raw: object, where: str) -> bool:
    if not isinstance(raw, bool):
        raise DataFileError(f"{where}: expected true or false")
    return raw


def _int(raw: object, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise DataFileError(f"{where}: expected an integer")
    return raw


def _seconds(raw: object, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise DataFileError(f"{where}: expected a number of seconds, not negative")
    return float(raw)
