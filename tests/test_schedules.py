"""Timed pauses, scheduled actions and the retention guard, over the in-memory fakes.

A fake clock drives every deadline: the resume that ends a timed pause, ``--at`` requests, and
the retention warnings at 50 % and 90 % of a paused task's safe window.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.commands import TaskCommand, TimeOfDay
from bot.jobs import HeldJob, Job, JobKind, JobState, Lease
from bot.lifecycle import Policy, Request, RequestDecided, RequestState
from bot.service import (
    BadSchedule,
    Click,
    DumptaskService,
    NotAllowedToResume,
    ScheduleProblem,
)
from bot.vocabulary import DumpTask, TaskAction, TaskState
from tests.fakes import START, FakeClock, FakeDirectory, FakeDis, FakeStore, RecordingNotifier

ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"
INCIDENT, STREAM = "C0INCIDENT", "orders-stream"


def running_task(task_id: str, name: str, last: datetime) -> DumpTask:
    return DumpTask(task_id, name, TaskState.RUNNING, "OBS", None, last)


class World:
    """A service over fakes; the DIS tasks last transferred 20 minutes before START."""

    def __init__(self, **policy: Any) -> None:
        self.store, self.clock = FakeStore(), FakeClock()
        last = START - timedelta(minutes=20)
        self.dis = FakeDis(
            {STREAM: [running_task("id-archive", "orders-archive", last)]}, retention_hours=24
        )
        self.notifier = RecordingNotifier()
        self.service = DumptaskService(
            store=self.store,
            dis=self.dis,
            directory=FakeDirectory({}, zones={ALICE: "Europe/Berlin"}),
            notifier=self.notifier,
            policy=Policy(**policy),
            clock=self.clock,
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
        )

    async def ask(self, action: TaskAction = TaskAction.STOP, **options: Any) -> Request:
        command = TaskCommand(action, STREAM, ("orders-archive",), "INC-7", **options)
        request = await self.service.open_request(command, ALICE, INCIDENT)
        return await self.service.attach_card(request, "1.000001")

    async def run_due(self, *kinds: JobKind) -> list[Job]:
        """Claim and run the due jobs of ``kinds`` (all when none), as the runner would."""
        now = self.clock()
        claimed = await self.store.claim_due(
            "me", due_by=now, lease_now=now, lease_until=now + timedelta(seconds=15), limit=100
        )
        ran = []
        for job in claimed:
            lease = Lease(job.id, "me")
            if kinds and job.kind not in kinds:
                await self.store.release(lease)
                continue
            await self.service.run_job(HeldJob(job, lease, 15, self.clock))
            await self.store.settle_job(lease, JobState.DONE, now)
            ran.append(job)
        return ran

    async def run_everything_due(self) -> None:
        """Run due jobs until none is left (a job may make others due, like a run its execute)."""
        while await self.run_due():
            pass

    async def get(self, request_id: str) -> Request:
        request = await self.store.get(request_id)
        assert request is not None
        return request

    def state(self) -> TaskState:
        return self.dis.streams[STREAM][0].state


async def approve(world: World, request: Request, user: str = BOB) -> None:
    await world.service.approve(Click(request.id, user, INCIDENT, "1.000001"))


# -- timed pause ---------------------------------------------------------------------------------


async def test_a_timed_pause_resumes_by_itself_once_at_its_time():
    """Stop --for 2h: paused now; at two hours one start call, with no second approval."""
    world = World()
    request = await world.ask(pause_for=timedelta(hours=2))
    await approve(world, request)
    await world.run_everything_due()
    paused = await world.get(request.id)
    assert (paused.state, world.state()) == (RequestState.SUCCEEDED, TaskState.PAUSED)
    assert paused.resume_at == START + timedelta(hours=2)
    resume = await world.get(str(paused.resume_id))
    assert (resume.state, resume.action, resume.parent_id) == (
        RequestState.SCHEDULED,
        TaskAction.START,
        request.id,
    )
    assert resume.approvals == paused.approvals, "the pause's approval covers the resume"
    world.clock.advance(2 * 3600 - 1)
    await world.run_everything_due()
    assert world.state() is TaskState.PAUSED
    world.clock.advance(1)
    await world.run_everything_due()
    assert world.state() is TaskState.RUNNING
    assert [call.action for call in world.dis.act_calls] == [TaskAction.STOP, TaskAction.START]
    assert (await world.get(resume.id)).state is RequestState.SUCCEEDED
    world.clock.advance(3600)
    await world.run_everything_due()
    assert len(world.dis.act_calls) == 2, "the resume runs once"


async def test_resume_now_runs_the_resume_early_and_the_schedule_then_does_nothing():
    """The button starts the tasks at once; at the planned time nothing more happens."""
    world = World()
    request = await world.ask(pause_for=timedelta(hours=2))
    await approve(world, request)
    await world.run_everything_due()
    world.clock.advance(600)
    started = await world.service.resume(Click(request.id, ALICE, INCIDENT, "1.000001"))
    assert isinstance(started, Request)
    assert (started.state, started.run_early_by) == (RequestState.EXECUTING, ALICE)
    await world.run_everything_due()
    assert world.state() is TaskState.RUNNING
    world.clock.advance(3 * 3600)
    await world.run_everything_due()
    assert [call.action for call in world.dis.act_calls] == [TaskAction.STOP, TaskAction.START]
    with pytest.raises(RequestDecided):
        await world.service.resume(Click(request.id, ALICE, INCIDENT, "1.000001"))


async def test_only_the_requester_or_an_approver_may_resume_early():
    """With approvers configured, an outsider's Resume now is refused."""
    world = World(approvers=(BOB,))
    request = await world.ask(pause_for=timedelta(hours=1))
    await approve(world, request)
    await world.run_everything_due()
    with pytest.raises(NotAllowedToResume):
        await world.service.resume(Click(request.id, MALLORY, INCIDENT, "1.000001"))


