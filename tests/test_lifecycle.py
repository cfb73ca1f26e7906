"""The pure request lifecycle: who may approve or cancel, quorum, expiry, phases, illegal moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.lifecycle import (
    REQUEST_ID_ALPHABET,
    AlreadyApproved,
    Approval,
    DisCall,
    IllegalTransitionError,
    NotAllowedToCancel,
    NotAnApprover,
    Outcome,
    Phase,
    Policy,
    PolicyBreach,
    Reach,
    RequestDecided,
    RequestedTask,
    RequestExpired,
    RequestState,
    SelfApproval,
    TaskOutcome,
    approve,
    cancel,
    disallow,
    expire,
    finish,
    mark_sending,
    open_request,
    record_call,
    transition,
)
from bot.vocabulary import TaskAction, TaskState

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ONE = Policy()
TWO = Policy(approvals_required=2)


def new_request(policy: Policy = ONE):
    return open_request(
        action=TaskAction.START,
        stream="orders-stream",
        tasks=(RequestedTask("id1", "one", TaskState.PAUSED),),
        requester="UREQ",
        channel="C1",
        reason=None,
        now=NOW,
        policy=replace(policy, ttl=timedelta(minutes=15)),
    )


def executing():
    return approve(new_request(), "UBOB", NOW, ONE, None)


def test_new_request_takes_deadline_and_quorum_from_the_policy():
    """A new request is pending, expires after the policy's TTL and needs its quorum."""
    request = new_request(TWO)
    assert request.state is RequestState.PENDING
    assert request.expires_at == NOW + timedelta(minutes=15)
    assert request.approvals_required == 2
    assert request.id.startswith("dt-")


def test_approval_by_someone_else_executes():
    """One approval from another user moves a one-approval request to executing, unsent."""
    approved = executing()
    assert approved.state is RequestState.EXECUTING
    assert approved.decided_by == "UBOB"
    assert approved.phase is Phase.APPROVED
    assert approved.may_be_sent


def test_requester_cannot_self_approve():
    """The requester's own approval is refused by default."""
    with pytest.raises(SelfApproval):
        approve(new_request(), "UREQ", NOW, ONE, None)


def test_self_approval_allowed_by_policy():
    """With self-approval allowed, the requester's approval counts."""
    policy = Policy(allow_self_approval=True)
    assert approve(new_request(), "UREQ", NOW, policy, None).state is RequestState.EXECUTING


def test_non_approver_refused():
    """A user outside the (expanded) approver set is refused."""
    with pytest.raises(NotAnApprover):
        approve(new_request(), "UMAL", NOW, ONE, frozenset({"UBOB"}))


def test_approver_in_the_set_is_accepted():
    """A user inside the approver set may approve."""
    approved = approve(new_request(), "UBOB", NOW, ONE, frozenset({"UBOB"}))
    assert approved.state is RequestState.EXECUTING


def test_quorum_needs_distinct_approvers():
    """Two approvals are needed from two different people; the same person twice is refused."""
    first = approve(new_request(TWO), "UBOB", NOW, TWO, None)
    assert first.state is RequestState.PENDING
    with pytest.raises(AlreadyApproved) as refused:
        approve(first, "UBOB", NOW, TWO, None)
    assert refused.value.missing == 1
    assert approve(first, "UCAROL", NOW, TWO, None).state is RequestState.EXECUTING


def test_quorum_in_force_at_approval_time_counts():
    """A request opened under a quorum of 1 needs 2 once the operator raised it to 2."""
    first = approve(new_request(ONE), "UBOB", NOW, TWO, None)
    assert first.state is RequestState.PENDING
    assert first.approvals_required == 2


def test_expired_request_cannot_be_approved():
    """After its deadline a request is refused as expired."""
    with pytest.raises(RequestExpired):
        approve(new_request(), "UBOB", NOW + timedelta(minutes=15), ONE, None)


def test_decided_request_cannot_be_approved_again():
    """An executing request refuses further approvals, saying what state it is in."""
    with pytest.raises(RequestDecided) as refused:
        approve(executing(), "UCAROL", NOW, ONE, None)
    assert refused.value.state is RequestState.EXECUTING


