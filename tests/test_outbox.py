"""The audit outbox in the store (SQLite and PostgreSQL) and the shipper that empties it.

An audit event and its outbox rows are written in one transaction; the shipper delivers each
sink's events in order, retrying the same event until it gets through; the ship job runs again
and again under the runner's lease, its attempts counted from zero each time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot import shipper as shipper_module
from bot.audit import AuditEvent, AuditKind
from bot.jobs import HeldJob, JobKind, JobState, Lease
from bot.lifecycle import RequestState
from bot.outbox import OutboxEvent, Sink, SinkError
from bot.runner import JobRunner
from bot.shipper import Shipper
from bot.store.sql import SqlStore, open_store
from tests import test_store
from tests.test_store import NOW, make_request

BOTH = (Sink.CHANNEL.value, Sink.WEBHOOK.value)
# The store's fixtures: each test runs on a SQLite file and on PostgreSQL.
database_url = test_store.database_url
store = test_store.store


@pytest.fixture
async def outbox_store(database_url: str) -> AsyncIterator[SqlStore]:
    opened = await open_store(database_url, sinks=BOTH)
    yield opened
    await opened.close()


def event(kind: AuditKind, request_id: str | None = "dt-abcd2345", **detail: object) -> AuditEvent:
    return AuditEvent(request_id=request_id, kind=kind, actor="U0APPROVER1", at=NOW, detail=detail)


class RecordingSink:
    """An ``OutboxSink`` that fails its first ``failures`` sends, and records every attempt."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.attempts: list[int] = []
        self.delivered: list[int] = []

    async def send(self, item: OutboxEvent) -> None:
        self.attempts.append(item.audit_id)
        if self.failures:
            self.failures -= 1
            raise SinkError("HTTP 500")
        self.delivered.append(item.audit_id)


async def held_ship_job(opened: SqlStore, shipper: Shipper, sink: str) -> HeldJob:
    """Create the sink's ship job and claim it, as the runner would."""
    await shipper.ensure_jobs(NOW)
    now = datetime.now(UTC)
    [job] = [
        j
        for j in await opened.claim_due(
            "test-owner",
            due_by=NOW,
            lease_now=now,
            lease_until=now + timedelta(seconds=15),
            limit=5,
        )
        if j.id == f"ship:{sink}"
    ]
    return HeldJob(job, Lease(job.id, "test-owner"), 15, lambda: datetime.now(UTC))


async def test_an_event_is_queued_for_each_sink_that_wants_it(outbox_store: SqlStore) -> None:
    """The webhook gets every event, the channel only decisions; both bodies are the same."""
    await outbox_store.create(make_request())
    await outbox_store.append_audit(event(AuditKind.REQUESTED, reason="<!channel>"))
    await outbox_store.append_audit(event(AuditKind.APPROVED, approvals=1, required=1))
    webhook = await outbox_store.undelivered(Sink.WEBHOOK, 10)
    channel = await outbox_store.undelivered(Sink.CHANNEL, 10)
    assert [e.document["kind"] for e in webhook] == ["requested", "approved"]
    assert [e.document["kind"] for e in channel] == ["approved"]
    assert channel[0].body == webhook[1].body
    first = webhook[0].document
    trail = await outbox_store.audit_trail("dt-abcd2345")
    assert first["request"] == "dt-abcd2345"
    assert (first["channel"], first["stream"], first["action"]) == (
        "C0INCIDENT",
        "orders-stream",
        "start",
    )
    assert first["detail"] == {"reason": "<!channel>"}
    assert first["time"] == "2024-05-17T09:30:15.123456Z"
    assert first["kind"] == trail[0].kind
    assert first["sequence"] < webhook[1].document["sequence"]
    assert webhook[0].idempotency_key != webhook[1].idempotency_key


async def test_an_outcome_reaches_the_channel_only_for_executed_requests(
    outbox_store: SqlStore,
) -> None:
    """A delivered succeeded request is a channel line; a delivered cancelled one is not again."""
    await outbox_store.append_audit(event(AuditKind.DELIVERED, state="cancelled"))
    await outbox_store.append_audit(event(AuditKind.DELIVERED, state="succeeded"))
    channel = await outbox_store.undelivered(Sink.CHANNEL, 10)
    assert [e.document["detail"]["state"] for e in channel] == ["succeeded"]


async def test_without_sinks_nothing_is_queued(store: SqlStore) -> None:
    """A store opened with no sink writes the audit event alone."""
    await store.append_audit(event(AuditKind.REQUESTED))
    assert await store.undelivered(Sink.WEBHOOK, 10) == []
    assert (await store.backlog()).outbox == {}


