"""Alembic's entry point: run the migrations on the connection ``bot.store.migrate`` hands over.

The bot never lets Alembic open connections of its own: the caller holds the database lock that
keeps two replicas starting at once from migrating together, on this very connection.
"""

from __future__ import annotations

from alembic import context

from bot.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
