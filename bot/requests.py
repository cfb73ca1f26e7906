"""The life of one start/stop request: its states, its rules, and the moves between them.

Everything here is pure: functions take a ``Request`` and the time, and return a new
``Request`` or raise ``RefusedError``. The store persists each result with one conditional update,
so the rules are decided here and the races are settled there.

::

    PENDING ──approve (quorum)──> EXECUTING ──finish──> SUCCEEDED | PARTIAL | FAILED
       │  └──approve (more needed)──> PENDING
       ├──cancel──> CANCELLED
       └──expire──> EXPIRED
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.dis.models import TaskAction, TaskState
from bot.errors import CommandError, DumptaskError

REQUEST_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class RequestState(enum.StrEnum):
    """Where a request stands."""

    PENDING = "pending"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        """Only a pending request can still be approved, cancelled or expire."""
        return self is RequestState.PENDING

    @property
    def is_final(self) -> bool:
        """Nothing moves a request out of these states."""
        return self not in (RequestState.PENDING, RequestState.EXECUTING)


ALLOWED_MOVES: dict[RequestState, frozenset[RequestState]] = {
    RequestState.PENDING: frozenset(
        {
            RequestState.PENDING,
            RequestState.EXECUTING,
            RequestState.CANCELLED,
            RequestState.EXPIRED,
        }
    ),
    RequestState.EXECUTING: frozenset(
        {RequestState.SUCCEEDED, RequestState.PARTIAL, RequestState.FAILED}
    ),
}


class IllegalTransitionError(DumptaskError):
    """A bug: code tried to move a request along an edge the lifecycle does not have."""


class RefusedError(CommandError):
    """A click or command the rules refuse; the message tells the user why."""


def transition(current: RequestState, wanted: RequestState) -> RequestState:
    """Return ``wanted`` if the lifecycle allows moving there from ``current``, else raise."""
    if wanted not in ALLOWED_MOVES.get(current, frozenset()):
        raise IllegalTransitionError(f"a request cannot go from {current} to {wanted}")
    return wanted


@dataclass(frozen=True, slots=True)
class RequestedTask:
    """A task named in a request, with its state when the request was made (if DIS answered)."""

    task_id: str
    name: str | None
    state_at_request: TaskState | None


@dataclass(frozen=True, slots=True)
class Approval:
    """One approver's click."""

    user_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What became of one task after the batch call, read back from DIS."""

    task_id: str
    name: str | None
    final_state: TaskState | None
    reached_target: bool
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of executing a request: per task, plus the DIS call's error if it failed."""

    tasks: tuple[TaskOutcome, ...]
    dis_request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_advice: str | None = None
    finished_at: datetime | None = None

    @property
    def state(self) -> RequestState:
        """Succeeded when every task reached its target, failed when none did, else partial."""
        reached = sum(task.reached_target for task in self.tasks)
        if self.error_code is None and self.error_message is None and reached == len(self.tasks):
            return RequestState.SUCCEEDED
        return RequestState.FAILED if reached == 0 else RequestState.PARTIAL


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """Who may approve and how many approvals it takes, resolved to user ids at click time.

    ``approvers`` of ``None`` means anyone but the requester.
    """

    approvers: frozenset[str] | None
    approvals_required: int = 1
    allow_self_approval: bool = False

    def may_approve(self, request: Request, user_id: str) -> bool:
        """Whether ``user_id`` is allowed to approve ``request`` at all."""
        if user_id == request.requester and not self.allow_self_approval:
            return False
        return self.approvers is None or user_id in self.approvers

    def may_cancel(self, request: Request, user_id: str) -> bool:
        """The requester, and anyone who could approve, may cancel an open request."""
        if user_id == request.requester:
            return True
        return self.approvers is None or user_id in self.approvers


def new_request_id() -> str:
    """A short, unambiguous id people can read out on a call (``dt-`` and 8 characters)."""
    return "dt-" + "".join(secrets.choice(REQUEST_ID_ALPHABET) for _ in range(8))


