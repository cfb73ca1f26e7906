"""What happens to a request, driven through ``DumptaskService`` over the in-memory fakes.

Every lifecycle rule and every outcome, in milliseconds: requests are opened, approved,
cancelled and expired as the Slack layer would ask, and the execute and deliver jobs are run as
the job runner would run them, each under a lease claimed from the fake store. DIS is
``FakeDis``, time is ``FakeClock`` (the verify loop's sleeps move it at once), and the lease
clock is a second ``FakeClock`` that only the lease tests move.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from bot import lifecycle
from bot.audit import AuditKind
from bot.commands import TaskCommand
from bot.errors import DisErrorKind, Refusal, StoreError
from bot.jobs import HeldJob, JobKind, Lease, LeaseLostError
from bot.lifecycle import (
    AlreadyApproved,
    DisCall,
    NotAllowedToCancel,
    NotAnApprover,
    Phase,
    Policy,
    PolicyBreach,
    Reach,
    Request,
    RequestDecided,
    RequestedTask,
    RequestExpired,
    RequestState,
    SelfApproval,
)
from bot.logs import current_context
from bot.service import (
    MAX_RACE_RETRIES,
    ChannelNotAllowed,
    Click,
    ClickResult,
    DisUnavailable,
    DumptaskService,
    NoSuchRequest,
    NotARequester,
    StreamNotAllowed,
    Timing,
    UnknownStream,
    UnknownTasks,
    WrongChannel,
    resolve_tasks,
)
from bot.vocabulary import DumpTask, TaskAction, TaskState
from tests.fakes import (
    REFUSALS,
    START,
    ActCall,
    FakeClock,
    FakeDirectory,
    FakeDis,
    FakeStore,
    RecordingNotifier,
    dis_answer,
    dis_refusal,
    dis_timeout,
)

ALICE, BOB, CAROL, DAN = "U0ALICE", "U0BOB", "U0CAROL", "U0DAN"
INCIDENT, RANDOM = "C0INCIDENT", "C0RANDOM"
STREAM = "orders-stream"
ARCHIVE = DumpTask("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED, "OBS", None, None)
DLI = DumpTask("Kq3ZtV8mYw2Lp0Rc7Hd", "orders-to-dli", TaskState.PAUSED, "DLI", None, None)
OBS = DumpTask("As805BudhcH1lDs6gbn", "orders-to-obs", TaskState.RUNNING, "OBS", None, None)
DWS = DumpTask("Zr6YtP0qWe4Ls9Vb2Nm", "orders-to-dws", TaskState.PAUSED, "DWS", None, None)
TIMING = Timing(verify_timeout=10.0, verify_interval=2.0, card_update_seconds=1.0)
LEASE_SECONDS = 15.0


class ProcessDiedError(BaseException):
    """The bot's process died here (a crash or a kill): nothing after this line ran."""


@dataclass
class World:
    """The service and every fake it talks to, for one test."""

    store: FakeStore
    dis: FakeDis
    directory: FakeDirectory
    notifier: RecordingNotifier
    clock: FakeClock
    lease_clock: FakeClock
    policy: Policy
    wakes: list[None] = field(default_factory=list)

    def service(self, timing: Timing = TIMING, **changes: Any) -> DumptaskService:
        """A service over these fakes, under this world's policy with ``changes`` made to it."""
        return DumptaskService(
            store=self.store,
            dis=self.dis,
            directory=self.directory,
            notifier=self.notifier,
            policy=replace(self.policy, **changes),
            timing=timing,
            clock=self.clock,
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
            wake=lambda: self.wakes.append(None),
        )

    async def open(
        self, *tasks: str, action: TaskAction = TaskAction.START, user: str = ALICE
    ) -> Request:
        """``user`` asks in the incident channel for ``action`` on ``tasks`` (default: archive)."""
        command = TaskCommand(action, STREAM, tasks or ("orders-archive",), "INC-1")
        return await self.service().open_request(command, user, INCIDENT)

    async def approved(self, *tasks: str, action: TaskAction = TaskAction.START) -> Request:
        """A request opened by alice and approved by bob: executing, its call not yet sent."""
        request = await self.open(*tasks, action=action)
        result = await self.service().approve(Click(request.id, BOB, INCIDENT))
        assert result.must_execute
        return result.request

    async def claim(self, job_id: str, owner: str = "me") -> HeldJob:
        """Claim one job as the runner would, under a lease from the lease clock."""
        now = self.lease_clock()
        claimed = await self.store.claim_due(
            owner,
            due_by=self.clock(),
            lease_now=now,
            lease_until=now + timedelta(seconds=LEASE_SECONDS),
            limit=1,
            skip=tuple(other for other in self.store.jobs if other != job_id),
        )
        assert [job.id for job in claimed] == [job_id]
        return HeldJob(claimed[0], Lease(job_id, owner), LEASE_SECONDS, self.lease_clock)

    async def execute(self, request_id: str, service: DumptaskService | None = None) -> Request:
        """Run the request's execute job and return the request as stored after it."""
        held = await self.claim(f"execute:{request_id}")
        await (service or self.service()).run_job(held)
        return self.stored(request_id)

    def stored(self, request_id: str) -> Request:
        stored = self.store.requests.get(request_id)
        assert stored is not None
        return stored

    def phases(self, request_id: str) -> list[Phase | None]:
        """The phase of each stored update of the request, in order."""
        return [request.phase for request, _ in self.store.updates if request.id == request_id]

    def audited(self, kind: AuditKind) -> list[dict[str, object]]:
        """The details of every audit event of ``kind``, in order."""
        return [dict(event.detail) for event in self.store.audit if event.kind == kind]


def world(*tasks: DumpTask, **policy: Any) -> World:
    """A world where ``orders-stream`` holds ``tasks`` (default: archive, DLI, OBS)."""
    clock = FakeClock()
    return World(
        store=FakeStore(),
        dis=FakeDis({STREAM: list(tasks or (ARCHIVE, DLI, OBS)), "clicks-stream": []}),
        directory=FakeDirectory({"S0LEADS": {BOB, CAROL}}),
        notifier=RecordingNotifier(),
        clock=clock,
        lease_clock=FakeClock(),
        policy=Policy(**policy),
    )


async def store_change(w: World, request_id: str, rule: Any) -> Request:
    """Apply a lifecycle rule straight to the stored request, as an earlier owner left it."""
    current = w.stored(request_id)
    stored = await w.store.update(rule(current), current.version)
    assert stored is not None
    return stored


# -- requests ---------------------------------------------------------------------------------


async def test_a_request_is_stored_pending_with_the_tasks_as_dis_knows_them():
    """Opening a request resolves the tasks, stores it pending until its deadline and audits it."""
    w = world(approvals_required=2)
    request = await w.open("orders-archive", OBS.task_id)
    assert (request.state, request.version, request.requester) == (RequestState.PENDING, 1, ALICE)
    assert request.tasks == (
        RequestedTask(ARCHIVE.task_id, "orders-archive", TaskState.PAUSED),
        RequestedTask(OBS.task_id, "orders-to-obs", TaskState.RUNNING),
    )
    assert (request.created_at, request.expires_at) == (START, START + timedelta(minutes=15))
    assert (request.approvals_required, request.reason, request.channel) == (2, "INC-1", INCIDENT)
    assert request.state_unknown_because is None
    assert request == w.stored(request.id)
    [requested] = w.audited(AuditKind.REQUESTED)
    assert requested == {
        "action": "start",
        "stream": STREAM,
        "tasks": [ARCHIVE.task_id, OBS.task_id],
        "reason": "INC-1",
        "channel": INCIDENT,
        "state_unknown_because": None,
    }
    assert w.store.jobs == {}


