"""A stand-in for DIS and its API gateway, served over real HTTP on loopback.

Each request goes through the same stages as at the real service:

1. injected faults (latency, dropped connection, 5xx, 429, any error, garbled body), because
   they stand for the network and the gateway in front of everything else;
2. API matching: an unknown path or method is the gateway's 404 APIGW.0101 whatever the
   signature, since the gateway must find the API before it knows how to authenticate it;
3. AK/SK verification from the bytes on the wire (``dis_auth``), failing with 401 APIGW.0301;
4. DIS itself (``dis_api`` over ``dis_state``): project id, stream, task, body checks, actions,
   and each task's per-partition progress against its stream's retention period.

Every call is recorded with its final status so tests can assert on what the client sent, and
every answer carries an ``X-Request-Id``. Run ``python -m bot.sim.dis --data FILE`` to serve a
data file by hand; see ``dis_sample.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from aiohttp import web

from bot.sim.dis_api import API_NOT_FOUND, Operation, Reply, answer, gateway_error, match_route
from bot.sim.dis_auth import Credential, SignatureRejectedError, WireRequest, verify
from bot.sim.dis_data import load_data
from bot.sim.dis_faults import Fault, FaultKind, FaultPlan
from bot.sim.dis_state import (
    DEFAULT_RETENTION_HOURS,
    Action,
    DisState,
    PartitionView,
    StreamSpec,
    StreamView,
    TaskSpec,
    TaskState,
    TaskView,
)
from bot.sim.server import StartStop, ThreadedServer, stop_signals

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from multidict import CIMultiDictProxy

__all__ = [
    "SAMPLE_DATA",
    "Action",
    "ActionCall",
    "Credential",
    "DisStandIn",
    "Fault",
    "PartitionView",
    "RecordedCall",
    "StreamSpec",
    "StreamView",
    "TaskSpec",
    "TaskState",
    "TaskView",
    "main",
]

SAMPLE_DATA = Path(__file__).with_name("dis_sample.json")


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One request as received (header names lower-cased) and the status answered.

    ``status`` is ``None`` when a fault dropped the connection without an answer.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int | None
    request_id: str


@dataclass(frozen=True, slots=True)
class ActionCall:
    """A recorded start/stop call, read loosely so malformed bodies show up too."""

    stream: str
    action: str | None
    task_ids: tuple[str, ...]
    status: int | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DisStandIn(StartStop):
    """DIS dump tasks behind an AK/SK-checking gateway, with faults and a call log.

    ``streams`` maps each stream name to its tasks, or to a ``StreamSpec`` that also sets its
    retention period and partition count. ``clock`` (monotonic seconds) drives
    ``start_delay``/``stop_delay``; ``wall_clock`` gives the reported epoch times (so the last
    transfer times of RUNNING tasks follow it) and the gateway's view of "now" for the 15-minute
    date check; ``seed`` makes fractional faults repeatable. All methods are safe to call from
    any thread while the server runs on its own.
    """

    def __init__(
        self,
        *,
        project_id: str,
        credentials: Iterable[Credential],
        streams: Mapping[str, Iterable[TaskSpec] | StreamSpec] | None = None,
        start_delay: float = 0.0,
        stop_delay: float = 0.0,
        omit_task_id: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.project_id = project_id
        self._credentials = {credential.access_key: credential for credential in credentials}
        self._wall_clock = wall_clock
        self._state = DisState(
            clock=clock,
            wall_clock=wall_clock,
            start_delay=start_delay,
            stop_delay=stop_delay,
            omit_task_id=omit_task_id,
        )
        for name, stream in (streams or {}).items():
            spec = stream if isinstance(stream, StreamSpec) else StreamSpec(tuple(stream))
            self._state.add_stream(name, spec)
        self._faults = FaultPlan(random.Random(seed))
        self._calls: list[RecordedCall] = []
        self._calls_lock = threading.Lock()
        self._host = host
        self._port = port
        self._server: ThreadedServer | None = None

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> Self:
        """Configure a stand-in from a JSON data file such as ``dis_sample.json``."""
        data = load_data(path)
        stand_in = cls(
            project_id=data.project_id,
            credentials=data.credentials,
            start_delay=data.start_delay,
            stop_delay=data.stop_delay,
            omit_task_id=data.omit_task_id,
            clock=clock,
            wall_clock=wall_clock,
            seed=seed,
            host=host,
            port=port,
        )
        for name, spec in data.streams.items():
            stand_in.add_stream_spec(name, spec)
        return stand_in

    # Serving.

    @property
    def url(self) -> str:
        """The base URL (no trailing slash); only valid while serving."""
        if self._server is None:
            raise RuntimeError("the DIS stand-in is not running; use start() or `with`")
        return self._server.url

    def start(self) -> Self:
        """Start serving on its own thread and return once the socket listens."""
        if self._server is not None:
            raise RuntimeError("the DIS stand-in is already running")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = ThreadedServer(app, self._host, self._port).start()
        return self

    def stop(self) -> None:
        """Stop serving; the configured state and the call log are kept."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    # Configuration and inspection, for tests.

    def add_stream(
        self,
        name: str,
        tasks: Iterable[TaskSpec] = (),
        *,
        omit_task_id: bool | None = None,
        retention_period: int = DEFAULT_RETENTION_HOURS,
        partition_count: int = 1,
    ) -> tuple[str, ...]:
        """Add a stream with at most five tasks and return their ids; see ``StreamSpec``."""
        spec = StreamSpec(tuple(tasks), retention_period, partition_count, omit_task_id)
        return self.add_stream_spec(name, spec)

    def add_stream_spec(self, name: str, spec: StreamSpec) -> tuple[str, ...]:
        """Add a stream configured by ``spec`` and return its tasks' ids."""
        return self._state.add_stream(name, spec)

    def stream(self, name: str) -> StreamView:
        """A stream (retention, partitions) as DIS would report it now."""
        return self._state.stream(name)

    def stream_names(self) -> list[str]:
        """Every stream's name, alphabetically, as DIS lists them."""
        return self._state.stream_names()

    def console_action(self, stream: str, action: Action | str, tasks: Iterable[str]) -> None:
        """Start or stop tasks (by id or name) as someone in the cloud console would.

        The state changes exactly as after the batch API call (STARTING, then RUNNING after
        ``start_delay``...), but nothing is recorded among the calls, which stay the bot's
        own: this is the change the bot did not make, and should notice.
        """
        self._state.apply(stream, Action(action), self._state.task_ids(stream, tasks))

    def tasks(self, stream: str) -> tuple[TaskView, ...]:
        """Every task of ``stream`` as DIS would report it now."""
        return self._state.list_tasks(stream)

    def task(self, stream: str, task: str) -> TaskView:
        """One task, by id or by name, as DIS would report it now."""
        return self._state.task(stream, task)

    def task_state(self, stream: str, task: str) -> TaskState:
        """A task's state now, the task given by id or by name."""
        return self._state.task(stream, task).state

    def task_id(self, stream: str, name: str) -> str:
        """The id of the task called ``name``, handy when ids were generated."""
        return self._state.describe(stream, name).task_id

    def set_state(
        self, stream: str, task: str, state: TaskState | str, *, sticky_error: bool | None = None
    ) -> None:
        """Force a task (by id or name) into ``state``, cancelling any change under way."""
        self._state.set_state(stream, task, TaskState(state), sticky_error=sticky_error)

    def inject(self, fault: Fault) -> None:
        """Arm a fault for the coming calls; see ``dis_faults``."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._faults.clear()

    @property
    def calls(self) -> list[RecordedCall]:
        """A snapshot of every call received so far, oldest first."""
        with self._calls_lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        """Forget the calls received so far."""
        with self._calls_lock:
            self._calls.clear()

    def action_calls(self) -> list[ActionCall]:
        """The start/stop calls received so far, with their bodies parsed."""
        found = []
        for call in self.calls:
            route = match_route(call.method, call.path)
            if route is not None and route.operation is Operation.ACTION:
                action, task_ids = _read_action(call.body)
                found.append(ActionCall(route.stream, action, task_ids, call.status))
        return found

    # The request pipeline.

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path, _, query = request.raw_path.partition("?")
        wire = WireRequest(request.method, path, query, _lower_headers(request.headers), body)
        request_id = uuid.uuid4().hex
        decision = self._faults.decide(request.method, path)
        if decision.delay:
            await asyncio.sleep(decision.delay)
        fault = decision.fault
        if fault is not None and fault.kind is FaultKind.DROP:
            self._record(wire, None, request_id)
            if request.transport is not None:
                request.transport.close()
            # aiohttp cannot write this to the closed transport, so nothing reaches the client.
            return web.Response(status=500)
        reply = fault.reply(request_id) if fault is not None else None
        if reply is None:
            reply = self._serve(wire, request_id)
        self._record(wire, reply.status, request_id)
        return web.Response(
            status=reply.status,
            body=reply.body,
            headers={**reply.headers, "X-Request-Id": request_id},
        )

    def _serve(self, request: WireRequest, request_id: str) -> Reply:
        route = match_route(request.method, request.path)
        if route is None:
            return gateway_error(404, "APIGW.0101", API_NOT_FOUND, request_id)
        try:
            verify(request, self._credentials, self._wall_clock())
        except SignatureRejectedError as exc:
            return gateway_error(401, "APIGW.0301", str(exc), request_id)
        return answer(route, request.body, self._state, self.project_id, request.query)

    def _record(self, request: WireRequest, status: int | None, request_id: str) -> None:
        call = RecordedCall(
            request.method,
            request.path,
            request.query,
            dict(request.headers),
            request.body,
            status,
            request_id,
        )
        with self._calls_lock:
            self._calls.append(call)


def _lower_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """Lower-case names, repeated headers joined with commas as HTTP allows."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    return lowered


def _read_action(body: bytes) -> tuple[str | None, tuple[str, ...]]:
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, ()
    if not isinstance(payload, dict):
        return None, ()
    action = payload.get("action")
    tasks = payload.get("tasks")
    task_ids = tuple(
        task["id"]
        for task in (tasks if isinstance(tasks, list) else [])
        if isinstance(task, dict) and isinstance(task.get("id"), str)
    )
    return (action if isinstance(action, str) else None), task_ids


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a data file until SIGINT or SIGTERM, printing the URL first so scripts can read it."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.sim.dis", description="Serve a stand-in DIS over HTTP."
    )
    parser.add_argument("--data", type=Path, default=SAMPLE_DATA, help="JSON data file")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    args = parser.parse_args(argv)
    try:
        stand_in = DisStandIn.from_file(args.data, host=args.host, port=args.port)
    except (OSError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    with stop_signals() as stopping, stand_in:
        sys.stdout.write(
            f"DIS stand-in listening on {stand_in.url} (project {stand_in.project_id})\n"
        )
        sys.stdout.flush()
        while not stopping.wait(timeout=0.5):
            pass


if __name__ == "__main__":
    main()
