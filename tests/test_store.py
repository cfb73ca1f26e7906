"""The store against real databases: a SQLite file and, when reachable, a PostgreSQL server.

Every PostgreSQL test runs in a schema of its own (chosen through ``search_path`` in the URL),
dropped afterwards, so runs and tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.audit import AuditEvent, AuditKind
from bot.errors import StoreError
from bot.lifecycle import (
    Approval,
    Outcome,
    Request,
    RequestedTask,
    RequestState,
    TaskOutcome,
)
from bot.store.sql import SqlStore, engine_url, open_store
from bot.vocabulary import TaskAction, TaskState

NOW = datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=UTC)
TTL = timedelta(minutes=15)


def make_request(
    request_id: str = "dt-abcd2345",
    *,
    requester: str = "U0REQUESTER",
    created_at: datetime = NOW,
    state: RequestState = RequestState.PENDING,
) -> Request:
    return Request(
        id=request_id,
        action=TaskAction.START,
        stream="orders-stream",
        # Each request its own task: two open requests may not share one.
        tasks=(RequestedTask(f"task-{request_id}", "orders-archive", TaskState.PAUSED),),
        requester=requester,
        channel="C0INCIDENT",
        created_at=created_at,
        expires_at=created_at + TTL,
        approvals_required=1,
        state=state,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    opened = await open_store(database_url)
    yield opened
    await opened.close()


@pytest.fixture
async def second_store(database_url: str, store: SqlStore) -> AsyncIterator[SqlStore]:
    """Another store on the same database, as a second replica (or process) would open it."""
    opened = await open_store(database_url)
    yield opened
    await opened.close()


async def test_round_trip_of_a_full_request(store: SqlStore) -> None:
    """A request with tasks, approvals and an outcome comes back equal, with aware UTC times."""
    later = NOW + timedelta(seconds=42)
    request = replace(
        make_request(state=RequestState.PARTIAL),
        tasks=(
            RequestedTask("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED),
            RequestedTask("Kq3ZtV8mYw2Lp0Rc7Hd", None, None),
        ),
        approvals_required=2,
        reason='INC-4312 "OBS dump" stalled ✓',
        approvals=(
            Approval("U0APPROVER1", NOW + timedelta(seconds=5)),
            Approval(
                "U0APPROVER2", (NOW + timedelta(seconds=9)).astimezone(timezone(timedelta(hours=2)))
            ),
        ),
        decided_by="U0APPROVER2",
        decided_at=NOW + timedelta(seconds=9),
        card_ts="1715938215.000100",
        state_unknown_because="DIS did not answer",
        outcome=Outcome(
            tasks=(
                TaskOutcome("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.RUNNING, True),
                TaskOutcome("Kq3ZtV8mYw2Lp0Rc7Hd", None, TaskState.ERROR, False, "stuck in ERROR"),
            ),
            dis_request_id="req-1234",
            error_code="DIS.4301",
            error_message="partly failed",
            error_advice="try again",
            finished_at=later,
        ),
    )
    await store.create(request)

    stored = await store.get(request.id)

    assert stored == request
    assert stored.version == 1
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.outcome is not None
    assert stored.outcome.finished_at == later
    assert isinstance(stored.tasks, tuple)


async def test_get_of_an_unknown_id_is_none(store: SqlStore) -> None:
    """Asking for a request that was never created answers None."""
    assert await store.get("dt-nothere2") is None


async def test_duplicate_create_raises(store: SqlStore) -> None:
    """Creating a second request with an existing id raises StoreError naming the id."""
    await store.create(make_request())

    with pytest.raises(StoreError, match="dt-abcd2345 already exists"):
        await store.create(make_request())


async def test_update_with_the_current_version_wins(store: SqlStore) -> None:
    """An update from the stored version is written and bumps the version by one."""
    await store.create(make_request())
    current = await store.get("dt-abcd2345")
    assert current is not None

    changed = await store.update(replace(current, card_ts="1715938215.000100"), current.version)

    assert changed is not None
    assert changed.version == current.version + 1
    stored = await store.get("dt-abcd2345")
    assert stored == changed
    assert stored.version == changed.version


async def test_update_with_a_stale_version_changes_nothing(store: SqlStore) -> None:
    """An update from a version someone else already moved past returns None and writes nothing."""
    await store.create(make_request())
    first = await store.update(replace(make_request(), reason="first"), 1)
    assert first is not None

    lost = await store.update(replace(make_request(), reason="second"), 1)

    assert lost is None
    stored = await store.get("dt-abcd2345")
    assert stored is not None
    assert (stored.reason, stored.version) == ("first", 2)


async def test_update_of_an_unknown_id_returns_none(store: SqlStore) -> None:
    """Updating a request that does not exist changes nothing and returns None."""
    assert await store.update(make_request("dt-nothere2"), 1) is None


async def test_twenty_concurrent_updates_have_one_winner(store: SqlStore) -> None:
    """Twenty updates racing from the same read version produce exactly one winner."""
    await store.create(make_request())
    read = await store.get("dt-abcd2345")
    assert read is not None

    results = await asyncio.gather(
        *(store.update(replace(read, reason=f"click {n}"), read.version) for n in range(20))
    )

    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert await store.get("dt-abcd2345") == winners[0]
    assert winners[0].version == read.version + 1


async def test_concurrent_updates_from_two_replicas_have_one_winner(
    store: SqlStore, second_store: SqlStore
) -> None:
    """Twenty updates split across two stores on one database produce exactly one winner."""
    await store.create(make_request())
    read = await second_store.get("dt-abcd2345")
    assert read is not None

    results = await asyncio.gather(
        *(
            (store, second_store)[n % 2].update(replace(read, reason=f"click {n}"), read.version)
            for n in range(20)
        )
    )

    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert await second_store.get("dt-abcd2345") == winners[0]


async def test_audit_trail_keeps_insertion_order(store: SqlStore) -> None:
    """A request's audit events come back in the order they were appended, and only its own."""
    events = [
        AuditEvent("dt-abcd2345", AuditKind.REQUESTED, "U0REQUESTER", NOW, {"tasks": ["a", "b"]}),
        AuditEvent("dt-abcd2345", AuditKind.CARD_POSTED, "bot", NOW, {"ts": "1.2"}),
        AuditEvent("dt-abcd2345", AuditKind.APPROVED, "U0APPROVER1", NOW - timedelta(seconds=1)),
    ]
    await store.append_audit(events[0])
    await store.append_audit(AuditEvent("dt-other2345", AuditKind.EXPIRED, "bot", NOW, {}))
    await store.append_audit(AuditEvent(None, AuditKind.CARD_POSTED, None, NOW, {"ts": "x"}))
    for event in events[1:]:
        await store.append_audit(event)

    trail = await store.audit_trail("dt-abcd2345")

    assert trail == events
    assert [event.kind for event in trail] == [
        AuditKind.REQUESTED,
        AuditKind.CARD_POSTED,
        AuditKind.APPROVED,
    ]