@pytest.mark.parametrize(
    ("known", "typed", "resolved"),
    [
        ((ARCHIVE, DLI), ("orders-archive",), (ARCHIVE,)),
        ((ARCHIVE, DLI), (DLI.task_id,), (DLI,)),
        ((ARCHIVE, DLI), ("ORDERS-ARCHIVE", "Orders-To-Dli"), (ARCHIVE, DLI)),
        ((ARCHIVE, DLI), (DLI.task_id, "orders-archive"), (DLI, ARCHIVE)),
        ((ARCHIVE, DLI), ("orders-archive", ARCHIVE.task_id, "Orders-Archive"), (ARCHIVE,)),
        # A task named like another task's id: the exact id wins.
        ((replace(DLI, name=ARCHIVE.task_id), ARCHIVE), (ARCHIVE.task_id,), (ARCHIVE,)),
        ((ARCHIVE, replace(DLI, name=ARCHIVE.task_id)), (ARCHIVE.task_id,), (ARCHIVE,)),
        # Two names differing only in case: the exact name wins over the folded one.
        (
            (replace(ARCHIVE, name="Archive"), replace(DLI, name="archive")),
            ("Archive",),
            (ARCHIVE,),
        ),
        ((replace(ARCHIVE, name="Archive"), replace(DLI, name="archive")), ("archive",), (DLI,)),
    ],
)
def test_typed_tasks_resolve_by_id_then_name_then_name_ignoring_case(known, typed, resolved):
    """An exact id wins over a name, names match ignoring case, and a task named twice counts once."""
    got = resolve_tasks(STREAM, typed, known)
    assert [task.task_id for task in got] == [task.task_id for task in resolved]


async def test_unknown_tasks_are_refused_with_the_tasks_the_stream_has():
    """Tokens that are neither an id nor a name are refused, naming them and the known tasks."""
    w = world(ARCHIVE, DLI)
    with pytest.raises(UnknownTasks) as refused:
        await w.open("orders-archive", "orders-typo", "nope")
    assert refused.value.stream == STREAM
    assert refused.value.unknown == ("orders-typo", "nope")
    assert refused.value.known == (ARCHIVE, DLI)
    assert (w.store.requests, w.store.audit) == ({}, [])


async def test_an_unknown_stream_is_refused_with_dis_answer():
    """A stream DIS does not know is refused with DIS's error, and nothing is stored."""
    w = world()
    command = TaskCommand(TaskAction.START, "no-such-stream", ("orders-archive",), None)
    with pytest.raises(UnknownStream) as refused:
        await w.service().open_request(command, ALICE, INCIDENT)
    assert (refused.value.stream, refused.value.error.code) == ("no-such-stream", "DIS.4301")
    assert (w.store.requests, w.store.audit) == ({}, [])


UNAVAILABLE = [
    *(dis_refusal(kind) for kind in DisErrorKind if kind is not DisErrorKind.USER),
    dis_timeout(),
    dis_answer(500, "DIS.5000"),
]


@pytest.mark.parametrize("error", UNAVAILABLE, ids=lambda error: error.summary)
async def test_dis_unavailable_at_request_time_opens_the_request_with_the_tokens_as_typed(error):
    """When DIS cannot list the tasks the request is opened all the same, saying why."""
    w = world()
    w.dis.list_error = error
    request = await w.open("orders-archive", DLI.task_id)
    assert request.state is RequestState.PENDING
    assert request.state_unknown_because == error.summary
    assert request.tasks == (
        RequestedTask("orders-archive", None, None),
        RequestedTask(DLI.task_id, None, None),
    )
    [requested] = w.audited(AuditKind.REQUESTED)
    assert requested["state_unknown_because"] == error.summary


async def test_tasks_typed_while_dis_was_unavailable_are_resolved_at_execution():
    """Names typed while DIS was down become ids before the call, and the call goes out once."""
    w = world()
    w.dis.list_error = dis_timeout()
    request = await w.open("Orders-Archive", DLI.task_id)
    w.dis.list_error = None
    await w.service().approve(Click(request.id, BOB, INCIDENT))
    done = await w.execute(request.id)
    assert w.dis.act_calls == [ActCall(STREAM, TaskAction.START, (ARCHIVE.task_id, DLI.task_id))]
    assert done.tasks == (
        RequestedTask(ARCHIVE.task_id, "orders-archive", None),
        RequestedTask(DLI.task_id, "orders-to-dli", None),
    )
    assert done.state is RequestState.SUCCEEDED


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        (("orders-archive", ARCHIVE.task_id), (ARCHIVE.task_id,)),
        ((DLI.task_id, "ORDERS-TO-DLI", "orders-archive"), (DLI.task_id, ARCHIVE.task_id)),
        ((OBS.task_id,), (OBS.task_id,)),
    ],
)
async def test_late_resolution_follows_the_rules_of_request_time(typed, sent):
    """Resolved late, tokens map as they would have at request time: one call, each task once."""
    w = world(ARCHIVE, DLI, replace(OBS, name=DLI.task_id))
    w.dis.list_error = dis_timeout()
    request = await w.open(*typed)
    w.dis.list_error = None
    await w.service().approve(Click(request.id, BOB, INCIDENT))
    done = await w.execute(request.id)
    assert w.dis.act_calls == [ActCall(STREAM, TaskAction.START, sent)]
    assert done.task_ids == sent


async def test_a_token_dis_still_does_not_know_is_sent_as_typed_and_fails():
    """A token that is no task even once DIS answers goes out as typed; DIS's refusal says so."""
    w = world()
    w.dis.list_error = dis_timeout()
    request = await w.open("orders-archive", "orders-typo")
    w.dis.list_error = None
    await w.service().approve(Click(request.id, BOB, INCIDENT))
    done = await w.execute(request.id)
    assert w.dis.act_calls == [ActCall(STREAM, TaskAction.START, (ARCHIVE.task_id, "orders-typo"))]
    assert done.state is RequestState.FAILED
    assert done.outcome is not None
    assert (done.outcome.error_code, done.outcome.reach) == ("DIS.4354", Reach.REFUSED)


async def test_tasks_stay_as_typed_when_dis_still_cannot_list_them_at_execution():
    """If DIS still cannot list the tasks when executing, the call goes out with the tokens."""
    w = world()
    w.dis.list_error = dis_timeout()
    request = await w.open("orders-archive")
    await w.service().approve(Click(request.id, BOB, INCIDENT))
    done = await w.execute(request.id)
    assert w.dis.act_calls == [ActCall(STREAM, TaskAction.START, ("orders-archive",))]
    assert done.tasks == (RequestedTask("orders-archive", None, None),)
    assert done.state is RequestState.FAILED


async def test_list_refuses_when_dis_cannot_answer():
    """``/dumptask list`` shows the stream's tasks, or refuses with DIS's error."""
    w = world(ARCHIVE)
    service = w.service()
    assert await service.list_tasks(STREAM, ALICE, INCIDENT) == [ARCHIVE]
    w.dis.list_error = dis_timeout()
    with pytest.raises(DisUnavailable) as refused:
        await service.list_tasks(STREAM, ALICE, INCIDENT)
    assert (refused.value.stream, refused.value.error) == (STREAM, w.dis.list_error)


# -- approvals --------------------------------------------------------------------------------


async def test_the_approval_reaching_the_quorum_executes_and_enqueues_one_job_with_it():
    """Of two required approvals the second executes; its own update creates the execute job."""
    w = world(approvals_required=2)
    request = await w.open()
    first = await w.service().approve(Click(request.id, BOB, INCIDENT))
    assert (first.request.state, first.must_execute) == (RequestState.PENDING, False)
    assert (first.request.approver_ids, w.store.jobs, w.wakes) == ((BOB,), {}, [])
    second = await w.service().approve(Click(request.id, CAROL, INCIDENT))
    assert (second.request.state, second.must_execute) == (RequestState.EXECUTING, True)
    assert (second.request.phase, second.request.decided_by) == (Phase.APPROVED, CAROL)
    assert [(r.state, jobs) for r, jobs in w.store.updates] == [
        (RequestState.PENDING, ()),
        (RequestState.EXECUTING, (f"execute:{request.id}",)),
    ]
    job = w.store.jobs[f"execute:{request.id}"]
    assert (job.kind, job.request_id, job.due_at) == (JobKind.EXECUTE, request.id, START)
    assert len(w.wakes) == 1
    assert [e["quorum_reached"] for e in w.audited(AuditKind.APPROVED)] == [False, True]


