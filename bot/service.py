"""What happens to a request: open, approve, cancel, expire, execute and verify.

``DumptaskService`` uses the store, the DIS client and two small collaborators the Slack layer
provides (a ``Directory`` that expands user groups and a ``Notifier`` that shows a request's
changes), and knows nothing else of Slack: what it refuses, it raises as a typed ``Refusal``
that the Slack layer words. Every change of a request goes through ``_change``: read, apply a
pure rule from ``bot.lifecycle``, write back with one conditional update, and start again if
another click or replica changed the request in between.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import lifecycle
from bot.audit import AuditEvent, AuditKind
from bot.clock import utc_now
from bot.commands import TaskCommand, TimeOfDay
from bot.dis.client import DisClient
from bot.errors import DisError, DisErrorKind, Refusal, StoreError, TaskInUseError
from bot.jobs import (
    HeldJob,
    Job,
    JobKind,
    LeaseTerms,
    ask_job,
    click_job,
    deliver_job,
    execute_job,
    notify_job,
    remind_job,
    reopened_job,
    retention_job,
    run_job,
)
from bot.lifecycle import (
    CardCopy,
    DisCall,
    NotifyMode,
    Outcome,
    Phase,
    Policy,
    PolicyBreach,
    Reach,
    Request,
    RequestedTask,
    RequestState,
    TaskDrift,
    TaskOutcome,
)
from bot.logs import bind
from bot.store import Store
from bot.vocabulary import DumpTask, TaskAction, TaskState, safe_pause_window

logger = logging.getLogger(__name__)

MAX_RACE_RETRIES = 64
MAX_RETENTION_HOURS = 168  # the longest retention DIS allows, when a stream's is unknown
MAX_SCHEDULE_AHEAD = timedelta(hours=24)
RETENTION_WARNINGS = (50, 90)  # percent of the safe window at which paused tasks are recalled
SETTLED_FAILURE_STATES = frozenset({TaskState.ERROR, TaskState.ABNORMAL, TaskState.DELETE})


# -- refusals (typed; the Slack layer words them) ----------------------------------------------


class ChannelNotAllowed(Refusal):
    """The command came from a channel outside ``DUMPTASK_ALLOWED_CHANNELS``."""

    def __init__(self, allowed: Sequence[str]) -> None:
        self.allowed = tuple(allowed)
        super().__init__("the command is not allowed in this channel")


class StreamNotAllowed(Refusal):
    """The stream matches none of ``DUMPTASK_ALLOWED_STREAMS``."""

    def __init__(self, stream: str, allowed: Sequence[str]) -> None:
        self.stream = stream
        self.allowed = tuple(allowed)
        super().__init__(f"stream {stream!r} is not allowed")


class NotARequester(Refusal):
    """The caller is not in ``DUMPTASK_REQUESTERS``."""

    def __init__(self) -> None:
        super().__init__("not one of the requesters")


class UnknownTasks(Refusal):
    """Some typed tasks are neither an id nor a name of the stream's tasks."""

    def __init__(self, stream: str, unknown: Sequence[str], known: Sequence[DumpTask]) -> None:
        self.stream = stream
        self.unknown = tuple(unknown)
        self.known = tuple(known)
        super().__init__(f"stream {stream!r} has no task {', '.join(map(repr, unknown))}")


class UnknownStream(Refusal):
    """DIS says the stream does not exist."""

    def __init__(self, stream: str, error: DisError) -> None:
        self.stream = stream
        self.error = error
        super().__init__(f"DIS does not know stream {stream!r}: {error.summary}")


class DisUnavailable(Refusal):
    """DIS could not answer a read the user asked for (``list``)."""

    def __init__(self, stream: str, error: DisError) -> None:
        self.stream = stream
        self.error = error
        super().__init__(f"could not list stream {stream!r}: {error.summary}")


class NoSuchRequest(Refusal):
    """No request has this id."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"there is no request {request_id!r}")


class WrongChannel(Refusal):
    """A click or a status question about a request from outside the request's channel."""

    def __init__(self, request_id: str, channel: str) -> None:
        self.request_id = request_id
        self.channel = channel
        super().__init__(f"request {request_id} belongs to another channel")


class ScheduleProblem(enum.StrEnum):
    """What is wrong with a ``--at`` or ``--for``."""

    AT_PAST = "at_past"  # the time has passed
    AT_TOO_FAR = "at_too_far"  # more than a day ahead
    FOR_TOO_LONG = "for_too_long"  # longer than the stream keeps its data
    FOR_TOO_SHORT = "for_too_short"  # under a minute (seconds are for the demo)


class BadSchedule(Refusal):
    """A ``--at`` or ``--for`` the bot will not take, with the limit that applies."""

    def __init__(
        self,
        problem: ScheduleProblem,
        *,
        when: datetime | None = None,
        limit: timedelta | None = None,
    ) -> None:
        self.problem = problem
        self.when = when
        self.limit = limit
        super().__init__(f"schedule refused: {problem}")


class NotAllowedToResume(Refusal):
    """Only the requester and the approvers may resume paused tasks early."""

    def __init__(self) -> None:
        super().__init__("only the requester or an approver may resume")


class NothingToResume(Refusal):
    """The stop's tasks are not paused any more."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"the tasks of {request_id} are not paused any more")


class ConflictingRequest(Refusal):
    """A task is already part of another open or executing request."""

    def __init__(self, task_id: str, holder: Request) -> None:
        self.task_id = task_id
        self.holder = holder
        super().__init__(f"task {task_id} is already in request {holder.id}")


# -- collaborators ----------------------------------------------------------------------------


class Directory(Protocol):
    """Expands Slack user-group ids (``S...``) into the user ids of their members."""

    async def expand(self, ids: Iterable[str]) -> frozenset[str]:
        """Return the user ids among ``ids`` plus the members of the groups among them."""
        ...

    async def time_zone(self, user_id: str) -> str | None:
        """The user's IANA time zone (``Europe/Berlin``), or ``None`` when unknown."""
        ...


