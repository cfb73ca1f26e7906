"""The command inbox: how ``serve`` hands typed commands to its worker when the store is SQLite.

A typed command is stored as an ``ask`` job before Slack gets its ack. On PostgreSQL the
listener inserts that job into the store directly. SQLite lets one writer at a time into a
file, and the worker writes all the time; a write transaction there spans several trips through
the worker's busy event loop, so the listener's insert waited behind it for hundreds of
milliseconds (the benchmark saw acks of over a second). So on SQLite ``serve`` appends the job
to a file of its own, ``<database>.inbox``, which only it writes: one insert, durable (WAL,
synchronous commit) before the ack, and never waiting for the worker.

The worker (``InboxReader``) reads what is new (readers never block the writer in WAL mode)
and stores each job in the store. Job ids are natural keys, so an entry read twice (after a
restart) is stored once; the worker deletes what it has stored now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.errors import StoreError
from bot.jobs import Job, JobKind
from bot.store import Store

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0
READ_LIMIT = 500
PRUNE_EVERY_S = 60.0


def inbox_path(database_url: str) -> Path | None:
    """Where the inbox of a SQLite store lives; ``None`` for a store that needs none."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(f"{url.database}.inbox")


def _job_to_json(job: Job) -> str:
    return json.dumps(
        {
            "id": job.id,
            "kind": job.kind.value,
            "due_at": job.due_at.isoformat(),
            "request_id": job.request_id,
            "payload": dict(job.payload),
        }
    )


def _job_from_json(text: str) -> Job:
    raw: dict[str, Any] = json.loads(text)
    return Job(
        raw["id"],
        JobKind(raw["kind"]),
        datetime.fromisoformat(raw["due_at"]),
        request_id=raw["request_id"],
        payload=raw["payload"],
    )


class Inbox:
    """An append-only SQLite file of jobs: ``serve`` appends, the worker reads and prunes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(
                self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")  # on disk before the ack
            connection.execute(
                # AUTOINCREMENT: an id is never used again, even once pruning empties the table;
                # the reader finds new entries by id.
                "CREATE TABLE IF NOT EXISTS inbox"
                " (id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL)"
            )
            self._connection = connection
        return self._connection

    async def _run(self, doing: str, work: Callable[[sqlite3.Connection], Any]) -> Any:
        def locked() -> Any:
            with self._lock:
                return work(self._connect())

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as error:
            raise StoreError(f"could not {doing} in {self._path}: {error}") from error

    async def append(self, job: Job) -> None:
        """Store ``job`` for the worker, committed to disk when this returns."""
        text = _job_to_json(job)
        await self._run(
            f"hand over {job.id}",
            lambda db: db.execute("INSERT INTO inbox (job) VALUES (?)", (text,)),
        )

    async def after(self, last_id: int, limit: int = READ_LIMIT) -> list[tuple[int, Job]]:
        """The entries after ``last_id``, oldest first."""
        rows = await self._run(
            "read the inbox",
            lambda db: db.execute(
                "SELECT id, job FROM inbox WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)
            ).fetchall(),
        )
        return [(int(row[0]), _job_from_json(row[1])) for row in rows]

    async def prune(self, up_to_id: int) -> None:
        """Forget the entries up to ``up_to_id``: their jobs are in the store."""
        await self._run(
            "prune the inbox", lambda db: db.execute("DELETE FROM inbox WHERE id <= ?", (up_to_id,))
        )

    def close(self) -> None:
        """Close the file (the next call opens it again)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class InboxReader:
    """The worker's side: moves new inbox entries into the store and wakes the job runner."""

    def __init__(
        self,
        inbox: Inbox,
        store: Store,
        *,
        wake_runner: Callable[[], None],
        clock: Callable[[], datetime],
        poll_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inbox = inbox
        self._store = store
        self._wake_runner = wake_runner
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._monotonic = monotonic
        self._last_id = 0
        self._pruned_at = monotonic()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """``serve`` appended something: read now rather than at the next poll."""
        self._wakeup.set()

    def start(self) -> None:
        """Read the inbox in the background until ``stop``."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="inbox-reader")

    async def stop(self) -> None:
        """Stop reading (what is unread waits in the file for the next worker)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._inbox.close()

    async def _loop(self) -> None:
        while True:
            try:
                await self.read_once()
            except StoreError as error:
                logger.warning("could not move commands from the inbox: %s", error)
            except Exception:
                logger.exception("reading the inbox failed; will try again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)
            self._wakeup.clear()

    async def read_once(self) -> int:
        """Store every new entry's job; how many entries were read."""
        read = 0
        while entries := await self._inbox.after(self._last_id):
            for entry_id, job in entries:
                await self._store.enqueue(job, self._clock())  # an existing id is left alone
                self._last_id = entry_id
            read += len(entries)
            self._wake_runner()
            if len(entries) < READ_LIMIT:
                break
        if self._monotonic() - self._pruned_at >= PRUNE_EVERY_S and self._last_id:
            await self._inbox.prune(self._last_id)
            self._pruned_at = self._monotonic()
        return read