@pytest.mark.parametrize(
    ("user", "approvers", "allowed"),
    [
        ("UREQ", frozenset({"UBOB"}), True),
        ("UBOB", frozenset({"UBOB"}), True),
        ("UMAL", frozenset({"UBOB"}), False),
        ("UMAL", None, True),
    ],
)
def test_cancel_by_requester_or_approver_only(user, approvers, allowed):
    """The requester and approvers may cancel; others may not (anyone is an approver if none)."""
    if allowed:
        cancelled = cancel(new_request(), user, NOW, approvers)
        assert (cancelled.state, cancelled.decided_by) == (RequestState.CANCELLED, user)
    else:
        with pytest.raises(NotAllowedToCancel):
            cancel(new_request(), user, NOW, approvers)


def test_expire_only_after_deadline():
    """Expiring before the deadline is a bug; after it the request is expired."""
    with pytest.raises(IllegalTransitionError):
        expire(new_request(), NOW)
    assert expire(new_request(), NOW + timedelta(hours=1)).state is RequestState.EXPIRED


def test_disallow_closes_pending_and_unsent_requests_with_the_reason():
    """A request the policy no longer allows is closed, saying why, if it was never sent."""
    closed = disallow(new_request(), PolicyBreach.STREAM, NOW)
    assert (closed.state, closed.closed_because) == (RequestState.DISALLOWED, PolicyBreach.STREAM)
    assert disallow(executing(), PolicyBreach.REQUESTER, NOW).state is RequestState.DISALLOWED


def test_disallow_never_closes_a_request_that_may_have_been_sent():
    """Once "sending" is recorded the outcome must come from DIS, never from a policy change."""
    with pytest.raises(IllegalTransitionError):
        disallow(mark_sending(executing()), PolicyBreach.STREAM, NOW)


def test_sending_is_recorded_once():
    """The batch call may be marked as sending once; a second attempt is refused."""
    sending = mark_sending(executing())
    assert (sending.phase, sending.may_be_sent) == (Phase.SENDING, False)
    with pytest.raises(IllegalTransitionError):
        mark_sending(sending)
    with pytest.raises(IllegalTransitionError):
        mark_sending(new_request())


def test_call_is_recorded_only_while_sending():
    """The call's result follows "sending"; without it recording is a bug."""
    call = DisCall(reach=Reach.SENT, dis_request_id="r1")
    called = record_call(mark_sending(executing()), call)
    assert (called.phase, called.call) == (Phase.CALLED, call)
    with pytest.raises(IllegalTransitionError):
        record_call(executing(), call)


def _outcome(reached: tuple[bool, ...], reach: Reach | None, error: str | None = None):
    return Outcome(
        tasks=tuple(
            TaskOutcome(f"id{i}", None, TaskState.RUNNING if r else TaskState.PAUSED, r)
            for i, r in enumerate(reached)
        ),
        error_code=error,
        reach=reach,
    )


@pytest.mark.parametrize(
    ("reached", "reach", "error", "state"),
    [
        ((True, True), Reach.SENT, None, RequestState.SUCCEEDED),
        ((True, False), Reach.SENT, None, RequestState.PARTIAL),
        ((False, False), Reach.SENT, None, RequestState.FAILED),
        ((False, False), Reach.REFUSED, "DIS.4116", RequestState.FAILED),
        ((True, True), Reach.UNCERTAIN, "transient", RequestState.SUCCEEDED),
        ((True, False), Reach.UNCERTAIN, "transient", RequestState.PARTIAL),
        ((False, False), Reach.UNCERTAIN, "transient", RequestState.UNKNOWN),
        ((False,), Reach.INTERRUPTED, None, RequestState.UNKNOWN),
        ((True,), Reach.INTERRUPTED, None, RequestState.SUCCEEDED),
        ((True, True), None, None, RequestState.SUCCEEDED),
        ((False, False), None, "DIS.4116", RequestState.FAILED),
    ],
)
def test_outcome_state_comes_from_the_tasks_then_the_call(reached, reach, error, state):
    """Tasks at their goal decide success; with none there, a call that may have landed is unknown."""
    finished = finish(mark_sending(executing()), _outcome(reached, reach, error))
    assert finished.state is state


