"""The life of one start/stop request: its states, the policy, and the moves between them.

Everything here is pure: functions take a ``Request`` and the time, and return a new ``Request``
or raise a typed ``Refusal`` (the Slack layer words it). The store persists each result with one
conditional update, so the rules are decided here and the races are settled there.

::

    PENDING ──approve (quorum)──> EXECUTING ──finish──> SUCCEEDED | PARTIAL | FAILED | UNKNOWN
       │ ▲ └─approve (more needed)─> PENDING       │ (phase: approved -> sending -> called)
       │ └─────reopen (a task changed before the call; a fresh approval is needed)──┤
       ├──cancel──> CANCELLED                       │
       ├──deny (with a reason)──> DENIED            │
       ├──expire──> EXPIRED                         │
       └──disallow──> DISALLOWED <──(before sending)┘

    PENDING ──approve (quorum, with --at)──> SCHEDULED ──its time, or Resume now──> EXECUTING
                                             SCHEDULED ──cancel──> CANCELLED

A timed pause (``stop --for``) that paused its tasks spawns the start that ends it: a request of
its own, already approved, SCHEDULED for the end of the pause.

An executing request records how far its one batch call got (its ``Phase``): ``SENDING`` is
stored before the call goes out, so a replica taking over after a crash knows whether the call
may have reached DIS, and never sends it a second time.
"""

from __future__ import annotations

import enum
import fnmatch
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.errors import DumptaskError, Refusal
from bot.vocabulary import TaskAction, TaskState

REQUEST_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class RequestState(enum.StrEnum):
    """Where a request stands."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    DENIED = "denied"
    EXPIRED = "expired"
    DISALLOWED = "disallowed"

    @property
    def is_open(self) -> bool:
        """Only a pending request can still be approved, cancelled or expire."""
        return self is RequestState.PENDING

    @property
    def is_final(self) -> bool:
        """Nothing moves a request out of these states."""
        return self not in (RequestState.PENDING, RequestState.SCHEDULED, RequestState.EXECUTING)

    @property
    def was_executed(self) -> bool:
        """The request was approved and its outcome is recorded."""
        return self in _EXECUTED


_EXECUTED = frozenset(
    {RequestState.SUCCEEDED, RequestState.PARTIAL, RequestState.FAILED, RequestState.UNKNOWN}
)

ALLOWED_MOVES: dict[RequestState, frozenset[RequestState]] = {
    RequestState.PENDING: frozenset(
        {
            RequestState.PENDING,
            RequestState.SCHEDULED,
            RequestState.EXECUTING,
            RequestState.CANCELLED,
            RequestState.DENIED,
            RequestState.EXPIRED,
            RequestState.DISALLOWED,
        }
    ),
    RequestState.SCHEDULED: frozenset(
        {
            RequestState.SCHEDULED,
            RequestState.EXECUTING,
            RequestState.CANCELLED,
            RequestState.DISALLOWED,
        }
    ),
    RequestState.EXECUTING: _EXECUTED
    | {RequestState.EXECUTING, RequestState.DISALLOWED, RequestState.PENDING},
}


class Phase(enum.StrEnum):
    """How far an executing request's one batch call got."""

    APPROVED = "approved"  # not sent; safe to send
    SENDING = "sending"  # recorded just before the call: it may have reached DIS
    CALLED = "called"  # the call returned or failed; ``Request.call`` says how


class Reach(enum.StrEnum):
    """Whether the batch call reached DIS, as far as the bot can know."""

    SENT = "sent"  # DIS accepted it (2xx)
    REFUSED = "refused"  # it certainly did not arrive, or DIS refused it without acting
    UNCERTAIN = "uncertain"  # it may have reached DIS (a timeout, a dropped connection, a 5xx)
    INTERRUPTED = "interrupted"  # the bot died between recording "sending" and the answer
    NOT_NEEDED = "not_needed"  # not made: every task already was at its goal

    @property
    def may_have_changed(self) -> bool:
        """Whether DIS may have acted on the call."""
        return self not in (Reach.REFUSED, Reach.NOT_NEEDED)


