"""The audit outbox: which audit events go to which sink, and what a delivered event looks like.

When a sink is configured, ``Store.append_audit`` writes the audit event and one outbox row per
sink that wants it in the same transaction, so an event is never recorded without being queued
for delivery, nor queued without being recorded. ``bot.shipper`` then delivers each sink's rows
in order, from one leased job per sink (``ship_job``).

Sinks:

- ``webhook``: every audit event, as the JSON document ``event_body`` builds, signed
  (``bot.audit_webhook``);
- ``channel``: one line per decision that matters in ``DUMPTASK_AUDIT_CHANNEL``
  (``bot.slack.audit_channel``): the card posted (the request is open), approvals, refused
  clicks, cancellations, expiries, disallowed requests, and executed requests' outcomes (their
  ``delivered`` event, which is written once the outcome is final).
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.audit import AuditEvent, AuditKind
from bot.audit_export import AuditRow, row_document
from bot.errors import DumptaskError
from bot.jobs import Job, JobKind
from bot.lifecycle import Request, RequestState

BODY_SCHEMA = 1


class Sink(enum.StrEnum):
    """Where audit events are delivered, besides the audit table."""

    WEBHOOK = "webhook"
    CHANNEL = "channel"


CHANNEL_KINDS = frozenset(
    {
        AuditKind.CARD_POSTED,
        AuditKind.APPROVED,
        AuditKind.REFUSED_CLICK,
        AuditKind.CANCELLED,
        AuditKind.DENIED,
        AuditKind.EXPIRED,
        AuditKind.DISALLOWED,
        AuditKind.DRIFT,
        AuditKind.STARTED,
        AuditKind.RESUMED,
        AuditKind.RETENTION_WARNING,
        AuditKind.DELIVERED,
    }
)
EXECUTED_STATES = frozenset(state.value for state in RequestState if state.was_executed)


class SinkError(DumptaskError):
    """A sink refused or could not take an event; the shipper tries the same event again."""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One audit event waiting for (or done with) delivery to one sink.

    ``body`` is the JSON document exactly as sent, fixed when the event was recorded, so every
    retry sends the same bytes with the same idempotency key.
    """

    id: int
    sink: str
    audit_id: int
    request_id: str | None
    created_at: datetime
    body: str
    attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: str | None = None

    @property
    def document(self) -> dict[str, Any]:
        """The body as a JSON object."""
        document: dict[str, Any] = json.loads(self.body)
        return document

    @property
    def idempotency_key(self) -> str:
        """The key a receiver de-duplicates on: the same for every retry of this event."""
        return str(self.document["idempotency_key"])


class OutboxSink(Protocol):
    """Somewhere audit events are delivered to, one at a time, in order."""

    async def send(self, event: OutboxEvent) -> None:
        """Deliver ``event`` or raise (``SinkError`` when the sink refused it)."""
        ...


def wants(sink: str, event: AuditEvent) -> bool:
    """Whether ``sink`` receives ``event``."""
    if sink == Sink.CHANNEL:
        if event.kind == AuditKind.DELIVERED:
            return event.detail.get("state") in EXECUTED_STATES
        return event.kind in CHANNEL_KINDS
    return True


def route(event: AuditEvent, sinks: Collection[str]) -> list[str]:
    """The configured ``sinks`` that receive ``event``, in a fixed order."""
    return [sink for sink in sorted(sinks) if wants(sink, event)]


def event_body(audit_id: int, event: AuditEvent, request: Request | None) -> str:
    """The JSON document delivered for an audit event.

    The fields of ``dumptask-bot audit --format json`` (``time``, ``request``, ``kind``,
    ``actor``, ``channel``, ``stream``, ``action``, ``detail``), plus ``idempotency_key`` (a
    random UUID, the same on every retry), ``sequence`` (the audit event's id, growing with each
    event of a request) and ``schema`` (this document's version).
    """
    row = AuditRow(
        id=audit_id,
        at=event.at,
        request_id=event.request_id,
        kind=str(event.kind),
        actor=event.actor,
        channel=None if request is None else request.channel,
        stream=None if request is None else request.stream,
        action=None if request is None else request.action.value,
        detail=json.dumps(dict(event.detail), default=str),
    )
    document = {
        "schema": BODY_SCHEMA,
        "idempotency_key": str(uuid.uuid4()),
        "sequence": audit_id,
        **row_document(row),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def ship_job(sink: str, due_at: datetime) -> Job:
    """The one job that ships ``sink``'s outbox; its fixed id makes it a singleton."""
    return Job(id=f"ship:{sink}", kind=JobKind.SHIP, due_at=due_at, payload={"sink": sink})
