"""``SqlStore``: the one ``Store``, over SQLAlchemy Core's async engine, for SQLite and PostgreSQL.

SQLite serves one process, or several sharing a file; PostgreSQL serves several replicas. Driver
errors become ``StoreError`` with a message that names the database but never its password.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import aiosqlite
from pydantic import ValidationError
from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    Text,
    and_,
    cast,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bot.audit import AuditEvent
from bot.audit_export import AuditFilters, AuditRow
from bot.errors import StoreError, TaskInUseError
from bot.jobs import Job, JobKind, JobState, Lease, LeaseLostError
from bot.lifecycle import Request, RequestState
from bot.outbox import OutboxEvent, event_body, route
from bot.store.migrate import upgrade_to_head
from bot.store.protocol import Backlog
from bot.store.schema import (
    audit_table,
    event_columns,
    event_from_row,
    job_columns,
    job_from_row,
    jobs_table,
    outbox_from_row,
    outbox_table,
    request_columns,
    request_from_row,
    requests_table,
    task_claims_table,
)

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5000
POSTGRES_CONNECT_TIMEOUT_S = 3
POSTGRES_STATEMENT_TIMEOUT_MS = 5000
POOL_TIMEOUT_S = 5
# Every store call gives up after this long, whatever the driver does: a database that hangs
# (a stopped server keeps its sockets open) must cost a user a clear error, not a silence.
OPERATION_TIMEOUT_S = 8.0
# Rows fetched at a time by the audit export: what it holds in memory, whatever the trail's size.
AUDIT_BATCH_ROWS = 1000


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


def bounded(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Give up on a store call after ``OPERATION_TIMEOUT_S``, without waiting for the driver.

    The call runs as a task of its own. When the time is up the caller gets a ``StoreError`` at
    once, and the task is cancelled and left to end by itself: psycopg then tries for up to ten
    seconds to cancel the query on a server that may not answer at all, and no user should
    wait for that. (A change abandoned this way may still be applied if the server wakes up;
    every change is a conditional update, so a late one never overwrites a newer state.)
    """

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        store = args[0]
        assert isinstance(store, SqlStore)
        work = asyncio.ensure_future(method(*args, **kwargs))
        try:
            done, _ = await asyncio.wait({work}, timeout=store.operation_timeout)
        except asyncio.CancelledError:
            work.cancel()
            work.add_done_callback(_forget_outcome)
            raise
        if not done:
            work.cancel()
            work.add_done_callback(_forget_outcome)
            raise StoreError(
                f"could not {method.__name__.replace('_', ' ')} in {store.safe_url}: "
                f"the database did not answer within {store.operation_timeout:g}s"
            )
        return work.result()

    return call