class NotifyMode(enum.StrEnum):
    """How eligible approvers hear of a new request (``DUMPTASK_NOTIFY_APPROVERS``)."""

    MENTION = "mention"  # the card mentions the approver users and groups
    DM = "dm"  # and each eligible approver gets a direct message with the same buttons
    OFF = "off"  # the card says who may approve, without pinging anyone


class PolicyBreach(enum.StrEnum):
    """Why a request no longer passes the policy in force (the operator changed it)."""

    CHANNEL = "channel"  # the channel left DUMPTASK_ALLOWED_CHANNELS
    STREAM = "stream"  # the stream no longer matches DUMPTASK_ALLOWED_STREAMS
    REQUESTER = "requester"  # the requester left DUMPTASK_REQUESTERS


class IllegalTransitionError(DumptaskError):
    """A bug: code tried to move a request along an edge the lifecycle does not have."""


# -- refusals (typed; the Slack layer words them) ----------------------------------------------


class RequestExpired(Refusal):
    """The request's deadline passed before this click."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"request {request_id} has expired")


class RequestDecided(Refusal):
    """The request is no longer pending, so the click has nothing to do."""

    def __init__(self, request_id: str, state: RequestState, decided_by: str | None = None) -> None:
        self.request_id = request_id
        self.state = state
        self.decided_by = decided_by
        super().__init__(f"request {request_id} is already {state}")


class SelfApproval(Refusal):
    """The requester clicked Approve on their own request."""

    def __init__(self) -> None:
        super().__init__("requesters may not approve their own request")


class NotAnApprover(Refusal):
    """The clicker is not among the approvers."""

    def __init__(self) -> None:
        super().__init__("not one of the approvers")


class AlreadyApproved(Refusal):
    """The clicker approved before; the quorum needs someone else."""

    def __init__(self, request_id: str, missing: int) -> None:
        self.request_id = request_id
        self.missing = missing
        super().__init__(f"already approved {request_id}; {missing} more approval(s) needed")


class RequesterCannotDeny(Refusal):
    """The requester withdraws with Cancel; Deny is the approvers' answer."""

    def __init__(self) -> None:
        super().__init__("the requester cannot deny their own request")


class NotAllowedToCancel(Refusal):
    """Only the requester and the approvers may cancel."""

    def __init__(self) -> None:
        super().__init__("only the requester or an approver may cancel")


# -- values -------------------------------------------------------------------------------------


def transition(current: RequestState, wanted: RequestState) -> RequestState:
    """Return ``wanted`` if the lifecycle allows moving there from ``current``, else raise."""
    if wanted not in ALLOWED_MOVES.get(current, frozenset()):
        raise IllegalTransitionError(f"a request cannot go from {current} to {wanted}")
    return wanted


@dataclass(frozen=True, slots=True)
class Policy:
    """The operator's policy: where the bot works, who may ask and approve, and how.

    ``requesters`` and ``approvers`` hold user (``U...``) and user-group (``S...``) ids as
    configured; the service expands the groups when it needs members. Empty means everyone
    (for approvers: everyone but the requester, unless self-approval is allowed).
    """

    allowed_channels: tuple[str, ...] = ()
    requesters: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    allowed_streams: tuple[str, ...] = ()
    approvals_required: int = 1
    allow_self_approval: bool = False
    ttl: timedelta = timedelta(seconds=900)
    notify: NotifyMode = NotifyMode.MENTION
    remind_after: timedelta | None = None
    escalate_to: tuple[str, ...] = ()
    allow_seconds: bool = False
    """Timed pauses in seconds (``--for 30s``): the demo's, so a person can watch one end."""

    def channel_allowed(self, channel: str) -> bool:
        """Empty means every channel."""
        return not self.allowed_channels or channel in self.allowed_channels

    def stream_allowed(self, stream: str) -> bool:
        """Empty means every stream; otherwise the name must match one glob pattern."""
        return not self.allowed_streams or any(
            fnmatch.fnmatchcase(stream, pattern) for pattern in self.allowed_streams
        )


@dataclass(frozen=True, slots=True)
class RequestedTask:
    """A task named in a request, with its state when the request was made (if DIS answered)."""

    task_id: str
    name: str | None
    state_at_request: TaskState | None
    safe_until: datetime | None = None
    """For a stop: when DIS starts deleting data this task has not dumped yet (if known)."""