async def test_audit_keeps_values_json_cannot_hold_as_text(store: SqlStore) -> None:
    """A detail value JSON cannot represent is stored as its text rather than failing the audit."""
    await store.append_audit(
        AuditEvent("dt-abcd2345", AuditKind.DIS_CALL, "bot", NOW, {"at": NOW, "n": 3})
    )

    [event] = await store.audit_trail("dt-abcd2345")

    assert event.detail == {"at": str(NOW), "n": 3}


async def test_pending_expired_finds_open_requests_past_their_deadline(store: SqlStore) -> None:
    """Only pending requests whose deadline is at or before now are expired, earliest first."""
    now = NOW + TTL
    await store.create(make_request("dt-future22", created_at=NOW + timedelta(seconds=1)))
    await store.create(make_request("dt-exactly2"))
    await store.create(make_request("dt-earlier2", created_at=NOW - timedelta(minutes=1)))
    await store.create(
        make_request(
            "dt-cancel22", created_at=NOW - timedelta(hours=1), state=RequestState.CANCELLED
        )
    )

    expired = await store.pending_expired(now)

    assert [request.id for request in expired] == ["dt-earlier2", "dt-exactly2"]


async def test_executing_lists_only_executing_requests(store: SqlStore) -> None:
    """Requests left in EXECUTING (to resume after a restart) are listed, oldest first."""
    for n, state in enumerate(RequestState):
        await store.create(make_request(f"dt-{state.value[:4]}2345", created_at=NOW, state=state))
        await store.create(
            make_request(
                f"dt-{state.value[:4]}old2", created_at=NOW - timedelta(minutes=n + 1), state=state
            )
        )

    executing = await store.executing()

    assert [request.id for request in executing] == ["dt-execold2", "dt-exec2345"]


async def test_recent_for_lists_the_requesters_newest_first(store: SqlStore) -> None:
    """recent_for returns only the requester's requests, newest first, five by default."""
    for n in range(7):
        await store.create(make_request(f"dt-mine234{n}", created_at=NOW + timedelta(minutes=n)))
    await store.create(
        make_request("dt-theirs22", requester="U0SOMEONE", created_at=NOW + timedelta(hours=1))
    )

    recent = await store.recent_for("U0REQUESTER")

    assert [request.id for request in recent] == [f"dt-mine234{n}" for n in (6, 5, 4, 3, 2)]


