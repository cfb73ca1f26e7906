"""Approvals that reach the right person: deny with a reason, copies, reminders, drift, conflicts.

The service is driven directly over the in-memory fakes, with a fake clock: every rule here is
deterministic and fast. The same features are exercised over real HTTP in tests/test_flow.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bot.commands import TaskCommand
from bot.jobs import HeldJob, Job, JobKind, JobState, Lease
from bot.lifecycle import (
    NotAnApprover,
    NotifyMode,
    Phase,
    Policy,
    Request,
    RequestDecided,
    RequesterCannotDeny,
    RequestState,
)
from bot.service import Click, ConflictingRequest, DumptaskService, WrongChannel
from bot.vocabulary import DumpTask, TaskAction, TaskState
from tests.fakes import FakeClock, FakeDirectory, FakeDis, FakeStore, RecordingNotifier

ALICE, BOB, CAROL, DAN = "U0ALICE", "U0BOB", "U0CAROL", "U0DAN"
INCIDENT, STREAM = "C0INCIDENT", "orders-stream"
ARCHIVE = DumpTask("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED, "OBS", None, None)
TO_OBS = DumpTask("As805BudhcH1lDs6gbn", "orders-to-obs", TaskState.RUNNING, "OBS", None, None)


class World:
    """A service over fakes, and the fakes to look at."""

    def __init__(self, **policy: Any) -> None:
        self.store, self.clock = FakeStore(), FakeClock()
        self.dis = FakeDis({STREAM: [ARCHIVE, TO_OBS]})
        self.notifier = RecordingNotifier()
        self.woken = 0
        self.service = DumptaskService(
            store=self.store,
            dis=self.dis,
            directory=FakeDirectory({"S0LEADS": {BOB, CAROL}}),
            notifier=self.notifier,
            policy=Policy(**policy),
            clock=self.clock,
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
            wake=self.wake,
        )

    def wake(self) -> None:
        self.woken += 1

    async def open(self, *tasks: str, user: str = ALICE) -> Request:
        command = TaskCommand(TaskAction.START, STREAM, tasks or ("orders-archive",), "INC-1")
        request = await self.service.open_request(command, user, INCIDENT)
        return await self.service.attach_card(request, "1.000001")

    async def run_due(self, kind: JobKind) -> list[Job]:
        """Claim and run every due job of ``kind``, as the runner would."""
        jobs = [
            job
            for job in await self.store.claim_due(
                "me",
                due_by=self.clock(),
                lease_now=self.clock(),
                lease_until=self.clock() + timedelta(seconds=15),
                limit=100,
            )
            if job.kind is kind
        ]
        for job in jobs:
            lease = Lease(job.id, "me")
            await self.service.run_job(HeldJob(job, lease, 15, self.clock))
            await self.store.settle_job(lease, JobState.DONE, self.clock())
        return jobs

    async def get(self, request_id: str) -> Request:
        request = await self.store.get(request_id)
        assert request is not None
        return request

    def kinds(self, request_id: str) -> list[str]:
        return [str(event.kind) for event in self.store.audit if event.request_id == request_id]


def click(request: Request, user: str, channel: str = INCIDENT, ts: str = "1.000001") -> Click:
    return Click(request.id, user, channel, ts)


# -- deny -----------------------------------------------------------------------------------


async def test_an_approver_denies_with_a_reason_that_the_card_keeps():
    """Deny closes the request as denied by whom and why, and its card is shown by a job."""
    world = World()
    request = await world.open()
    denied = await world.service.deny(click(request, BOB), "bucket still full")
    assert (denied.state, denied.decided_by, denied.denied_because) == (
        RequestState.DENIED,
        BOB,
        "bucket still full",
    )
    assert world.kinds(request.id)[-1] == "denied"
    assert await world.run_due(JobKind.DELIVER)
    assert world.notifier.kinds()[-1] == "deliver"
    assert world.dis.act_calls == []


async def test_the_requester_cannot_deny_and_is_told_to_cancel():
    """A requester's Deny is refused (Cancel withdraws a request), even with self-approval."""
    world = World(allow_self_approval=True)
    request = await world.open()
    with pytest.raises(RequesterCannotDeny):
        await world.service.may_deny(click(request, ALICE))
    with pytest.raises(RequesterCannotDeny):
        await world.service.deny(click(request, ALICE), "no")
    assert (await world.get(request.id)).state is RequestState.PENDING


