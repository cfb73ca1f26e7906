"""Jobs and leases in the store, against a SQLite file and PostgreSQL.

A lease is what makes one replica the owner of a job: these tests pin that only a lapsed lease
can be taken over, that a change under a lost lease is refused, and that a change and the job it
implies are stored together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.jobs import Job, JobKind, JobState, Lease, LeaseLostError, deliver_job, execute_job
from bot.lifecycle import Request, RequestedTask, RequestState
from bot.store.sql import SqlStore, open_store
from bot.vocabulary import TaskAction, TaskState

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=15)


def make_request(request_id: str = "dt-jobs2345") -> Request:
    return Request(
        id=request_id,
        action=TaskAction.START,
        stream="orders-stream",
        tasks=(RequestedTask("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED),),
        requester="U0REQUESTER",
        channel="C0INCIDENT",
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
        approvals_required=1,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    opened = await open_store(database_url)
    yield opened
    await opened.close()


async def claim(store: SqlStore, owner: str, at: datetime = NOW, **kwargs: object) -> list[Job]:
    return await store.claim_due(
        owner, due_by=at, lease_now=at, lease_until=at + LEASE, limit=10, **kwargs
    )


async def test_a_due_job_is_claimed_once_with_a_lease(store: SqlStore) -> None:
    """A queued, due job goes to the first claimant, with owner, expiry and one attempt."""
    assert await store.enqueue(execute_job("dt-a", NOW), NOW)
    [job] = await claim(store, "replica-1")
    assert (job.owner, job.lease_expires_at, job.attempts) == ("replica-1", NOW + LEASE, 1)
    assert await claim(store, "replica-2") == []


async def test_a_job_not_yet_due_is_not_claimed(store: SqlStore) -> None:
    """A job due later waits; at its time it is claimed."""
    await store.enqueue(deliver_job("dt-a", NOW + timedelta(minutes=5)), NOW)
    assert await claim(store, "replica-1") == []
    assert len(await claim(store, "replica-1", at=NOW + timedelta(minutes=5))) == 1


async def test_an_existing_job_id_is_not_enqueued_twice(store: SqlStore) -> None:
    """Job ids are natural keys: enqueueing the same job again changes nothing."""
    assert await store.enqueue(execute_job("dt-a", NOW), NOW)
    assert not await store.enqueue(execute_job("dt-a", NOW + timedelta(hours=1)), NOW)
    job = await store.get_job("execute:dt-a")
    assert job is not None
    assert job.due_at == NOW


async def test_only_a_lapsed_lease_is_taken_over(store: SqlStore) -> None:
    """Another owner gets the job only once its lease has lapsed, and then counts an attempt."""
    await store.enqueue(execute_job("dt-a", NOW), NOW)
    await claim(store, "replica-1")
    almost = NOW + LEASE - timedelta(seconds=1)
    assert await claim(store, "replica-2", at=almost) == []
    [taken] = await claim(store, "replica-2", at=NOW + LEASE)
    assert (taken.owner, taken.attempts, taken.taken_over) == ("replica-2", 2, True)


async def test_renewing_keeps_a_slow_owner_in_charge(store: SqlStore) -> None:
    """An owner that renews in time never loses the job, however long it works."""
    await store.enqueue(execute_job("dt-a", NOW), NOW)
    await claim(store, "replica-1")
    lease = Lease("execute:dt-a", "replica-1")
    at = NOW
    for _ in range(5):
        at += timedelta(seconds=10)
        assert await store.renew(lease, at, at + LEASE)
        assert await claim(store, "replica-2", at=at) == []


async def test_a_lapsed_or_foreign_lease_cannot_be_renewed(store: SqlStore) -> None:
    """Renewing fails after the lease lapsed, and for anyone but the owner."""
    await store.enqueue(execute_job("dt-a", NOW), NOW)
    await claim(store, "replica-1")
    assert not await store.renew(Lease("execute:dt-a", "replica-2"), NOW, NOW + LEASE)
    late = NOW + LEASE + timedelta(seconds=1)
    assert not await store.renew(Lease("execute:dt-a", "replica-1"), late, late + LEASE)


async def test_a_change_under_a_lost_lease_is_refused_and_not_stored(store: SqlStore) -> None:
    """The request is not changed when the lease it is changed under has been taken over."""
    await store.create(make_request())
    await store.enqueue(execute_job("dt-jobs2345", NOW), NOW)
    await claim(store, "replica-1")
    await claim(store, "replica-2", at=NOW + LEASE)
    changed = replace(make_request(), reason="changed by a zombie")
    with pytest.raises(LeaseLostError):
        await store.update(
            changed,
            1,
            lease=Lease("execute:dt-jobs2345", "replica-1"),
            lease_now=NOW + LEASE,
            lease_until=NOW + 2 * LEASE,
        )
    stored = await store.get("dt-jobs2345")
    assert stored is not None
    assert (stored.reason, stored.version) == (None, 1)


async def test_a_change_under_a_live_lease_renews_it(store: SqlStore) -> None:
    """The owner's change is stored and extends its lease in the same transaction."""
    await store.create(make_request())
    await store.enqueue(execute_job("dt-jobs2345", NOW), NOW)
    await claim(store, "replica-1")
    later = NOW + timedelta(seconds=10)
    stored = await store.update(
        replace(make_request(), reason="mine"),
        1,
        lease=Lease("execute:dt-jobs2345", "replica-1"),
        lease_now=later,
        lease_until=later + LEASE,
    )
    assert stored is not None
    job = await store.get_job("execute:dt-jobs2345")
    assert job is not None
    assert job.lease_expires_at == later + LEASE


