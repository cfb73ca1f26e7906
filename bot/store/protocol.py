"""What the rest of the bot may ask of a store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.audit import AuditEvent
from bot.jobs import Job, JobKind, JobState, Lease
from bot.lifecycle import Request
from bot.outbox import OutboxEvent


@dataclass(frozen=True, slots=True)
class Backlog:
    """What is waiting, across every replica: the gauges ``/metrics`` reads at scrape time."""

    open_requests: int = 0
    executing_since: tuple[datetime, ...] = ()  # when each still-executing request was approved
    jobs: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (kind, state) -> count
    # sink -> (undelivered events, when the oldest of them was recorded)
    outbox: Mapping[str, tuple[int, datetime | None]] = field(default_factory=dict)


class Store(Protocol):
    """Where requests, their audit trail and jobs live; every method raises ``StoreError``."""

    async def create(
        self,
        request: Request,
        *,
        enqueue: Sequence[Job] = (),
        now: datetime | None = None,
        audit: Sequence[AuditEvent] = (),
    ) -> None:
        """Insert a new request, claiming its tasks (``TaskInUseError`` if another holds one).

        ``enqueue``'s jobs and the ``audit`` events are written in the same transaction.
        """

    async def get(self, request_id: str) -> Request | None:
        """The stored request with its current ``version``, or ``None`` if there is none."""

    async def update(
        self,
        request: Request,
        expected_version: int,
        *,
        lease: Lease | None = None,
        lease_now: datetime | None = None,
        lease_until: datetime | None = None,
        enqueue: Sequence[Job] = (),
        now: datetime | None = None,
        spawn: Sequence[Request] = (),
        audit: Sequence[AuditEvent] = (),
    ) -> Request | None:
        """Store ``request`` if the row is still at ``expected_version``; ``None`` if not.

        With a ``lease`` the change is made only while that lease is live (``LeaseLostError``
        otherwise); ``enqueue``'s jobs, ``spawn``'s new requests and the ``audit`` events are
        written in the same transaction, and only when the update wins.
        """

    async def append_audit(self, event: AuditEvent) -> None:
        """Append one event to the audit trail.

        With sinks configured, the event is queued in the outbox for each sink that wants it
        (``bot.outbox.route``) in the same transaction.
        """

    async def audit_trail(self, request_id: str) -> list[AuditEvent]:
        """A request's audit events in the order they were appended."""

    async def pending_expired(self, now: datetime) -> list[Request]:
        """Pending requests whose deadline is at or before ``now``, earliest deadline first."""

    async def executing(self) -> list[Request]:
        """Requests that were approved but whose outcome is not recorded yet, oldest first."""

    async def recent_for(self, user_id: str, limit: int = 5) -> list[Request]:
        """The newest ``limit`` requests made by ``user_id``, newest first."""

    async def scheduled(self) -> list[Request]:
        """Requests approved to run later, oldest first."""

    async def enqueue(self, job: Job, now: datetime) -> bool:
        """Create ``job`` unless a job with its id exists; whether it was created."""

    async def get_job(self, job_id: str) -> Job | None:
        """One job, or ``None``."""

    async def jobs_of(self, request_id: str) -> list[Job]:
        """A request's jobs, oldest first."""

    async def claim_due(
        self,
        owner: str,
        *,
        due_by: datetime,
        lease_now: datetime,
        lease_until: datetime,
        limit: int,
        skip: Sequence[str] = (),
        kinds: Sequence[JobKind] = tuple(JobKind),
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs nobody holds a live lease on (not those in ``skip``)."""

    async def renew(self, lease: Lease, now: datetime, until: datetime) -> bool:
        """Extend a live lease to ``until``; ``False`` if it lapsed or another owner holds it."""

    async def release(self, lease: Lease) -> None:
        """Give a job up at once, so another owner may take it now."""

    async def settle_job(
        self,
        lease: Lease,
        state: JobState,
        now: datetime,
        *,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """End the owner's attempt: done, dead, or queued again (claimable from ``retry_at``)."""

    async def reschedule(self, lease: Lease, at: datetime) -> bool:
        """End the owner's run of a recurring job: queued again, claimable from ``at``."""

    async def undelivered(self, sink: str, limit: int) -> list[OutboxEvent]:
        """Up to ``limit`` of ``sink``'s undelivered outbox events, oldest first."""

    async def outbox_delivered(self, event_id: int, at: datetime) -> None:
        """Record that an outbox event was delivered."""

    async def outbox_failed(
        self, event_id: int, *, attempts: int, retry_at: datetime, error: str
    ) -> None:
        """Record a failed delivery; the event is tried again from ``retry_at``."""

    async def prune_outbox(self, sink: str, delivered_before: datetime) -> int:
        """Delete ``sink``'s events delivered before ``delivered_before``; how many."""

    async def backlog(self) -> Backlog:
        """Open requests, executions in flight, queued and dead jobs, undelivered events."""

    async def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers a trivial query."""

    async def close(self) -> None:
        """Release every connection."""