@dataclass(frozen=True, slots=True)
class Request:
    """One ask to start or stop some tasks of a stream, and everything that happened to it."""

    id: str
    action: TaskAction
    stream: str
    tasks: tuple[RequestedTask, ...]
    requester: str
    channel: str
    created_at: datetime
    expires_at: datetime
    approvals_required: int
    reason: str | None = None
    state: RequestState = RequestState.PENDING
    approvals: tuple[Approval, ...] = ()
    decided_by: str | None = None
    decided_at: datetime | None = None
    card_ts: str | None = None
    state_unknown_because: str | None = None
    outcome: Outcome | None = None
    version: int = field(default=0, compare=False)

    @property
    def task_ids(self) -> tuple[str, ...]:
        """The ids sent to DIS in the batch call."""
        return tuple(task.task_id for task in self.tasks)

    @property
    def approver_ids(self) -> tuple[str, ...]:
        """Who has approved so far, in order."""
        return tuple(approval.user_id for approval in self.approvals)

    def is_expired(self, now: datetime) -> bool:
        """A pending request past its deadline can no longer be approved."""
        return self.state.is_open and now >= self.expires_at


def open_request(
    *,
    action: TaskAction,
    stream: str,
    tasks: tuple[RequestedTask, ...],
    requester: str,
    channel: str,
    reason: str | None,
    now: datetime,
    ttl: timedelta,
    approvals_required: int,
    state_unknown_because: str | None = None,
) -> Request:
    """Create a pending request with a fresh id and its deadline."""
    return Request(
        id=new_request_id(),
        action=action,
        stream=stream,
        tasks=tasks,
        requester=requester,
        channel=channel,
        created_at=now,
        expires_at=now + ttl,
        approvals_required=approvals_required,
        reason=reason,
        state_unknown_because=state_unknown_because,
    )


def _refuse_unless_open(request: Request, now: datetime, verb: str) -> None:
    if request.state.is_open and not request.is_expired(now):
        return
    if request.is_expired(now) or request.state is RequestState.EXPIRED:
        raise RefusedError(f"Request `{request.id}` has expired, so it can no longer be {verb}.")
    raise RefusedError(f"Request `{request.id}` is already {request.state.value}; nothing to do.")


def approve(request: Request, user_id: str, now: datetime, policy: ApprovalPolicy) -> Request:
    """Record ``user_id``'s approval; the request executes once the quorum is reached."""
    _refuse_unless_open(request, now, "approved")
    if user_id == request.requester and not policy.allow_self_approval:
        raise RefusedError("You asked for this request, so someone else has to approve it.")
    if not policy.may_approve(request, user_id):
        raise RefusedError("You are not one of the approvers for dump task requests.")
    if user_id in request.approver_ids:
        raise RefusedError(
            f"You already approved `{request.id}`; it needs "
            f"{request.approvals_required - len(request.approvals)} more approval(s) "
            "from someone else."
        )
    approvals = (*request.approvals, Approval(user_id=user_id, at=now))
    if len(approvals) < request.approvals_required:
        return replace(request, approvals=approvals)
    return replace(
        request,
        approvals=approvals,
        state=transition(request.state, RequestState.EXECUTING),
        decided_by=user_id,
        decided_at=now,
    )


def cancel(request: Request, user_id: str, now: datetime, policy: ApprovalPolicy) -> Request:
    """Close an open request on behalf of its requester or an approver."""
    _refuse_unless_open(request, now, "cancelled")
    if not policy.may_cancel(request, user_id):
        raise RefusedError("Only the requester or an approver can cancel this request.")
    return replace(
        request,
        state=transition(request.state, RequestState.CANCELLED),
        decided_by=user_id,
        decided_at=now,
    )


def expire(request: Request, now: datetime) -> Request:
    """Close a pending request whose deadline has passed."""
    if not request.is_expired(now):
        raise IllegalTransitionError(f"request {request.id} has not expired yet")
    return replace(request, state=transition(request.state, RequestState.EXPIRED), decided_at=now)


def finish(request: Request, outcome: Outcome) -> Request:
    """Record the outcome of the batch call and the read-back."""
    return replace(request, state=transition(request.state, outcome.state), outcome=outcome)
