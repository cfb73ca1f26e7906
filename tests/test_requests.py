"""The pure request lifecycle: who may approve or cancel, quorum, expiry, illegal moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.dis.models import TaskAction, TaskState
from bot.requests import (
    ApprovalPolicy,
    IllegalTransitionError,
    Outcome,
    RefusedError,
    RequestedTask,
    RequestState,
    TaskOutcome,
    approve,
    cancel,
    expire,
    finish,
    open_request,
    transition,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ANYONE = ApprovalPolicy(approvers=None)


def new_request(required: int = 1):
    return open_request(
        action=TaskAction.START,
        stream="orders-stream",
        tasks=(RequestedTask("id1", "one", TaskState.PAUSED),),
        requester="UREQ",
        channel="C1",
        reason=None,
        now=NOW,
        ttl=timedelta(minutes=15),
        approvals_required=required,
    )


def test_approval_by_someone_else_executes():
    """One approval from another user moves a one-approval request to executing."""
    approved = approve(new_request(), "UBOB", NOW, ANYONE)
    assert approved.state is RequestState.EXECUTING
    assert approved.decided_by == "UBOB"


def test_requester_cannot_self_approve():
    """The requester's own approval is refused by default."""
    with pytest.raises(RefusedError, match="someone else"):
        approve(new_request(), "UREQ", NOW, ANYONE)


def test_self_approval_allowed_by_policy():
    """With self-approval allowed, the requester's approval counts."""
    policy = ApprovalPolicy(approvers=None, allow_self_approval=True)
    assert approve(new_request(), "UREQ", NOW, policy).state is RequestState.EXECUTING


def test_non_approver_refused():
    """A user outside the approver set is refused."""
    policy = ApprovalPolicy(approvers=frozenset({"UBOB"}))
    with pytest.raises(RefusedError, match="not one of the approvers"):
        approve(new_request(), "UMAL", NOW, policy)


def test_quorum_needs_distinct_approvers():
    """Two approvals are needed from two different people; the same person twice is refused."""
    first = approve(new_request(required=2), "UBOB", NOW, ANYONE)
    assert first.state is RequestState.PENDING
    with pytest.raises(RefusedError, match="already approved"):
        approve(first, "UBOB", NOW, ANYONE)
    assert approve(first, "UCAROL", NOW, ANYONE).state is RequestState.EXECUTING


def test_expired_request_cannot_be_approved():
    """After its deadline a request is refused as expired."""
    with pytest.raises(RefusedError, match="expired"):
        approve(new_request(), "UBOB", NOW + timedelta(minutes=15), ANYONE)


def test_decided_request_cannot_be_approved_again():
    """An executing request refuses further approvals."""
    approved = approve(new_request(), "UBOB", NOW, ANYONE)
    with pytest.raises(RefusedError, match="already executing"):
        approve(approved, "UCAROL", NOW, ANYONE)


def test_cancel_by_requester_or_approver_only():
    """The requester and approvers may cancel; others may not."""
    policy = ApprovalPolicy(approvers=frozenset({"UBOB"}))
    assert cancel(new_request(), "UREQ", NOW, policy).state is RequestState.CANCELLED
    assert cancel(new_request(), "UBOB", NOW, policy).decided_by == "UBOB"
    with pytest.raises(RefusedError, match="Only the requester or an approver"):
        cancel(new_request(), "UMAL", NOW, policy)


def test_expire_only_after_deadline():
    """Expiring before the deadline is a bug; after it the request is expired."""
    with pytest.raises(IllegalTransitionError):
        expire(new_request(), NOW)
    assert expire(new_request(), NOW + timedelta(hours=1)).state is RequestState.EXPIRED


@pytest.mark.parametrize(
    ("reached", "error", "state"),
    [
        ((True, True), None, RequestState.SUCCEEDED),
        ((True, False), None, RequestState.PARTIAL),
        ((False, False), None, RequestState.FAILED),
        ((False, False), "DIS.4116", RequestState.FAILED),
    ],
)
def test_outcome_decides_final_state(reached, error, state):
    """All tasks reached is success, some is partial, none (or a DIS error) is failure."""
    outcome = Outcome(
        tasks=tuple(
            TaskOutcome(f"id{i}", None, TaskState.RUNNING, r) for i, r in enumerate(reached)
        ),
        error_code=error,
    )
    executing = approve(new_request(), "UBOB", NOW, ANYONE)
    assert finish(executing, outcome).state is state


def test_illegal_transitions_raise():
    """A final request cannot move again, and pending cannot jump to succeeded."""
    with pytest.raises(IllegalTransitionError):
        transition(RequestState.CANCELLED, RequestState.EXECUTING)
    with pytest.raises(IllegalTransitionError):
        transition(RequestState.PENDING, RequestState.SUCCEEDED)
    with pytest.raises(IllegalTransitionError):
        finish(replace(new_request(), state=RequestState.CANCELLED), Outcome(tasks=()))
