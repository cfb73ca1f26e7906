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
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from bot import lifecycle
from bot.audit import AuditEvent, AuditKind
from bot.clock import utc_now
from bot.commands import TaskCommand
from bot.dis.client import DisClient
from bot.errors import DisError, DisErrorKind, Refusal, StoreError
from bot.jobs import HeldJob, Job, JobKind, LeaseTerms, deliver_job, execute_job
from bot.lifecycle import (
    DisCall,
    Outcome,
    Phase,
    Policy,
    PolicyBreach,
    Reach,
    Request,
    RequestedTask,
    RequestState,
    TaskOutcome,
)
from bot.logs import bind
from bot.store import Store
from bot.vocabulary import DumpTask, TaskState

logger = logging.getLogger(__name__)

MAX_RACE_RETRIES = 64
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


# -- collaborators ----------------------------------------------------------------------------


class Directory(Protocol):
    """Expands Slack user-group ids (``S...``) into the user ids of their members."""

    async def expand(self, ids: Iterable[str]) -> frozenset[str]:
        """Return the user ids among ``ids`` plus the members of the groups among them."""
        ...


class Notifier(Protocol):
    """Shows a request's changes to people (the Slack layer updates the card and its thread)."""

    async def request_changed(self, request: Request) -> None:
        """Re-render the request's card after a change; best effort, never raises."""
        ...

    async def reading_back(self, request: Request) -> None:
        """Say in the card's thread that the bot was interrupted and is reading the tasks back."""
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
class ClickResult:
    """A request after a click, and whether this click is the one that must execute it."""

    request: Request
    must_execute: bool


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

    @property
    def policy(self) -> Policy:
        """The policy in force (the Slack layer shows parts of it in help and on cards)."""
        return self._policy

    async def audit(
        self, kind: AuditKind, request_id: str | None, actor: str | None, **detail: object
    ) -> None:
        """Append one event to the audit trail (and log it)."""
        logger.info("audit: %s by %s", kind, actor or "nobody", extra={"request_id": request_id})
        await self._store.append_audit(
            AuditEvent(
                request_id=request_id, kind=kind, actor=actor, at=self._clock(), detail=detail
            )
        )

    # -- asking ---------------------------------------------------------------------------

    async def check_caller(self, user_id: str, channel_id: str, stream: str | None) -> None:
        """Refuse a command from outside the allowed channels, streams or requesters."""
        policy = self._policy
        if not policy.channel_allowed(channel_id):
            raise ChannelNotAllowed(policy.allowed_channels)
        if stream is not None and not policy.stream_allowed(stream):
            raise StreamNotAllowed(stream, policy.allowed_streams)
        if not await self._is_requester(user_id):
            raise NotARequester

    async def _is_requester(self, user_id: str) -> bool:
        requesters = self._policy.requesters
        return not requesters or user_id in await self._directory.expand(requesters)

    async def open_request(self, command: TaskCommand, user_id: str, channel_id: str) -> Request:
        """Validate a start/stop command against policy and DIS, and store it as pending.

        When DIS cannot be asked for the tasks' states the request is still opened with the
        tasks as typed, and the card says why their state is unknown.
        """
        bind(stream=command.stream, action=command.action.value)
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
        )
        bind(request_id=request.id)
        await self._store.create(request)
        await self.audit(
            AuditKind.REQUESTED,
            request.id,
            user_id,
            action=action.value,
            stream=request.stream,
            tasks=list(request.task_ids),
            reason=request.reason,
            channel=channel_id,
            state_unknown_because=unknown_because,
        )
        stored = await self._store.get(request.id)
        assert stored is not None
        return stored

    async def list_tasks(self, stream: str, user_id: str, channel_id: str) -> list[DumpTask]:
        """The stream's dump tasks, for ``/dumptask list``, within the same policy as requests."""
        await self.check_caller(user_id, channel_id, stream)
        try:
            return await self._dis.list_tasks(stream)
        except DisError as error:
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
        updated = await self._change(request.id, lambda current: replace(current, card_ts=card_ts))
        await self.audit(AuditKind.CARD_POSTED, request.id, "bot", ts=card_ts)
        return updated

    # -- deciding -------------------------------------------------------------------------

    async def _approvers(self) -> frozenset[str] | None:
        """The approvers as user ids right now (groups expanded); ``None`` means anyone."""
        approvers = self._policy.approvers
        return await self._directory.expand(approvers) if approvers else None

    async def policy_breach(self, request: Request) -> PolicyBreach | None:
        """What, if anything, in the policy in force now forbids this request."""
        if not self._policy.channel_allowed(request.channel):
            return PolicyBreach.CHANNEL
        if not self._policy.stream_allowed(request.stream):
            return PolicyBreach.STREAM
        if not await self._is_requester(request.requester):
            return PolicyBreach.REQUESTER
        return None

    async def approve(self, request_id: str, user_id: str, channel_id: str) -> ClickResult:
        """Record an approval; exactly one click, the one completing the quorum, must execute.

        The policy in force is checked again first: a request the operator has since
        disallowed is closed instead, and its card says why.
        """
        request = await self._load_for_click(request_id, user_id, channel_id)
        breach = await self.policy_breach(request)
        approvers = await self._approvers()
        before: list[RequestState] = []

        def rule(current: Request) -> Request:
            before.append(current.state)
            now = self._clock()
            if breach is not None and current.state.is_open and not current.is_expired(now):
                return lifecycle.disallow(current, breach, now)
            return lifecycle.approve(current, user_id, now, self._policy, approvers)

        updated = await self._decide(request_id, user_id, rule)
        if updated.state is RequestState.DISALLOWED and before[-1] is RequestState.PENDING:
            await self.audit(
                AuditKind.DISALLOWED, request_id, user_id, because=str(updated.closed_because)
            )
            return ClickResult(updated, must_execute=False)
        won = before[-1] is RequestState.PENDING and updated.state is RequestState.EXECUTING
        await self.audit(
            AuditKind.APPROVED,
            request_id,
            user_id,
            approvals=len(updated.approvals),
            required=updated.approvals_required,
            quorum_reached=won,
        )
        return ClickResult(updated, must_execute=won)

    async def cancel(self, request_id: str, user_id: str, channel_id: str) -> Request:
        """Close an open request on behalf of its requester or an approver."""
        await self._load_for_click(request_id, user_id, channel_id)
        approvers = await self._approvers()
        updated = await self._decide(
            request_id, user_id, lambda r: lifecycle.cancel(r, user_id, self._clock(), approvers)
        )
        await self.audit(AuditKind.CANCELLED, request_id, user_id)
        return updated

    async def _must_get(self, request_id: str) -> Request:
        request = await self._store.get(request_id)
        if request is None:
            raise NoSuchRequest(request_id)
        return request

    async def _load_for_click(self, request_id: str, user_id: str, channel_id: str) -> Request:
        """The clicked request; a click from another channel than the card's is refused."""
        request = await self._must_get(request_id)
        bind(stream=request.stream, action=request.action.value)
        if channel_id != request.channel:
            await self.audit(
                AuditKind.REFUSED_CLICK,
                request_id,
                user_id,
                why=f"clicked from channel {channel_id}, not the request's",
            )
            raise WrongChannel(request_id, request.channel)
        return request

    async def _decide(
        self, request_id: str, user_id: str, rule: Callable[[Request], Request]
    ) -> Request:
        """Apply a click's rule; a refused click is audited, and an overdue request expires."""
        try:
            return await self._change(request_id, rule)
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
                request, call = await self._send(request, held)
            else:
                await self._best_effort(self._notifier.reading_back(request))
                if request.phase is Phase.SENDING:
                    call = DisCall(reach=Reach.INTERRUPTED)
                    request = await self._change(
                        request_id, lambda current: lifecycle.record_call(current, call), held=held
                    )
                else:
                    call = request.call or DisCall(reach=Reach.INTERRUPTED)
            outcome = replace(await self._verify(request, call), interrupted=resumed)
        finally:
            if card_update is not None:
                card_update.cancel()
        await self._change(
            request_id, lambda current: lifecycle.finish(current, outcome), held=held
        )

    async def _send(self, request: Request, held: HeldJob) -> tuple[Request, DisCall]:
        """Record "sending", make the batch call once, record how it went."""
        if request.state_unknown_because is not None:
            request = await self._resolve_late(request, held)
        request = await self._change(request.id, lifecycle.mark_sending, held=held)
        task_ids = list(request.task_ids)
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
        await self.audit(
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
            request.id, lambda current: lifecycle.record_call(current, call), held=held
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

    async def _resolve_late(self, request: Request, held: HeldJob) -> Request:
        """Turn names typed while DIS was unreachable into ids, now that it may answer.

        The rules are those of ``resolve_tasks``, so a request means the same whether or not
        DIS answered when it was made. Tokens DIS still does not know are sent as typed; DIS
        then answers DIS.4354 and the outcome says so.
        """
        try:
            known = await self._dis.list_tasks(request.stream)
        except DisError:
            return request
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

    async def _verify(self, request: Request, call: DisCall) -> Outcome:
        """Read the tasks back until each reaches the wanted state, fails, or time runs out.

        A call DIS certainly refused changed nothing, so one read suffices; otherwise the tasks
        are read until the verify timeout (wall-clock) has passed.
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
        await self.audit(
            AuditKind.VERIFICATION,
            request.id,
            "bot",
            target=target.value,
            states={task.task_id: str(task.final_state) for task in tasks},
        )
        return Outcome(
            tasks=tasks,
            dis_request_id=call.dis_request_id,
            error_code=call.error_code,
            error_message=call.error_message,
            error_advice=call.error_advice,
            finished_at=self._clock(),
            reach=call.reach,
            waited_seconds=round(self._monotonic() - started, 1),
        )

    # -- the shared mechanism ---------------------------------------------------------------

    async def _change(
        self, request_id: str, rule: Callable[[Request], Request], *, held: HeldJob | None = None
    ) -> Request:
        """Apply ``rule`` to the stored request with one conditional update, retrying races.

        The work a change implies is stored in the same transaction: an approval reaching the
        quorum creates the job that executes it, and reaching a final state creates the job that
        shows it in Slack. With ``held``, the change is made only under that live lease.
        """
        terms = held.terms if held is not None else LeaseTerms
        for _ in range(MAX_RACE_RETRIES):
            current = await self._must_get(request_id)
            changed = rule(current)
            jobs = self._implied_jobs(current, changed)
            stored = await self._store.update(
                changed, current.version, enqueue=jobs, now=self._clock(), **terms()
            )
            if stored is not None:
                if jobs:
                    self._wake()
                return stored
        raise StoreError(f"request {request_id} kept changing under us; giving up")

    def _implied_jobs(self, before: Request, after: Request) -> list[Job]:
        now = self._clock()
        if before.state is RequestState.PENDING and after.state is RequestState.EXECUTING:
            return [execute_job(after.id, now)]
        if after.state.is_final and not before.state.is_final:
            return [deliver_job(after.id, now)]
        return []