@dataclass(frozen=True, slots=True)
class Approval:
    """One approver's click."""

    user_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CardCopy:
    """Another copy of the card (a direct message to an approver), updated with the card."""

    channel: str
    ts: str


@dataclass(frozen=True, slots=True)
class TaskDrift:
    """A task whose state changed between the card and the batch call (in the console, say)."""

    task_id: str
    name: str | None
    was: TaskState
    now: TaskState


@dataclass(frozen=True, slots=True)
class DisCall:
    """What became of the one batch call: whether it reached DIS, and DIS's answer."""

    reach: Reach
    dis_request_id: str | None = None
    status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_advice: str | None = None

    @property
    def failed(self) -> bool:
        """The call did not get a 2xx answer (a call not needed did not fail)."""
        return self.reach not in (Reach.SENT, Reach.NOT_NEEDED)


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
    """The result of executing a request: each task as read back, and how the call went.

    The per-task result is what DIS's state says, never what an exception suggested: a task
    RUNNING after a failed start call did start. ``reach`` is ``None`` only in outcomes stored
    before it existed, which always came with a call that either succeeded or failed.
    """

    tasks: tuple[TaskOutcome, ...]
    dis_request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_advice: str | None = None
    finished_at: datetime | None = None
    reach: Reach | None = None
    interrupted: bool = False
    waited_seconds: float | None = None

    @property
    def call_failed(self) -> bool:
        """The batch call did not get a 2xx answer (or the bot never learnt its answer)."""
        if self.reach is not None:
            return self.reach not in (Reach.SENT, Reach.NOT_NEEDED)
        return self.error_code is not None or self.error_message is not None

    @property
    def state(self) -> RequestState:
        """Every task at its target is success and none is failure, whatever the call said.

        When no task moved and the call may have reached DIS, the bot cannot know what
        happened: the outcome is unknown, never "failed, nothing was changed".
        """
        reached = sum(task.reached_target for task in self.tasks)
        if self.tasks and reached == len(self.tasks):
            return RequestState.SUCCEEDED
        if reached:
            return RequestState.PARTIAL
        if self.reach is not None and self.reach.may_have_changed and self.reach is not Reach.SENT:
            return RequestState.UNKNOWN
        return RequestState.FAILED


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
    phase: Phase | None = None
    call: DisCall | None = None
    closed_because: PolicyBreach | None = None
    denied_because: str | None = None
    copies: tuple[CardCopy, ...] = ()
    round: int = 0
    drift: tuple[TaskDrift, ...] = ()
    reminded_at: datetime | None = None
    escalated_to: tuple[str, ...] = ()
    run_at: datetime | None = None
    pause_for: timedelta | None = None
    retention_hours: int | None = None
    parent_id: str | None = None
    resume_id: str | None = None
    resume_at: datetime | None = None
    started_late_by: float | None = None
    run_early_by: str | None = None
    version: int = field(default=0, compare=False)

    @property
    def task_ids(self) -> tuple[str, ...]:
        """The ids sent to DIS in the batch call."""
        return tuple(task.task_id for task in self.tasks)

    @property
    def approver_ids(self) -> tuple[str, ...]:
        """Who has approved so far, in order."""
        return tuple(approval.user_id for approval in self.approvals)

    @property
    def may_be_sent(self) -> bool:
        """Whether the batch call may still go out: executing and never recorded as sending.

        An executing request without a phase was stored by a bot that recorded nothing before
        its call; it may have been sent, so it is never sent again.
        """
        return self.state is RequestState.EXECUTING and self.phase is Phase.APPROVED

    def is_expired(self, now: datetime) -> bool:
        """A pending request past its deadline can no longer be approved."""
        return self.state.is_open and now >= self.expires_at

    def shows_card_at(self, channel: str, ts: str | None) -> bool:
        """Whether the message ``ts`` in ``channel`` is this request's card or one of its copies."""
        if channel == self.channel:
            return True
        return any(copy.channel == channel and copy.ts == ts for copy in self.copies)

    def approvers_of(self, policy: Policy) -> tuple[str, ...]:
        """The configured approver ids for this request: the policy's, plus any escalation."""
        if not policy.approvers:
            return ()
        return tuple(dict.fromkeys((*policy.approvers, *self.escalated_to)))


