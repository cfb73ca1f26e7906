"""What happens to a request: open, approve, cancel, expire, execute and verify.

``DumptaskService`` uses the store, the DIS client and two small collaborators the Slack layer
provides (a ``Directory`` that expands user groups and a ``Notifier`` that shows a request's
changes), and knows nothing else of Slack. Every change of a request goes through
``_change``: read, apply a pure rule from ``bot.requests``, write back with one conditional
update, and start again if another click or replica changed the request in between.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

from bot import requests as lifecycle
from bot.commands import TaskCommand
from bot.dis.client import DisClient
from bot.dis.models import DumpTask, TaskState
from bot.errors import CommandError, DisError, DisErrorKind, StoreError
from bot.requests import (
    ApprovalPolicy,
    Outcome,
    RefusedError,
    Request,
    RequestedTask,
    RequestState,
    TaskOutcome,
)
from bot.store import AuditEvent, AuditKind, Store
from bot.text import escape_mrkdwn

logger = logging.getLogger(__name__)

MAX_RACE_RETRIES = 64
SETTLED_FAILURE_STATES = frozenset({TaskState.ERROR, TaskState.ABNORMAL, TaskState.DELETE})


class Directory(Protocol):
    """Expands Slack user-group ids (``S...``) into the user ids of their members."""

    async def expand(self, ids: Iterable[str]) -> frozenset[str]:
        """Return the user ids among ``ids`` plus the members of the groups among them."""
        ...


class Notifier(Protocol):
    """Shows a request's changes to people (the Slack layer updates the card and its thread)."""

    async def request_changed(self, request: Request) -> None:
        """Re-render the request's card after a change."""
        ...

    async def outcome_ready(self, request: Request) -> None:
        """Report the per-task outcome of an executed request."""
        ...


@dataclass(frozen=True, slots=True)
class Rules:
    """The operator's policy, from ``Settings``."""

    allowed_channels: tuple[str, ...] = ()
    requesters: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    allowed_streams: tuple[str, ...] = ()
    approvals_required: int = 1
    allow_self_approval: bool = False
    ttl: timedelta = timedelta(seconds=900)
    verify_timeout: float = 120.0
    verify_interval: float = 2.0
    dis_call_budget: float = 30.0

    @property
    def abandoned_after(self) -> timedelta:
        """How long an execution may take before another replica assumes its owner died."""
        return timedelta(seconds=self.dis_call_budget * 2 + self.verify_timeout + 60)


@dataclass(frozen=True, slots=True)
class ClickResult:
    """A request after a click, and whether this click is the one that must execute it."""

    request: Request
    must_execute: bool


def utc_now() -> datetime:
    """The real clock; tests pass another."""
    return datetime.now(UTC)


def stream_allowed(stream: str, patterns: Sequence[str]) -> bool:
    """Empty means every stream; otherwise the name must match one glob pattern."""
    return not patterns or any(fnmatch.fnmatchcase(stream, pattern) for pattern in patterns)


def describe_tasks(tasks: Sequence[DumpTask]) -> str:
    """List a stream's tasks for an error message: name, id and state each."""
    if not tasks:
        return "It has no dump tasks."
    listed = ", ".join(
        f"`{escape_mrkdwn(task.name)}` (`{escape_mrkdwn(task.task_id)}`, {task.state})"
        for task in tasks
    )
    return f"Its tasks are: {listed}."


