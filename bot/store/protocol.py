"""What the rest of the bot may ask of a store."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.audit import AuditEvent
from bot.lifecycle import Request


class Store(Protocol):
    """Where requests and their audit trail live; every method raises ``StoreError`` on failure."""

    async def create(self, request: Request) -> None:
        """Insert a new request at version 1; a request with the same id is an error."""

    async def get(self, request_id: str) -> Request | None:
        """The stored request with its current ``version``, or ``None`` if there is none."""

    async def update(self, request: Request, expected_version: int) -> Request | None:
        """Store ``request`` if the row is still at ``expected_version``; ``None`` if not."""

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

    async def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers a trivial query."""

    async def close(self) -> None:
        """Release every connection."""
