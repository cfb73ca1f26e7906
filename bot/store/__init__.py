"""The durable store: requests with a version column, and an append-only audit trail.

Every change to a request is one conditional statement::

    UPDATE requests SET ..., version = version + 1 WHERE id = :id AND version = :expected

and the caller learns from the row count whether it won. Twenty clicks on the same card, or two
replicas handling the same click, therefore lead to exactly one change; the losers re-read and
usually find the request already decided.

::

    protocol.py   Store (the Protocol the service depends on), AuditEvent, AuditKind
    schema.py     the tables, the UTC datetime column type, Request <-> JSON
    sql.py        SqlStore over SQLAlchemy Core async, for SQLite and PostgreSQL; open_store
"""

from bot.store.protocol import AuditEvent, AuditKind, Store
from bot.store.schema import request_from_json, request_to_json
from bot.store.sql import SqlStore, engine_url, open_store

__all__ = [
    "AuditEvent",
    "AuditKind",
    "SqlStore",
    "Store",
    "engine_url",
    "open_store",
    "request_from_json",
    "request_to_json",
]
