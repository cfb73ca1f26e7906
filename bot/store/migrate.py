"""Bring the database schema up to date with the Alembic migrations, under a lock.

The bot applies the migrations when it starts (and ``dumptask-bot migrate`` applies them alone).
Two replicas starting at once must not migrate together: on PostgreSQL the migrating transaction
takes an advisory lock first; SQLite is shared only by processes on one host, which take an
exclusive lock on a file beside the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant will do: it only has to be the same in every replica migrating the schema.
MIGRATION_LOCK_KEY = 0x64756D707461736B
SQLITE_LOCK_TIMEOUT_S = 60.0


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, pointing at the bot's migrations and the given connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration's revision."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or ``None`` for an empty (or pre-migration) one."""
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection) -> tuple[str | None, str | None]:
    if connection.dialect.name == "postgresql":
        # Held until this transaction ends, so a second replica waits and then finds the head.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    before = current_revision(connection)
    command.upgrade(alembic_config(connection), "head")
    return before, current_revision(connection)


@contextlib.asynccontextmanager
async def _sqlite_file_lock(database: str) -> AsyncIterator[None]:
    """An exclusive lock on ``<database>.migrate.lock`` while one process migrates."""
    path = Path(database).with_name(Path(database).name + ".migrate.lock")
    with path.open("a") as lock_file:
        await asyncio.wait_for(
            asyncio.to_thread(fcntl.flock, lock_file.fileno(), fcntl.LOCK_EX),
            SQLITE_LOCK_TIMEOUT_S,
        )
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


async def upgrade_to_head(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """Apply every missing migration; return the revisions before and after."""
    lock: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
    if engine.dialect.name == "sqlite" and engine.url.database:
        lock = _sqlite_file_lock(engine.url.database)
    async with lock, engine.begin() as connection:
        return await connection.run_sync(_upgrade)