async def test_a_resume_that_runs_late_says_how_late():
    """A resume picked up an hour after its time (the bot was down) records the lateness."""
    world = World()
    request = await world.ask(pause_for=timedelta(minutes=30))
    await approve(world, request)
    await world.run_everything_due()
    world.clock.advance(90 * 60)
    await world.run_everything_due()
    resume = await world.get(str((await world.get(request.id)).resume_id))
    assert resume.state is RequestState.SUCCEEDED
    assert resume.started_late_by == 3600


async def test_a_resume_leaves_tasks_someone_already_started_alone():
    """If the tasks run again before the resume's time, no call is made for them."""
    world = World()
    request = await world.ask(pause_for=timedelta(hours=1))
    await approve(world, request)
    await world.run_everything_due()
    world.dis.set_state(STREAM, "id-archive", TaskState.RUNNING)
    world.clock.advance(3600)
    await world.run_everything_due()
    resume = await world.get(str((await world.get(request.id)).resume_id))
    assert resume.state is RequestState.SUCCEEDED
    assert [call.action for call in world.dis.act_calls] == [TaskAction.STOP]


async def test_an_untimed_resume_asks_for_a_start_of_the_still_paused_tasks():
    """Resume on a pause without --for is a start request (approved like any other)."""
    world = World()
    request = await world.ask()
    await approve(world, request)
    await world.run_everything_due()
    asked = await world.service.resume(Click(request.id, ALICE, INCIDENT, "1.000001"))
    assert isinstance(asked, TaskCommand)
    assert (asked.action, asked.tasks) == (TaskAction.START, ("id-archive",))


# -- scheduled actions ---------------------------------------------------------------------------


async def test_at_runs_the_approved_request_at_its_time_in_the_requesters_zone():
    """--at 14:30 is Berlin time for alice: approved now, scheduled, run then and not before."""
    world = World()
    request = await world.ask(TaskAction.STOP, at=TimeOfDay(14, 30))
    berlin_1430 = datetime(2026, 11, 28, 13, 30, tzinfo=UTC)  # START is 12:00 UTC
    assert request.run_at == berlin_1430
    await approve(world, request)
    assert (await world.get(request.id)).state is RequestState.SCHEDULED
    world.clock.advance((berlin_1430 - START).total_seconds() - 1)
    await world.run_everything_due()
    assert world.dis.act_calls == []
    world.clock.advance(1)
    await world.run_everything_due()
    assert [call.action for call in world.dis.act_calls] == [TaskAction.STOP]
    assert (await world.get(request.id)).started_late_by == 0