class Notifier(Protocol):
    """Shows a request's changes to people (the Slack layer updates the card and its thread)."""

    async def request_changed(self, request: Request) -> None:
        """Re-render the request's card after a change; best effort, never raises."""
        ...

    async def reading_back(self, request: Request) -> None:
        """Say in the card's thread that the bot was interrupted and is reading the tasks back."""
        ...

    async def send_copies(
        self, request: Request, users: Sequence[str], already: set[str]
    ) -> tuple[CardCopy, ...]:
        """Send the card to each user directly (skipping channels in ``already``)."""
        ...

    async def remind(self, request: Request, approvers: Sequence[str]) -> None:
        """Remind the approvers in the card's thread; raises when Slack refuses it."""
        ...

    async def retention_warning(
        self, request: Request, share: int, paused: Sequence[RequestedTask]
    ) -> None:
        """Remind the requester and approvers that paused tasks are using up their safe window."""
        ...

    async def deliver(self, request: Request) -> str:
        """Show a decided request: the final card and, once executed, the outcome.

        Falls back to a new message in the channel, then to a direct message to the requester;
        returns the way it got through, and raises only when nobody could be told (the job
        delivering it then tries again later).
        """
        ...


@dataclass(frozen=True, slots=True)
class Timing:
    """How long execution may take: the DIS call's retry budget, the read-back, card updates."""

    verify_timeout: float = 120.0
    verify_interval: float = 2.0
    dis_retry_total_seconds: float = 30.0
    card_update_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Click:
    """A button press on a card or one of its copies: who, where, and on which request."""

    request_id: str
    user_id: str
    channel_id: str
    message_ts: str | None = None


@dataclass(frozen=True, slots=True)
class ClickResult:
    """A request after a click, and whether this click is the one that must execute it."""

    request: Request
    must_execute: bool


# The audit events recording a change, from the request before and after it.
AuditFor = Callable[[Request, Request], Sequence[AuditEvent]]


def _log_audit(event: AuditEvent) -> None:
    """Log an audit event as it is recorded (the log is not the trail: the store is)."""
    logger.info(
        "audit: %s by %s",
        event.kind,
        event.actor or "nobody",
        extra={"request_id": event.request_id},
    )


def _quorum_reached(before: Request, after: Request) -> bool:
    """Whether this change is the approval that completed the quorum."""
    waiting = after.state in (RequestState.EXECUTING, RequestState.SCHEDULED)
    return before.state is RequestState.PENDING and waiting


def _schedule_detail(run_at: datetime | None, pause_for: timedelta | None) -> dict[str, object]:
    """What the audit says of ``--at`` and ``--for``, only when they were given."""
    detail: dict[str, object] = {}
    if run_at is not None:
        detail["run_at"] = run_at
    if pause_for is not None:
        detail["pause_for_seconds"] = pause_for.total_seconds()
    return detail


def _task_finder(known: Sequence[DumpTask]) -> Callable[[str], DumpTask | None]:
    """Find the task a token names: by exact id, else exact name, else name ignoring case."""
    by_id = {task.task_id: task for task in known}
    by_name = {task.name: task for task in known}
    by_folded_name = {task.name.casefold(): task for task in known}

    def find(token: str) -> DumpTask | None:
        return by_id.get(token) or by_name.get(token) or by_folded_name.get(token.casefold())

    return find


def resolve_tasks(stream: str, wanted: Sequence[str], known: Sequence[DumpTask]) -> list[DumpTask]:
    """Map each id or name the user typed to a task of the stream; refuse unknown ones.

    An exact id wins over a name; names are also matched ignoring case, since phones like to
    capitalise the first word. A task named twice (by id and by name) is kept once.
    """
    find = _task_finder(known)
    resolved: dict[str, DumpTask] = {}
    unknown = []
    for token in wanted:
        task = find(token)
        if task is None:
            unknown.append(token)
        else:
            resolved.setdefault(task.task_id, task)
    if unknown:
        raise UnknownTasks(stream, unknown, known)
    return list(resolved.values())


