"""Small, honest fakes of the service's collaborators, for fast tests without sockets or sleeps.

Each fake does what the real thing promises and records what it was asked, so a test can both
drive the service and see what it did:

- ``FakeClock``: wall clock, monotonic clock and ``sleep`` in one, moved only by the test;
- ``FakeDirectory``: user-group expansion from a dict of group id -> members;
- ``FakeDis``: ``list_tasks`` and ``act`` over in-memory tasks, with injectable failures (a
  batch call refused, or timing out after DIS did or did not act) and task states that change
  on ``act`` or some reads later;
- ``RecordingNotifier``: the ``Notifier`` Protocol, recording each call;
- ``FakeStore``: the ``Store`` Protocol in memory, with the same conditional update as the
  SQL store (version check), a switch to lose the next update race, a log of the updates that
  won, an ``interleave`` mode in which concurrent callers really race, and no audit sinks (so
  its outbox stays empty);
- ``FakeSlackClient``: the few Web API methods the Slack layer calls, recorded;

and ``make_request``, a plain pending request to build on with ``dataclasses.replace``;
``dis_answer``, ``dis_refusal`` and ``dis_timeout``, the errors the real DIS client raises for
an HTTP answer, a call certainly refused, and a call that may have landed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bot.audit import AuditEvent
from bot.dis.models import ActionResult
from bot.dis.responses import error_from_response
from bot.errors import DisError, DisErrorKind, StoreError, TaskInUseError
from bot.jobs import Job, JobKind, JobState, Lease, LeaseLostError
from bot.lifecycle import CardCopy, Request, RequestedTask, RequestState
from bot.outbox import OutboxEvent
from bot.store.protocol import Backlog
from bot.vocabulary import (
    DumpTask,
    DumpTaskDetails,
    PartitionProgress,
    StreamDetails,
    TaskAction,
    TaskState,
)

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STREAM = "orders-stream"
ARCHIVE = RequestedTask("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED)


def make_request(request_id: str = "dt-test2345", *, minutes: float = 0, **changes: Any) -> Request:
    """U0ALICE's pending request in C0INCIDENT to start orders-archive, ``minutes`` after START."""
    made = START + timedelta(minutes=minutes)
    expires = made + timedelta(minutes=15)
    request = Request(
        request_id, TaskAction.START, STREAM, (ARCHIVE,), "U0ALICE", "C0INCIDENT", made, expires, 1
    )
    return replace(request, **changes)