async def test_a_scheduled_request_can_be_cancelled_until_its_time():
    """Cancelled before its time, a scheduled request never calls DIS."""
    world = World()
    request = await world.ask(TaskAction.STOP, at=START + timedelta(hours=3))
    await approve(world, request)
    cancelled = await world.service.cancel(Click(request.id, ALICE, INCIDENT, "1.000001"))
    assert cancelled.state is RequestState.CANCELLED
    world.clock.advance(4 * 3600)
    await world.run_everything_due()
    assert world.dis.act_calls == []


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"at": START - timedelta(minutes=1)}, ScheduleProblem.AT_PAST),
        ({"at": START + timedelta(hours=25)}, ScheduleProblem.AT_TOO_FAR),
        ({"pause_for": timedelta(hours=25)}, ScheduleProblem.FOR_TOO_LONG),
        ({"pause_for": timedelta(seconds=30)}, ScheduleProblem.FOR_TOO_SHORT),
        ({"pause_for": timedelta(minutes=1, seconds=30)}, ScheduleProblem.FOR_TOO_SHORT),
    ],
)
async def test_bad_schedules_are_refused_with_the_limit(options, problem):
    """Past or far times, pauses past the retention or in seconds are refused, saying why."""
    world = World()
    with pytest.raises(BadSchedule) as refused:
        await world.ask(**options)
    assert refused.value.problem is problem
    assert await world.store.recent_for(ALICE) == []


async def test_the_demo_accepts_pauses_in_seconds():
    """With seconds allowed (the demo), --for 30s is a timed pause."""
    world = World(allow_seconds=True)
    request = await world.ask(pause_for=timedelta(seconds=30))
    assert request.pause_for == timedelta(seconds=30)


async def test_status_lists_the_callers_and_the_channels_scheduled_actions():
    """Scheduled requests show up for their requester and in their channel."""
    world = World()
    request = await world.ask(TaskAction.STOP, at=START + timedelta(hours=1))
    await approve(world, request)
    assert [r.id for r in await world.service.scheduled_for(ALICE, "C0ELSEWHERE")] == [request.id]
    assert [r.id for r in await world.service.scheduled_for(BOB, INCIDENT)] == [request.id]
    assert await world.service.scheduled_for(BOB, "C0ELSEWHERE") == []


# -- the retention guard -------------------------------------------------------------------------


async def test_a_stop_knows_how_long_each_task_may_stay_paused():
    """24 h retention, last transfer 20 min ago: the task is safe until 23 h 40 m from now."""
    world = World()
    request = await world.ask()
    assert request.retention_hours == 24
    [task] = request.tasks
    assert task.safe_until == START + timedelta(hours=23, minutes=40)


async def test_retention_warnings_come_at_half_and_nine_tenths_of_the_window_once_each():
    """While the task stays paused, one warning at 50 % and one at 90 % of its safe window."""
    world = World()
    request = await world.ask()
    await approve(world, request)
    await world.run_everything_due()
    window = timedelta(hours=23, minutes=40)
    world.clock.advance((window / 2).total_seconds() - 1)
    await world.run_everything_due()
    assert world.notifier.kinds().count("retention_warning") == 0
    world.clock.advance(1)
    await world.run_everything_due()
    world.clock.advance((window * 0.4).total_seconds())
    await world.run_everything_due()
    world.clock.advance(24 * 3600)
    await world.run_everything_due()
    assert world.notifier.kinds().count("retention_warning") == 2
    assert world.notifier.warned == [50, 90]


async def test_no_retention_warning_once_the_tasks_run_again():
    """A task started again before 50 % of its window gets no warning."""
    world = World()
    request = await world.ask()
    await approve(world, request)
    await world.run_everything_due()
    world.dis.set_state(STREAM, "id-archive", TaskState.RUNNING)
    world.clock.advance(24 * 3600)
    await world.run_everything_due()
    assert world.notifier.kinds().count("retention_warning") == 0


async def test_list_shows_the_remaining_window_of_paused_tasks():
    """`list` gives each paused task's remaining safe window; running tasks have none."""
    world = World()
    world.dis.streams[STREAM].append(
        replace(
            running_task("id-dli", "orders-to-dli", START - timedelta(hours=2)),
            state=TaskState.PAUSED,
        )
    )
    tasks, windows = await world.service.list_with_windows(STREAM, ALICE, INCIDENT)
    assert [task.task_id for task in tasks] == ["id-archive", "id-dli"]
    assert windows == {"id-dli": timedelta(hours=22)}