class DumptaskService:
    """The request lifecycle, wired to the store, DIS and the people watching."""

    def __init__(
        self,
        *,
        store: Store,
        dis: DisClient,
        directory: Directory,
        notifier: Notifier,
        policy: Policy,
        timing: Timing | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wake: Callable[[], None] = lambda: None,
        observe: Callable[[Request | None, Request], None] = lambda _before, _after: None,
        hand_off: Callable[[Job], Awaitable[object]] | None = None,
    ) -> None:
        self._store = store
        self._dis = dis
        self._directory = directory
        self._notifier = notifier
        self._policy = policy
        self._timing = timing or Timing()
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._wake = wake
        self._observe = observe  # told of each stored change (before is None: just opened)
        # Where a typed command's job goes before the ack: the store, or serve's inbox on
        # SQLite (bot.inbox).
        self._hand_off = hand_off

    @property
    def policy(self) -> Policy:
        """The policy in force (the Slack layer shows parts of it in help and on cards)."""
        return self._policy

    async def audit(
        self, kind: AuditKind, request_id: str | None, actor: str | None, **detail: object
    ) -> None:
        """Append one event to the audit trail (and log it)."""
        event = self._event(kind, request_id, actor, **detail)
        _log_audit(event)
        await self._store.append_audit(event)

    def _event(
        self, kind: AuditKind, request_id: str | None, actor: str | None, **detail: object
    ) -> AuditEvent:
        """An audit event happening now, to be stored with the change it records."""
        return AuditEvent(
            request_id=request_id, kind=kind, actor=actor, at=self._clock(), detail=detail
        )

    # -- asking ---------------------------------------------------------------------------

    async def check_caller(self, user_id: str, channel_id: str | None, stream: str | None) -> None:
        """Refuse a command from outside the allowed channels, streams or requesters.

        ``channel_id`` is ``None`` while the start modal opened from the shortcut has no channel
        yet; the channel is checked when the request is made.
        """
        policy = self._policy
        if channel_id is not None and not policy.channel_allowed(channel_id):
            raise ChannelNotAllowed(policy.allowed_channels)
        if stream is not None and not policy.stream_allowed(stream):
            raise StreamNotAllowed(stream, policy.allowed_streams)
        if not await self._is_requester(user_id):
            raise NotARequester

    async def _is_requester(self, user_id: str) -> bool:
        requesters = self._policy.requesters
        return not requesters or user_id in await self._directory.expand(requesters)

    async def queue_ask(self, command: Mapping[str, str]) -> str:
        """Store a typed command as an ``ask`` job, to be answered after the ack; its request id.

        This is all a slash command costs before Slack gets its ack: one insert. Everything
        slow (DIS, the card) happens in the job, wherever the jobs run.
        """
        request_id = lifecycle.new_request_id()
        await self._hand_over(ask_job(request_id, command, self._clock()))
        return request_id

    async def queue_click(self, click: Mapping[str, str]) -> None:
        """Store a button press as a ``click`` job, recorded after the ack like a command."""
        await self._hand_over(click_job(click, self._clock()))

    async def _hand_over(self, job: Job) -> None:
        if self._hand_off is not None:
            await self._hand_off(job)
        else:
            await self._store.enqueue(job, self._clock())
        self._wake()

    async def open_request(
        self,
        command: TaskCommand,
        user_id: str,
        channel_id: str,
        request_id: str | None = None,
        *,
        may_exist: bool = False,
    ) -> Request:
        """Validate a start/stop command against policy and DIS, and store it as pending.

        When DIS cannot be asked for the tasks' states the request is still opened with the
        tasks as typed, and the card says why their state is unknown. ``request_id`` names the
        new request; with ``may_exist`` (an ``ask`` job run again after a crash) a request of
        that id already stored is returned as it is.
        """
        bind(stream=command.stream, action=command.action.value)
        if request_id is not None and may_exist:
            stored = await self._store.get(request_id)
            if stored is not None:
                return stored
        await self.check_caller(user_id, channel_id, command.stream)
        action = command.action
        unknown_because = None
        try:
            known = await self._dis.list_tasks(command.stream)
        except DisError as error:
            if error.kind is DisErrorKind.USER:
                raise UnknownStream(command.stream, error) from error
            unknown_because = error.summary
            tasks = tuple(RequestedTask(token, None, None) for token in command.tasks)
        else:
            resolved = resolve_tasks(command.stream, command.tasks, known)
            tasks = tuple(RequestedTask(t.task_id, t.name, t.state) for t in resolved)
        now = self._clock()
        retention_hours = None
        if action is TaskAction.STOP and unknown_because is None:
            retention_hours, tasks = await self._with_safe_windows(command.stream, tasks, now)
        self._check_pause(command.pause_for, retention_hours)
        run_at = await self._run_at(command, user_id, now)
        request = lifecycle.open_request(
            action=action,
            stream=command.stream,
            tasks=tasks,
            requester=user_id,
            channel=channel_id,
            reason=command.reason,
            now=self._clock(),
            policy=self._policy,
            state_unknown_because=unknown_because,
            request_id=request_id,
        )
        request = replace(
            request, run_at=run_at, pause_for=command.pause_for, retention_hours=retention_hours
        )
        bind(request_id=request.id)
        requested = self._event(
            AuditKind.REQUESTED,
            request.id,
            user_id,
            action=action.value,
            stream=request.stream,
            tasks=list(request.task_ids),
            reason=request.reason,
            channel=channel_id,
            state_unknown_because=unknown_because,
            **_schedule_detail(run_at, command.pause_for),
        )
        try:
            await self._store.create(
                request,
                enqueue=self._reminder(request, request.created_at),
                now=self._clock(),
                audit=[requested],
            )
        except TaskInUseError as busy:
            holder = await self._store.get(busy.request_id)
            if holder is None:
                raise StoreError(f"task {busy.task_id} is held by a missing request") from busy
            raise ConflictingRequest(busy.task_id, holder) from busy
        _log_audit(requested)
        stored = replace(request, version=1)
        self._observe(None, stored)
        return stored

    async def _with_safe_windows(
        self, stream: str, tasks: tuple[RequestedTask, ...], now: datetime
    ) -> tuple[int | None, tuple[RequestedTask, ...]]:
        """The stream's retention, and when DIS starts deleting what each task has not dumped.

        Best effort: the request stands without them, and its card says they are unknown.
        """
        try:
            details = await self._dis.describe_stream(stream)
            windowed = []
            for task in tasks:
                if task.name is None:
                    windowed.append(task)
                    continue
                progress = await self._dis.describe_task_details(stream, task.name)
                window = safe_pause_window(
                    details.retention_hours, progress.oldest_transfer_at, now
                )
                windowed.append(replace(task, safe_until=now + window))
        except DisError as error:
            logger.warning("no retention window for %s: %s", stream, error.summary)
            return None, tasks
        return details.retention_hours, tuple(windowed)

    def _check_pause(self, pause_for: timedelta | None, retention_hours: int | None) -> None:
        """A timed pause lasts a minute or more (seconds in the demo), never past the retention."""
        if pause_for is None:
            return
        shortest = timedelta(seconds=1) if self._policy.allow_seconds else timedelta(minutes=1)
        if pause_for < shortest or (pause_for.seconds % 60 and not self._policy.allow_seconds):
            raise BadSchedule(ScheduleProblem.FOR_TOO_SHORT, limit=shortest)
        longest = timedelta(hours=retention_hours or MAX_RETENTION_HOURS)
        if pause_for > longest:
            raise BadSchedule(ScheduleProblem.FOR_TOO_LONG, limit=longest)

    async def _run_at(self, command: TaskCommand, user_id: str, now: datetime) -> datetime | None:
        """When a ``--at`` request runs: the next such time on the requester's clock, or as is."""
        at = command.at
        if at is None:
            return None
        if isinstance(at, TimeOfDay):
            zone = await self._zone_of(user_id)
            local = now.astimezone(zone)
            when = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
            if when <= local:
                when += timedelta(days=1)
            return when.astimezone(UTC)
        if at <= now:
            raise BadSchedule(ScheduleProblem.AT_PAST, when=at)
        if at > now + MAX_SCHEDULE_AHEAD:
            raise BadSchedule(ScheduleProblem.AT_TOO_FAR, when=at, limit=MAX_SCHEDULE_AHEAD)
        return at.astimezone(UTC)

    async def _zone_of(self, user_id: str) -> tzinfo:
        name = await self._directory.time_zone(user_id)
        try:
            return ZoneInfo(name) if name else UTC
        except (ZoneInfoNotFoundError, ValueError):
            return UTC

    async def streams_for(self, user_id: str, channel_id: str | None) -> list[str]:
        """The streams DIS has that the policy lets this caller ask about, for the start modal."""
        await self.check_caller(user_id, channel_id, None)
        return [s for s in await self._dis.list_streams() if self._policy.stream_allowed(s)]

    async def list_tasks(self, stream: str, user_id: str, channel_id: str | None) -> list[DumpTask]:
        """The stream's dump tasks, for ``/dumptask list``, within the same policy as requests."""
        await self.check_caller(user_id, channel_id, stream)
        try:
            return await self._dis.list_tasks(stream)
        except DisError as error:
            if error.kind is DisErrorKind.USER:
                raise UnknownStream(stream, error) from error
            raise DisUnavailable(stream, error) from error

    async def history(
        self, request_id: str, user_id: str, channel_id: str
    ) -> tuple[Request, list[AuditEvent]]:
        """One request and its audit trail, for ``/dumptask status <request>``.

        Only in the request's channel, or for its requester and approvers anywhere: an audit
        trail names people, streams and reasons that other channels need not see.
        """
        request = await self._store.get(request_id)
        if request is None:
            raise NoSuchRequest(request_id)
        involved = user_id == request.requester or user_id in request.approver_ids
        if channel_id != request.channel and not involved:
            raise WrongChannel(request_id, request.channel)
        return request, await self._store.audit_trail(request_id)

    async def recent(self, user_id: str) -> list[Request]:
        """The caller's most recent requests, newest first."""
        return await self._store.recent_for(user_id, limit=5)

    async def attach_card(self, request: Request, card_ts: str) -> Request:
        """Remember where the card is, so later changes update it."""
        return await self._change(
            request.id,
            lambda current: replace(current, card_ts=card_ts),
            current=request,
            audit=lambda _before, _after: [
                self._event(AuditKind.CARD_POSTED, request.id, "bot", ts=card_ts)
            ],
        )

    # -- deciding -------------------------------------------------------------------------

    async def approvers_of(self, request: Request) -> frozenset[str] | None:
        """Who may decide ``request`` now, as user ids (groups expanded); ``None`` is anyone.

        The policy's approvers, plus whoever the request was escalated to after its reminder.
        """
        approvers = request.approvers_of(self._policy)
        return await self._directory.expand(approvers) if approvers else None

    def _reminder(self, request: Request, since: datetime) -> list[Job]:
        """The job that reminds the approvers if nobody decides in time (none if switched off)."""
        after = self._policy.remind_after
        if after is None or after >= self._policy.ttl:
            return []
        return [remind_job(request.id, since + after, request.round)]

    async def policy_breach(self, request: Request) -> PolicyBreach | None:
        """What, if anything, in the policy in force now forbids this request."""
        if not self._policy.channel_allowed(request.channel):
            return PolicyBreach.CHANNEL
        if not self._policy.stream_allowed(request.stream):
            return PolicyBreach.STREAM
        if not await self._is_requester(request.requester):
            return PolicyBreach.REQUESTER
        return None

    async def approve(self, click: Click) -> ClickResult:
        """Record an approval; exactly one click, the one completing the quorum, must execute.

        The policy in force is checked again first: a request the operator has since
        disallowed is closed instead, and its card says why.
        """
        request_id, user_id = click.request_id, click.user_id
        request = await self._load_for_click(click)
        breach = await self.policy_breach(request)
        approvers = await self.approvers_of(request)
        before: list[RequestState] = []

        def rule(current: Request) -> Request:
            before.append(current.state)
            now = self._clock()
            if breach is not None and current.state.is_open and not current.is_expired(now):
                return lifecycle.disallow(current, breach, now)
            return lifecycle.approve(current, user_id, now, self._policy, approvers)

        def audit(current: Request, updated: Request) -> list[AuditEvent]:
            if updated.state is RequestState.DISALLOWED:
                because = str(updated.closed_because)
                return [self._event(AuditKind.DISALLOWED, request_id, user_id, because=because)]
            return [
                self._event(
                    AuditKind.APPROVED,
                    request_id,
                    user_id,
                    approvals=len(updated.approvals),
                    required=updated.approvals_required,
                    quorum_reached=_quorum_reached(current, updated),
                )
            ]

        updated = await self._decide(request_id, user_id, rule, current=request, audit=audit)
        if updated.state is RequestState.DISALLOWED and before[-1] is RequestState.PENDING:
            return ClickResult(updated, must_execute=False)
        won = before[-1] is RequestState.PENDING and updated.state in (
            RequestState.EXECUTING,
            RequestState.SCHEDULED,
        )
        return ClickResult(updated, must_execute=won and updated.state is RequestState.EXECUTING)

    async def cancel(self, click: Click) -> Request:
        """Close an open request on behalf of its requester or an approver."""
        request = await self._load_for_click(click)
        approvers = await self.approvers_of(request)
        user_id = click.user_id
        return await self._decide(
            click.request_id,
            user_id,
            lambda r: lifecycle.cancel(r, user_id, self._clock(), approvers),
            current=request,
            audit=lambda _before, _after: [
                self._event(AuditKind.CANCELLED, click.request_id, user_id)
            ],
        )

    async def may_deny(self, click: Click) -> Request:
        """Check, before asking for a reason, that this user could deny the request now."""
        request = await self._load_for_click(click)
        approvers = await self.approvers_of(request)
        try:
            lifecycle.deny(request, click.user_id, "-", self._clock(), approvers)
        except Refusal as refusal:
            await self.audit(AuditKind.REFUSED_CLICK, request.id, click.user_id, why=str(refusal))
            raise
        return request

    async def deny(self, click: Click, reason: str) -> Request:
        """Close an open request on behalf of an approver, with the reason they gave."""
        request = await self._load_for_click(click)
        approvers = await self.approvers_of(request)
        user_id = click.user_id
        updated = await self._decide(
            click.request_id,
            user_id,
            lambda r: lifecycle.deny(r, user_id, reason, self._clock(), approvers),
        )
        await self.audit(AuditKind.DENIED, click.request_id, user_id, reason=reason)
        return updated

    async def resume(self, click: Click) -> Request | TaskCommand:
        """Resume the tasks a stop paused, for its requester or an approver.

        A timed pause's scheduled resume starts now (the approval covered it). An untimed pause
        has none: the answer is the start command to ask for, with the tasks still paused, which
        then needs an approval like any other.
        """
        paused = await self._load_for_click(click)
        approvers = await self.approvers_of(paused)
        allowed = approvers is None or click.user_id in approvers
        if click.user_id != paused.requester and not allowed:
            raise NotAllowedToResume
        if paused.resume_id is None:
            still = await self._still_paused(paused)
            if not still:
                raise NothingToResume(paused.id)
            return TaskCommand(
                TaskAction.START, paused.stream, still, f"resume after the pause of {paused.id}"
            )
        child = await self._must_get(paused.resume_id)
        if child.state is not RequestState.SCHEDULED:
            raise lifecycle.RequestDecided(child.id, child.state, child.run_early_by)
        user = click.user_id
        started = await self._change(
            child.id,
            lambda current: lifecycle.run_scheduled(current, self._clock(), early_by=user),
        )
        await self.audit(AuditKind.RESUMED, paused.id, user, resume=child.id)
        return started

    async def _still_paused(self, paused: Request) -> tuple[str, ...]:
        """The stop's tasks that DIS says are paused now (all of them if DIS cannot say)."""
        try:
            states = {
                task.task_id: task.state for task in await self._dis.list_tasks(paused.stream)
            }
        except DisError:
            return paused.task_ids
        return tuple(t for t in paused.task_ids if states.get(t) is TaskState.PAUSED)

    async def list_with_windows(
        self, stream: str, user_id: str, channel_id: str | None
    ) -> tuple[list[DumpTask], dict[str, timedelta]]:
        """The stream's tasks, and for each paused one how long before its data expires."""
        tasks = await self.list_tasks(stream, user_id, channel_id)
        windows: dict[str, timedelta] = {}
        paused = [task for task in tasks if task.state is TaskState.PAUSED]
        if not paused:
            return tasks, windows
        try:
            details = await self._dis.describe_stream(stream)
            for task in paused:
                progress = await self._dis.describe_task_details(stream, task.name)
                windows[task.task_id] = safe_pause_window(
                    details.retention_hours, progress.oldest_transfer_at, self._clock()
                )
        except DisError as error:
            logger.warning("no safe windows for %s: %s", stream, error.summary)
        return tasks, windows

    async def scheduled_for(self, user_id: str, channel_id: str) -> list[Request]:
        """The scheduled actions the caller asked for, or that belong to this channel."""
        return [
            request
            for request in await self._store.scheduled()
            if request.requester == user_id or request.channel == channel_id
        ]

    async def _must_get(self, request_id: str) -> Request:
        request = await self._store.get(request_id)
        if request is None:
            raise NoSuchRequest(request_id)
        return request

    async def _load_for_click(self, click: Click) -> Request:
        """The clicked request; a click from anywhere but its card or a copy is refused."""
        request = await self._must_get(click.request_id)
        bind(stream=request.stream, action=request.action.value)
        if not request.shows_card_at(click.channel_id, click.message_ts):
            await self.audit(
                AuditKind.REFUSED_CLICK,
                click.request_id,
                click.user_id,
                why=f"clicked from channel {click.channel_id}, not the request's",
            )
            raise WrongChannel(click.request_id, request.channel)
        return request

    async def _decide(
        self,
        request_id: str,
        user_id: str,
        rule: Callable[[Request], Request],
        *,
        current: Request | None = None,
        audit: AuditFor | None = None,
    ) -> Request:
        """Apply a click's rule; a refused click is audited, and an overdue request expires."""
        try:
            return await self._change(request_id, rule, current=current, audit=audit)
        except Refusal as refusal:
            await self.audit(AuditKind.REFUSED_CLICK, request_id, user_id, why=str(refusal))
            current = await self._store.get(request_id)
            if current is not None and current.is_expired(self._clock()):
                await self.expire(current)
            raise

    async def expire(self, request: Request) -> Request | None:
        """Expire one overdue request and show it; ``None`` if someone else got there first."""
        try:
            expired = await self._change(
                request.id, lambda current: lifecycle.expire(current, self._clock())
            )
        except lifecycle.IllegalTransitionError:
            return None
        await self.audit(AuditKind.EXPIRED, request.id, "bot")
        return expired

    async def expire_due(self) -> list[Request]:
        """Expire every pending request past its deadline (run periodically)."""
        expired = []
        for request in await self._store.pending_expired(self._clock()):
            result = await self.expire(request)
            if result is not None:
                expired.append(result)
        return expired

    # -- executing: jobs run by bot.runner under a lease ------------------------------------

    async def run_job(self, held: HeldJob) -> None:
        """Do one job: execute an approved request, or deliver a decided one to Slack."""
        bind(request_id=held.job.request_id)
        match held.job.kind:
            case JobKind.EXECUTE:
                await self._execute(held)
            case JobKind.DELIVER:
                await self._deliver(held)
            case JobKind.NOTIFY:
                await self._notify_approvers(held)
            case JobKind.REMIND:
                await self._remind(held)
            case JobKind.RUN:
                await self._run_scheduled(held)
            case JobKind.RETENTION:
                await self._warn_retention(held)

    async def _run_scheduled(self, held: HeldJob) -> None:
        """A scheduled request's time has come (perhaps late, if the bot was down): start it."""
        request = await self._job_request(held)
        if request.state is not RequestState.SCHEDULED:
            return  # run early, cancelled, or disallowed meanwhile
        if held.job.payload.get("round", 0) != request.round:
            return
        started = await self._change(
            request.id, lambda current: lifecycle.run_scheduled(current, self._clock()), held=held
        )
        await self.audit(AuditKind.STARTED, request.id, "bot", late_seconds=started.started_late_by)

    async def _warn_retention(self, held: HeldJob) -> None:
        """Tasks this stop paused are still paused at 50 % (or 90 %) of their safe window."""
        request = await self._job_request(held)
        share = int(str(held.job.payload.get("share", 0)))
        listed: list[DumpTask] = []
        try:
            listed = await self._dis.list_tasks(request.stream)
        except DisError as error:
            logger.warning("could not check the paused tasks of %s: %s", request.id, error.summary)
        states = {task.task_id: task.state for task in listed}
        stopped = (
            {t.task_id for t in request.outcome.tasks if t.reached_target}
            if request.outcome
            else set()
        )
        paused = [
            task
            for task in request.tasks
            if task.task_id in stopped
            and states.get(task.task_id, TaskState.PAUSED) is TaskState.PAUSED
        ]
        if not paused:
            return  # resumed meanwhile: nothing is at risk
        await self._notifier.retention_warning(request, share, tuple(paused))
        await self.audit(
            AuditKind.RETENTION_WARNING,
            request.id,
            "bot",
            share=share,
            tasks=[t.task_id for t in paused],
        )

    async def _execute(self, held: HeldJob) -> None:
        """Make the one batch call (unless it may already have gone out), read back, record.

        The phase stored in the request decides what a (re)run does: ``approved`` sends the
        call; ``sending`` means an earlier owner died with the call possibly sent, so the tasks
        are only read back; ``called`` means the answer is known and only the read-back is left.
        Every change is made under the job's lease, so an owner that lost it stops at once.
        """
        request_id = held.job.request_id
        assert request_id is not None
        request = await self._must_get(request_id)
        bind(stream=request.stream, action=request.action.value, channel=request.channel)
        if request.state is not RequestState.EXECUTING:
            return  # finished before; a rerun has nothing to do
        resumed = not request.may_be_sent
        card_update: asyncio.Task[None] | None = None
        try:
            if request.may_be_sent:
                breach = await self.policy_breach(request)
                if breach is not None:
                    await self._change(
                        request_id,
                        lambda current: lifecycle.disallow(current, breach, self._clock()),
                        held=held,
                    )
                    await self.audit(AuditKind.DISALLOWED, request_id, "bot", because=breach.value)
                    return
                # Best effort and never waited for: a slow or failing Slack must not hold back
                # the approved action. Its result is overwritten by the delivered outcome.
                card_update = asyncio.create_task(self._show_quickly(request))
                request, drift, already = await self._look_again(request, held)
                if drift and request.parent_id is None:
                    await self._reopen(request_id, drift, held)
                    return
                # An automatic resume (the end of a timed pause) was approved with the pause: a
                # task someone already started is simply left as it is.
                to_send = [
                    task_id
                    for task_id in request.task_ids
                    if request.parent_id is None or task_id not in already
                ]
                if to_send:
                    request, call = await self._send(request, held, to_send)
                else:
                    call = DisCall(reach=Reach.NOT_NEEDED)
                    request = await self._skip_call(request, call, held)
            else:
                await self._best_effort(self._notifier.reading_back(request))
                if request.phase is Phase.SENDING:
                    call = DisCall(reach=Reach.INTERRUPTED)
                    request = await self._change(
                        request_id, lambda current: lifecycle.record_call(current, call), held=held
                    )
                else:
                    call = request.call or DisCall(reach=Reach.INTERRUPTED)
            outcome, verified = await self._verify(request, call)
            outcome = replace(outcome, interrupted=resumed)
        finally:
            if card_update is not None:
                card_update.cancel()
        now = self._clock()
        await self._change(
            request_id,
            lambda current: lifecycle.finish(current, outcome),
            held=held,
            spawn=lambda finished: lifecycle.resume_request(finished, now),
            current=request,
            audit=lambda _before, _after: [verified],
        )

    async def _skip_call(self, request: Request, call: DisCall, held: HeldJob) -> Request:
        """Record that the call was not needed: every task already was where it should go."""
        request = await self._change(request.id, lifecycle.mark_sending, held=held)
        await self.audit(AuditKind.DIS_CALL, request.id, "bot", skipped="every task at its goal")
        return await self._change(
            request.id, lambda current: lifecycle.record_call(current, call), held=held
        )

    async def _reopen(self, request_id: str, drift: tuple[TaskDrift, ...], held: HeldJob) -> None:
        """Send the request back for a fresh approval instead of calling DIS, saying why."""
        now = self._clock()
        await self._change(
            request_id,
            lambda current: lifecycle.reopen(current, drift, now, self._policy),
            held=held,
        )
        changed = {change.task_id: f"{change.was} -> {change.now}" for change in drift}
        await self.audit(AuditKind.DRIFT, request_id, "bot", changed=changed)

    async def _look_again(
        self, request: Request, held: HeldJob
    ) -> tuple[Request, tuple[TaskDrift, ...], frozenset[str]]:
        """Read the tasks just before the call, to catch a change since the approval.

        Names typed while DIS was unreachable become ids, any task no longer in the state the
        approvers saw on the card is drift, and the tasks already at the action's goal are
        named.

        When DIS cannot be read here the call still goes out (it would fail alike), without the
        drift check; the read-back then says what happened.
        """
        try:
            known = await self._dis.list_tasks(request.stream)
        except DisError as error:
            logger.warning("could not read %s before its call: %s", request.id, error.summary)
            return request, (), frozenset()
        if request.state_unknown_because is not None:
            request = await self._resolve_late(request, known, held)
        now = {task.task_id: task.state for task in known}
        drift = tuple(
            TaskDrift(task.task_id, task.name, task.state_at_request, now[task.task_id])
            for task in request.tasks
            if task.state_at_request is not None
            and task.task_id in now
            and now[task.task_id] is not task.state_at_request
        )
        target = request.action.target_state
        already = frozenset(task_id for task_id, state in now.items() if state is target)
        return request, drift, already

    async def _send(
        self, request: Request, held: HeldJob, task_ids: list[str]
    ) -> tuple[Request, DisCall]:
        """Record "sending", make the batch call once, record how it went."""
        request = await self._change(request.id, lifecycle.mark_sending, held=held, current=request)
        try:
            result = await self._dis.act(request.stream, request.action, task_ids)
        except DisError as error:
            call = DisCall(
                reach=Reach.REFUSED if error.certainly_not_received else Reach.UNCERTAIN,
                dis_request_id=error.request_id,
                status=error.status,
                error_code=error.code or error.kind.value,
                error_message=error.message,
                error_advice=error.kind.advice,
            )
        else:
            call = DisCall(reach=Reach.SENT, dis_request_id=result.request_id)
        called = self._event(
            AuditKind.DIS_CALL,
            request.id,
            "bot",
            action=request.action.value,
            tasks=task_ids,
            ok=not call.failed,
            reach=call.reach.value,
            status=call.status,
            code=call.error_code,
            message=call.error_message,
            dis_request_id=call.dis_request_id,
        )
        request = await self._change(
            request.id,
            lambda current: lifecycle.record_call(current, call),
            held=held,
            current=request,
            audit=lambda _before, _after: [called],
        )
        return request, call

    async def _show_quickly(self, request: Request) -> None:
        await self._best_effort(self._notifier.request_changed(request))

    async def _best_effort(self, showing: Awaitable[None]) -> None:
        """Show something in Slack within the card-update bound, or give up quietly."""
        try:
            await asyncio.wait_for(showing, self._timing.card_update_seconds)
        except Exception as error:
            logger.warning("could not update Slack right away (%s); the outcome follows", error)

    async def _notify_approvers(self, held: HeldJob) -> None:
        """Send each eligible approver a direct message with the card, and remember the copies."""
        request = await self._job_request(held)
        if not request.state.is_open:
            return
        approvers = await self.approvers_of(request)
        if approvers is None:
            logger.info("no approvers configured: nobody to send %s to directly", request.id)
            return
        if not self._policy.allow_self_approval:
            approvers -= {request.requester}
        already = {copy.channel for copy in request.copies}
        copies = await self._notifier.send_copies(request, sorted(approvers), already)
        if copies:
            await self._change(
                request.id,
                lambda current: replace(current, copies=(*current.copies, *copies)),
                held=held,
            )
            await self.audit(AuditKind.NOTIFIED, request.id, "bot", copies=len(copies))

    async def _remind(self, held: HeldJob) -> None:
        """Remind the approvers of a request nobody decided, once, escalating if configured."""
        request = await self._job_request(held)
        if not request.state.is_open or held.job.payload.get("round", 0) != request.round:
            return  # decided, or sent back for a new round that has its own reminder
        if request.reminded_at is None:
            request = await self._change(
                request.id,
                lambda current: lifecycle.remind(current, self._clock(), self._policy),
                held=held,
            )
            await self.audit(
                AuditKind.REMINDED, request.id, "bot", escalated_to=list(request.escalated_to)
            )
        await self._notifier.remind(request, request.approvers_of(self._policy))
        await self._best_effort(self._notifier.request_changed(request))

    async def _job_request(self, held: HeldJob) -> Request:
        request_id = held.job.request_id
        assert request_id is not None
        request = await self._must_get(request_id)
        bind(stream=request.stream, action=request.action.value, channel=request.channel)
        return request

    async def _deliver(self, held: HeldJob) -> None:
        """Show a decided request in Slack; raising makes the runner try again later."""
        request_id = held.job.request_id
        assert request_id is not None
        request = await self._must_get(request_id)
        bind(stream=request.stream, action=request.action.value, channel=request.channel)
        route = await self._notifier.deliver(request)
        await self.audit(
            AuditKind.DELIVERED, request_id, "bot", state=request.state.value, route=route
        )

    async def _resolve_late(
        self, request: Request, known: Sequence[DumpTask], held: HeldJob
    ) -> Request:
        """Turn names typed while DIS was unreachable into ids, now that it answers.

        The rules are those of ``resolve_tasks``, so a request means the same whether or not
        DIS answered when it was made. Tokens DIS still does not know are sent as typed; DIS
        then answers DIS.4354 and the outcome says so.
        """
        find = _task_finder(known)
        resolved: dict[str, RequestedTask] = {}
        for typed in request.tasks:
            task = find(typed.task_id)
            kept = typed if task is None else replace(typed, task_id=task.task_id, name=task.name)
            resolved.setdefault(kept.task_id, kept)
        tasks = tuple(resolved.values())
        return await self._change(
            request.id, lambda current: replace(current, tasks=tasks), held=held
        )

    async def _read_states(self, request: Request) -> dict[str, TaskState]:
        """The tasks' states now, or nothing when DIS cannot be read."""
        try:
            tasks = await self._dis.list_tasks(request.stream)
        except DisError as error:
            logger.warning("could not read back %s: %s", request.id, error.summary)
            return {}
        return {task.task_id: task.state for task in tasks}

    async def _verify(self, request: Request, call: DisCall) -> tuple[Outcome, AuditEvent]:
        """Read the tasks back until each reaches the wanted state, fails, or time runs out.

        A call DIS certainly refused changed nothing, so one read suffices; otherwise the tasks
        are read until the verify timeout (wall-clock) has passed. The audit event of what was
        read is returned to be stored with the outcome.
        """
        target = request.action.target_state
        timeout = self._timing.verify_timeout
        deadline = self._monotonic() + timeout
        started = self._monotonic()
        states: dict[str, TaskState] = {}
        while True:
            states = await self._read_states(request) or states
            settled = all(
                states.get(task_id) == target or states.get(task_id) in SETTLED_FAILURE_STATES
                for task_id in request.task_ids
            )
            if settled or call.reach is Reach.REFUSED or self._monotonic() >= deadline:
                break
            await self._sleep(min(self._timing.verify_interval, deadline - self._monotonic()))
        tasks = tuple(
            TaskOutcome(
                task_id=task.task_id,
                name=task.name,
                final_state=states.get(task.task_id),
                reached_target=states.get(task.task_id) == target,
            )
            for task in request.tasks
        )
        verified = self._event(
            AuditKind.VERIFICATION,
            request.id,
            "bot",
            target=target.value,
            states={task.task_id: str(task.final_state) for task in tasks},
        )
        outcome = Outcome(
            tasks=tasks,
            dis_request_id=call.dis_request_id,
            error_code=call.error_code,
            error_message=call.error_message,
            error_advice=call.error_advice,
            finished_at=self._clock(),
            reach=call.reach,
            waited_seconds=round(self._monotonic() - started, 1),
        )
        return outcome, verified

    # -- the shared mechanism ---------------------------------------------------------------

    async def _change(
        self,
        request_id: str,
        rule: Callable[[Request], Request],
        *,
        held: HeldJob | None = None,
        spawn: Callable[[Request], Request | None] | None = None,
        current: Request | None = None,
        audit: AuditFor | None = None,
    ) -> Request:
        """Apply ``rule`` to the stored request with one conditional update, retrying races.

        The work a change implies is stored in the same transaction: an approval reaching the
        quorum creates the job that executes it, and reaching a final state creates the job that
        shows it in Slack; so are the ``audit`` events recording it. With ``held``, the change
        is made only under that live lease. ``current``, when the caller just read or wrote the
        request, saves the first read: a stale copy only loses the race and is read again.
        """
        terms = held.terms if held is not None else LeaseTerms
        for _ in range(MAX_RACE_RETRIES):
            if current is None:
                current = await self._must_get(request_id)
            changed = rule(current)
            child = spawn(changed) if spawn is not None else None
            if child is not None:
                changed = replace(changed, resume_id=child.id, resume_at=child.run_at)
            jobs = self._implied_jobs(current, changed)
            if child is not None and child.run_at is not None:
                jobs.append(run_job(child.id, child.run_at, child.round))
            events = audit(current, changed) if audit is not None else ()
            stored = await self._store.update(
                changed,
                current.version,
                enqueue=jobs,
                now=self._clock(),
                spawn=() if child is None else (child,),
                audit=events,
                **terms(),
            )
            if stored is not None:
                for event in events:
                    _log_audit(event)
                if jobs:
                    self._wake()
                self._observe(current, stored)
                return stored
            current = None
        raise StoreError(f"request {request_id} kept changing under us; giving up")

    @staticmethod
    def _retention_warnings(paused: Request) -> list[Job]:
        """For tasks a stop paused: warnings at 50 % and 90 % of their safe window."""
        outcome = paused.outcome
        if paused.action is not TaskAction.STOP or outcome is None or outcome.finished_at is None:
            return []
        reached = {task.task_id for task in outcome.tasks if task.reached_target}
        limits = [t.safe_until for t in paused.tasks if t.task_id in reached and t.safe_until]
        if not limits:
            return []
        since = outcome.finished_at
        window = min(limits) - since
        return [
            retention_job(paused.id, since + window * share / 100, share)
            for share in RETENTION_WARNINGS
            if window > timedelta(0)
        ]

    def _implied_jobs(self, before: Request, after: Request) -> list[Job]:
        """The background work a change calls for, stored with it."""
        now = self._clock()
        jobs: list[Job] = []
        waiting = (RequestState.PENDING, RequestState.SCHEDULED)
        if before.state in waiting and after.state is RequestState.EXECUTING:
            jobs.append(execute_job(after.id, now, after.round))
        if before.state is RequestState.PENDING and after.state is RequestState.SCHEDULED:
            assert after.run_at is not None
            jobs.append(run_job(after.id, after.run_at, after.round))
        if after.state.is_final and not before.state.is_final:
            jobs.append(deliver_job(after.id, now, after.round))
            jobs.extend(self._retention_warnings(after))
        if before.state is RequestState.EXECUTING and after.state is RequestState.PENDING:
            jobs.append(reopened_job(after.id, now, after.round))
            jobs.extend(self._reminder(after, now))
        card_posted = before.card_ts is None and after.card_ts is not None
        if card_posted and self._policy.notify is NotifyMode.DM:
            jobs.append(notify_job(after.id, now))
        return jobs
