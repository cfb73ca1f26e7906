"""Who may ask and who may approve: the service expands requester and approver groups.

Tables over ``DumptaskService`` with a fake directory (``S0...`` groups of ``U0...`` users), an
in-memory store and an in-memory DIS; nothing here waits or opens a socket.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands import TaskCommand
from bot.lifecycle import (
    NotAllowedToCancel,
    NotAnApprover,
    Policy,
    PolicyBreach,
    Request,
    RequestState,
    SelfApproval,
)
from bot.service import (
    ChannelNotAllowed,
    Click,
    DumptaskService,
    NotARequester,
    StreamNotAllowed,
)
from bot.vocabulary import DumpTask, TaskAction, TaskState
from tests.fakes import FakeClock, FakeDirectory, FakeDis, FakeStore, RecordingNotifier

ALICE, BOB, CAROL, DAN, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0DAN", "W0MALLORY"
GROUPS = {
    "S0ONCALL": {ALICE, DAN},
    "S0LEADS": {BOB, CAROL},
    "S0EMPTY": set(),
}
INCIDENT, RANDOM = "C0INCIDENT", "C0RANDOM"
STREAM = "orders-stream"
ARCHIVE = DumpTask("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED, "OBS", None, None)


def make_service(**policy: Any) -> tuple[DumptaskService, FakeStore, FakeDirectory]:
    store, directory, clock = FakeStore(), FakeDirectory(GROUPS), FakeClock()
    service = DumptaskService(
        store=store,
        dis=FakeDis({STREAM: [ARCHIVE], "audit-stream": [ARCHIVE]}),
        directory=directory,
        notifier=RecordingNotifier(),
        policy=Policy(**policy),
        clock=clock,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    return service, store, directory


async def open_as(service: DumptaskService, user: str = ALICE) -> Request:
    command = TaskCommand(TaskAction.START, STREAM, ("orders-archive",), "INC-1")
    return await service.open_request(command, user, INCIDENT)


@pytest.mark.parametrize(
    ("policy", "user", "channel", "stream", "refusal"),
    [
        ({}, MALLORY, RANDOM, "any-stream", None),
        ({"requesters": (ALICE,)}, ALICE, INCIDENT, STREAM, None),
        ({"requesters": (ALICE,)}, DAN, INCIDENT, STREAM, NotARequester),
        ({"requesters": ("S0ONCALL",)}, ALICE, INCIDENT, STREAM, None),
        ({"requesters": ("S0ONCALL",)}, DAN, INCIDENT, STREAM, None),
        ({"requesters": ("S0ONCALL",)}, BOB, INCIDENT, STREAM, NotARequester),
        ({"requesters": ("S0ONCALL",)}, MALLORY, INCIDENT, STREAM, NotARequester),
        ({"requesters": ("S0LEADS", "S0ONCALL")}, CAROL, INCIDENT, STREAM, None),
        ({"requesters": ("S0EMPTY",)}, ALICE, INCIDENT, STREAM, NotARequester),
        ({"requesters": ("S0EMPTY", MALLORY)}, MALLORY, INCIDENT, STREAM, None),
        ({"requesters": ("S0ONCALL",)}, ALICE, INCIDENT, None, None),
        ({"allowed_channels": (INCIDENT,)}, ALICE, RANDOM, STREAM, ChannelNotAllowed),
        ({"allowed_channels": (INCIDENT,)}, ALICE, INCIDENT, STREAM, None),
        ({"allowed_streams": ("orders-*",)}, ALICE, INCIDENT, "audit-stream", StreamNotAllowed),
        ({"allowed_streams": ("clicks-*", "orders-*")}, ALICE, INCIDENT, STREAM, None),
        ({"allowed_streams": ("orders-*",)}, ALICE, INCIDENT, None, None),
        (
            {"allowed_channels": (INCIDENT,), "requesters": ("S0LEADS",)},
            ALICE,
            RANDOM,
            STREAM,
            ChannelNotAllowed,
        ),
        (
            {"allowed_streams": ("clicks-*",), "requesters": ("S0LEADS",)},
            ALICE,
            INCIDENT,
            STREAM,
            StreamNotAllowed,
        ),
    ],
)
async def test_check_caller_follows_the_policy_with_groups_expanded(
    policy, user, channel, stream, refusal
):
    """A caller is accepted when listed directly or through a group, in an allowed place."""
    service, _, _ = make_service(**policy)
    if refusal is None:
        await service.check_caller(user, channel, stream)
    else:
        with pytest.raises(refusal):
            await service.check_caller(user, channel, stream)


async def test_requester_groups_are_expanded_through_the_directory():
    """The configured requester ids are what the directory is asked to expand."""
    service, _, directory = make_service(requesters=("S0ONCALL", BOB))
    await service.check_caller(DAN, INCIDENT, STREAM)
    assert directory.asked == [("S0ONCALL", BOB)]


@pytest.mark.parametrize(
    ("policy", "approver", "outcome"),
    [
        ({}, BOB, RequestState.EXECUTING),
        ({}, MALLORY, RequestState.EXECUTING),
        ({}, ALICE, SelfApproval),
        ({"allow_self_approval": True}, ALICE, RequestState.EXECUTING),
        ({"approvers": ("S0LEADS",)}, BOB, RequestState.EXECUTING),
        ({"approvers": ("S0LEADS",)}, CAROL, RequestState.EXECUTING),
        ({"approvers": ("S0LEADS",)}, DAN, NotAnApprover),
        ({"approvers": ("S0LEADS",)}, MALLORY, NotAnApprover),
        ({"approvers": ("S0LEADS", DAN)}, DAN, RequestState.EXECUTING),
        ({"approvers": ("S0LEADS", MALLORY)}, MALLORY, RequestState.EXECUTING),
        ({"approvers": ("S0ONCALL",)}, DAN, RequestState.EXECUTING),
        ({"approvers": ("S0ONCALL",)}, ALICE, SelfApproval),
        ({"approvers": ("S0ONCALL",), "allow_self_approval": True}, ALICE, RequestState.EXECUTING),
        ({"approvers": ("S0EMPTY",)}, BOB, NotAnApprover),
        ({"approvers": ("S0LEADS",), "approvals_required": 2}, BOB, RequestState.PENDING),
    ],
)
async def test_approval_eligibility_expands_approver_groups(policy, approver, outcome):
    """An approver counts when listed directly or through a group; others are refused."""
    service, store, _ = make_service(requesters=("S0ONCALL",), **policy)
    request = await open_as(service)
    if isinstance(outcome, RequestState):
        result = await service.approve(Click(request.id, approver, INCIDENT))
        assert result.request.state is outcome
        assert result.must_execute is (outcome is RequestState.EXECUTING)
        assert result.request.approver_ids == (approver,)
    else:
        with pytest.raises(outcome):
            await service.approve(Click(request.id, approver, INCIDENT))
        stored = await store.get(request.id)
        assert stored is not None
        assert (stored.state, stored.approvals) == (RequestState.PENDING, ())


@pytest.mark.parametrize(
    ("approvers", "user", "may_cancel"),
    [
        ((), MALLORY, True),
        (("S0LEADS",), BOB, True),
        (("S0LEADS",), ALICE, True),
        (("S0LEADS",), DAN, False),
        (("S0LEADS",), MALLORY, False),
        (("S0LEADS", MALLORY), MALLORY, True),
        (("S0EMPTY",), BOB, False),
    ],
)
async def test_cancel_eligibility_expands_approver_groups(approvers, user, may_cancel):
    """The requester and approvers (groups expanded) may cancel; nobody else may."""
    service, _, _ = make_service(approvers=approvers)
    request = await open_as(service)
    if may_cancel:
        cancelled = await service.cancel(Click(request.id, user, INCIDENT))
        assert (cancelled.state, cancelled.decided_by) == (RequestState.CANCELLED, user)
    else:
        with pytest.raises(NotAllowedToCancel):
            await service.cancel(Click(request.id, user, INCIDENT))


@pytest.mark.parametrize(
    ("requesters", "requester", "breach"),
    [
        ((), ALICE, None),
        (("S0ONCALL",), ALICE, None),
        (("S0ONCALL",), DAN, None),
        ((ALICE,), ALICE, None),
        (("S0LEADS",), ALICE, PolicyBreach.REQUESTER),
        (("S0EMPTY",), ALICE, PolicyBreach.REQUESTER),
    ],
)
async def test_policy_breach_expands_requester_groups(requesters, requester, breach):
    """A request whose requester is still in a requester group passes the policy in force."""
    opened, store, _ = make_service()
    request = await open_as(opened, requester)
    later, _, _ = make_service(requesters=requesters)
    assert await later.policy_breach(request) is breach
    assert await store.get(request.id) is not None


async def test_requester_who_left_the_group_has_the_approval_closed_not_executed():
    """Approving a request whose requester left every requester group closes it instead."""
    service, store, directory = make_service(requesters=("S0ONCALL",))
    request = await open_as(service, DAN)
    directory.groups["S0ONCALL"] = frozenset({ALICE})
    result = await service.approve(Click(request.id, BOB, INCIDENT))
    assert (result.request.state, result.must_execute) == (RequestState.DISALLOWED, False)
    assert result.request.closed_because is PolicyBreach.REQUESTER
    assert (await store.get(request.id)).state is RequestState.DISALLOWED


async def test_a_lost_update_race_is_retried_and_the_click_counts_once():
    """When another writer changes the request first, the approval is applied to its result."""
    service, store, _ = make_service(approvers=("S0LEADS",))
    request = await open_as(service)
    store.lose_next_updates(2)
    result = await service.approve(Click(request.id, BOB, INCIDENT))
    assert store.lost_updates == 2
    assert (result.request.state, result.request.approver_ids) == (RequestState.EXECUTING, (BOB,))
    assert result.must_execute