@pytest.mark.parametrize(
    ("policy", "approver", "refusal"),
    [
        ({}, ALICE, SelfApproval),
        ({"approvers": ("S0LEADS",)}, DAN, NotAnApprover),
    ],
)
async def test_a_refused_approval_changes_nothing_and_is_audited(policy, approver, refusal):
    """The requester and non-approvers are refused; the request stays pending, unapproved."""
    w = world(**policy)
    request = await w.open()
    with pytest.raises(refusal):
        await w.service().approve(Click(request.id, approver, INCIDENT))
    assert w.stored(request.id) == request
    assert (w.store.jobs, w.dis.act_calls) == ({}, [])
    [refused] = w.audited(AuditKind.REFUSED_CLICK)
    assert refused == {"why": str(refusal())}


async def test_an_approver_cannot_approve_twice():
    """A second click by the same approver is refused, saying how many more are needed."""
    w = world(approvals_required=3)
    request = await w.open()
    await w.service().approve(Click(request.id, BOB, INCIDENT))
    with pytest.raises(AlreadyApproved) as refused:
        await w.service().approve(Click(request.id, BOB, INCIDENT))
    assert (refused.value.request_id, refused.value.missing) == (request.id, 2)
    assert w.stored(request.id).approver_ids == (BOB,)


async def test_an_approval_at_the_deadline_is_refused_and_expires_the_request():
    """A click at the deadline is refused as expired, and the request is closed as expired."""
    w = world()
    request = await w.open()
    w.clock.advance(15 * 60)
    with pytest.raises(RequestExpired):
        await w.service().approve(Click(request.id, BOB, INCIDENT))
    expired = w.stored(request.id)
    assert (expired.state, expired.approvals, expired.decided_at) == (
        RequestState.EXPIRED,
        (),
        w.clock(),
    )
    assert list(w.store.jobs) == [f"deliver:{request.id}"]
    assert len(w.audited(AuditKind.EXPIRED)) == 1


async def test_an_approval_just_before_the_deadline_counts():
    """One second before the deadline the request can still be approved."""
    w = world()
    request = await w.open()
    w.clock.advance(15 * 60 - 1)
    assert (await w.service().approve(Click(request.id, BOB, INCIDENT))).must_execute


async def test_a_decided_request_refuses_further_approvals():
    """Once executing, another approval is refused, saying the state; no second job appears."""
    w = world()
    request = await w.approved()
    with pytest.raises(RequestDecided) as refused:
        await w.service().approve(Click(request.id, CAROL, INCIDENT))
    assert refused.value.state is RequestState.EXECUTING
    assert list(w.store.jobs) == [f"execute:{request.id}"]
    assert w.stored(request.id).approver_ids == (BOB,)


async def test_a_click_from_another_channel_is_refused_and_audited():
    """Approving from a channel other than the card's is refused before any rule runs."""
    w = world()
    request = await w.open()
    with pytest.raises(WrongChannel):
        await w.service().approve(Click(request.id, BOB, RANDOM))
    with pytest.raises(WrongChannel):
        await w.service().cancel(Click(request.id, ALICE, RANDOM))
    assert w.stored(request.id) == request
    assert len(w.audited(AuditKind.REFUSED_CLICK)) == 2


async def test_a_click_on_an_unknown_request_is_refused():
    """A request id the store does not hold is refused as unknown."""
    with pytest.raises(NoSuchRequest) as refused:
        await world().service().approve(Click("dt-nothere2", BOB, INCIDENT))
    assert refused.value.request_id == "dt-nothere2"


async def test_a_lost_update_race_is_retried_and_only_the_stored_update_counts():
    """An approval whose write lost to another writer re-reads and applies itself again."""
    w = world()
    request = await w.open()
    w.store.lose_next_updates(3)
    result = await w.service().approve(Click(request.id, BOB, INCIDENT))
    assert w.store.lost_updates == 3
    assert result.must_execute
    assert result.request == w.stored(request.id)
    assert result.request.version == request.version + 4
    assert [jobs for _, jobs in w.store.updates] == [(f"execute:{request.id}",)]


async def test_a_request_that_keeps_changing_gives_up_with_a_store_error():
    """After losing every one of its races a change gives up instead of looping forever."""
    w = world()
    request = await w.open()
    w.store.lose_next_updates(MAX_RACE_RETRIES)
    with pytest.raises(
        StoreError, match=f"^request {request.id} kept changing under us; giving up$"
    ):
        await w.service().approve(Click(request.id, BOB, INCIDENT))
    assert w.stored(request.id).state is RequestState.PENDING
    assert w.store.jobs == {}
    w.store.lose_next_updates(MAX_RACE_RETRIES - 1)
    assert (await w.service().approve(Click(request.id, BOB, INCIDENT))).must_execute


@pytest.mark.parametrize(
    ("required", "approvers"), [(1, (BOB, CAROL, DAN)), (2, (BOB, CAROL, DAN))]
)
async def test_racing_approvals_execute_exactly_once(required, approvers):
    """Approvals racing on one request: exactly one click executes it, and one job exists."""
    w = world(approvals_required=required)
    request = await w.open()
    w.store.interleave = True
    service = w.service()
    results = await asyncio.gather(
        *(service.approve(Click(request.id, user, INCIDENT)) for user in approvers),
        return_exceptions=True,
    )
    assert w.store.lost_updates == 0
    assert [r.must_execute for r in results if isinstance(r, ClickResult)].count(True) == 1
    refusals = [r for r in results if not isinstance(r, ClickResult)]
    assert all(isinstance(r, RequestDecided) for r in refusals)
    assert len(refusals) == len(approvers) - required
    stored = w.stored(request.id)
    assert (stored.state, len(stored.approvals)) == (RequestState.EXECUTING, required)
    assert list(w.store.jobs) == [f"execute:{request.id}"]
    assert sum(e["quorum_reached"] is True for e in w.audited(AuditKind.APPROVED)) == 1


@pytest.mark.parametrize(
    ("change", "breach"),
    [
        ({"allowed_streams": ("clicks-*",)}, PolicyBreach.STREAM),
        ({"allowed_channels": (RANDOM,)}, PolicyBreach.CHANNEL),
        ({"requesters": (BOB,)}, PolicyBreach.REQUESTER),
    ],
)
async def test_an_approval_under_a_changed_policy_closes_the_request(change, breach):
    """The policy in force at the click decides: a request it forbids is closed, not executed."""
    w = world()
    request = await w.open()
    result = await w.service(**change).approve(Click(request.id, BOB, INCIDENT))
    assert (result.request.state, result.must_execute) == (RequestState.DISALLOWED, False)
    assert (result.request.closed_because, result.request.approvals) == (breach, ())
    assert list(w.store.jobs) == [f"deliver:{request.id}"]
    assert w.audited(AuditKind.DISALLOWED) == [{"because": str(breach)}]
    assert w.audited(AuditKind.APPROVED) == []
    assert w.dis.act_calls == []


async def test_a_policy_change_after_the_deadline_still_refuses_as_expired():
    """An overdue request is expired by a click, even one the policy would now forbid."""
    w = world()
    request = await w.open()
    w.clock.advance(15 * 60)
    with pytest.raises(RequestExpired):
        await w.service(allowed_streams=("clicks-*",)).approve(Click(request.id, BOB, INCIDENT))
    assert w.stored(request.id).state is RequestState.EXPIRED


