"""The fakes keep the promises of what they stand in for, so tests over them mean something.

``FakeStore`` runs the same checks as the SQL store on a SQLite file; the other fakes are
checked where their behaviour is not obvious from reading them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import DisError, DisErrorKind, StoreError
from bot.jobs import Job, JobKind, Lease
from bot.lifecycle import RequestedTask, RequestState
from bot.store import Store
from bot.store.sql import open_store
from bot.vocabulary import DumpTask, TaskAction, TaskState
from tests.fakes import (
    START,
    FakeClock,
    FakeDis,
    FakeStore,
    dis_refusal,
    dis_timeout,
    make_request,
)

TTL = timedelta(minutes=15)


@pytest.fixture(params=["fake", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "fake":
        yield FakeStore()
        return
    opened = await open_store(f"sqlite:///{tmp_path}/store.db")
    yield opened
    await opened.close()


async def test_created_request_is_at_version_one_and_unique(store: Store) -> None:
    """A new request reads back at version 1; creating it twice is a StoreError."""
    await store.create(make_request("dt-a"))
    stored = await store.get("dt-a")
    assert stored is not None
    assert (stored.id, stored.version, stored.state) == ("dt-a", 1, RequestState.PENDING)
    with pytest.raises(StoreError):
        await store.create(make_request("dt-a"))
    assert await store.get("dt-unknown") is None


async def test_update_is_conditional_on_the_version(store: Store) -> None:
    """The current version wins once and moves on; a stale version changes nothing."""
    await store.create(make_request("dt-a"))
    current = await store.get("dt-a")
    assert current is not None
    cancelled = replace(current, state=RequestState.CANCELLED)
    won = await store.update(cancelled, 1)
    assert won is not None
    assert won.version == 2
    assert await store.update(replace(current, state=RequestState.EXPIRED), 1) is None
    stored = await store.get("dt-a")
    assert stored is not None
    assert (stored.state, stored.version) == (RequestState.CANCELLED, 2)
    assert await store.update(make_request("dt-unknown"), 1) is None


def own_task(request_id: str) -> tuple[RequestedTask, ...]:
    """A task of the request's own: two open requests may not share one."""
    return (RequestedTask(f"task-{request_id}", None, TaskState.PAUSED),)


async def test_queries_order_their_answers(store: Store) -> None:
    """Expired, executing and recent requests come back in the documented orders."""
    await store.create(make_request("dt-b", minutes=1, tasks=own_task("dt-b")))
    await store.create(make_request("dt-a", minutes=0, tasks=own_task("dt-a")))
    await store.create(
        make_request("dt-c", minutes=2, state=RequestState.EXECUTING, tasks=own_task("dt-c"))
    )
    await store.create(make_request("dt-d", minutes=3, requester="U0BOB", tasks=own_task("dt-d")))
    due = START + timedelta(minutes=1) + TTL
    assert [r.id for r in await store.pending_expired(due)] == ["dt-a", "dt-b"]
    assert [r.id for r in await store.executing()] == ["dt-c"]
    assert [r.id for r in await store.recent_for("U0ALICE", limit=2)] == ["dt-c", "dt-b"]


async def test_fake_store_can_lose_the_next_update_race() -> None:
    """A lost race returns None and leaves a newer version behind, as another writer would."""
    store = FakeStore()
    await store.create(make_request("dt-a"))
    current = await store.get("dt-a")
    assert current is not None
    store.lose_next_updates()
    assert await store.update(replace(current, state=RequestState.CANCELLED), 1) is None
    reread = await store.get("dt-a")
    assert reread is not None
    assert (reread.state, reread.version) == (RequestState.PENDING, 2)
    assert await store.update(replace(reread, state=RequestState.CANCELLED), 2) is not None