async def test_only_approvers_may_deny():
    """With approvers configured, someone else's Deny is refused before the modal opens."""
    world = World(approvers=("S0LEADS",))
    request = await world.open()
    with pytest.raises(NotAnApprover):
        await world.service.may_deny(click(request, DAN))
    assert (await world.service.may_deny(click(request, CAROL))).id == request.id


async def test_a_stale_copy_is_told_who_decided():
    """Approving a request another approver denied says it was already denied, and by whom."""
    world = World()
    request = await world.open()
    await world.service.deny(click(request, BOB), "not now")
    with pytest.raises(RequestDecided) as refused:
        await world.service.approve(click(request, CAROL))
    assert (refused.value.state, refused.value.decided_by) == (RequestState.DENIED, BOB)


# -- direct messages ----------------------------------------------------------------------------


async def test_dm_mode_sends_each_eligible_approver_a_copy_and_clicks_on_it_count():
    """Posting the card queues the DMs; approvers but the requester get one; a DM click counts."""
    world = World(approvers=("S0LEADS", ALICE), notify=NotifyMode.DM)
    request = await world.open()
    assert await world.run_due(JobKind.NOTIFY)
    assert world.notifier.copied_to == [BOB, CAROL]
    stored = await world.get(request.id)
    assert [copy.channel for copy in stored.copies] == [f"D{BOB}", f"D{CAROL}"]
    result = await world.service.approve(click(request, CAROL, f"D{CAROL}", "2.000100"))
    assert result.must_execute


async def test_a_click_from_a_dm_that_is_not_a_copy_is_refused():
    """Only the card and its recorded copies may decide a request."""
    world = World(approvers=("S0LEADS",), notify=NotifyMode.DM)
    request = await world.open()
    with pytest.raises(WrongChannel):
        await world.service.approve(click(request, BOB, f"D{BOB}", "9.000100"))


async def test_mention_mode_sends_no_direct_messages():
    """By default the card mentions the approvers and nobody gets a DM."""
    world = World(approvers=("S0LEADS",))
    await world.open()
    assert await world.run_due(JobKind.NOTIFY) == []


# -- reminders and escalation -------------------------------------------------------------------


async def test_one_reminder_and_escalation_when_nobody_decides():
    """After the reminder delay the approvers are reminded once and the escalation may approve."""
    world = World(approvers=("S0LEADS",), remind_after=timedelta(minutes=5), escalate_to=(DAN,))
    request = await world.open()
    with pytest.raises(NotAnApprover):
        await world.service.approve(click(request, DAN))
    world.clock.advance(299)
    assert await world.run_due(JobKind.REMIND) == []
    world.clock.advance(1)
    assert len(await world.run_due(JobKind.REMIND)) == 1
    reminded = await world.get(request.id)
    assert reminded.escalated_to == (DAN,)
    assert world.notifier.reminded == ["S0LEADS", DAN]
    assert world.kinds(request.id).count("reminded") == 1
    world.clock.advance(60)
    assert await world.run_due(JobKind.REMIND) == [], "never twice"
    assert world.kinds(request.id).count("reminded") == 1


async def test_the_escalated_approver_may_approve_before_the_deadline():
    """Once escalated, the added person's approval executes the request."""
    world = World(approvers=("S0LEADS",), remind_after=timedelta(minutes=5), escalate_to=(DAN,))
    request = await world.open()
    world.clock.advance(300)
    await world.run_due(JobKind.REMIND)
    result = await world.service.approve(click(request, DAN))
    assert result.must_execute


async def test_a_decided_request_is_not_reminded():
    """A request approved before its reminder is never reminded."""
    world = World(remind_after=timedelta(minutes=5))
    request = await world.open()
    await world.service.approve(click(request, BOB))
    world.clock.advance(600)
    assert await world.run_due(JobKind.REMIND) != []
    assert world.notifier.reminded == []
    assert "reminded" not in world.kinds(request.id)