@pytest.mark.parametrize(
    ("reach", "error", "failed"),
    [
        (Reach.SENT, None, False),
        (Reach.REFUSED, "DIS.4301", True),
        (Reach.UNCERTAIN, None, True),
        (Reach.INTERRUPTED, None, True),
        (None, None, False),
        (None, "DIS.4301", True),
    ],
)
def test_outcome_knows_whether_the_call_failed(reach, error, failed):
    """Only a 2xx counts as a successful call; old outcomes say so by their error fields."""
    assert _outcome((True,), reach, error).call_failed is failed


def test_illegal_transitions_raise():
    """A final request cannot move again, and pending cannot jump to succeeded."""
    with pytest.raises(IllegalTransitionError):
        transition(RequestState.CANCELLED, RequestState.EXECUTING)
    with pytest.raises(IllegalTransitionError):
        transition(RequestState.PENDING, RequestState.SUCCEEDED)
    with pytest.raises(IllegalTransitionError):
        finish(replace(new_request(), state=RequestState.CANCELLED), Outcome(tasks=()))


@pytest.mark.parametrize(
    ("pattern", "stream", "allowed"),
    [
        ("orders-*", "orders-stream", True),
        ("orders-*", "my-orders-stream", False),
        ("orders-?", "orders-1", True),
        ("orders-[ab]", "orders-c", False),
        ("Orders-*", "orders-x", False),
    ],
)
def test_stream_globs_match_whole_names_case_sensitively(pattern, stream, allowed):
    """A stream pattern is a glob over the whole name; DIS names are case-sensitive."""
    assert Policy(allowed_streams=(pattern,)).stream_allowed(stream) is allowed


def test_any_of_several_stream_patterns_allows_a_stream():
    """Several patterns allow a stream that matches one of them."""
    policy = Policy(allowed_streams=("orders-*", "clicks-*"))
    assert policy.stream_allowed("clicks-stream")
    assert not policy.stream_allowed("audit-stream")
    assert Policy().stream_allowed("anything")


def test_channels_are_allowed_by_exact_id():
    """Empty means every channel; otherwise the id must be listed."""
    assert Policy().channel_allowed("C1")
    assert Policy(allowed_channels=("C1", "C2")).channel_allowed("C2")
    assert not Policy(allowed_channels=("C1",)).channel_allowed("C10")


# (DUMPTASK_ALLOWED_STREAMS, stream, allowed): a stream is allowed when ANY pattern matches it
# as a glob over the WHOLE name (never a prefix), case-sensitively; no patterns allow all.
STREAM_TABLE = [
    ((), "anything", True),
    (("orders-stream",), "orders-stream", True),
    (("orders-stream",), "orders-stream-2", False),
    (("orders-stream",), "orders-strea", False),
    (("orders",), "orders-stream", False),
    (("orders-*",), "orders-", True),
    (("orders-*",), "orders", False),
    (("orders-?",), "orders-12", False),
    (("*-stream",), "orders-stream", True),
    (("*-stream",), "orders-stream-old", False),
    (("orders-[0-9]",), "orders-7", True),
    (("orders-[!0-9]",), "orders-7", False),
    (("orders-*", "clicks-*"), "orders-stream", True),
    (("orders-*", "clicks-*"), "clicks-stream", True),
    (("orders-*", "clicks-*"), "audit-stream", False),
    (("audit-stream", "orders-*"), "orders-stream", True),
    (("orders-stream", "orders-stream"), "orders-stream", True),
    (("nothing-matches", "*"), "orders-stream", True),
    (("ORDERS-*", "Clicks-*"), "orders-stream", False),
]


@pytest.mark.parametrize(("patterns", "stream", "allowed"), STREAM_TABLE)
def test_allowed_streams_table(patterns, stream, allowed):
    """One matching glob is enough; a pattern must match the whole stream name."""
    assert Policy(allowed_streams=patterns).stream_allowed(stream) is allowed