async def test_a_change_and_its_jobs_are_stored_together(store: SqlStore) -> None:
    """Jobs enqueued with a winning update exist; with a losing update they do not."""
    await store.create(make_request())
    executing = replace(make_request(), state=RequestState.EXECUTING)
    assert await store.update(executing, 1, enqueue=[execute_job("dt-jobs2345", NOW)], now=NOW)
    assert await store.update(executing, 1, enqueue=[deliver_job("dt-jobs2345", NOW)]) is None
    assert [job.kind for job in await store.jobs_of("dt-jobs2345")] == [JobKind.EXECUTE]


async def test_settled_jobs_are_never_claimed_again(store: SqlStore) -> None:
    """A done or dead job stays finished."""
    for request_id in ("dt-a", "dt-b"):
        await store.enqueue(execute_job(request_id, NOW), NOW)
    for job in await claim(store, "replica-1"):
        state = JobState.DONE if job.id == "execute:dt-a" else JobState.DEAD
        assert await store.settle_job(Lease(job.id, "replica-1"), state, NOW, error="boom")
    assert await claim(store, "replica-1", at=NOW + timedelta(days=1)) == []
    dead = await store.get_job("execute:dt-b")
    assert dead is not None
    assert (dead.state, dead.last_error) == (JobState.DEAD, "boom")


async def test_a_job_queued_again_waits_for_its_back_off(store: SqlStore) -> None:
    """A failed attempt is queued again, held by nobody, and claimable from its retry time."""
    await store.enqueue(deliver_job("dt-a", NOW), NOW)
    [job] = await claim(store, "replica-1")
    retry_at = NOW + timedelta(seconds=30)
    await store.settle_job(Lease(job.id, "replica-1"), JobState.QUEUED, NOW, retry_at=retry_at)
    assert await claim(store, "replica-2", at=NOW + timedelta(seconds=29)) == []
    [again] = await claim(store, "replica-2", at=retry_at)
    assert (again.owner, again.attempts) == ("replica-2", 2)


async def test_released_jobs_are_taken_over_at_once(store: SqlStore) -> None:
    """A job released on shutdown is claimable immediately, without waiting for its lease."""
    await store.enqueue(execute_job("dt-a", NOW), NOW)
    await claim(store, "replica-1")
    await store.release(Lease("execute:dt-a", "replica-1"))
    [taken] = await claim(store, "replica-2")
    assert taken.owner == "replica-2"


async def test_skipped_jobs_are_left_for_later(store: SqlStore) -> None:
    """A claimant can skip jobs it already runs (so it never claims its own job twice)."""
    await store.enqueue(execute_job("dt-a", NOW), NOW)
    assert await claim(store, "replica-1", skip=("execute:dt-a",)) == []


async def test_concurrent_claims_from_two_replicas_never_share_a_job(database_url: str) -> None:
    """Two stores claiming twenty jobs at once split them with no job claimed twice."""
    first, second = await open_store(database_url), await open_store(database_url)
    try:
        for index in range(20):
            await first.enqueue(execute_job(f"dt-{index:02}", NOW), NOW)

        async def claim_all(store: SqlStore, owner: str) -> list[str]:
            got: list[str] = []
            for _ in range(10):
                got += [job.id for job in await claim(store, owner)]
            return got

        a, b = await asyncio.gather(claim_all(first, "a"), claim_all(second, "b"))
        assert sorted(a + b) == sorted(f"execute:dt-{index:02}" for index in range(20))
        assert not set(a) & set(b)
    finally:
        await first.close()
        await second.close()
