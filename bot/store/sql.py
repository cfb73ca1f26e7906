"""``SqlStore``: the one ``Store``, over SQLAlchemy Core's async engine, for SQLite and PostgreSQL.

SQLite serves one process, or several sharing a file; PostgreSQL serves several replicas. Driver
errors become ``StoreError`` with a message that names the database but never its password.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import aiosqlite
from pydantic import ValidationError
from sqlalchemy import Select, event, insert, select, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bot.audit import AuditEvent
from bot.errors import StoreError
from bot.lifecycle import Request, RequestState
from bot.store.schema import (
    audit_table,
    create_schema,
    event_columns,
    event_from_row,
    request_columns,
    request_from_row,
    requests_table,
)

SQLITE_BUSY_TIMEOUT_MS = 5000
POSTGRES_CONNECT_TIMEOUT_S = 5


def engine_url(database_url: str) -> URL:
    """Map ``DATABASE_URL`` onto the async drivers: aiosqlite for SQLite, psycopg for PostgreSQL."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        # SQLAlchemy's message repeats the URL, password included, so it is not chained.
        raise StoreError(
            "DATABASE_URL is not a database URL; expected sqlite:///path/to/file.db "
            "or postgresql://user@host/db"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise StoreError("DATABASE_URL must name a SQLite file, e.g. sqlite:///dumptask.db")
        return url.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    raise StoreError(
        f"DATABASE_URL has an unsupported scheme {backend!r}; use sqlite or postgresql"
    )


def _sqlite_connector(path: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    """Open aiosqlite connections the way SQLAlchemy does, but clean up after a failed open.

    When opening fails, aiosqlite queues the stop of its worker thread without waiting for it
    (omnilib/aiosqlite#241). The worker then reports to an event loop that may be closed by
    then, which prints a stray traceback at the end of ``dumptask-bot check``; so wait for it.
    """

    async def connect() -> aiosqlite.Connection:
        connection = aiosqlite.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        worker = connection._thread  # noqa: SLF001 - SQLAlchemy's own connect reaches in too
        worker.daemon = True  # as SQLAlchemy does, so a forgotten connection never blocks exit
        try:
            return await connection
        except BaseException:
            await asyncio.to_thread(worker.join)
            raise

    return connect


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Let concurrent writers wait for each other, and readers proceed while one writes.

    The busy timeout comes first so that switching the file to WAL also waits for a lock.
    WAL is a property of the file, so once set it holds for every process sharing it.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


class SqlStore:
    """``Store`` over SQLAlchemy Core's async engine, for SQLite and PostgreSQL.

    Building one opens no connection; ``open_store`` also creates the schema. Connections come
    from SQLAlchemy's default pool (a queue pool for both backends): every SQLite connection gets
    the busy timeout and WAL from a connect hook, and PostgreSQL connections are pinged on
    checkout so a restarted server costs no failed request.
    """

    def __init__(self, database_url: str) -> None:
        self._url = engine_url(database_url)
        self._safe_url = self._url.render_as_string(hide_password=True)
        if self._url.get_backend_name() == "sqlite":
            self._engine = create_async_engine(
                self._url, async_creator=_sqlite_connector(str(self._url.database))
            )
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self._engine = create_async_engine(
                self._url,
                pool_pre_ping=True,
                connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
            )

    def __repr__(self) -> str:
        return f"SqlStore({self._safe_url!r})"

    def _describe(self, error: BaseException) -> str:
        """The first line of a driver error (not the SQL and parameters), password removed."""
        lines = str(error).strip().splitlines()
        message = lines[0] if lines else type(error).__name__
        if self._url.password:
            message = message.replace(str(self._url.password), "***")
        return message

    @asynccontextmanager
    async def _connection(
        self, doing: str, *, write: bool, conflict: str | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A connection (in a committed transaction when writing), driver errors as StoreError.

        ``conflict`` replaces the driver's wording when a write breaks a unique constraint.
        """
        try:
            connect = self._engine.begin() if write else self._engine.connect()
            async with connect as connection:
                yield connection
        except IntegrityError as exc:
            if conflict is None:
                raise StoreError(f"could not {doing}: {self._describe(exc)}") from exc
            raise StoreError(conflict) from exc
        except (SQLAlchemyError, OSError, ValidationError) as exc:
            raise StoreError(
                f"could not {doing} in {self._safe_url}: {self._describe(exc)}"
            ) from exc

    async def create_schema(self) -> None:
        """Create the tables and indexes unless they exist."""
        async with self._connection("create the schema", write=True) as connection:
            await connection.run_sync(create_schema)

    async def create(self, request: Request) -> None:
        """Insert a new request at version 1; a request with the same id is an error."""
        statement = insert(requests_table).values(
            id=request.id, version=1, **request_columns(request)
        )
        async with self._connection(
            f"create request {request.id}",
            write=True,
            conflict=f"request {request.id} already exists",
        ) as connection:
            await connection.execute(statement)

    async def get(self, request_id: str) -> Request | None:
        """The stored request with its current ``version``, or ``None`` if there is none."""
        query = select(requests_table).where(requests_table.c.id == request_id)
        async with self._connection(f"read request {request_id}", write=False) as connection:
            row = (await connection.execute(query)).first()
            return None if row is None else request_from_row(row)

    async def update(self, request: Request, expected_version: int) -> Request | None:
        """Store ``request`` if the row is still at ``expected_version``; ``None`` if not.

        The check and the write are one statement, so the database settles any race: of many
        callers holding the same version, exactly one sees a changed row.
        """
        statement = (
            update(requests_table)
            .where(requests_table.c.id == request.id)
            .where(requests_table.c.version == expected_version)
            .values(version=requests_table.c.version + 1, **request_columns(request))
        )
        async with self._connection(f"update request {request.id}", write=True) as connection:
            changed = (await connection.execute(statement)).rowcount
        return replace(request, version=expected_version + 1) if changed == 1 else None

    async def append_audit(self, event: AuditEvent) -> None:
        """Append one event; a detail value JSON cannot hold is kept as its ``str``."""
        async with self._connection(f"audit {event.kind}", write=True) as connection:
            await connection.execute(insert(audit_table).values(**event_columns(event)))

    async def audit_trail(self, request_id: str) -> list[AuditEvent]:
        """A request's audit events in the order they were appended."""
        query = (
            select(audit_table)
            .where(audit_table.c.request_id == request_id)
            .order_by(audit_table.c.id)
        )
        async with self._connection(f"read the audit of {request_id}", write=False) as connection:
            return [event_from_row(row) for row in await connection.execute(query)]

    async def _requests(self, doing: str, query: Select[Any]) -> list[Request]:
        async with self._connection(doing, write=False) as connection:
            return [request_from_row(row) for row in await connection.execute(query)]

    async def pending_expired(self, now: datetime) -> list[Request]:
        """Pending requests whose deadline is at or before ``now``, earliest deadline first."""
        query = (
            select(requests_table)
            .where(requests_table.c.state == RequestState.PENDING.value)
            .where(requests_table.c.expires_at <= now)
            .order_by(requests_table.c.expires_at, requests_table.c.id)
        )
        return await self._requests("find expired requests", query)

    async def executing(self) -> list[Request]:
        """Requests that were approved but whose outcome is not recorded yet, oldest first."""
        query = (
            select(requests_table)
            .where(requests_table.c.state == RequestState.EXECUTING.value)
            .order_by(requests_table.c.created_at, requests_table.c.id)
        )
        return await self._requests("find executing requests", query)

    async def recent_for(self, user_id: str, limit: int = 5) -> list[Request]:
        """The newest ``limit`` requests made by ``user_id``, newest first."""
        query = (
            select(requests_table)
            .where(requests_table.c.requester == user_id)
            .order_by(requests_table.c.created_at.desc(), requests_table.c.id.desc())
            .limit(max(limit, 0))
        )
        return await self._requests(f"find the requests of {user_id}", query)

    async def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers a trivial query."""
        async with self._connection("reach the database", write=False) as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Release every pooled connection."""
        await self._engine.dispose()


async def open_store(database_url: str) -> SqlStore:
    """Connect to ``DATABASE_URL`` and create the schema, or raise ``StoreError``."""
    store = SqlStore(database_url)
    try:
        await store.create_schema()
    except BaseException:
        await store.close()
        raise
    return store