async def test_fake_dis_moves_tasks_and_answers_like_dis() -> None:
    """FakeDis.act moves named tasks to the target; unknown streams and tasks get DIS's user errors."""
    task = DumpTask("id-1", "one", TaskState.PAUSED, "OBS", None, None)
    dis = FakeDis({"orders-stream": [task]})
    await dis.act("orders-stream", TaskAction.START, ["id-1"])
    assert [t.state for t in await dis.list_tasks("orders-stream")] == [TaskState.RUNNING]
    for call, code in (
        (lambda: dis.list_tasks("no-stream"), "DIS.4301"),
        (lambda: dis.act("orders-stream", TaskAction.STOP, ["id-2"]), "DIS.4354"),
    ):
        with pytest.raises(DisError) as caught:
            await call()
        assert (caught.value.kind, caught.value.code) == (DisErrorKind.USER, code)


async def test_fake_clock_sleeps_without_waiting() -> None:
    """A sleep moves wall and monotonic time by its length, at once."""
    clock = FakeClock()
    await clock.sleep(2.5)
    assert (clock() - START, clock.monotonic(), clock.slept) == (timedelta(seconds=2.5), 2.5, [2.5])


async def test_backlog_and_reschedule_agree(store: Store) -> None:
    """Open and executing requests are counted alike; a rescheduled job is unowned, at zero."""
    await store.create(make_request("dt-a", tasks=own_task("dt-a")))
    await store.create(
        make_request("dt-b", state=RequestState.EXECUTING, decided_at=START, tasks=own_task("dt-b"))
    )
    job = Job(id="ship:webhook", kind=JobKind.SHIP, due_at=START, payload={"sink": "webhook"})
    await store.enqueue(job, START)
    [claimed] = await store.claim_due(
        "me", due_by=START, lease_now=START, lease_until=START + TTL, limit=1
    )
    assert await store.reschedule(Lease(claimed.id, "me"), START + TTL)
    again = await store.get_job("ship:webhook")
    assert again is not None
    assert (again.owner, again.attempts, again.lease_expires_at) == (None, 0, START + TTL)
    backlog = await store.backlog()
    assert (backlog.open_requests, backlog.executing_since) == (1, (START,))
    assert backlog.jobs == {("ship", "queued"): 1}


async def test_fake_dis_fails_calls_and_moves_tasks_on_cue() -> None:
    """A failing call moves nothing unless it lands; states may differ and change reads later."""
    dis = FakeDis({"s": [DumpTask("a", "one", TaskState.PAUSED, None, None, None)]})
    seen: list[tuple[str, ...]] = []
    dis.on_act = lambda call: seen.append(call.task_ids)
    dis.act_error = dis_timeout()
    with pytest.raises(DisError):
        await dis.act("s", TaskAction.START, ["a"])
    assert [t.state for t in await dis.list_tasks("s")] == [TaskState.PAUSED]
    dis.act_lands, dis.act_states = True, {"a": TaskState.STARTING}
    with pytest.raises(DisError):
        await dis.act("s", TaskAction.START, ["a"])
    dis.schedule("a", TaskState.RUNNING, after_reads=1)
    dis.fail_reads(dis_timeout(), after_reads=2)
    assert [(await dis.list_tasks("s"))[0].state for _ in range(2)] == [
        TaskState.STARTING,
        TaskState.RUNNING,
    ]
    with pytest.raises(DisError):
        await dis.list_tasks("s")
    assert seen == [("a",), ("a",)]


@pytest.mark.parametrize("kind", list(DisErrorKind))
def test_dis_refusals_are_classified_as_the_client_would(kind: DisErrorKind) -> None:
    """Each refusal the fakes raise has its kind and says the call never landed."""
    error = dis_refusal(kind)
    assert (error.kind, error.certainly_not_received) == (kind, True)
    assert not dis_timeout().certainly_not_received


async def test_fake_store_logs_winning_updates_and_can_interleave() -> None:
    """Each winning update is logged with its jobs; interleaved callers really race."""
    store = FakeStore(interleave=True)
    await store.create(make_request("dt-a"))
    current = await store.get("dt-a")
    assert current is not None
    results = await asyncio.gather(
        store.update(replace(current, state=RequestState.CANCELLED), 1),
        store.update(replace(current, state=RequestState.EXPIRED), 1),
    )
    assert [r is not None for r in results] == [True, False]
    assert [(r.state, jobs) for r, jobs in store.updates] == [(RequestState.CANCELLED, ())]