@pytest.mark.parametrize("user", [ALICE, BOB])
async def test_the_requester_or_an_approver_cancels(user):
    """A cancel closes a pending request, audits it and enqueues its delivery."""
    w = world(approvers=("S0LEADS",))
    request = await w.open()
    cancelled = await w.service().cancel(Click(request.id, user, INCIDENT))
    assert (cancelled.state, cancelled.decided_by) == (RequestState.CANCELLED, user)
    assert cancelled.decided_at == START
    assert list(w.store.jobs) == [f"deliver:{request.id}"]
    assert [event.actor for event in w.store.audit if event.kind == AuditKind.CANCELLED] == [user]
    with pytest.raises(RequestDecided):
        await w.service().approve(Click(request.id, BOB, INCIDENT))


# -- executing --------------------------------------------------------------------------------


async def test_execution_sends_once_recording_sending_before_the_call():
    """The batch call goes out once, after "sending" is stored; the phases follow in order."""
    w = world()
    request = await w.approved("orders-archive", DLI.task_id)
    phase_at_call: list[Phase | None] = []
    w.dis.on_act = lambda _: phase_at_call.append(w.stored(request.id).phase)
    done = await w.execute(request.id)
    assert w.dis.act_calls == [ActCall(STREAM, TaskAction.START, (ARCHIVE.task_id, DLI.task_id))]
    assert phase_at_call == [Phase.SENDING]
    assert w.phases(request.id) == [Phase.APPROVED, Phase.SENDING, Phase.CALLED, Phase.CALLED]
    assert done.call == DisCall(reach=Reach.SENT, dis_request_id="fake-dis-1")
    assert done.state is RequestState.SUCCEEDED


async def test_execution_records_the_call_the_read_back_and_the_outcome():
    """The outcome carries DIS's request id, each task's final state, and when it was known."""
    w = world()
    request = await w.approved("orders-archive", DLI.task_id)
    done = await w.execute(request.id)
    outcome = done.outcome
    assert outcome is not None
    assert [(t.task_id, t.name, t.final_state, t.reached_target) for t in outcome.tasks] == [
        (ARCHIVE.task_id, "orders-archive", TaskState.RUNNING, True),
        (DLI.task_id, "orders-to-dli", TaskState.RUNNING, True),
    ]
    assert (outcome.dis_request_id, outcome.reach, outcome.interrupted) == (
        "fake-dis-1",
        Reach.SENT,
        False,
    )
    assert (outcome.finished_at, outcome.waited_seconds, outcome.error_code) == (START, 0.0, None)
    [call] = w.audited(AuditKind.DIS_CALL)
    assert call == {
        "action": "start",
        "tasks": [ARCHIVE.task_id, DLI.task_id],
        "ok": True,
        "reach": "sent",
        "status": None,
        "code": None,
        "message": None,
        "dis_request_id": "fake-dis-1",
    }
    [verification] = w.audited(AuditKind.VERIFICATION)
    assert verification == {
        "target": "RUNNING",
        "states": {ARCHIVE.task_id: "RUNNING", DLI.task_id: "RUNNING"},
    }


async def test_a_stop_waits_for_paused_and_succeeds_at_once():
    """A stop's target is PAUSED: tasks paused by the call succeed without waiting."""
    w = world()
    request = await w.approved("orders-to-obs", action=TaskAction.STOP)
    done = await w.execute(request.id)
    assert w.dis.act_calls == [ActCall(STREAM, TaskAction.STOP, (OBS.task_id,))]
    assert done.state is RequestState.SUCCEEDED
    assert done.outcome is not None
    assert [(t.final_state, t.reached_target) for t in done.outcome.tasks] == [
        (TaskState.PAUSED, True)
    ]
    assert w.clock.slept == []
    assert w.audited(AuditKind.VERIFICATION)[0]["target"] == "PAUSED"


async def test_only_the_target_state_counts_as_reached():
    """A task that went to ERROR or stayed STARTING did not reach its target; one that did, did."""
    w = world()
    w.dis.act_states = {DLI.task_id: TaskState.ERROR}
    request = await w.approved("orders-archive", DLI.task_id)
    done = await w.execute(request.id)
    assert done.state is RequestState.PARTIAL
    assert done.outcome is not None
    assert [(t.final_state, t.reached_target) for t in done.outcome.tasks] == [
        (TaskState.RUNNING, True),
        (TaskState.ERROR, False),
    ]


async def test_a_task_still_starting_at_the_deadline_has_not_reached_its_target():
    """A 2xx call whose task never left STARTING fails: the state read back decides."""
    w = world()
    w.dis.act_states = {ARCHIVE.task_id: TaskState.STARTING}
    request = await w.approved()
    done = await w.execute(request.id)
    assert done.state is RequestState.FAILED
    assert done.outcome is not None
    assert [(t.final_state, t.reached_target) for t in done.outcome.tasks] == [
        (TaskState.STARTING, False)
    ]


@pytest.mark.parametrize(
    ("tasks", "error", "lands", "state", "reached"),
    [
        (("orders-archive", "orders-to-dli"), None, False, RequestState.SUCCEEDED, [True, True]),
        (("orders-archive", "orders-to-obs"), dis_refusal(DisErrorKind.BUG), False,
         RequestState.PARTIAL, [False, True]),
        (("orders-archive",), dis_refusal(DisErrorKind.PERMISSION), False, RequestState.FAILED,
         [False]),
        (("orders-archive",), dis_timeout(), False, RequestState.UNKNOWN, [False]),
        (("orders-archive",), dis_timeout(), True, RequestState.SUCCEEDED, [True]),
        (("orders-archive",), dis_answer(502, "APIGW.0502"), True, RequestState.SUCCEEDED, [True]),
        (("orders-to-obs",), dis_refusal(DisErrorKind.THROTTLED), False, RequestState.SUCCEEDED,
         [True]),
    ],
    ids=["all", "some", "none-refused", "none-uncertain", "landed-timeout", "landed-502",
         "already-running"],
)  # fmt: skip
async def test_the_outcome_comes_from_the_tasks_read_back(tasks, error, lands, state, reached):
    """All at target succeeds, some is partial; none fails if refused and is unknown if not."""
    w = world()
    w.dis.act_error, w.dis.act_lands = error, lands
    request = await w.approved(*tasks)
    done = await w.execute(request.id)
    assert done.state is state
    assert done.outcome is not None
    assert [t.reached_target for t in done.outcome.tasks] == reached
    assert len(w.dis.act_calls) == 1


@pytest.mark.parametrize("kind", list(DisErrorKind))
async def test_a_refused_call_fails_with_dis_error_and_advice(kind):
    """Each kind of refusal is recorded as refused, with DIS's code and what to do next."""
    w = world()
    error = dis_refusal(kind)
    w.dis.act_error = error
    request = await w.approved()
    done = await w.execute(request.id)
    assert done.state is RequestState.FAILED
    assert done.call == DisCall(
        reach=Reach.REFUSED,
        dis_request_id=error.request_id,
        status=error.status,
        error_code=error.code or kind.value,
        error_message=error.message,
        error_advice=kind.advice,
    )
    outcome = done.outcome
    assert outcome is not None
    assert (outcome.reach, outcome.error_code, outcome.error_message, outcome.error_advice) == (
        Reach.REFUSED,
        done.call.error_code,
        error.message,
        kind.advice,
    )
    assert outcome.dis_request_id == (f"req-{REFUSALS[kind][1]}" if kind in REFUSALS else None)
    audited = w.audited(AuditKind.DIS_CALL)[0]
    assert (audited["ok"], audited["reach"], audited["status"]) == (False, "refused", error.status)
    assert (w.clock.slept, w.dis.list_calls.count(STREAM)) == ([], 3), "at request, before, after"


