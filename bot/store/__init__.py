"""The durable store: requests with a version column, and an append-only audit trail.

Every change to a request is one conditional statement::

    UPDATE requests SET ..., version = version + 1 WHERE id = :id AND version = :expected

and the caller learns from the row count whether it won. Twenty clicks on the same card, or two
replicas handling the same click, therefore lead to exactly one change; the losers re-read and
usually find the request already decided.

::

    protocol.py   Store (the Protocol the service depends on)
    schema.py     the tables, the UTC datetime column type, Request <-> JSON
    sql.py        SqlStore over SQLAlchemy Core async, for SQLite and PostgreSQL; open_store

Importing this package gives only the Protocol: the service depends on it without loading
SQLAlchemy, and the wiring imports ``bot.store.sql`` by name.
"""

from bot.store.protocol import Store

__all__ = ["Store"]