class EpochClock:
    """Epoch seconds that move only when the test says so, as the Slack stand-in's ``clock``."""

    def __init__(self, start: float = 1_732_800_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


class FakeClock:
    """Wall time, monotonic time and ``sleep`` that move only when the test (or a sleep) says so."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start
        self.elapsed = 0.0
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        """Seconds since the clock was made, like ``time.monotonic``."""
        return self.elapsed

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self.now += timedelta(seconds=seconds)
        self.elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the pause and move the clocks past it at once."""
        self.slept.append(seconds)
        self.advance(seconds)


class FakeDirectory:
    """A ``Directory``: ids that name a group become its members, any other id stays as it is."""

    def __init__(
        self, groups: Mapping[str, Iterable[str]], zones: Mapping[str, str] | None = None
    ) -> None:
        self.groups = {group: frozenset(members) for group, members in groups.items()}
        self.zones = dict(zones or {})
        self.asked: list[tuple[str, ...]] = []

    async def time_zone(self, user_id: str) -> str | None:
        """Everyone's time zone is ``zones[user]``, else unknown."""
        return self.zones.get(user_id)

    async def expand(self, ids: Iterable[str]) -> frozenset[str]:
        """User ids stay; each group id is replaced by its members."""
        wanted = tuple(ids)
        self.asked.append(wanted)
        members: set[str] = set()
        for item in wanted:
            members |= self.groups.get(item, {item})
        return frozenset(members)


# How DIS (or its gateway) refuses a call, by kind: (HTTP status, error code). Each answer is a
# 4xx, so the call was certainly not carried out.
REFUSALS: dict[DisErrorKind, tuple[int, str]] = {
    DisErrorKind.USER: (400, "DIS.4354"),
    DisErrorKind.BUG: (400, "DIS.4200"),
    DisErrorKind.AUTH: (401, "APIGW.0301"),
    DisErrorKind.PERMISSION: (403, "DIS.4116"),
    DisErrorKind.CONFIGURATION: (404, "APIGW.0101"),
    DisErrorKind.BLOCKED: (403, "DIS.4309"),
    DisErrorKind.THROTTLED: (429, "DIS.4305"),
}


def dis_answer(status: int, code: str) -> DisError:
    """The error the DIS client raises for an HTTP ``status`` answer carrying ``code``."""
    body = json.dumps({"errorCode": code, "message": f"answered {code}"}).encode()
    request = httpx.Request("POST", "https://dis.example/v2/p/streams/s/transfer-tasks/action")
    response = httpx.Response(
        status, content=body, headers={"X-Request-Id": f"req-{code}"}, request=request
    )
    return error_from_response(response)


def dis_refusal(kind: DisErrorKind) -> DisError:
    """The error the DIS client raises for a refusal of ``kind``: certainly not received.

    A transient refusal is a connection that was never made; every other kind is DIS's own
    4xx answer, classified by the same code as the real client's.
    """
    if kind is DisErrorKind.TRANSIENT:
        return DisError(
            DisErrorKind.TRANSIENT,
            "DIS could not be reached (ConnectError)",
            certainly_not_received=True,
        )
    error = dis_answer(*REFUSALS[kind])
    assert (error.kind, error.certainly_not_received) == (kind, True)
    return error


def dis_timeout() -> DisError:
    """The error the DIS client raises when the call went out and no answer came: uncertain."""
    return DisError(DisErrorKind.TRANSIENT, "DIS did not answer in time (ReadTimeout)")


@dataclass(frozen=True, slots=True)
class ActCall:
    """One batch call the service made."""

    stream: str
    action: TaskAction
    task_ids: tuple[str, ...]


class FakeDis:
    """DIS in memory: ``list_tasks`` reads the tasks, ``act`` moves known ids to their target.

    ``list_error`` and ``act_error``, when set, are raised by every such call until cleared;
    with ``act_lands`` DIS carries the failing call out all the same (a timeout after DIS acted).
    ``act_states`` gives the state a task takes on ``act`` instead of the target (one that fails
    to start, or is still starting), ``schedule`` moves a task some reads later, ``fail_reads``
    makes reads fail from some read on, and ``on_act`` sees each call as it arrives. An unknown stream is DIS.4301 and an unknown task id DIS.4354,
    as DIS answers.
    """

    def __init__(
        self, streams: Mapping[str, Sequence[DumpTask]], retention_hours: int | None = 24
    ) -> None:
        self.streams = {name: list(tasks) for name, tasks in streams.items()}
        self.stream_names: list[str] | None = None
        self.retention_hours = retention_hours
        self.act_calls: list[ActCall] = []
        self.list_calls: list[str] = []
        self.list_error: DisError | None = None
        self.act_error: DisError | None = None
        self.act_lands = False
        self.act_states: dict[str, TaskState] = {}
        self.on_act: Callable[[ActCall], None] | None = None
        self._scheduled: list[tuple[int, str, TaskState]] = []
        self._failing_from: tuple[int, DisError] | None = None

    def schedule(self, task_id: str, state: TaskState, *, after_reads: int) -> None:
        """Move ``task_id`` to ``state`` once ``after_reads`` more reads have been answered."""
        self._scheduled.append((len(self.list_calls) + after_reads, task_id, state))

    def fail_reads(self, error: DisError, *, after_reads: int) -> None:
        """Set ``list_error`` to ``error`` once ``after_reads`` more reads have been answered."""
        self._failing_from = (len(self.list_calls) + after_reads, error)

    async def list_streams(self) -> list[str]:
        """The project's streams (``stream_names`` if set, else the streams with tasks)."""
        if self.list_error is not None:
            raise self.list_error
        return list(self.stream_names if self.stream_names is not None else self.streams)

    async def describe_stream(self, stream: str) -> StreamDetails:
        """The stream with ``retention_hours``."""
        self._stream(stream)
        return StreamDetails(stream, None, "RUNNING", self.retention_hours, 1, None, None, None)

    async def describe_task_details(self, stream: str, name: str) -> DumpTaskDetails:
        """A task by name, its one partition last transferred when the task says."""
        [task] = [task for task in self._stream(stream) if task.name == name]
        return DumpTaskDetails(
            task, (PartitionProgress("shardId-0", task.state, task.last_transfer_at, None, None),)
        )

    def set_state(self, stream: str, task_id: str, state: TaskState) -> None:
        """Change a task's state, as someone in the console would."""
        self.streams[stream] = [
            replace(task, state=state) if task.task_id == task_id else task
            for task in self.streams[stream]
        ]

    async def list_tasks(self, stream: str) -> list[DumpTask]:
        """The stream's tasks as they are now."""
        reads = len(self.list_calls)
        self._move({task_id: state for at, task_id, state in self._scheduled if at <= reads})
        self._scheduled = [entry for entry in self._scheduled if entry[0] > reads]
        if self._failing_from is not None and self._failing_from[0] <= reads:
            self.list_error = self._failing_from[1]
        self.list_calls.append(stream)
        if self.list_error is not None:
            raise self.list_error
        return list(self._stream(stream))

    async def act(self, stream: str, action: TaskAction, task_ids: Sequence[str]) -> ActionResult:
        """Record the call; unless refused, move every named task to the action's target."""
        call = ActCall(stream, action, tuple(task_ids))
        self.act_calls.append(call)
        if self.on_act is not None:
            self.on_act(call)
        if self.act_error is not None and not self.act_lands:
            raise self.act_error
        tasks = self._stream(stream)
        known = {task.task_id for task in tasks}
        if missing := [task_id for task_id in task_ids if task_id not in known]:
            raise DisError(
                DisErrorKind.USER,
                f"The dump task does not exist: {missing[0]}",
                status=400,
                code="DIS.4354",
                certainly_not_received=True,
            )
        self._move({i: self.act_states.get(i, action.target_state) for i in task_ids})
        if self.act_error is not None:
            raise self.act_error
        return ActionResult(request_id=f"fake-dis-{len(self.act_calls)}")

    def _move(self, states: Mapping[str, TaskState]) -> None:
        for name, tasks in self.streams.items():
            self.streams[name] = [
                replace(task, state=states[task.task_id]) if task.task_id in states else task
                for task in tasks
            ]

    def _stream(self, stream: str) -> list[DumpTask]:
        if stream not in self.streams:
            raise DisError(
                DisErrorKind.USER,
                "Stream does not exist.",
                status=400,
                code="DIS.4301",
                certainly_not_received=True,
            )
        return self.streams[stream]


class RecordingNotifier:
    """A ``Notifier`` that only remembers what it was told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Request]] = []
        self.copied_to: list[str] = []
        self.reminded: list[str] = []
        self.warned: list[int] = []

    async def request_changed(self, request: Request) -> None:
        """Remember the change."""
        self.events.append(("request_changed", request))

    async def send_copies(
        self, request: Request, users: Sequence[str], already: set[str]
    ) -> tuple[CardCopy, ...]:
        """Remember who was sent a copy; each gets a DM channel ``D`` + their id."""
        self.events.append(("send_copies", request))
        self.copied_to = list(users)
        return tuple(
            CardCopy(f"D{user}", f"{index}.000100")
            for index, user in enumerate(users, start=1)
            if f"D{user}" not in already
        )

    async def retention_warning(
        self, request: Request, share: int, paused: Sequence[RequestedTask]
    ) -> None:
        """Remember the warning and at which share of the window it came."""
        self.events.append(("retention_warning", request))
        self.warned.append(share)

    async def remind(self, request: Request, approvers: Sequence[str]) -> None:
        """Remember the reminder and who it named."""
        self.events.append(("remind", request))
        self.reminded = list(approvers)

    async def reading_back(self, request: Request) -> None:
        """Remember the note that the bot is reading back after an interruption."""
        self.events.append(("reading_back", request))

    async def deliver(self, request: Request) -> str:
        """Remember the delivered request; it always gets through (by thread)."""
        self.events.append(("deliver", request))
        return "thread"

    def kinds(self) -> list[str]:
        """What was shown, in order."""
        return [kind for kind, _ in self.events]


class FakeStore:
    """The ``Store`` Protocol in memory, settling races by version as the SQL store does.

    ``lose_next_updates(n)`` makes the next ``n`` updates lose their race: another writer is
    taken to have changed the row first (its version moves on, its content stays), so the update
    returns ``None`` and the caller must read again. ``updates`` logs each update that won, with
    the ids of the jobs it created. With ``interleave``, reads and updates yield to the event
    loop first, as a database round trip does, so concurrent callers race for real.
    """

    def __init__(self, *, interleave: bool = False) -> None:
        self.requests: dict[str, Request] = {}
        self.audit: list[AuditEvent] = []
        self.jobs: dict[str, Job] = {}
        self.updates: list[tuple[Request, tuple[str, ...]]] = []
        self.lost_updates = 0
        self.interleave = interleave
        self._to_lose = 0

    async def _round_trip(self) -> None:
        if self.interleave:
            await asyncio.sleep(0)

    def lose_next_updates(self, count: int = 1) -> None:
        """Make the next ``count`` updates lose to an unseen concurrent writer."""
        self._to_lose += count

    async def create(
        self,
        request: Request,
        *,
        enqueue: Sequence[Job] = (),
        now: datetime | None = None,
        audit: Sequence[AuditEvent] = (),
    ) -> None:
        """Insert a new request, claiming its tasks; a task another open request holds is refused."""
        del now
        if request.id in self.requests:
            raise StoreError(f"request {request.id} already exists")
        for other in self.requests.values():
            if other.stream == request.stream and not other.state.is_final:
                shared = set(other.task_ids) & set(request.task_ids)
                if shared:
                    raise TaskInUseError(other.id, min(shared))
        self.requests[request.id] = replace(request, version=1)
        for job in enqueue:
            self.jobs.setdefault(job.id, job)
        self.audit.extend(audit)

    async def get(self, request_id: str) -> Request | None:
        """The stored request with its current version."""
        await self._round_trip()
        return self.requests.get(request_id)

    async def update(
        self,
        request: Request,
        expected_version: int,
        *,
        lease: Lease | None = None,
        lease_now: datetime | None = None,
        lease_until: datetime | None = None,
        enqueue: Sequence[Job] = (),
        now: datetime | None = None,
        spawn: Sequence[Request] = (),
        audit: Sequence[AuditEvent] = (),
    ) -> Request | None:
        """Store ``request`` if the row is still at ``expected_version``; ``None`` if not.

        ``spawn``'s new requests and the ``audit`` events are created with it. Under a ``lease`` that is no longer held it raises ``LeaseLostError``; ``enqueue``'s jobs
        are created only when the update wins.
        """
        await self._round_trip()
        if lease is not None:
            assert lease_now is not None
            assert lease_until is not None
            if not self._renew(lease, lease_now, lease_until):
                raise LeaseLostError(f"lost the lease on {lease.job_id}")
        current = self.requests.get(request.id)
        if current is None or current.version != expected_version:
            return None
        if self._to_lose:
            self._to_lose -= 1
            self.lost_updates += 1
            self.requests[request.id] = replace(current, version=current.version + 1)
            return None
        stored = replace(request, version=expected_version + 1)
        self.requests[request.id] = stored
        for job in enqueue:
            self.jobs.setdefault(job.id, job)
        for child in spawn:
            self.requests[child.id] = replace(child, version=1)
        self.audit.extend(audit)
        self.updates.append((stored, tuple(job.id for job in enqueue)))
        return stored

    async def append_audit(self, event: AuditEvent) -> None:
        """Append one event."""
        self.audit.append(event)

    async def audit_trail(self, request_id: str) -> list[AuditEvent]:
        """A request's events in the order they were appended."""
        return [event for event in self.audit if event.request_id == request_id]

    async def pending_expired(self, now: datetime) -> list[Request]:
        """Pending requests due at or before ``now``, earliest deadline first."""
        due = [
            request
            for request in self.requests.values()
            if request.state is RequestState.PENDING and request.expires_at <= now
        ]
        return sorted(due, key=lambda request: (request.expires_at, request.id))

    async def scheduled(self) -> list[Request]:
        """Requests approved to run later, oldest first."""
        waiting = [r for r in self.requests.values() if r.state is RequestState.SCHEDULED]
        return sorted(waiting, key=lambda request: (request.created_at, request.id))

    async def executing(self) -> list[Request]:
        """Approved requests without a recorded outcome, oldest first."""
        running = [r for r in self.requests.values() if r.state is RequestState.EXECUTING]
        return sorted(running, key=lambda request: (request.created_at, request.id))

    async def recent_for(self, user_id: str, limit: int = 5) -> list[Request]:
        """The newest ``limit`` requests of ``user_id``, newest first."""
        mine = [r for r in self.requests.values() if r.requester == user_id]
        mine.sort(key=lambda request: (request.created_at, request.id), reverse=True)
        return mine[: max(limit, 0)]

    async def enqueue(self, job: Job, now: datetime) -> bool:
        """Create ``job`` unless its id exists."""
        del now
        if job.id in self.jobs:
            return False
        self.jobs[job.id] = job
        return True

    async def get_job(self, job_id: str) -> Job | None:
        """One job."""
        return self.jobs.get(job_id)

    async def jobs_of(self, request_id: str) -> list[Job]:
        """A request's jobs."""
        return [job for job in self.jobs.values() if job.request_id == request_id]

    async def claim_due(
        self,
        owner: str,
        *,
        due_by: datetime,
        lease_now: datetime,
        lease_until: datetime,
        limit: int,
        skip: Sequence[str] = (),
        kinds: Sequence[JobKind] = tuple(JobKind),
    ) -> list[Job]:
        """Lease due jobs whose lease is free, oldest due first."""
        free = [
            job
            for job in sorted(self.jobs.values(), key=lambda job: (job.due_at, job.id))
            if job.state is JobState.QUEUED
            and job.due_at <= due_by
            and (job.lease_expires_at is None or job.lease_expires_at <= lease_now)
            and job.id not in skip
            and job.kind in kinds
        ][: max(limit, 0)]
        claimed = []
        for job in free:
            taken = replace(
                job, owner=owner, lease_expires_at=lease_until, attempts=job.attempts + 1
            )
            self.jobs[job.id] = taken
            claimed.append(taken)
        return claimed

    def _renew(self, lease: Lease, now: datetime, until: datetime) -> bool:
        job = self.jobs.get(lease.job_id)
        if job is None or job.owner != lease.owner or job.state is not JobState.QUEUED:
            return False
        if job.lease_expires_at is None or job.lease_expires_at <= now:
            return False
        self.jobs[job.id] = replace(job, lease_expires_at=until)
        return True

    async def renew(self, lease: Lease, now: datetime, until: datetime) -> bool:
        """Extend a live lease."""
        return self._renew(lease, now, until)

    async def release(self, lease: Lease) -> None:
        """Give a job up at once."""
        job = self.jobs.get(lease.job_id)
        if job is not None and job.owner == lease.owner:
            self.jobs[job.id] = replace(job, lease_expires_at=None)

    async def settle_job(
        self,
        lease: Lease,
        state: JobState,
        now: datetime,
        *,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """End the owner's attempt."""
        del now
        job = self.jobs.get(lease.job_id)
        if job is None or job.owner != lease.owner or job.state is not JobState.QUEUED:
            return False
        self.jobs[job.id] = replace(
            job,
            state=state,
            owner=None,
            lease_expires_at=retry_at if state is JobState.QUEUED else None,
            last_error=error,
        )
        return True

    async def reschedule(self, lease: Lease, at: datetime) -> bool:
        """Queue a recurring job again from ``at``, unowned, its attempts reset."""
        job = self.jobs.get(lease.job_id)
        if job is None or job.owner != lease.owner or job.state is not JobState.QUEUED:
            return False
        self.jobs[job.id] = replace(
            job, owner=None, lease_expires_at=at, attempts=0, last_error=None
        )
        return True

    async def undelivered(self, sink: str, limit: int) -> list[OutboxEvent]:
        """The fake queues no outbox events (it has no sinks)."""
        del sink, limit
        return []

    async def outbox_delivered(self, event_id: int, at: datetime) -> None:
        """Nothing is queued, so nothing is delivered."""
        del event_id, at

    async def outbox_failed(
        self, event_id: int, *, attempts: int, retry_at: datetime, error: str
    ) -> None:
        """Nothing is queued, so nothing fails."""
        del event_id, attempts, retry_at, error

    async def prune_outbox(self, sink: str, delivered_before: datetime) -> int:
        """Nothing to prune."""
        del sink, delivered_before
        return 0

    async def backlog(self) -> Backlog:
        """Open and executing requests, queued and dead jobs; no outbox."""
        executing = [r for r in self.requests.values() if r.state is RequestState.EXECUTING]
        jobs: dict[tuple[str, str], int] = {}
        for job in self.jobs.values():
            if job.state is not JobState.DONE:
                key = (job.kind.value, job.state.value)
                jobs[key] = jobs.get(key, 0) + 1
        return Backlog(
            open_requests=sum(r.state is RequestState.PENDING for r in self.requests.values()),
            executing_since=tuple(r.decided_at or r.created_at for r in executing),
            jobs=jobs,
        )

    async def ping(self) -> None:
        """Always reachable."""

    async def close(self) -> None:
        """Nothing to release."""


class FakeSlackClient:
    """The Web API methods the Slack layer calls, answered from memory and recorded.

    ``groups`` answers ``usergroups.users.list``; ``chat.postMessage`` and ``chat.update``
    answer ``ok`` with a fresh ``ts``.
    """

    def __init__(self, groups: Mapping[str, Iterable[str]] | None = None) -> None:
        self.groups = {group: list(members) for group, members in (groups or {}).items()}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every call to ``method``, oldest first."""
        return [arguments for name, arguments in self.calls if name == method]

    async def usergroups_users_list(self, **arguments: Any) -> dict[str, Any]:
        """The members of ``usergroup``, as Slack lists them."""
        self.calls.append(("usergroups.users.list", arguments))
        return {"ok": True, "users": list(self.groups.get(arguments["usergroup"], []))}

    async def chat_postMessage(self, **arguments: Any) -> dict[str, Any]:  # noqa: N802
        """Accept a new message."""
        self.calls.append(("chat.postMessage", arguments))
        return {"ok": True, "channel": arguments["channel"], "ts": f"{len(self.calls)}.000100"}

    async def chat_update(self, **arguments: Any) -> dict[str, Any]:
        """Accept an edit of a message."""
        self.calls.append(("chat.update", arguments))
        return {"ok": True, "channel": arguments["channel"], "ts": arguments["ts"]}