@pytest.mark.parametrize("error", [dis_timeout(), dis_answer(500, "DIS.5000")], ids=str)
async def test_an_uncertain_call_is_read_back_until_the_deadline_and_is_unknown(error):
    """A call that may have landed is read back for the whole verify timeout, then unknown."""
    w = world()
    w.dis.act_error = error
    request = await w.approved()
    done = await w.execute(request.id)
    assert done.state is RequestState.UNKNOWN
    assert done.call is not None
    assert (done.call.reach, done.call.status) == (Reach.UNCERTAIN, error.status)
    assert sum(w.clock.slept) == TIMING.verify_timeout


async def test_the_verify_loop_is_bounded_by_the_wall_clock():
    """Tasks that never settle are read every interval until the timeout, never longer."""
    w = world()
    w.dis.act_states = {ARCHIVE.task_id: TaskState.STARTING}
    request = await w.approved()
    reads_before = len(w.dis.list_calls)
    done = await w.execute(request.id)
    assert w.clock.slept == [2.0] * 5
    assert len(w.dis.list_calls) - reads_before == 7, "one read before the call, six after"
    assert done.outcome is not None
    assert done.outcome.waited_seconds == 10.0
    assert done.outcome.finished_at == START + timedelta(seconds=10)


async def test_the_last_sleep_stops_at_the_deadline():
    """With an interval that does not divide the timeout, the last pause ends at the deadline."""
    w = world()
    w.dis.act_states = {ARCHIVE.task_id: TaskState.STARTING}
    request = await w.approved()
    await w.execute(request.id, w.service(replace(TIMING, verify_interval=3.0)))
    assert w.clock.slept == [3.0, 3.0, 3.0, 1.0]


async def test_the_verify_loop_stops_as_soon_as_every_task_settles():
    """A task reaching its target after two reads ends the read-back at once."""
    w = world()
    w.dis.act_states = {ARCHIVE.task_id: TaskState.STARTING, DLI.task_id: TaskState.STARTING}
    request = await w.approved("orders-archive", "orders-to-dli")
    w.dis.schedule(ARCHIVE.task_id, TaskState.RUNNING, after_reads=2)
    w.dis.schedule(DLI.task_id, TaskState.ABNORMAL, after_reads=3)
    done = await w.execute(request.id)
    assert w.clock.slept == [2.0, 2.0]
    assert done.state is RequestState.PARTIAL
    assert done.outcome is not None
    assert done.outcome.waited_seconds == 4.0


@pytest.mark.parametrize("failure", [TaskState.ERROR, TaskState.ABNORMAL, TaskState.DELETE])
async def test_a_task_in_a_failure_state_settles_the_read_back(failure):
    """ERROR, ABNORMAL and DELETE will not move on by themselves: no more waiting."""
    w = world()
    w.dis.act_states = {ARCHIVE.task_id: failure}
    request = await w.approved()
    done = await w.execute(request.id)
    assert (done.state, w.clock.slept) == (RequestState.FAILED, [])


async def test_a_read_back_failure_keeps_the_last_states_read():
    """A read that fails in the middle of the read-back does not forget what DIS said before."""
    w = world()
    w.dis.act_states = {ARCHIVE.task_id: TaskState.STARTING}
    request = await w.approved()
    w.dis.fail_reads(dis_timeout(), after_reads=2)
    done = await w.execute(request.id)
    assert done.outcome is not None
    assert [t.final_state for t in done.outcome.tasks] == [TaskState.STARTING]
    assert sum(w.clock.slept) == TIMING.verify_timeout


async def test_a_read_back_dis_never_answers_leaves_the_final_states_unknown():
    """When no read-back succeeds, each task's final state is unknown and nothing reached."""
    w = world()
    request = await w.approved()
    w.dis.list_error = dis_timeout()
    done = await w.execute(request.id)
    assert done.outcome is not None
    assert [(t.final_state, t.reached_target) for t in done.outcome.tasks] == [(None, False)]
    assert done.state is RequestState.FAILED
    assert w.audited(AuditKind.VERIFICATION)[0]["states"] == {ARCHIVE.task_id: "None"}


async def test_reaching_a_final_state_enqueues_the_deliver_job_in_the_same_update():
    """The update that records the outcome creates the deliver job, and wakes the runner."""
    w = world()
    request = await w.approved()
    wakes = len(w.wakes)
    await w.execute(request.id)
    final, jobs = w.store.updates[-1]
    assert (final.state, jobs) == (RequestState.SUCCEEDED, (f"deliver:{request.id}",))
    assert [jobs for _, jobs in w.store.updates[:-1]] == [(f"execute:{request.id}",), (), ()]
    assert len(w.wakes) == wakes + 1
    job = w.store.jobs[f"deliver:{request.id}"]
    assert (job.kind, job.request_id) == (JobKind.DELIVER, request.id)


async def test_the_deliver_job_shows_the_latest_request_and_audits_it():
    """Delivery shows the request as stored now (not as the job found it) and audits the route."""
    w = world()
    request = await w.approved()
    await w.execute(request.id)
    await w.service().attach_card(w.stored(request.id), "1700000000.000200")
    held = await w.claim(f"deliver:{request.id}")
    await w.service().run_job(held)
    [(kind, delivered)] = [e for e in w.notifier.events if e[0] == "deliver"]
    assert (kind, delivered) == ("deliver", w.stored(request.id))
    assert delivered.card_ts == "1700000000.000200"
    assert w.audited(AuditKind.DELIVERED) == [{"state": "succeeded", "route": "thread"}]
    assert w.audited(AuditKind.CARD_POSTED) == [{"ts": "1700000000.000200"}]


async def test_a_policy_change_before_execution_closes_the_request_without_calling_dis():
    """The execute job checks the policy again: a request it now forbids is closed, unsent."""
    w = world()
    request = await w.approved()
    reads = len(w.dis.list_calls)
    done = await w.execute(request.id, w.service(allowed_streams=("clicks-*",)))
    assert (done.state, done.closed_because) == (RequestState.DISALLOWED, PolicyBreach.STREAM)
    assert (w.dis.act_calls, len(w.dis.list_calls)) == ([], reads)
    assert f"deliver:{request.id}" in w.store.jobs
    assert w.audited(AuditKind.DISALLOWED) == [{"because": "stream"}]


# -- reruns and takeovers ---------------------------------------------------------------------


async def test_an_owner_that_lost_its_lease_stops_before_the_call():
    """If another owner took the job over, the old one changes nothing and never calls DIS."""
    w = world()
    request = await w.approved()
    held = await w.claim(f"execute:{request.id}")
    w.lease_clock.advance(LEASE_SECONDS + 1)
    await w.claim(f"execute:{request.id}", owner="other")
    with pytest.raises(LeaseLostError):
        await w.service().run_job(held)
    assert w.dis.act_calls == []
    assert w.stored(request.id) == request


async def test_a_lease_lost_during_the_call_leaves_it_sending_and_never_resends():
    """An owner whose lease lapses mid-call records nothing more; the next owner only reads back."""
    w = world()
    request = await w.approved()
    held = await w.claim(f"execute:{request.id}")
    w.dis.on_act = lambda _: w.lease_clock.advance(LEASE_SECONDS + 1)
    with pytest.raises(LeaseLostError):
        await w.service().run_job(held)
    assert w.stored(request.id).phase is Phase.SENDING
    await w.service().run_job(await w.claim(f"execute:{request.id}", owner="other"))
    done = w.stored(request.id)
    assert len(w.dis.act_calls) == 1
    assert done.outcome is not None
    assert (done.outcome.reach, done.outcome.interrupted) == (Reach.INTERRUPTED, True)
    assert done.state is RequestState.SUCCEEDED