async def test_reminders_can_be_switched_off():
    """Without a reminder delay no reminder job is stored."""
    world = World(remind_after=None)
    request = await world.open()
    assert [job.kind for job in await world.store.jobs_of(request.id)] == []


# -- drift ----------------------------------------------------------------------------------


async def test_a_task_changed_before_the_call_sends_the_request_back_for_approval():
    """A task no longer in the state the card showed: no DIS call; pending again, approvals gone."""
    world = World(remind_after=timedelta(minutes=5))
    request = await world.open()
    approved = await world.service.approve(click(request, BOB))
    assert approved.must_execute
    world.dis.set_state(STREAM, ARCHIVE.task_id, TaskState.RUNNING)
    world.clock.advance(60)
    await world.run_due(JobKind.EXECUTE)
    assert world.dis.act_calls == []
    reopened = await world.get(request.id)
    assert reopened.state is RequestState.PENDING
    assert (reopened.approvals, reopened.round, reopened.phase) == ((), 1, None)
    assert reopened.expires_at == world.clock() + timedelta(seconds=900)
    [drift] = reopened.drift
    assert (drift.task_id, drift.was, drift.now) == (
        ARCHIVE.task_id,
        TaskState.PAUSED,
        TaskState.RUNNING,
    )
    assert reopened.tasks[0].state_at_request is TaskState.RUNNING
    assert "drift" in world.kinds(request.id)
    assert [job.id for job in await world.store.jobs_of(request.id) if job.attempts == 0] == [
        f"remind:{request.id}",
        f"reopened:{request.id}:1",
        f"remind:{request.id}:1",
    ]
    world.clock.advance(240)
    [stale] = await world.run_due(JobKind.REMIND)
    assert stale.id == f"remind:{request.id}", "the first round's reminder does nothing"
    assert world.notifier.reminded == []


async def test_a_fresh_approval_after_drift_executes_with_the_new_states():
    """Approving the reopened request runs it once, as a new round."""
    world = World()
    request = await world.open()
    await world.service.approve(click(request, BOB))
    world.dis.set_state(STREAM, ARCHIVE.task_id, TaskState.ERROR)
    await world.run_due(JobKind.EXECUTE)
    again = await world.service.approve(click(request, CAROL))
    assert again.must_execute
    await world.run_due(JobKind.EXECUTE)
    assert len(world.dis.act_calls) == 1
    assert (await world.get(request.id)).state is RequestState.SUCCEEDED


async def test_unchanged_tasks_go_ahead():
    """No drift, no detour: the call goes out once and the tasks reach their goal."""
    world = World()
    request = await world.open("orders-archive", "orders-to-obs")
    await world.service.approve(click(request, BOB))
    await world.run_due(JobKind.EXECUTE)
    assert len(world.dis.act_calls) == 1
    assert (await world.get(request.id)).drift == ()


async def test_a_request_that_may_have_been_sent_is_never_reopened():
    """Drift is only checked before sending: a taken-over request is read back, not reopened."""
    world = World()
    request = await world.open()
    await world.service.approve(click(request, BOB))
    stored = await world.get(request.id)
    await world.store.update(replace(stored, phase=Phase.SENDING), stored.version)
    world.dis.set_state(STREAM, ARCHIVE.task_id, TaskState.RUNNING)
    await world.run_due(JobKind.EXECUTE)
    finished = await world.get(request.id)
    assert finished.state is RequestState.SUCCEEDED
    assert finished.round == 0


# -- one operation per task ---------------------------------------------------------------------


async def test_a_second_request_for_a_task_in_an_open_one_is_refused_with_the_first():
    """While a request holds a task, another for it is refused naming the open request."""
    world = World()
    first = await world.open("orders-archive")
    with pytest.raises(ConflictingRequest) as refused:
        await world.open("orders-to-obs", "orders-archive", user=DAN)
    assert (refused.value.task_id, refused.value.holder.id) == (ARCHIVE.task_id, first.id)
    assert (refused.value.holder.card_ts) == "1.000001"


async def test_a_task_is_free_again_once_its_request_is_decided():
    """After a cancel the same task can be asked for again."""
    world = World()
    first = await world.open()
    await world.service.cancel(click(first, ALICE))
    second = await world.open(user=DAN)
    assert second.id != first.id