def _forget_outcome(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned call's outcome, so asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


class SqlStore:
    """``Store`` over SQLAlchemy Core's async engine, for SQLite and PostgreSQL.

    Building one opens no connection; ``open_store`` also migrates the schema. Connections come
    from SQLAlchemy's default pool (a queue pool for both backends): every SQLite connection gets
    the busy timeout and WAL from a connect hook, and PostgreSQL connections are pinged on
    checkout so a restarted server costs no failed request. Every call is bounded in time: the
    driver's connect and statement timeouts, and ``OPERATION_TIMEOUT_S`` around the whole call.
    """

    def __init__(
        self,
        database_url: str,
        *,
        operation_timeout: float = OPERATION_TIMEOUT_S,
        sinks: Collection[str] = (),
    ) -> None:
        self._url = engine_url(database_url)
        self._sinks = frozenset(sinks)
        self._safe_url = self._url.render_as_string(hide_password=True)
        self._timeout = operation_timeout
        if self._url.get_backend_name() == "sqlite":
            self._engine = create_async_engine(
                self._url,
                async_creator=_sqlite_connector(str(self._url.database)),
                pool_timeout=POOL_TIMEOUT_S,
            )
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            options = " ".join(
                filter(
                    None,
                    [
                        str(self._url.query.get("options") or ""),
                        f"-c statement_timeout={POSTGRES_STATEMENT_TIMEOUT_MS}",
                        f"-c lock_timeout={POSTGRES_STATEMENT_TIMEOUT_MS}",
                    ],
                )
            )
            self._engine = create_async_engine(
                self._url.difference_update_query(["options"]),
                pool_pre_ping=True,
                pool_timeout=POOL_TIMEOUT_S,
                connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, "options": options},
            )

    def __repr__(self) -> str:
        return f"SqlStore({self._safe_url!r})"

    @property
    def safe_url(self) -> str:
        """The database URL without its password, for messages."""
        return self._safe_url

    @property
    def operation_timeout(self) -> float:
        """How long a store call may take before the caller is told it failed."""
        return self._timeout

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

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

    async def migrate(self) -> tuple[str | None, str | None]:
        """Apply the missing migrations under a lock; return the revisions before and after."""
        try:
            async with asyncio.timeout(max(self._timeout, 60)):
                return await upgrade_to_head(self._engine)
        except TimeoutError as exc:
            raise StoreError(f"could not migrate {self._safe_url}: timed out") from exc
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"could not migrate {self._safe_url}: {self._describe(exc)}") from exc

    # -- requests -----------------------------------------------------------------------------

    @bounded
    async def create(
        self,
        request: Request,
        *,
        enqueue: Sequence[Job] = (),
        now: datetime | None = None,
        audit: Sequence[AuditEvent] = (),
    ) -> None:
        """Insert a new request at version 1, claiming its tasks, with its jobs and audit events.

        A request with the same id is an error; a task another open request holds raises
        ``TaskInUseError`` naming that request (nothing is stored then).
        """
        try:
            async with self._connection(
                f"create request {request.id}",
                write=True,
                conflict=f"request {request.id} already exists",
            ) as connection:
                await self._raise_if_held(connection, request)
                await self._insert_request(connection, request)
                for job in enqueue:
                    await self._insert_job(connection, job, now or job.due_at)
                for event in audit:
                    await self._insert_audit(connection, event)
        except StoreError as error:
            if not isinstance(error.__cause__, IntegrityError):
                raise
            # Another request claimed a task between our check and our insert.
            async with self._connection("read task claims", write=False) as connection:
                await self._raise_if_held(connection, request)
            raise

    async def _insert_request(self, connection: AsyncConnection, request: Request) -> None:
        """Insert a new request at version 1 with the claims on its tasks."""
        await connection.execute(
            insert(requests_table).values(id=request.id, version=1, **request_columns(request))
        )
        await connection.execute(
            insert(task_claims_table),
            [
                {"stream": request.stream, "task_id": task_id, "request_id": request.id}
                for task_id in dict.fromkeys(request.task_ids)
            ],
        )

    async def scheduled(self) -> list[Request]:
        """Requests approved to run later, soonest first."""
        query = (
            select(requests_table)
            .where(requests_table.c.state == RequestState.SCHEDULED.value)
            .order_by(requests_table.c.created_at, requests_table.c.id)
        )
        return await self._requests("find scheduled requests", query)

    async def _raise_if_held(self, connection: AsyncConnection, request: Request) -> None:
        held = await connection.execute(
            select(task_claims_table.c.task_id, task_claims_table.c.request_id)
            .where(task_claims_table.c.stream == request.stream)
            .where(task_claims_table.c.task_id.in_(list(request.task_ids)))
            .where(task_claims_table.c.request_id != request.id)
            .order_by(task_claims_table.c.task_id)
        )
        first = held.first()
        if first is not None:
            raise TaskInUseError(first.request_id, first.task_id)

    @bounded
    async def get(self, request_id: str) -> Request | None:
        """The stored request with its current ``version``, or ``None`` if there is none."""
        query = select(requests_table).where(requests_table.c.id == request_id)
        async with self._connection(f"read request {request_id}", write=False) as connection:
            row = (await connection.execute(query)).first()
            return None if row is None else request_from_row(row)

    @bounded
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
        audit: Sequence[AuditEvent] = (),
    ) -> Request | None:
        """Store ``request`` if the row is still at ``expected_version``; ``None`` if not.

        The check and the write are one statement, so the database settles any race: of many
        callers holding the same version, exactly one sees a changed row. With a ``lease``, the
        same transaction first renews it (until ``lease_until``) and raises ``LeaseLostError``
        if it lapsed or changed owner, so only the job's owner can change the request. Jobs in
        ``enqueue`` are created in the same transaction (an existing job id is left alone), so
        a change and the work it implies are stored together or not at all. ``spawn`` holds new
        requests born of the change (the resume that ends a timed pause), created with it and
        claiming their tasks as the first releases them. The ``audit`` events are appended in
        the same transaction too, after the change, so the outbox shows the changed request.
        """
        statement = (
            update(requests_table)
            .where(requests_table.c.id == request.id)
            .where(requests_table.c.version == expected_version)
            .values(version=requests_table.c.version + 1, **request_columns(request))
        )
        async with self._connection(f"update request {request.id}", write=True) as connection:
            if lease is not None:
                assert lease_now is not None
                assert lease_until is not None
                if not await self._renew(connection, lease, lease_now, lease_until):
                    raise LeaseLostError(f"lost the lease on {lease.job_id}")
            changed = (await connection.execute(statement)).rowcount
            if changed == 1:
                for job in enqueue:
                    await self._insert_job(connection, job, now or job.due_at)
                if request.state.is_final:  # the tasks are free for the next request
                    await connection.execute(
                        delete(task_claims_table).where(
                            task_claims_table.c.request_id == request.id
                        )
                    )
                for child in spawn:
                    await self._insert_request(connection, child)
                for event in audit:
                    await self._insert_audit(connection, event)
        return replace(request, version=expected_version + 1) if changed == 1 else None

    async def _requests(self, doing: str, query: Select[Any]) -> list[Request]:
        async with self._connection(doing, write=False) as connection:
            return [request_from_row(row) for row in await connection.execute(query)]

    @bounded
    async def pending_expired(self, now: datetime) -> list[Request]:
        """Pending requests whose deadline is at or before ``now``, earliest deadline first."""
        query = (
            select(requests_table)
            .where(requests_table.c.state == RequestState.PENDING.value)
            .where(requests_table.c.expires_at <= now)
            .order_by(requests_table.c.expires_at, requests_table.c.id)
        )
        return await self._requests("find expired requests", query)

    @bounded
    async def executing(self) -> list[Request]:
        """Requests that were approved but whose outcome is not recorded yet, oldest first."""
        query = (
            select(requests_table)
            .where(requests_table.c.state == RequestState.EXECUTING.value)
            .order_by(requests_table.c.created_at, requests_table.c.id)
        )
        return await self._requests("find executing requests", query)

    @bounded
    async def recent_for(self, user_id: str, limit: int = 5) -> list[Request]:
        """The newest ``limit`` requests made by ``user_id``, newest first."""
        query = (
            select(requests_table)
            .where(requests_table.c.requester == user_id)
            .order_by(requests_table.c.created_at.desc(), requests_table.c.id.desc())
            .limit(max(limit, 0))
        )
        return await self._requests(f"find the requests of {user_id}", query)

    # -- the audit trail ----------------------------------------------------------------------

    @bounded
    async def append_audit(self, event: AuditEvent) -> None:
        """Append one event; a detail value JSON cannot hold is kept as its ``str``.

        With sinks configured, the same transaction queues the event in the outbox for each
        sink that wants it, so it is delivered exactly when it is recorded.
        """
        async with self._connection(f"audit {event.kind}", write=True) as connection:
            await self._insert_audit(connection, event)

    async def _insert_audit(self, connection: AsyncConnection, event: AuditEvent) -> None:
        """Insert one audit event, and queue it in the outbox for each sink that wants it."""
        inserted = await connection.execute(insert(audit_table).values(**event_columns(event)))
        sinks = route(event, self._sinks)
        if not sinks:
            return
        key = inserted.inserted_primary_key
        assert key is not None
        audit_id = int(key[0])
        request = None
        if event.request_id is not None:
            query = select(requests_table).where(requests_table.c.id == event.request_id)
            row = (await connection.execute(query)).first()
            request = None if row is None else request_from_row(row)
        body = event_body(audit_id, event, request)
        await connection.execute(
            insert(outbox_table),
            [
                {
                    "sink": sink,
                    "audit_id": audit_id,
                    "request_id": event.request_id,
                    "created_at": event.at,
                    "body": body,
                    "attempts": 0,
                }
                for sink in sinks
            ],
        )

    @bounded
    async def audit_trail(self, request_id: str) -> list[AuditEvent]:
        """A request's audit events in the order they were appended."""
        query = (
            select(audit_table)
            .where(audit_table.c.request_id == request_id)
            .order_by(audit_table.c.id)
        )
        async with self._connection(f"read the audit of {request_id}", write=False) as connection:
            return [event_from_row(row) for row in await connection.execute(query)]

    # -- jobs ---------------------------------------------------------------------------------

    async def _insert_job(self, connection: AsyncConnection, job: Job, now: datetime) -> bool:
        exists = await connection.execute(select(jobs_table.c.id).where(jobs_table.c.id == job.id))
        if exists.first() is not None:
            return False
        await connection.execute(insert(jobs_table).values(**job_columns(job, now)))
        return True

    @bounded
    async def enqueue(self, job: Job, now: datetime) -> bool:
        """Create ``job`` unless a job with its id exists; whether it was created."""
        try:
            async with self._connection(f"enqueue {job.id}", write=True) as connection:
                return await self._insert_job(connection, job, now)
        except StoreError as error:
            if isinstance(error.__cause__, IntegrityError):
                return False  # created concurrently by another replica
            raise

    @bounded
    async def get_job(self, job_id: str) -> Job | None:
        """One job, or ``None``."""
        query = select(jobs_table).where(jobs_table.c.id == job_id)
        async with self._connection(f"read job {job_id}", write=False) as connection:
            row = (await connection.execute(query)).first()
            return None if row is None else job_from_row(row)

    @bounded
    async def jobs_of(self, request_id: str) -> list[Job]:
        """A request's jobs, oldest first."""
        query = (
            select(jobs_table)
            .where(jobs_table.c.request_id == request_id)
            .order_by(jobs_table.c.created_at, jobs_table.c.id)
        )
        async with self._connection(f"read the jobs of {request_id}", write=False) as connection:
            return [job_from_row(row) for row in await connection.execute(query)]

    @bounded
    async def claim_due(
        self,
        owner: str,
        *,
        due_by: datetime,
        lease_now: datetime,
        lease_until: datetime,
        limit: int,
        skip: Sequence[str] = (),
        kinds: Sequence[JobKind] = tuple(JobKind),
    ) -> list[Job]:
        """Lease up to ``limit`` queued jobs that are due and that nobody holds a live lease on.

        Each claim is one conditional update (the same discipline as clicks), so two replicas
        polling at once never both get a job.
        """
        free = or_(
            jobs_table.c.lease_expires_at.is_(None), jobs_table.c.lease_expires_at <= lease_now
        )
        claimable = and_(jobs_table.c.state == JobState.QUEUED.value, free)
        candidates = (
            select(jobs_table.c.id)
            .where(claimable)
            .where(jobs_table.c.due_at <= due_by)
            .where(jobs_table.c.id.not_in(list(skip)))
            # Only kinds this code knows: a newer replica's jobs are left to a newer replica.
            .where(jobs_table.c.kind.in_([kind.value for kind in kinds]))
            .order_by(jobs_table.c.due_at, jobs_table.c.id)
            .limit(max(limit, 0))
        )
        claimed: list[Job] = []
        async with self._connection("claim due jobs", write=True) as connection:
            for job_id in (await connection.execute(candidates)).scalars().all():
                result = await connection.execute(
                    update(jobs_table)
                    .where(jobs_table.c.id == job_id)
                    .where(claimable)
                    .values(
                        owner=owner,
                        lease_expires_at=lease_until,
                        attempts=jobs_table.c.attempts + 1,
                    )
                )
                if result.rowcount == 1:
                    row = (
                        await connection.execute(
                            select(jobs_table).where(jobs_table.c.id == job_id)
                        )
                    ).first()
                    assert row is not None
                    claimed.append(job_from_row(row))
        return claimed

    async def _renew(
        self, connection: AsyncConnection, lease: Lease, now: datetime, until: datetime
    ) -> bool:
        result = await connection.execute(
            update(jobs_table)
            .where(jobs_table.c.id == lease.job_id)
            .where(jobs_table.c.owner == lease.owner)
            .where(jobs_table.c.state == JobState.QUEUED.value)
            .where(jobs_table.c.lease_expires_at > now)
            .values(lease_expires_at=until)
        )
        return bool(result.rowcount == 1)

    @bounded
    async def renew(self, lease: Lease, now: datetime, until: datetime) -> bool:
        """Extend a live lease to ``until``; ``False`` if it lapsed or another owner holds it."""
        async with self._connection(f"renew the lease on {lease.job_id}", write=True) as connection:
            return await self._renew(connection, lease, now, until)

    @bounded
    async def release(self, lease: Lease) -> None:
        """Give the job up at once (a graceful shutdown), so another owner may take it now."""
        async with self._connection(f"release {lease.job_id}", write=True) as connection:
            await connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == lease.job_id)
                .where(jobs_table.c.owner == lease.owner)
                .values(lease_expires_at=None)
            )

    @bounded
    async def settle_job(
        self,
        lease: Lease,
        state: JobState,
        now: datetime,
        *,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """End the owner's attempt: done, dead, or queued again after an error.

        A job queued again is held by nobody, with a lease that lapses at ``retry_at``: the
        lease doubles as the back-off timer, in the same (real) time as every lease.
        """
        values: dict[str, Any] = {
            "state": state.value,
            "owner": None,
            "lease_expires_at": retry_at if state is JobState.QUEUED else None,
            "last_error": error,
        }
        if state is not JobState.QUEUED:
            values["finished_at"] = now
        return await self._end_attempt(f"settle {lease.job_id}", lease, values)

    async def _end_attempt(self, doing: str, lease: Lease, values: dict[str, Any]) -> bool:
        """Change the job as its owner ends an attempt; ``False`` if it holds the job no more."""
        async with self._connection(doing, write=True) as connection:
            result = await connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == lease.job_id)
                .where(jobs_table.c.owner == lease.owner)
                .where(jobs_table.c.state == JobState.QUEUED.value)
                .values(**values)
            )
        return bool(result.rowcount == 1)

    @bounded
    async def reschedule(self, lease: Lease, at: datetime) -> bool:
        """End the owner's run of a recurring job: queued again, claimable from ``at``.

        Like a retry, the lease doubles as the timer; unlike one, the attempts start again.
        """
        values = {"owner": None, "lease_expires_at": at, "attempts": 0, "last_error": None}
        return await self._end_attempt(f"reschedule {lease.job_id}", lease, values)

    # -- the outbox ---------------------------------------------------------------------------

    @bounded
    async def undelivered(self, sink: str, limit: int) -> list[OutboxEvent]:
        """Up to ``limit`` of ``sink``'s undelivered outbox events, oldest first."""
        query = (
            select(outbox_table)
            .where(outbox_table.c.sink == sink)
            .where(outbox_table.c.delivered_at.is_(None))
            .order_by(outbox_table.c.id)
            .limit(max(limit, 0))
        )
        async with self._connection(f"read the {sink} outbox", write=False) as connection:
            return [outbox_from_row(row) for row in await connection.execute(query)]

    async def _undelivered_now(self, doing: str, event_id: int, **values: object) -> None:
        """Change an outbox event that is still undelivered."""
        async with self._connection(doing, write=True) as connection:
            await connection.execute(
                update(outbox_table)
                .where(outbox_table.c.id == event_id)
                .where(outbox_table.c.delivered_at.is_(None))
                .values(**values)
            )

    @bounded
    async def outbox_delivered(self, event_id: int, at: datetime) -> None:
        """Record that an outbox event was delivered."""
        await self._undelivered_now(
            f"mark event {event_id} delivered",
            event_id,
            delivered_at=at,
            next_attempt_at=None,
            last_error=None,
        )

    @bounded
    async def outbox_failed(
        self, event_id: int, *, attempts: int, retry_at: datetime, error: str
    ) -> None:
        """Record a failed delivery; the event is tried again from ``retry_at``."""
        await self._undelivered_now(
            f"record a failed delivery of {event_id}",
            event_id,
            attempts=attempts,
            next_attempt_at=retry_at,
            last_error=error,
        )

    @bounded
    async def prune_outbox(self, sink: str, delivered_before: datetime) -> int:
        """Delete ``sink``'s events delivered before ``delivered_before`` (the audit keeps them)."""
        async with self._connection(f"prune the {sink} outbox", write=True) as connection:
            result = await connection.execute(
                delete(outbox_table)
                .where(outbox_table.c.sink == sink)
                .where(outbox_table.c.delivered_at < delivered_before)
            )
        return int(result.rowcount)

    @bounded
    async def backlog(self) -> Backlog:
        """Open requests, executions in flight, queued and dead jobs, undelivered events.

        One read transaction, so the numbers belong together.
        """
        requests, jobs, outbox = requests_table.c, jobs_table.c, outbox_table.c
        open_count = select(func.count()).where(requests.state == RequestState.PENDING.value)
        executing = select(requests_table).where(requests.state == RequestState.EXECUTING.value)
        job_counts = (
            select(jobs.kind, jobs.state, func.count())
            .where(jobs.state.in_([JobState.QUEUED.value, JobState.DEAD.value]))
            .group_by(jobs.kind, jobs.state)
        )
        outbox_counts = (
            select(outbox.sink, func.count(), func.min(outbox.created_at))
            .where(outbox.delivered_at.is_(None))
            .group_by(outbox.sink)
        )
        async with self._connection("read the backlog", write=False) as connection:
            open_requests = (await connection.execute(open_count)).scalar_one()
            running = [request_from_row(row) for row in await connection.execute(executing)]
            job_rows = (await connection.execute(job_counts)).all()
            outbox_rows = (await connection.execute(outbox_counts)).all()
        return Backlog(
            open_requests=int(open_requests),
            executing_since=tuple(r.decided_at or r.created_at for r in running),
            jobs={(str(kind), str(state)): int(count) for kind, state, count in job_rows},
            outbox={str(sink): (int(count), oldest) for sink, count, oldest in outbox_rows},
        )

    @bounded
    async def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers a trivial query."""
        async with self._connection("reach the database", write=False) as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Release every pooled connection."""
        await self._engine.dispose()

    # -- the audit export ---------------------------------------------------------------------

    async def iter_audit(
        self, filters: AuditFilters, *, batch_size: int = AUDIT_BATCH_ROWS
    ) -> AsyncGenerator[AuditRow, None]:
        """The events matching ``filters``, oldest first, with their request's stream and channel.

        Streamed, so a trail of any length takes constant memory: one read transaction with a
        server-side cursor (PostgreSQL: a named cursor; SQLite: a statement stepped as rows are
        fetched) gives a consistent snapshot ``batch_size`` rows at a time. The export may take
        as long as its reader does, so each fetch, not the whole export, is bounded in time.
        """
        query = self._audit_query(filters).execution_options(yield_per=batch_size)
        async with self._connection("export the audit trail", write=False) as connection:
            async with asyncio.timeout(self._timeout):
                result = await connection.stream(query)
            while True:
                async with asyncio.timeout(self._timeout):
                    batch = await result.fetchmany(batch_size)
                if not batch:
                    return
                for row in batch:
                    yield AuditRow(*row)

    def _request_field(self, name: str) -> ColumnElement[str]:
        """A top-level field of the request's JSON document (``stream``, ``action``)."""
        data = requests_table.c.data
        if self.dialect == "sqlite":
            return func.json_extract(data, f"$.{name}", type_=Text)
        return func.json_extract_path_text(cast(data, JSON), name, type_=Text)

    def _audit_query(self, filters: AuditFilters) -> Select[Any]:
        audit, requests = audit_table.c, requests_table.c
        stream = self._request_field("stream")
        conditions: list[ColumnElement[bool]] = []
        if filters.since is not None:
            conditions.append(audit.at >= filters.since)
        if filters.until is not None:
            conditions.append(audit.at < filters.until)
        if filters.stream is not None:
            conditions.append(stream == filters.stream)
        if filters.user is not None:
            conditions.append(or_(audit.actor == filters.user, requests.requester == filters.user))
        if filters.channel is not None:
            conditions.append(requests.channel == filters.channel)
        if filters.request is not None:
            conditions.append(audit.request_id == filters.request)
        return (
            select(  # in the order of ``AuditRow``'s fields
                audit.id,
                audit.at,
                audit.request_id,
                audit.kind,
                audit.actor,
                requests.channel,
                stream.label("stream"),
                self._request_field("action").label("action"),
                audit.detail,
            )
            .select_from(audit_table.outerjoin(requests_table, requests.id == audit.request_id))
            .where(*conditions)
            .order_by(audit.id)
        )


async def open_store(database_url: str, *, sinks: Collection[str] = ()) -> SqlStore:
    """Connect to ``DATABASE_URL`` and migrate the schema to the newest, or raise ``StoreError``.

    ``sinks`` names the outbox sinks audit events are queued for (none by default).
    """
    store = SqlStore(database_url, sinks=sinks)
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store