async def test_an_event_and_its_outbox_rows_are_written_together(
    outbox_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When queueing fails, the audit event is not written either: one transaction."""

    def broken(*_: object) -> str:
        raise RuntimeError("no body today")

    monkeypatch.setattr("bot.store.sql.event_body", broken)
    with pytest.raises(RuntimeError):
        await outbox_store.append_audit(event(AuditKind.REQUESTED))
    assert await outbox_store.audit_trail("dt-abcd2345") == []


async def test_the_backlog_counts_what_waits(outbox_store: SqlStore) -> None:
    """Open and executing requests, queued jobs, undelivered events with the oldest time."""
    await outbox_store.create(make_request("dt-open2345"))
    executing = replace(make_request("dt-exec2345"), state=RequestState.EXECUTING, decided_at=NOW)
    await outbox_store.create(executing)
    await outbox_store.append_audit(event(AuditKind.CANCELLED))
    [to_channel] = await outbox_store.undelivered(Sink.CHANNEL, 10)
    await outbox_store.outbox_delivered(to_channel.id, NOW)
    backlog = await outbox_store.backlog()
    assert backlog.open_requests == 1
    assert backlog.executing_since == (NOW,)
    assert backlog.outbox == {Sink.WEBHOOK.value: (1, NOW)}


async def test_failures_and_deliveries_are_recorded(outbox_store: SqlStore) -> None:
    """A failure keeps the event with its attempts and error; delivery takes it off the list."""
    await outbox_store.append_audit(event(AuditKind.EXPIRED))
    [item] = await outbox_store.undelivered(Sink.WEBHOOK, 10)
    await outbox_store.outbox_failed(item.id, attempts=1, retry_at=NOW, error="HTTP 500")
    [failed] = await outbox_store.undelivered(Sink.WEBHOOK, 10)
    assert (failed.attempts, failed.next_attempt_at, failed.last_error) == (1, NOW, "HTTP 500")
    await outbox_store.outbox_delivered(item.id, NOW)
    assert await outbox_store.undelivered(Sink.WEBHOOK, 10) == []
    assert await outbox_store.prune_outbox(Sink.WEBHOOK, NOW + timedelta(seconds=1)) == 1


async def test_the_shipper_retries_the_same_event_before_any_behind_it(
    outbox_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two failures of the first event: it is tried three times, then all go out in order."""
    monkeypatch.setattr(shipper_module, "retry_delay", lambda _attempts: 0.01)
    for kind in (AuditKind.REQUESTED, AuditKind.CARD_POSTED, AuditKind.APPROVED):
        await outbox_store.append_audit(event(kind))
    sink = RecordingSink(failures=2)
    shipper = Shipper(outbox_store, {Sink.WEBHOOK: sink}, slice_seconds=1, poll_seconds=0.01)
    held = await held_ship_job(outbox_store, shipper, Sink.WEBHOOK)
    again = await shipper.run(held)
    first, second, third = sorted(set(sink.attempts))
    assert sink.attempts == [first, first, first, second, third]
    assert sink.delivered == [first, second, third]
    assert await outbox_store.undelivered(Sink.WEBHOOK, 10) == []
    assert again <= datetime.now(UTC)


async def test_a_stopped_shipper_ends_its_slice_at_once(outbox_store: SqlStore) -> None:
    """``stop`` (a shutdown) ends a long slice without waiting for it."""
    shipper = Shipper(
        outbox_store, {Sink.WEBHOOK: RecordingSink()}, slice_seconds=60, poll_seconds=0.05
    )
    held = await held_ship_job(outbox_store, shipper, Sink.WEBHOOK)
    running = asyncio.create_task(shipper.run(held))
    await asyncio.sleep(0.1)
    shipper.stop()
    await asyncio.wait_for(running, 2)


async def test_a_recurring_job_is_queued_again_with_its_attempts_reset(
    outbox_store: SqlStore,
) -> None:
    """A handler returning a time has its job queued again for then, unowned, attempts at 0."""
    later = datetime.now(UTC) + timedelta(hours=1)
    ran = asyncio.Event()

    async def handler(_: HeldJob) -> datetime:
        ran.set()
        return later

    shipper = Shipper(outbox_store, {Sink.WEBHOOK: RecordingSink()})
    await shipper.ensure_jobs(NOW)
    runner = JobRunner(outbox_store, handler, clock=lambda: NOW, poll_seconds=0.05)
    runner.start()
    await asyncio.wait_for(ran.wait(), 5)
    await runner.drain(5)
    job = await outbox_store.get_job("ship:webhook")
    assert job is not None
    assert (job.kind, job.state, job.attempts, job.owner) == (
        JobKind.SHIP,
        JobState.QUEUED,
        0,
        None,
    )
    assert job.lease_expires_at == later
    assert json.loads(json.dumps(dict(job.payload))) == {"sink": "webhook"}