async def test_recent_for_respects_the_limit(store: SqlStore) -> None:
    """recent_for returns at most ``limit`` requests."""
    for n in range(4):
        await store.create(make_request(f"dt-mine234{n}", created_at=NOW + timedelta(minutes=n)))

    recent = await store.recent_for("U0REQUESTER", limit=2)

    assert [request.id for request in recent] == ["dt-mine2343", "dt-mine2342"]


async def test_a_restart_loses_nothing(database_url: str) -> None:
    """Requests, versions and the audit trail survive closing and reopening the store."""
    store = await open_store(database_url)
    try:
        await store.create(make_request())
        changed = await store.update(replace(make_request(), reason="approved"), 1)
        await store.append_audit(AuditEvent("dt-abcd2345", AuditKind.APPROVED, "U0APPROVER1", NOW))
    finally:
        await store.close()

    reopened = await open_store(database_url)
    try:
        stored = await reopened.get("dt-abcd2345")
        assert stored == changed
        assert stored.version == 2
        assert await reopened.audit_trail("dt-abcd2345") == [
            AuditEvent("dt-abcd2345", AuditKind.APPROVED, "U0APPROVER1", NOW)
        ]
    finally:
        await reopened.close()


async def test_ping_answers_when_the_database_is_reachable(store: SqlStore) -> None:
    """A ping returns quietly while the database answers."""
    await store.ping()


async def test_ping_fails_clearly_on_an_unreachable_postgres() -> None:
    """A ping of a server nobody listens on raises StoreError naming the host, not the password."""
    store = SqlStore("postgresql://dumptask:s3cret-pw@127.0.0.1:1/test")
    try:
        with pytest.raises(StoreError) as caught:
            await store.ping()
    finally:
        await store.close()

    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "s3cret-pw" not in message
    assert "s3cret-pw" not in str(caught.value.__cause__)


async def test_open_store_fails_clearly_on_an_unreachable_postgres() -> None:
    """Opening a store on a server nobody listens on raises StoreError without the password."""
    with pytest.raises(StoreError) as caught:
        await open_store("postgres://dumptask:s3cret-pw@127.0.0.1:1/test")

    assert "could not migrate" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


async def test_open_store_fails_clearly_on_an_unusable_sqlite_path(tmp_path: Path) -> None:
    """A SQLite file in a directory that does not exist raises StoreError naming the path."""
    with pytest.raises(StoreError, match=re.escape("missing/store.db")):
        await open_store(f"sqlite:///{tmp_path}/missing/store.db")


async def test_a_failed_sqlite_open_leaves_no_worker_thread(tmp_path: Path) -> None:
    """A SQLite file that cannot be opened leaves no aiosqlite thread to report to a closed loop."""
    with pytest.raises(StoreError):
        await open_store(f"sqlite:///{tmp_path}/missing/store.db")

    assert not [
        thread for thread in threading.enumerate() if "_connection_worker_thread" in thread.name
    ]


async def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    """The SQLite file is switched to WAL so readers and writers of several processes coexist."""
    store = await open_store(f"sqlite:///{tmp_path}/store.db")
    await store.close()

    with closing(sqlite3.connect(tmp_path / "store.db")) as connection:
        [mode] = connection.execute("PRAGMA journal_mode").fetchone()

    assert mode == "wal"


async def test_relative_sqlite_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///name.db puts the file in the current directory, as the default setting expects."""
    monkeypatch.chdir(tmp_path)

    store = await open_store("sqlite:///dumptask.db")
    await store.close()

    assert (tmp_path / "dumptask.db").is_file()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///dumptask.db", "sqlite+aiosqlite:///dumptask.db"),
        ("sqlite:////var/lib/bot/dumptask.db", "sqlite+aiosqlite:////var/lib/bot/dumptask.db"),
        ("postgresql://bot:pw@db:5432/bot", "postgresql+psycopg://bot:pw@db:5432/bot"),
        (
            "postgres://bot@db/bot?sslmode=require",
            "postgresql+psycopg://bot@db/bot?sslmode=require",
        ),
        ("postgresql+psycopg://bot@db/bot", "postgresql+psycopg://bot@db/bot"),
    ],
)
def test_database_urls_map_to_the_async_drivers(url: str, expected: str) -> None:
    """Each DATABASE_URL form the settings accept maps onto aiosqlite or psycopg."""
    assert engine_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "url",
    ["sqlite:///:memory:", "sqlite://", "mysql://bot:s3cret-pw@db/bot", "not a url s3cret-pw"],
)
def test_unusable_database_urls_are_refused_without_the_password(url: str) -> None:
    """In-memory SQLite, other databases and garbage raise StoreError that never shows a password."""
    with pytest.raises(StoreError) as caught:
        engine_url(url)

    assert "s3cret-pw" not in str(caught.value)