def open_request(
    *,
    action: TaskAction,
    stream: str,
    tasks: tuple[RequestedTask, ...],
    requester: str,
    channel: str,
    reason: str | None,
    now: datetime,
    policy: Policy,
    state_unknown_because: str | None = None,
    request_id: str | None = None,
) -> Request:
    """Create a pending request with its deadline, and a fresh id unless one is given."""
    return Request(
        id=request_id or new_request_id(),
        action=action,
        stream=stream,
        tasks=tasks,
        requester=requester,
        channel=channel,
        created_at=now,
        expires_at=now + policy.ttl,
        approvals_required=policy.approvals_required,
        reason=reason,
        state_unknown_because=state_unknown_because,
    )


def _refuse_unless_open(request: Request, now: datetime) -> None:
    if request.state.is_open and not request.is_expired(now):
        return
    if request.is_expired(now) or request.state is RequestState.EXPIRED:
        raise RequestExpired(request.id)
    raise RequestDecided(request.id, request.state, request.decided_by)


def approve(
    request: Request,
    user_id: str,
    now: datetime,
    policy: Policy,
    approvers: frozenset[str] | None,
) -> Request:
    """Record ``user_id``'s approval; the request executes once the quorum is reached.

    ``approvers`` are the policy's approvers with groups expanded (``None``: anyone). The
    quorum is the one in force now, so raising it holds back requests opened before.
    """
    _refuse_unless_open(request, now)
    if user_id == request.requester and not policy.allow_self_approval:
        raise SelfApproval
    if approvers is not None and user_id not in approvers:
        raise NotAnApprover
    required = policy.approvals_required
    if user_id in request.approver_ids:
        raise AlreadyApproved(request.id, max(required - len(request.approvals), 1))
    approvals = (*request.approvals, Approval(user_id=user_id, at=now))
    if len(approvals) < required:
        return replace(request, approvals=approvals, approvals_required=required)
    later = request.run_at is not None and request.run_at > now
    return replace(
        request,
        approvals=approvals,
        approvals_required=required,
        state=transition(
            request.state, RequestState.SCHEDULED if later else RequestState.EXECUTING
        ),
        phase=None if later else Phase.APPROVED,
        decided_by=user_id,
        decided_at=now,
    )


def run_scheduled(request: Request, now: datetime, *, early_by: str | None = None) -> Request:
    """Start a scheduled request: at its time (saying how late), or early for ``early_by``."""
    if request.state is not RequestState.SCHEDULED:
        raise IllegalTransitionError(f"request {request.id} is not scheduled")
    late = None
    if early_by is None and request.run_at is not None:
        late = max((now - request.run_at).total_seconds(), 0.0)
    return replace(
        request,
        state=transition(request.state, RequestState.EXECUTING),
        phase=Phase.APPROVED,
        started_late_by=late,
        run_early_by=early_by,
    )


def resume_request(paused: Request, now: datetime) -> Request | None:
    """The start that ends a timed pause, approved with the pause: ``None`` if nothing paused.

    It is a request of its own (its own id, phase and outcome, so the batch call stays at most
    once) scheduled for the end of the pause, with the tasks that did reach PAUSED.
    """
    if paused.pause_for is None or paused.outcome is None:
        return None
    tasks = tuple(
        RequestedTask(task.task_id, task.name, TaskState.PAUSED)
        for task in paused.outcome.tasks
        if task.reached_target
    )
    if not tasks or paused.decided_at is None:
        return None
    since = paused.outcome.finished_at or now
    return Request(
        id=new_request_id(),
        action=TaskAction.START,
        stream=paused.stream,
        tasks=tasks,
        requester=paused.requester,
        channel=paused.channel,
        created_at=now,
        expires_at=since + paused.pause_for,
        approvals_required=paused.approvals_required,
        reason=f"the end of the timed pause of {paused.id}",
        state=RequestState.SCHEDULED,
        approvals=paused.approvals,
        decided_by=paused.decided_by,
        decided_at=paused.decided_at,
        card_ts=paused.card_ts,
        run_at=since + paused.pause_for,
        parent_id=paused.id,
    )