@pytest.mark.parametrize(
    ("landed", "state"), [(False, RequestState.UNKNOWN), (True, RequestState.SUCCEEDED)]
)
async def test_a_takeover_of_a_request_left_sending_reads_back_and_never_calls_again(landed, state):
    """After a crash during the call, the next owner reads the tasks back and says so."""
    w = world()
    request = await w.approved()

    def die(_: ActCall) -> None:
        raise ProcessDiedError

    w.dis.on_act = die
    with pytest.raises(ProcessDiedError):
        await w.execute(request.id)
    assert w.stored(request.id).phase is Phase.SENDING
    if landed:
        w.dis.schedule(ARCHIVE.task_id, TaskState.RUNNING, after_reads=0)
    w.lease_clock.advance(LEASE_SECONDS + 1)
    held = await w.claim(f"execute:{request.id}", owner="other")
    assert held.job.taken_over
    await w.service().run_job(held)
    done = w.stored(request.id)
    assert len(w.dis.act_calls) == 1
    assert done.state is state
    assert done.call == DisCall(reach=Reach.INTERRUPTED)
    assert done.outcome is not None
    assert (done.outcome.reach, done.outcome.interrupted) == (Reach.INTERRUPTED, True)
    assert [kind for kind, _ in w.notifier.events if kind == "reading_back"] == ["reading_back"]
    assert w.phases(request.id)[-3:] == [Phase.SENDING, Phase.CALLED, Phase.CALLED]


async def test_a_rerun_of_a_called_request_only_verifies():
    """When the call's answer was recorded before the crash, a rerun only reads back."""
    w = world()
    request = await w.approved()
    call = DisCall(reach=Reach.SENT, dis_request_id="dis-req-1")
    await store_change(w, request.id, lifecycle.mark_sending)
    await store_change(w, request.id, lambda r: lifecycle.record_call(r, call))
    w.dis.schedule(ARCHIVE.task_id, TaskState.RUNNING, after_reads=0)
    done = await w.execute(request.id)
    assert w.dis.act_calls == []
    assert (done.state, done.call) == (RequestState.SUCCEEDED, call)
    assert done.outcome is not None
    assert (done.outcome.reach, done.outcome.dis_request_id) == (Reach.SENT, "dis-req-1")
    assert done.outcome.interrupted
    assert w.notifier.kinds() == ["reading_back"]


async def test_a_rerun_of_a_request_executing_without_a_phase_never_sends():
    """A request stored executing by a bot that recorded no phase may have been sent: read back."""
    w = world()
    request = await w.approved()
    await store_change(w, request.id, lambda r: replace(r, phase=None))
    done = await w.execute(request.id)
    assert w.dis.act_calls == []
    assert done.outcome is not None
    assert (done.outcome.reach, done.state) == (Reach.INTERRUPTED, RequestState.UNKNOWN)


async def test_a_rerun_of_a_finished_request_does_nothing():
    """Running the execute job again after the outcome is stored changes and calls nothing."""
    w = world()
    request = await w.approved()
    held = await w.claim(f"execute:{request.id}")
    service = w.service()
    await service.run_job(held)
    before = (len(w.store.updates), len(w.dis.list_calls), len(w.store.audit))
    await service.run_job(held)
    assert (len(w.store.updates), len(w.dis.list_calls), len(w.store.audit)) == before
    assert len(w.dis.act_calls) == 1


# -- expiry -----------------------------------------------------------------------------------


async def test_expire_closes_only_a_pending_request_past_its_deadline():
    """Before the deadline, or once decided, expiring does nothing; at the deadline it expires."""
    w = world()
    service = w.service()
    request = await w.open()
    assert await service.expire(request) is None
    cancelled = await w.open("orders-to-dli")
    await service.cancel(Click(cancelled.id, ALICE, INCIDENT))
    w.clock.advance(15 * 60)
    assert await service.expire(w.stored(cancelled.id)) is None
    expired = await service.expire(request)
    assert expired is not None
    assert (expired.state, expired.decided_at) == (RequestState.EXPIRED, w.clock())
    assert w.stored(request.id) == expired
    assert [e.request_id for e in w.store.audit if e.kind == AuditKind.EXPIRED] == [request.id]
    assert f"deliver:{request.id}" in w.store.jobs
    assert await service.expire(request) is None


async def test_expire_due_expires_each_overdue_request_once():
    """Each pending request past its deadline is expired once; others are left alone."""
    w = world(ARCHIVE, DLI, OBS, DWS)
    service = w.service()
    first = await w.open()
    w.clock.advance(60)
    second = await w.open("orders-to-dli")
    executing = await w.approved("orders-to-obs")
    w.clock.advance(60)
    fresh = await w.open("orders-to-dws")
    w.clock.advance(14 * 60)
    expired = await service.expire_due()
    assert [r.id for r in expired] == [first.id, second.id]
    assert all(r.state is RequestState.EXPIRED for r in expired)
    assert await service.expire_due() == []
    assert w.stored(fresh.id).state is RequestState.PENDING
    assert w.stored(executing.id).state is RequestState.EXECUTING
    assert len(w.audited(AuditKind.EXPIRED)) == 2


async def test_expire_due_skips_a_request_someone_else_closed_first():
    """A request cancelled between the query and its expiry is not expired, nor reported."""
    w = world()
    service = w.service()
    request = await w.open()
    w.clock.advance(15 * 60)
    overdue = await w.store.pending_expired(w.clock())
    await store_change(w, request.id, lambda r: replace(r, state=RequestState.CANCELLED))

    async def stale(_: object) -> list[Request]:
        return overdue

    w.store.pending_expired = stale  # type: ignore[method-assign]
    assert await service.expire_due() == []
    assert w.audited(AuditKind.EXPIRED) == []


# -- reading ----------------------------------------------------------------------------------


async def test_history_is_shown_in_the_channel_or_to_those_involved():
    """A request's history is shown in its channel, or anywhere to its requester and approvers."""
    w = world()
    request = await w.approved()
    service = w.service()
    shown, trail = await service.history(request.id, DAN, INCIDENT)
    assert shown == w.stored(request.id)
    assert [e.kind for e in trail] == [AuditKind.REQUESTED, AuditKind.APPROVED]
    for user in (ALICE, BOB):
        assert (await service.history(request.id, user, RANDOM))[0] == shown
    with pytest.raises(WrongChannel):
        await service.history(request.id, DAN, RANDOM)
    with pytest.raises(NoSuchRequest):
        await service.history("dt-nothere2", ALICE, INCIDENT)


async def test_recent_lists_the_callers_five_newest_requests():
    """``/dumptask status`` without an id lists the caller's five newest requests, newest first."""
    w = world()
    opened = []
    for _ in range(6):
        opened.append(await w.open())
        await w.service().cancel(Click(opened[-1].id, ALICE, INCIDENT))
        w.clock.advance(1)
    await w.open(user=BOB)
    recent = await w.service().recent(ALICE)
    assert [r.id for r in recent] == [r.id for r in reversed(opened[1:])]


# -- what people and operators are told -------------------------------------------------------


async def test_the_audit_trail_tells_the_whole_story_of_a_request():
    """Every step is audited once, for the request, by whoever took it, at the time it happened."""
    w = world()
    request = await w.open()
    w.clock.advance(30)
    await w.service().attach_card(request, "1700000000.000100")
    await w.service().approve(Click(request.id, BOB, INCIDENT))
    await w.execute(request.id)
    await w.service().run_job(await w.claim(f"deliver:{request.id}"))
    assert [(e.kind, e.actor, e.request_id, e.at) for e in w.store.audit] == [
        (AuditKind.REQUESTED, ALICE, request.id, START),
        (AuditKind.CARD_POSTED, "bot", request.id, START + timedelta(seconds=30)),
        (AuditKind.APPROVED, BOB, request.id, START + timedelta(seconds=30)),
        (AuditKind.DIS_CALL, "bot", request.id, START + timedelta(seconds=30)),
        (AuditKind.VERIFICATION, "bot", request.id, START + timedelta(seconds=30)),
        (AuditKind.DELIVERED, "bot", request.id, START + timedelta(seconds=30)),
    ]
    assert w.audited(AuditKind.APPROVED) == [
        {"approvals": 1, "required": 1, "quorum_reached": True}
    ]


