"""The tables, and how requests, audit events, jobs and outbox events become rows and back.

The tables are created and changed by the migrations in ``bot/store/migrations`` (Alembic); the
definitions here are what the queries use, and a test checks that both agree.

A request is kept as JSON of the whole ``Request`` in ``data``; the columns beside it exist only
to find rows (by state and deadline, by requester) and to guard updates (``version``).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Row,
    Table,
    Text,
    TypeDecorator,
)

from bot.audit import AuditEvent, AuditKind
from bot.jobs import Job, JobKind, JobState
from bot.lifecycle import Request
from bot.outbox import OutboxEvent


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends.

    PostgreSQL keeps it as ``timestamptz``. SQLite has no such type, so it gets naive UTC text in
    SQLAlchemy's fixed-width format, which compares and sorts correctly as text.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; naive datetimes are refused because their instant is unknown."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store a naive datetime: {value.isoformat()}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - the signature is SQLAlchemy's
    ) -> datetime | None:
        """Hand back an aware UTC datetime whatever the backend returned."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

requests_table = Table(
    "requests",
    metadata,
    Column("id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("requester", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_requests_state_expires_at", "state", "expires_at"),
    Index("ix_requests_requester_created_at", "requester", "created_at"),
)

audit_table = Table(
    "audit_events",
    metadata,
    # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("request_id", Text, nullable=True),
    Column("kind", Text, nullable=False),
    Column("actor", Text, nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_audit_events_request_id", "request_id"),
)

jobs_table = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("request_id", Text, nullable=True),
    Column("state", Text, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("owner", Text, nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Index("ix_jobs_state_due_at", "state", "due_at"),
    Index("ix_jobs_request_id", "request_id"),
)

task_claims_table = Table(
    "task_claims",
    metadata,
    # One open or executing request per task: the primary key settles two commands racing.
    Column("stream", Text, primary_key=True),
    Column("task_id", Text, primary_key=True),
    Column("request_id", Text, nullable=False),
    Index("ix_task_claims_request_id", "request_id"),
)

outbox_table = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("sink", Text, nullable=False),
    Column("audit_id", BigInteger, nullable=False),
    Column("request_id", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("body", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_sink_delivered_at_id", "sink", "delivered_at", "id"),
)

_REQUEST_JSON = TypeAdapter(Request)


def request_to_json(request: Request) -> str:
    """The whole request as JSON, without ``version``, which lives in its own column."""
    return _REQUEST_JSON.dump_json(request, exclude={"version"}).decode()


def request_from_json(data: str | bytes, version: int = 0) -> Request:
    """Rebuild a request written by ``request_to_json``, with the row's ``version``."""
    return replace(_REQUEST_JSON.validate_json(data), version=version)


def request_columns(request: Request) -> dict[str, Any]:
    """The columns of a request's row, except ``id`` and ``version``."""
    return {
        "state": request.state.value,
        "requester": request.requester,
        "channel": request.channel,
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "data": request_to_json(request),
    }


def request_from_row(row: Row[Any]) -> Request:
    """The request a ``requests`` row holds, with the row's version."""
    return request_from_json(row.data, version=row.version)


def event_columns(event: AuditEvent) -> dict[str, Any]:
    """The columns of an event's row; a detail value JSON cannot hold is kept as its ``str``."""
    return {
        "request_id": event.request_id,
        "kind": str(event.kind),
        "actor": event.actor,
        "at": event.at,
        "detail": json.dumps(dict(event.detail), default=str),
    }


def event_from_row(row: Row[Any]) -> AuditEvent:
    """The event an ``audit_events`` row holds; unknown kinds stay plain strings."""
    kind: str = row.kind
    with contextlib.suppress(ValueError):
        kind = AuditKind(kind)
    return AuditEvent(
        request_id=row.request_id,
        kind=kind,
        actor=row.actor,
        at=row.at,
        detail=json.loads(row.detail),
    )


def job_columns(job: Job, now: datetime) -> dict[str, Any]:
    """The columns of a new job's row."""
    return {
        "id": job.id,
        "kind": job.kind.value,
        "request_id": job.request_id,
        "state": job.state.value,
        "due_at": job.due_at,
        "payload": json.dumps(dict(job.payload), default=str),
        "attempts": job.attempts,
        "owner": job.owner,
        "lease_expires_at": job.lease_expires_at,
        "last_error": job.last_error,
        "created_at": now,
    }


def job_from_row(row: Row[Any]) -> Job:
    """The job a ``jobs`` row holds."""
    return Job(
        id=row.id,
        kind=JobKind(row.kind),
        due_at=row.due_at,
        request_id=row.request_id,
        payload=json.loads(row.payload),
        state=JobState(row.state),
        attempts=row.attempts,
        owner=row.owner,
        lease_expires_at=row.lease_expires_at,
        last_error=row.last_error,
    )


def outbox_from_row(row: Row[Any]) -> OutboxEvent:
    """The outbox event an ``outbox`` row holds."""
    return OutboxEvent(
        id=row.id,
        sink=row.sink,
        audit_id=row.audit_id,
        request_id=row.request_id,
        created_at=row.created_at,
        body=row.body,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )
