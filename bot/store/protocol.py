"""What the rest of the bot may ask of a store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.audit import AuditEvent
from bot.jobs import Job, JobState, Lease
from bot.lifecycle import Request


class Store(Protocol):
    """Where requests, their audit trail and jobs live; every method raises ``StoreError``."""

    async def create(
        self, request: Request, *, enqueue: Sequence[Job] = (), now: datetime | None = None
    ) -> None:
        """Insert a new request, claiming its tasks (``TaskInUseError`` if another holds one)."""

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
    ) -> Request | None:
        """Store ``request`` if the row is still at ``expected_version``; ``None`` if not.

        With a ``lease`` the change is made only while that lease is live (``LeaseLostError``
        otherwise); ``enqueue``'s jobs and ``spawn``'s new requests are created in the same
        transaction.
        """

    async def append_audit(self, event: AuditEvent) -> None:
        """Append one event to the audit trail."""

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

    async def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers a trivial query."""

    async def close(self) -> None:
        """Release every connection."""