def resolve_tasks(stream: str, wanted: Sequence[str], known: Sequence[DumpTask]) -> list[DumpTask]:
    """Map each id or name the user typed to a task of the stream; refuse unknown ones.

    An exact id wins over a name; names are also matched ignoring case, since phones like to
    capitalise the first word. A task named twice (by id and by name) is kept once.
    """
    by_id = {task.task_id: task for task in known}
    by_name = {task.name: task for task in known}
    by_folded_name = {task.name.casefold(): task for task in known}
    resolved: dict[str, DumpTask] = {}
    unknown = []
    for token in wanted:
        task = by_id.get(token) or by_name.get(token) or by_folded_name.get(token.casefold())
        if task is None:
            unknown.append(token)
        else:
            resolved.setdefault(task.task_id, task)
    if unknown:
        names = ", ".join(f"`{escape_mrkdwn(token)}`" for token in unknown)
        raise CommandError(
            f"Stream `{escape_mrkdwn(stream)}` has no dump task {names}. "
            f"{describe_tasks(known)} Use a name or an id from that list."
        )
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
        rules: Rules,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._dis = dis
        self._directory = directory
        self._notifier = notifier
        self._rules = rules
        self._clock = clock
        self._sleep = sleep

    @property
    def rules(self) -> Rules:
        """The policy in force (the Slack layer shows parts of it in help and on cards)."""
        return self._rules

    async def audit(
        self, kind: AuditKind, request_id: str | None, actor: str | None, **detail: object
    ) -> None:
        """Append one event to the audit trail."""
        await self._store.append_audit(
            AuditEvent(
                request_id=request_id, kind=kind, actor=actor, at=self._clock(), detail=detail
            )
        )

    # -- asking ---------------------------------------------------------------------------

    async def check_caller(self, user_id: str, channel_id: str, stream: str | None) -> None:
        """Refuse a command from outside the allowed channels, streams or requesters."""
        rules = self._rules
        if rules.allowed_channels and channel_id not in rules.allowed_channels:
            allowed = ", ".join(f"<#{channel}>" for channel in rules.allowed_channels)
            raise RefusedError(f"`/dumptask` does not work in this channel. Use it in {allowed}.")
        if stream is not None and not stream_allowed(stream, rules.allowed_streams):
            allowed = ", ".join(f"`{escape_mrkdwn(p)}`" for p in rules.allowed_streams)
            raise RefusedError(
                f"The bot may not touch stream `{escape_mrkdwn(stream)}`. "
                f"Streams it may touch: {allowed}."
            )
        if rules.requesters and user_id not in await self._directory.expand(rules.requesters):
            raise RefusedError(
                "You are not allowed to ask for dump task changes. Ask one of the on-call "
                "requesters, or an operator to add you to `DUMPTASK_REQUESTERS`."
            )

    async def open_request(self, command: TaskCommand, user_id: str, channel_id: str) -> Request:
        """Validate a start/stop command against policy and DIS, and store it as pending.

        When DIS cannot be asked for the tasks' states the request is still opened with the
        tasks as typed, and the card says why their state is unknown.
        """
        await self.check_caller(user_id, channel_id, command.stream)
        action = command.action
        unknown_because = None
        try:
            known = await self._dis.list_tasks(command.stream)
        except DisError as error:
            if error.kind is DisErrorKind.USER:
                raise CommandError(
                    f"DIS does not know stream `{escape_mrkdwn(command.stream)}` "
                    f"({escape_mrkdwn(error.summary)}). Check the name and try again."
                ) from error
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
            ttl=self._rules.ttl,
            approvals_required=self._rules.approvals_required,
            state_unknown_because=unknown_because,
        )
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
            raise CommandError(
                f"Could not list stream `{escape_mrkdwn(stream)}`: "
                f"{escape_mrkdwn(error.summary)}. {error.kind.advice}"
            ) from error

    async def history(self, request_id: str) -> tuple[Request, list[AuditEvent]]:
        """One request and its audit trail, for ``/dumptask status <request>``."""
        request = await self._store.get(request_id)
        if request is None:
            raise CommandError(
                f"There is no request `{escape_mrkdwn(request_id)}`. "
                "Type `/dumptask status` to see your recent requests."
            )
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

    async def approval_policy(self) -> ApprovalPolicy:
        """The approvers as user ids right now (groups expanded), and the quorum."""
        approvers = (
            await self._directory.expand(self._rules.approvers) if self._rules.approvers else None
        )
        return ApprovalPolicy(
            approvers=approvers,
            approvals_required=self._rules.approvals_required,
            allow_self_approval=self._rules.allow_self_approval,
        )

    async def approve(self, request_id: str, user_id: str) -> ClickResult:
        """Record an approval; exactly one click, the one completing the quorum, must execute."""
        policy = await self.approval_policy()
        before: list[RequestState] = []

        def rule(current: Request) -> Request:
            before.append(current.state)
            return lifecycle.approve(current, user_id, self._clock(), policy)

        updated = await self._decide(request_id, user_id, rule)
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

    async def cancel(self, request_id: str, user_id: str) -> Request:
        """Close an open request on behalf of its requester or an approver."""
        policy = await self.approval_policy()
        updated = await self._decide(
            request_id, user_id, lambda r: lifecycle.cancel(r, user_id, self._clock(), policy)
        )
        await self.audit(AuditKind.CANCELLED, request_id, user_id)
        return updated

    async def _decide(
        self, request_id: str, user_id: str, rule: Callable[[Request], Request]
    ) -> Request:
        """Apply a click's rule; a refused click is audited, and an overdue request expires."""
        try:
            return await self._change(request_id, rule)
        except RefusedError as refusal:
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
        await self._notifier.request_changed(expired)
        return expired

    async def expire_due(self) -> list[Request]:
        """Expire every pending request past its deadline (run periodically)."""
        expired = []
        for request in await self._store.pending_expired(self._clock()):
            result = await self.expire(request)
            if result is not None:
                expired.append(result)
        return expired

    async def resume_abandoned(self) -> list[Request]:
        """Finish executions whose process died (a restart, a lost replica), by reading back.

        The batch call is never repeated: whether or not it reached DIS, the tasks' states now
        say what happened, and the outcome notes that the bot was interrupted.
        """
        resumed = []
        cutoff = self._clock() - self._rules.abandoned_after
        for request in await self._store.executing():
            if request.decided_at is None or request.decided_at > cutoff:
                continue
            outcome = await self._verify(request, dis_request_id=None)
            outcome = replace(
                outcome,
                tasks=tuple(
                    replace(task, detail=task.detail or "read back after the bot was interrupted")
                    for task in outcome.tasks
                ),
            )
            try:
                finished = await self._change(
                    request.id, partial(lifecycle.finish, outcome=outcome)
                )
            except lifecycle.IllegalTransitionError:
                continue  # another replica finished it first
            await self.audit(AuditKind.VERIFICATION, request.id, "bot", resumed=True)
            await self._notifier.request_changed(finished)
            await self._notifier.outcome_ready(finished)
            resumed.append(finished)
        return resumed

    # -- executing ------------------------------------------------------------------------

    async def execute(self, request: Request) -> Request:
        """Make the one batch call, read the tasks back, and record and show the outcome."""
        await self._notifier.request_changed(request)
        if request.state_unknown_because is not None:
            request = await self._resolve_late(request)
        task_ids = list(request.task_ids)
        try:
            result = await self._dis.act(request.stream, request.action, task_ids)
        except DisError as error:
            await self.audit(
                AuditKind.DIS_CALL,
                request.id,
                "bot",
                action=request.action.value,
                tasks=task_ids,
                ok=False,
                status=error.status,
                code=error.code,
                message=error.message,
                dis_request_id=error.request_id,
            )
            outcome = await self._failed_outcome(request, error)
        else:
            await self.audit(
                AuditKind.DIS_CALL,
                request.id,
                "bot",
                action=request.action.value,
                tasks=task_ids,
                ok=True,
                dis_request_id=result.request_id,
            )
            outcome = await self._verify(request, result.request_id)
        finished = await self._change(
            request.id, lambda current: lifecycle.finish(current, outcome)
        )
        await self._notifier.request_changed(finished)
        await self._notifier.outcome_ready(finished)
        return finished

    async def _resolve_late(self, request: Request) -> Request:
        """Turn names typed while DIS was unreachable into ids, now that it may answer.

        Tokens DIS still does not know are sent as typed; DIS then answers DIS.4354 and the
        outcome says so.
        """
        try:
            known = await self._dis.list_tasks(request.stream)
        except DisError:
            return request
        by_key = {task.task_id: task for task in known} | {task.name: task for task in known}
        tasks = tuple(
            RequestedTask(by_key[t.task_id].task_id, by_key[t.task_id].name, t.state_at_request)
            if t.task_id in by_key
            else t
            for t in request.tasks
        )
        return await self._change(request.id, lambda current: replace(current, tasks=tasks))

    async def _failed_outcome(self, request: Request, error: DisError) -> Outcome:
        """The batch call failed: report its error with each task's state as last known."""
        states = await self._read_states(request)
        tasks = tuple(
            TaskOutcome(
                task_id=task.task_id,
                name=task.name,
                final_state=states.get(task.task_id, task.state_at_request),
                reached_target=False,
                detail="not changed: the DIS call failed",
            )
            for task in request.tasks
        )
        return Outcome(
            tasks=tasks,
            dis_request_id=error.request_id,
            error_code=error.code or error.kind.value,
            error_message=error.message,
            error_advice=error.kind.advice,
            finished_at=self._clock(),
        )

    async def _read_states(self, request: Request) -> dict[str, TaskState]:
        """The tasks' states now, or nothing when DIS cannot be read."""
        try:
            tasks = await self._dis.list_tasks(request.stream)
        except DisError as error:
            logger.warning("could not read back %s: %s", request.id, error.summary)
            return {}
        return {task.task_id: task.state for task in tasks}

    async def _verify(self, request: Request, dis_request_id: str | None) -> Outcome:
        """Read the tasks back until each reaches the wanted state, fails, or time runs out.

        The number of reads is bounded by the verify timeout over the interval, so a fake
        ``sleep`` in tests bounds it just the same.
        """
        target = request.action.target_state
        polls = max(1, math.ceil(self._rules.verify_timeout / self._rules.verify_interval))
        states: dict[str, TaskState] = {}
        for poll in range(polls + 1):
            states = await self._read_states(request) or states
            if all(
                states.get(task_id) == target or states.get(task_id) in SETTLED_FAILURE_STATES
                for task_id in request.task_ids
            ):
                break
            if poll < polls:
                await self._sleep(self._rules.verify_interval)
        tasks = tuple(
            TaskOutcome(
                task_id=task.task_id,
                name=task.name,
                final_state=states.get(task.task_id),
                reached_target=states.get(task.task_id) == target,
                detail=None
                if states.get(task.task_id) == target
                else f"did not reach {target} within {self._rules.verify_timeout:g}s",
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
        return Outcome(tasks=tasks, dis_request_id=dis_request_id, finished_at=self._clock())

    # -- the shared mechanism ---------------------------------------------------------------

    async def _change(self, request_id: str, rule: Callable[[Request], Request]) -> Request:
        """Apply ``rule`` to the stored request with one conditional update, retrying races."""
        for _ in range(MAX_RACE_RETRIES):
            current = await self._store.get(request_id)
            if current is None:
                raise RefusedError(f"There is no request `{escape_mrkdwn(request_id)}`.")
            stored = await self._store.update(rule(current), current.version)
            if stored is not None:
                return stored
        raise StoreError(f"request {request_id} kept changing under us; giving up")
