"""The audit trail's vocabulary: what an event records, and one event.

Kept apart from the store so that the service, the store and the Slack cards can all speak of
audit events without the cards depending on the database.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


class AuditKind(enum.StrEnum):
    """What an audit event records."""

    REQUESTED = "requested"
    REFUSED_CLICK = "refused_click"
    APPROVED = "approved"
    CANCELLED = "cancelled"
    DENIED = "denied"
    REMINDED = "reminded"
    DRIFT = "drift"
    NOTIFIED = "notified"
    STARTED = "started"
    RESUMED = "resumed"
    RETENTION_WARNING = "retention_warning"
    DISALLOWED = "disallowed"
    EXPIRED = "expired"
    DIS_CALL = "dis_call"
    VERIFICATION = "verification"
    CARD_POSTED = "card_posted"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the audit trail: who did what to which request, when, and the particulars."""

    request_id: str | None
    kind: str
    actor: str | None
    at: datetime
    detail: Mapping[str, object] = field(default_factory=dict)
