"""The job runner: claims due work, holds each lease while working, backs off, drains on shutdown."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.jobs import HeldJob, JobKind, JobState, LeaseLostError, deliver_job, execute_job
from bot.runner import JobRunner, backoff
from tests.fakes import START, FakeClock, FakeStore


def runner(store: FakeStore, handler, clock: FakeClock, **options) -> JobRunner:
    return JobRunner(
        store,
        handler,
        owner="me",
        clock=clock,
        lease_clock=clock,
        lease_seconds=15,
        renew_seconds=0.01,
        poll_seconds=0.01,
        **options,
    )


async def wait_until(condition) -> None:
    """Poll ``condition`` (a store's state, which has no event to wait on) for up to 5 s."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the fake store offers no event
            await asyncio.sleep(0.005)


async def test_a_due_job_runs_once_and_is_marked_done():
    """A stored job is claimed, handed to the handler under this owner's lease, then done."""
    store, clock, seen = FakeStore(), FakeClock(), []
    await store.enqueue(execute_job("dt-a", START), START)

    async def handle(held: HeldJob) -> None:
        seen.append((held.job.id, held.lease.owner))

    jobs = runner(store, handle, clock)
    jobs.start()
    await wait_until(lambda: store.jobs["execute:dt-a"].state is JobState.DONE)
    await jobs.drain(1)
    assert seen == [("execute:dt-a", "me")]


async def test_a_failed_job_is_queued_again_after_a_back_off():
    """A handler error queues the job again, held by nobody until its back-off lapses."""
    store, clock = FakeStore(), FakeClock()
    await store.enqueue(execute_job("dt-a", START), START)

    async def handle(_: HeldJob) -> None:
        raise RuntimeError("Slack is down")

    jobs = runner(store, handle, clock)
    await jobs.claim_and_start()
    await wait_until(lambda: store.jobs["execute:dt-a"].owner is None)
    job = store.jobs["execute:dt-a"]
    assert job.state is JobState.QUEUED
    assert job.last_error == "RuntimeError('Slack is down')"
    assert job.lease_expires_at is not None
    assert job.lease_expires_at > START + timedelta(seconds=1)
    assert await jobs.claim_and_start() == [], "not before its back-off"
    await jobs.drain(1)


async def test_a_job_that_keeps_failing_ends_dead():
    """After its last attempt a failing job is dead, never claimed again."""
    store, clock = FakeStore(), FakeClock()
    await store.enqueue(execute_job("dt-a", START), START)

    async def handle(_: HeldJob) -> None:
        raise RuntimeError("still down")

    jobs = runner(store, handle, clock, max_attempts=2)
    for _ in range(2):
        await jobs.claim_and_start()
        await wait_until(lambda: store.jobs["execute:dt-a"].owner is None)
        clock.advance(3600)
    assert store.jobs["execute:dt-a"].state is JobState.DEAD
    assert await jobs.claim_and_start() == []


async def test_losing_the_lease_stops_the_work_and_leaves_the_job_to_its_new_owner():
    """When renewal finds another owner, the handler is cancelled and the job is not settled."""
    store, clock = FakeStore(), FakeClock()
    await store.enqueue(execute_job("dt-a", START), START)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handle(_: HeldJob) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    jobs = runner(store, handle, clock)
    await jobs.claim_and_start()
    await started.wait()
    clock.advance(16)
    [_] = await store.claim_due(
        "other",
        due_by=clock(),
        lease_now=clock(),
        lease_until=clock() + timedelta(seconds=15),
        limit=1,
    )
    async with asyncio.timeout(5):
        await cancelled.wait()
    await wait_until(lambda: not jobs.running)
    assert store.jobs["execute:dt-a"].owner == "other"
    assert store.jobs["execute:dt-a"].state is JobState.QUEUED
    await jobs.drain(1)


async def test_a_handler_that_finds_its_lease_lost_does_not_settle():
    """LeaseLostError from the handler leaves the job alone (another owner has it)."""
    store, clock = FakeStore(), FakeClock()
    await store.enqueue(execute_job("dt-a", START), START)

    async def handle(_: HeldJob) -> None:
        raise LeaseLostError("gone")

    jobs = runner(store, handle, clock)
    await jobs.claim_and_start()
    await wait_until(lambda: not jobs.running)
    assert store.jobs["execute:dt-a"].owner == "me"
    assert store.jobs["execute:dt-a"].last_error is None
    await jobs.drain(1)


async def test_drain_lets_quick_work_finish_and_releases_the_rest():
    """Within the grace a job finishes; past it, the job is cancelled and released at once."""
    store, clock = FakeStore(), FakeClock()
    await store.enqueue(execute_job("dt-quick", START), START)
    await store.enqueue(execute_job("dt-slow", START), START)

    async def handle(held: HeldJob) -> None:
        await asyncio.sleep(0.05 if held.job.request_id == "dt-quick" else 60)

    jobs = runner(store, handle, clock)
    await jobs.claim_and_start()
    released = await jobs.drain(0.5)
    assert released == ["execute:dt-slow"]
    assert store.jobs["execute:dt-quick"].state is JobState.DONE
    slow = store.jobs["execute:dt-slow"]
    assert (slow.state, slow.lease_expires_at) == (JobState.QUEUED, None)
    assert await jobs.claim_and_start() == [], "a draining runner claims nothing new"


async def test_wake_makes_the_runner_look_at_once():
    """Work stored between polls is picked up as soon as the runner is woken."""
    store, clock, done = FakeStore(), FakeClock(), asyncio.Event()

    async def handle(_: HeldJob) -> None:
        done.set()

    jobs = JobRunner(store, handle, owner="me", clock=clock, lease_clock=clock, poll_seconds=60)
    jobs.start()
    await asyncio.sleep(0.05)
    await store.enqueue(execute_job("dt-a", START), START)
    jobs.wake()
    async with asyncio.timeout(5):
        await done.wait()
    await jobs.drain(1)


def test_back_off_grows_and_is_capped():
    """Back-off doubles per attempt, with jitter of at most a fifth, and stops growing."""
    assert 1.6 <= backoff(1, jitter=lambda: 0.0) <= 2.4
    assert backoff(3, jitter=lambda: 0.5) == 8.0
    assert backoff(30, jitter=lambda: 1.0) == pytest.approx(144.0)


async def test_drain_shows_the_outcomes_of_work_it_lets_finish():
    """A job finishing during the grace stores a deliver job; the draining runner runs it too."""
    store, clock, ran = FakeStore(), FakeClock(), []
    await store.enqueue(execute_job("dt-a", START), START)

    async def handle(held: HeldJob) -> None:
        ran.append(held.job.kind)
        if held.job.kind is JobKind.EXECUTE:
            await asyncio.sleep(0.05)
            await store.enqueue(deliver_job("dt-a", START), START)

    jobs = runner(store, handle, clock)
    await jobs.claim_and_start()
    assert await jobs.drain(5) == []
    assert ran == [JobKind.EXECUTE, JobKind.DELIVER]
    assert store.jobs["deliver:dt-a"].state is JobState.DONE


async def test_jobs_of_kinds_this_code_does_not_know_are_left_alone():
    """Only known kinds are claimed, so an older replica never trips on a newer one's jobs."""
    store = FakeStore()
    await store.enqueue(execute_job("dt-a", START), START)
    await store.enqueue(deliver_job("dt-b", START), START)
    claimed = await store.claim_due(
        "me",
        due_by=START,
        lease_now=START,
        lease_until=START + timedelta(seconds=15),
        limit=10,
        kinds=(JobKind.DELIVER,),
    )
    assert [job.id for job in claimed] == ["deliver:dt-b"]


async def test_a_freed_slot_takes_the_next_due_job_without_waiting_for_a_poll():
    """With more due jobs than slots, each finished job lets the next one start at once."""
    store, clock, done = FakeStore(), FakeClock(), []
    for name in ("dt-a", "dt-b", "dt-c"):
        await store.enqueue(execute_job(name, START), START)

    async def handle(held: HeldJob) -> None:
        done.append(held.job.id)

    # One slot, and a poll an hour away: only finishing a job can start the next.
    jobs = JobRunner(
        store,
        handle,
        owner="me",
        clock=clock,
        lease_clock=clock,
        poll_seconds=3600,
        concurrency=1,
    )
    jobs.start()
    await wait_until(lambda: len(done) == 3)
    await jobs.drain(1)
    assert sorted(done) == ["execute:dt-a", "execute:dt-b", "execute:dt-c"]