async def test_refused_and_closing_clicks_are_audited_with_who_and_why():
    """Refused clicks say who clicked and why; cancel, expiry and policy closures say who closed."""
    w = world(approvals_required=2)
    service = w.service()
    cancelled = await w.open()
    expired = await w.open("orders-to-dli")
    disallowed = await w.open("orders-to-obs")
    for call in (
        service.approve(Click(cancelled.id, BOB, RANDOM)),
        service.approve(Click(cancelled.id, ALICE, INCIDENT)),
    ):
        with pytest.raises(Refusal):
            await call
    await service.cancel(Click(cancelled.id, ALICE, INCIDENT))
    await w.service(allowed_channels=(RANDOM,)).approve(Click(disallowed.id, CAROL, INCIDENT))
    w.clock.advance(15 * 60)
    await service.expire_due()
    trail = [(e.request_id, e.kind, e.actor, dict(e.detail)) for e in w.store.audit]
    assert [entry for entry in trail if entry[1] != AuditKind.REQUESTED] == [
        (
            cancelled.id,
            AuditKind.REFUSED_CLICK,
            BOB,
            {"why": f"clicked from channel {RANDOM}, not the request's"},
        ),
        (
            cancelled.id,
            AuditKind.REFUSED_CLICK,
            ALICE,
            {"why": "requesters may not approve their own request"},
        ),
        (cancelled.id, AuditKind.CANCELLED, ALICE, {}),
        (disallowed.id, AuditKind.DISALLOWED, CAROL, {"because": "channel"}),
        (expired.id, AuditKind.EXPIRED, "bot", {}),
    ]


async def test_a_call_refused_by_dis_is_audited_with_its_answer():
    """The audit of a failed call keeps DIS's status, code, message and request id."""
    w = world()
    w.dis.act_error = dis_refusal(DisErrorKind.PERMISSION)
    request = await w.approved()
    await w.execute(request.id)
    [call] = w.audited(AuditKind.DIS_CALL)
    assert call == {
        "action": "start",
        "tasks": [ARCHIVE.task_id],
        "ok": False,
        "reach": "refused",
        "status": 403,
        "code": "DIS.4116",
        "message": "answered DIS.4116",
        "dis_request_id": "req-DIS.4116",
    }


async def test_a_request_closed_by_policy_before_execution_is_audited_by_the_bot():
    """The execute job that closes a request under a changed policy audits it as the bot's act."""
    w = world()
    request = await w.approved()
    done = await w.execute(request.id, w.service(requesters=(DAN,)))
    assert (done.state, done.decided_at) == (RequestState.DISALLOWED, START)
    [event] = [e for e in w.store.audit if e.kind == AuditKind.DISALLOWED]
    assert (event.actor, event.request_id, dict(event.detail)) == (
        "bot",
        request.id,
        {"because": "requester"},
    )


async def test_a_request_closed_by_policy_at_approval_records_when():
    """A request the policy closes at a click is decided at that moment."""
    w = world()
    request = await w.open()
    w.clock.advance(60)
    result = await w.service(allowed_streams=("clicks-*",)).approve(
        Click(request.id, BOB, INCIDENT)
    )
    assert result.request.decided_at == START + timedelta(seconds=60)


async def test_a_policy_that_still_allows_the_channel_lets_the_request_execute():
    """Listing the request's channel among the allowed ones is no breach."""
    w = world()
    request = await w.approved()
    done = await w.execute(request.id, w.service(allowed_channels=(RANDOM, INCIDENT)))
    assert done.state is RequestState.SUCCEEDED


def refusal_cases() -> list[tuple[str, Any, type[Refusal], dict[str, object], str]]:
    """(case, how to provoke it, refusal, its facts, its message for the audit trail)."""
    return [
        (
            "channel",
            lambda w: w.service(allowed_channels=(RANDOM,)).check_caller(ALICE, INCIDENT, STREAM),
            ChannelNotAllowed,
            {"allowed": (RANDOM,)},
            "the command is not allowed in this channel",
        ),
        (
            "stream",
            lambda w: w.service(allowed_streams=("clicks-*",)).check_caller(
                ALICE, INCIDENT, STREAM
            ),
            StreamNotAllowed,
            {"stream": STREAM, "allowed": ("clicks-*",)},
            f"stream {STREAM!r} is not allowed",
        ),
        (
            "requester",
            lambda w: w.service(requesters=(BOB,)).check_caller(ALICE, INCIDENT, STREAM),
            NotARequester,
            {},
            "not one of the requesters",
        ),
        (
            "unknown tasks",
            lambda w: w.open("typo-1", "typo-2"),
            UnknownTasks,
            {"unknown": ("typo-1", "typo-2")},
            f"stream {STREAM!r} has no task 'typo-1', 'typo-2'",
        ),
        (
            "unknown stream",
            lambda w: w.service().open_request(
                TaskCommand(TaskAction.START, "nope", ("x",), None), ALICE, INCIDENT
            ),
            UnknownStream,
            {"stream": "nope"},
            "DIS does not know stream 'nope': DIS.4301: Stream does not exist. (HTTP 400)",
        ),
        (
            "list of an unknown stream",
            lambda w: w.service().list_tasks("nope", ALICE, INCIDENT),
            UnknownStream,
            {"stream": "nope"},
            "DIS does not know stream 'nope': DIS.4301: Stream does not exist. (HTTP 400)",
        ),
        (
            "list unavailable",
            lambda w: _failing_list(w).service().list_tasks(STREAM, ALICE, INCIDENT),
            DisUnavailable,
            {"stream": STREAM},
            f"could not list stream {STREAM!r}: DIS did not answer in time (ReadTimeout)",
        ),
        (
            "no such request",
            lambda w: w.service().history("dt-nothere2", ALICE, INCIDENT),
            NoSuchRequest,
            {"request_id": "dt-nothere2"},
            "there is no request 'dt-nothere2'",
        ),
    ]


def _failing_list(w: World) -> World:
    w.dis.list_error = dis_timeout()
    return w


@pytest.mark.parametrize(
    ("provoke", "refusal", "facts", "message"),
    [case[1:] for case in refusal_cases()],
    ids=[case[0] for case in refusal_cases()],
)
async def test_refusals_carry_their_facts_and_a_plain_message(provoke, refusal, facts, message):
    """Each refusal holds what the Slack layer words, and a message the audit trail keeps."""
    w = world()
    with pytest.raises(refusal) as refused:
        await provoke(w)
    assert {name: getattr(refused.value, name) for name in facts} == facts
    assert str(refused.value) == message


@pytest.mark.parametrize("where", ["click", "history"])
async def test_a_wrong_channel_refusal_names_the_request_and_its_channel(where):
    """Refused for the wrong channel, the caller learns which request and where it belongs."""
    w = world()
    request = await w.open()
    service = w.service()
    asking = (
        service.approve(Click(request.id, BOB, RANDOM))
        if where == "click"
        else service.history(request.id, DAN, RANDOM)
    )
    with pytest.raises(WrongChannel) as refused:
        await asking
    assert (refused.value.request_id, refused.value.channel) == (request.id, INCIDENT)
    assert str(refused.value) == f"request {request.id} belongs to another channel"


async def test_list_is_refused_outside_the_policy():
    """``/dumptask list`` is held to the same channels, streams and requesters as requests."""
    w = world()
    for service, refusal in (
        (w.service(allowed_channels=(RANDOM,)), ChannelNotAllowed),
        (w.service(allowed_streams=("clicks-*",)), StreamNotAllowed),
        (w.service(requesters=(BOB,)), NotARequester),
    ):
        with pytest.raises(refusal):
            await service.list_tasks(STREAM, ALICE, INCIDENT)
    assert w.dis.list_calls == []


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"allowed_channels": (RANDOM,)}, ChannelNotAllowed),
        ({"allowed_streams": ("x-*",)}, StreamNotAllowed),
    ],
)
async def test_a_request_outside_the_policy_is_refused_before_dis_is_asked(change, refusal):
    """A start from a channel or for a stream the policy excludes is refused; nothing is stored."""
    w = world()
    command = TaskCommand(TaskAction.START, STREAM, ("orders-archive",), None)
    with pytest.raises(refusal):
        await w.service(**change).open_request(command, ALICE, INCIDENT)
    assert (w.dis.list_calls, w.store.requests) == ([], {})