def test_the_approval_that_reaches_the_quorum_records_who_and_when():
    """The deciding approval is recorded with its time, and so is the decision."""
    later = NOW + timedelta(minutes=3)
    approved = approve(new_request(), "UBOB", later, ONE, None)
    assert approved.approvals == (Approval("UBOB", later),)
    assert (approved.decided_by, approved.decided_at) == ("UBOB", later)
    assert approve(new_request(TWO), "UBOB", later, TWO, None).approvals[0].at == later


def test_a_quorum_lowered_after_opening_counts_at_approval_time():
    """A request opened needing two approvals executes on one once the operator lowered it."""
    approved = approve(new_request(TWO), "UBOB", NOW, ONE, None)
    assert (approved.state, approved.approvals_required) == (RequestState.EXECUTING, 1)


def test_closing_by_policy_records_when():
    """A request closed because the policy changed is decided at that moment."""
    later = NOW + timedelta(minutes=1)
    assert disallow(new_request(), PolicyBreach.CHANNEL, later).decided_at == later


@pytest.mark.parametrize(
    ("move", "message"),
    [
        (lambda: transition(RequestState.CANCELLED, RequestState.EXECUTING),
         "a request cannot go from cancelled to executing"),
        (lambda: expire(replace(new_request(), id="dt-a"), NOW),
         "request dt-a has not expired yet"),
        (lambda: disallow(mark_sending(replace(executing(), id="dt-a")), PolicyBreach.STREAM, NOW),
         "request dt-a may already have been sent"),
        (lambda: mark_sending(replace(new_request(), id="dt-a")),
         "request dt-a was already sent or is not executing"),
        (lambda: record_call(replace(executing(), id="dt-a"), DisCall(reach=Reach.SENT)),
         "request dt-a is not sending"),
    ],
)  # fmt: skip
def test_an_illegal_move_says_which_request_and_why(move, message):
    """An illegal move is a bug; its message names the request and the rule it broke."""
    with pytest.raises(IllegalTransitionError) as raised:
        move()
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("refuse", "refusal", "facts", "message"),
    [
        (lambda r: approve(r, "UBOB", NOW + timedelta(hours=1), ONE, None), RequestExpired,
         {"request_id": "dt-a"}, "request dt-a has expired"),
        (lambda r: approve(replace(r, state=RequestState.CANCELLED), "UBOB", NOW, ONE, None),
         RequestDecided, {"request_id": "dt-a", "state": RequestState.CANCELLED},
         "request dt-a is already cancelled"),
        (lambda r: approve(r, "UREQ", NOW, ONE, None), SelfApproval, {},
         "requesters may not approve their own request"),
        (lambda r: approve(r, "UMAL", NOW, ONE, frozenset({"UBOB"})), NotAnApprover, {},
         "not one of the approvers"),
        (lambda r: approve(approve(r, "UBOB", NOW, Policy(approvals_required=3), None), "UBOB",
                           NOW, Policy(approvals_required=3), None),
         AlreadyApproved, {"request_id": "dt-a", "missing": 2},
         "already approved dt-a; 2 more approval(s) needed"),
        (lambda r: cancel(r, "UMAL", NOW, frozenset({"UBOB"})), NotAllowedToCancel, {},
         "only the requester or an approver may cancel"),
    ],
    ids=["expired", "decided", "self", "not-approver", "twice", "cancel"],
)  # fmt: skip
def test_refusals_carry_their_facts_and_a_plain_message(refuse, refusal, facts, message):
    """Each refusal holds the facts the Slack layer words, and a message for the audit trail."""
    with pytest.raises(refusal) as refused:
        refuse(replace(new_request(), id="dt-a"))
    assert {name: getattr(refused.value, name) for name in facts} == facts
    assert str(refused.value) == message


def test_request_ids_are_dt_and_eight_unambiguous_characters():
    """Ids are short enough to read out: ``dt-`` and eight characters without look-alikes."""
    for _ in range(50):
        request_id = new_request().id
        assert len(request_id) == 11
        assert set(request_id[3:]) <= set(REQUEST_ID_ALPHABET)