def cancel(
    request: Request, user_id: str, now: datetime, approvers: frozenset[str] | None
) -> Request:
    """Close an open (or scheduled) request for its requester or an approver."""
    if request.state is not RequestState.SCHEDULED:
        _refuse_unless_open(request, now)
    if user_id != request.requester and approvers is not None and user_id not in approvers:
        raise NotAllowedToCancel
    return replace(
        request,
        state=transition(request.state, RequestState.CANCELLED),
        decided_by=user_id,
        decided_at=now,
    )


def deny(
    request: Request,
    user_id: str,
    reason: str,
    now: datetime,
    approvers: frozenset[str] | None,
) -> Request:
    """Close an open request on behalf of an approver, with the reason the requester will read."""
    _refuse_unless_open(request, now)
    if user_id == request.requester:
        raise RequesterCannotDeny
    if approvers is not None and user_id not in approvers:
        raise NotAnApprover
    return replace(
        request,
        state=transition(request.state, RequestState.DENIED),
        decided_by=user_id,
        decided_at=now,
        denied_because=reason,
    )


def reopen(
    request: Request, drift: tuple[TaskDrift, ...], now: datetime, policy: Policy
) -> Request:
    """Send an approved request back for a fresh approval: a task changed before the call.

    The approvals were given for the states the card showed; with those gone they are cleared,
    the deadline starts again, and the card shows the states as they are now.
    """
    if not request.may_be_sent:
        raise IllegalTransitionError(f"request {request.id} may already have been sent")
    now_by_id = {change.task_id: change.now for change in drift}
    return replace(
        request,
        state=transition(request.state, RequestState.PENDING),
        phase=None,
        approvals=(),
        decided_by=None,
        decided_at=None,
        expires_at=now + policy.ttl,
        approvals_required=policy.approvals_required,
        round=request.round + 1,
        drift=drift,
        reminded_at=None,
        tasks=tuple(
            replace(task, state_at_request=now_by_id.get(task.task_id, task.state_at_request))
            for task in request.tasks
        ),
    )


def remind(request: Request, now: datetime, policy: Policy) -> Request:
    """Record the one reminder of a request nobody decided, and who it is escalated to."""
    if not request.state.is_open or request.reminded_at is not None:
        raise IllegalTransitionError(f"request {request.id} is not waiting for its reminder")
    return replace(request, reminded_at=now, escalated_to=policy.escalate_to)


def expire(request: Request, now: datetime) -> Request:
    """Close a pending request whose deadline has passed."""
    if not request.is_expired(now):
        raise IllegalTransitionError(f"request {request.id} has not expired yet")
    return replace(request, state=transition(request.state, RequestState.EXPIRED), decided_at=now)


def disallow(request: Request, breach: PolicyBreach, now: datetime) -> Request:
    """Close a request the policy in force no longer allows, if its call was never sent."""
    if request.state is RequestState.EXECUTING and not request.may_be_sent:
        raise IllegalTransitionError(f"request {request.id} may already have been sent")
    return replace(
        request,
        state=transition(request.state, RequestState.DISALLOWED),
        closed_because=breach,
        decided_at=now,
    )


def mark_sending(request: Request) -> Request:
    """Record that the batch call is about to go out; from here it is never sent again."""
    if not request.may_be_sent:
        raise IllegalTransitionError(f"request {request.id} was already sent or is not executing")
    return replace(request, phase=Phase.SENDING)


def record_call(request: Request, call: DisCall) -> Request:
    """Record how the batch call went, before the read-back starts."""
    if request.state is not RequestState.EXECUTING or request.phase is not Phase.SENDING:
        raise IllegalTransitionError(f"request {request.id} is not sending")
    return replace(request, phase=Phase.CALLED, call=call)


def finish(request: Request, outcome: Outcome) -> Request:
    """Record the outcome of the batch call and the read-back."""
    return replace(request, state=transition(request.state, outcome.state), outcome=outcome)