async def in_fresh_context(work: Coroutine[Any, Any, object]) -> dict[str, str]:
    """Run ``work`` in a task with an empty log context and return the context it left."""
    context = contextvars.Context()
    await asyncio.create_task(work, context=context)
    return dict(context.run(current_context))


async def test_every_log_line_of_a_job_names_its_request():
    """The execute and deliver jobs bind the request, stream, action and channel for their logs."""
    w = world()
    request = await w.approved(action=TaskAction.STOP)
    expected = {"request_id": request.id, "stream": STREAM, "action": "stop", "channel": INCIDENT}
    for job in ("execute", "deliver"):
        held = await w.claim(f"{job}:{request.id}")
        assert await in_fresh_context(w.service().run_job(held)) == expected


async def test_log_lines_of_requests_and_clicks_name_the_stream_and_action():
    """Opening a request binds its id, stream and action; a click binds the stream and action."""
    w = world()
    command = TaskCommand(TaskAction.START, STREAM, ("orders-archive",), None)
    opened = await in_fresh_context(w.service().open_request(command, ALICE, INCIDENT))
    [request] = w.store.requests.values()
    assert opened == {"request_id": request.id, "stream": STREAM, "action": "start"}
    clicked = await in_fresh_context(w.service().approve(Click(request.id, BOB, INCIDENT)))
    assert clicked == {"stream": STREAM, "action": "start"}


class StuckNotifier(RecordingNotifier):
    """Slack at its worst: card updates fail and thread replies never return."""

    async def request_changed(self, request: Request) -> None:
        await super().request_changed(request)
        raise RuntimeError("Slack is down")

    async def reading_back(self, request: Request) -> None:
        await super().reading_back(request)
        await asyncio.Event().wait()


async def test_slack_trouble_never_holds_back_an_execution():
    """A failing card update and a reply that never returns are given up after their bound."""
    w = world()
    w.notifier = StuckNotifier()
    request = await w.approved()
    await store_change(w, request.id, lifecycle.mark_sending)
    service = w.service(replace(TIMING, card_update_seconds=0.01))
    async with asyncio.timeout(5):
        done = await w.execute(request.id, service)
    assert done.state is RequestState.UNKNOWN
    assert w.notifier.kinds() == ["reading_back"]


async def test_the_card_is_updated_as_the_call_goes_out():
    """While the call is under way the card shows the approved request, without waiting on Slack."""
    w = world()
    request = await w.approved()
    w.store.interleave = True
    await w.execute(request.id)
    [(kind, shown)] = w.notifier.events
    assert (kind, shown.id, shown.state, shown.phase) == (
        "request_changed",
        request.id,
        RequestState.EXECUTING,
        Phase.APPROVED,
    )


async def test_the_reading_back_note_is_about_the_request():
    """The note that the bot is reading back after an interruption names the request."""
    w = world()
    request = await w.approved()
    await store_change(w, request.id, lifecycle.mark_sending)
    await w.execute(request.id)
    [(kind, shown)] = w.notifier.events
    assert (kind, shown.id, shown.phase) == ("reading_back", request.id, Phase.SENDING)


async def test_the_time_waited_is_measured_on_the_monotonic_clock():
    """The wait is the monotonic time the read-back took, to a tenth of a second."""
    w = world()
    w.clock.advance(100)
    w.dis.act_states = {ARCHIVE.task_id: TaskState.STARTING}
    request = await w.approved()
    w.dis.schedule(ARCHIVE.task_id, TaskState.RUNNING, after_reads=2)
    done = await w.execute(request.id, w.service(replace(TIMING, verify_interval=0.75)))
    assert done.outcome is not None
    assert done.outcome.waited_seconds == 0.8


# -- leases -----------------------------------------------------------------------------------


async def _sending(w: World, request: Request) -> None:
    await store_change(w, request.id, lifecycle.mark_sending)


async def _called(w: World, request: Request) -> None:
    await _sending(w, request)
    call = DisCall(reach=Reach.SENT, dis_request_id="dis-req-1")
    await store_change(w, request.id, lambda r: lifecycle.record_call(r, call))


async def _nothing(w: World, request: Request) -> None:
    del w, request


@pytest.mark.parametrize(
    ("unknown", "prepare", "policy"),
    [
        (False, _nothing, {}),
        (True, _nothing, {}),
        (False, _nothing, {"allowed_streams": ("clicks-*",)}),
        (False, _sending, {}),
        (False, _called, {}),
    ],
    ids=["approved", "tasks-unresolved", "policy-changed", "left-sending", "left-called"],
)
async def test_an_owner_without_its_lease_changes_nothing(unknown, prepare, policy):
    """Whatever is left to do, an owner whose lease lapsed stores nothing and calls nothing."""
    w = world()
    if unknown:
        w.dis.list_error = dis_timeout()
    request = await w.open()
    w.dis.list_error = None
    await w.service().approve(Click(request.id, BOB, INCIDENT))
    await prepare(w, request)
    before = w.stored(request.id)
    held = await w.claim(f"execute:{request.id}")
    w.lease_clock.advance(LEASE_SECONDS)
    with pytest.raises(LeaseLostError):
        await w.service(**policy).run_job(held)
    assert w.stored(request.id) == before
    assert w.stored(request.id).version == before.version
    assert w.dis.act_calls == []


async def test_a_caller_within_a_restrictive_policy_is_served():
    """A listed requester in an allowed channel, on an allowed stream, may list and ask."""
    w = world(allowed_channels=(INCIDENT,), requesters=(ALICE,), allowed_streams=("orders-*",))
    assert await w.service().list_tasks(STREAM, ALICE, INCIDENT) == [ARCHIVE, DLI, OBS]
    assert (await w.open()).state is RequestState.PENDING


async def test_a_refused_cancel_is_audited_with_who_clicked():
    """A cancel by someone who may not, or from another channel, is audited under their name."""
    w = world(approvers=("S0LEADS",))
    request = await w.open()
    with pytest.raises(NotAllowedToCancel):
        await w.service().cancel(Click(request.id, DAN, INCIDENT))
    with pytest.raises(WrongChannel):
        await w.service().cancel(Click(request.id, ALICE, RANDOM))
    refused = [(e.actor, e.request_id) for e in w.store.audit if e.kind == AuditKind.REFUSED_CLICK]
    assert refused == [(DAN, request.id), (ALICE, request.id)]


async def test_every_audit_event_is_logged_with_its_request(caplog):
    """The audit trail is mirrored in the log: kind, actor (or nobody) and the request id."""
    caplog.set_level(logging.INFO, logger="bot.service")
    w = world()
    request = await w.open()
    await w.service().audit(AuditKind.EXPIRED, None, None)
    lines = [(r.getMessage(), r.__dict__.get("request_id")) for r in caplog.records]
    assert lines == [
        (f"audit: requested by {ALICE}", request.id),
        ("audit: expired by nobody", None),
    ]


async def test_slack_and_dis_trouble_during_execution_is_logged(caplog):
    """A card update given up and a read-back DIS did not answer are logged with the cause."""
    caplog.set_level(logging.WARNING, logger="bot.service")
    w = world()
    w.notifier = StuckNotifier()
    request = await w.approved()
    await store_change(w, request.id, lifecycle.mark_sending)
    w.dis.fail_reads(dis_timeout(), after_reads=0)
    await w.execute(request.id, w.service(replace(TIMING, card_update_seconds=0.01)))
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "could not update Slack right away (); the outcome follows"
    assert messages[1] == (
        f"could not read back {request.id}: DIS did not answer in time (ReadTimeout)"
    )
