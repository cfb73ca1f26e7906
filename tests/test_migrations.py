"""The versioned schema: upgrading a database the pre-migration bot made, with data in it.

The DDL and the rows below are exactly what the last bot without migrations wrote (captured from
its code), so these tests prove that an operator upgrading in place loses nothing, and that an
execution left running by the old bot is adopted without its batch call being sent again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from bot.jobs import JobKind
from bot.lifecycle import Phase, RequestState
from bot.store.migrate import head_revision
from bot.store.schema import metadata
from bot.store.sql import open_store

OLD_SCHEMA = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER NOT NULL, request_id TEXT, kind TEXT NOT NULL, actor TEXT,
    at DATETIME NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (id));
CREATE INDEX IF NOT EXISTS ix_audit_events_request_id ON audit_events (request_id);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL, requester TEXT NOT NULL,
    channel TEXT NOT NULL, created_at DATETIME NOT NULL, expires_at DATETIME NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (id));
CREATE INDEX IF NOT EXISTS ix_requests_requester_created_at ON requests (requester, created_at);
CREATE INDEX IF NOT EXISTS ix_requests_state_expires_at ON requests (state, expires_at);
""",
    "postgresql": """
CREATE TABLE IF NOT EXISTS audit_events (
    id BIGSERIAL NOT NULL, request_id TEXT, kind TEXT NOT NULL, actor TEXT,
    at TIMESTAMP WITH TIME ZONE NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (id));
CREATE INDEX IF NOT EXISTS ix_audit_events_request_id ON audit_events (request_id);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL, requester TEXT NOT NULL,
    channel TEXT NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL, data TEXT NOT NULL, PRIMARY KEY (id));
CREATE INDEX IF NOT EXISTS ix_requests_requester_created_at ON requests (requester, created_at);
CREATE INDEX IF NOT EXISTS ix_requests_state_expires_at ON requests (state, expires_at);
""",
}

_TASKS = '[{"task_id":"9dSu1wfCytSk1aOLxvF","name":"orders-archive","state_at_request":"PAUSED"}]'
_COMMON = (
    '"action":"start","stream":"orders-stream","tasks":' + _TASKS + ',"requester":"U0REQUESTER",'
    '"channel":"C0INCIDENT","created_at":"2026-11-20T10:00:00Z",'
    '"expires_at":"2026-11-20T10:15:00Z","approvals_required":1,"reason":"INC-1 <old>",'
)
_DECIDED = (
    '"approvals":[{"user_id":"U0APPROVER1","at":"2026-11-20T10:00:00Z"}],'
    '"decided_by":"U0APPROVER1","decided_at":"2026-11-20T10:00:00Z",'
    '"card_ts":"1763632800.000100","state_unknown_because":null,'
)
OLD_ROWS = {
    "dt-pending2": (
        "pending",
        '{"id":"dt-pending2",' + _COMMON + '"state":"pending","approvals":[],"decided_by":null,'
        '"decided_at":null,"card_ts":null,"state_unknown_because":null,"outcome":null}',
    ),
    "dt-executng": (
        "executing",
        '{"id":"dt-executng",' + _COMMON + '"state":"executing",' + _DECIDED + '"outcome":null}',
    ),
    "dt-finished": (
        "failed",
        '{"id":"dt-finished",' + _COMMON + '"state":"failed",' + _DECIDED + '"outcome":{"tasks":'
        '[{"task_id":"9dSu1wfCytSk1aOLxvF","name":"orders-archive","final_state":"PAUSED",'
        '"reached_target":false,"detail":"not changed: the DIS call failed"}],'
        '"dis_request_id":"req-1","error_code":"DIS.4116","error_message":"no permission",'
        '"error_advice":"ask","finished_at":"2026-11-20T10:00:00Z"}}',
    ),
}


def _sync_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database exactly as the pre-migration bot left it: its tables, three requests, audit."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/old.db"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    engine = create_engine(_sync_url(url))
    with engine.begin() as connection:
        for statement in OLD_SCHEMA[request.param].split(";"):
            if statement.strip():
                connection.exec_driver_sql(statement)
        for request_id, (state, data) in OLD_ROWS.items():
            connection.execute(
                text(
                    "INSERT INTO requests (id, state, version, requester, channel, created_at,"
                    " expires_at, data) VALUES (:id, :state, 3, 'U0REQUESTER', 'C0INCIDENT',"
                    " '2026-11-20 10:00:00.000000', '2026-11-20 10:15:00.000000', :data)"
                ),
                {"id": request_id, "state": state, "data": data},
            )
        connection.execute(
            text(
                "INSERT INTO audit_events (request_id, kind, actor, at, detail) VALUES"
                " ('dt-finished', 'dis_call', 'bot', '2026-11-20 10:00:00.000000', '{\"ok\": false}')"
            )
        )
    engine.dispose()
    return url


async def test_upgrading_an_old_database_keeps_every_request_and_event(old_database: str):
    """Pending and finished requests read back as before, with the audit trail."""
    store = await open_store(old_database)
    try:
        pending = await store.get("dt-pending2")
        finished = await store.get("dt-finished")
        assert pending is not None
        assert finished is not None
        assert (pending.state, pending.reason, pending.version) == (
            RequestState.PENDING,
            "INC-1 <old>",
            3,
        )
        assert finished.state is RequestState.FAILED
        assert finished.outcome is not None
        assert finished.outcome.call_failed
        assert finished.outcome.error_code == "DIS.4116"
        [event] = await store.audit_trail("dt-finished")
        assert event.detail == {"ok": False}
    finally:
        await store.close()


async def test_an_old_execution_is_adopted_as_possibly_sent(old_database: str):
    """A request the old bot left executing gets a job and is never sent again, only read back."""
    store = await open_store(old_database)
    try:
        executing = await store.get("dt-executng")
        assert executing is not None
        assert executing.state is RequestState.EXECUTING
        assert executing.phase is Phase.SENDING
        assert not executing.may_be_sent
        [job] = await store.jobs_of("dt-executng")
        assert job.kind is JobKind.EXECUTE
        assert await store.jobs_of("dt-pending2") == []
    finally:
        await store.close()


def _schema_differences(url: str) -> list[object]:
    engine = create_engine(_sync_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() == head_revision()
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


async def test_migrated_schema_is_the_schema_the_queries_use(old_database: str, tmp_path: Path):
    """Both an upgraded and a fresh database match the tables the code declares, at head."""
    fresh = old_database.replace("old.db", "fresh.db") if "sqlite" in old_database else None
    for url in filter(None, (old_database, fresh)):
        store = await open_store(url)
        await store.close()
        assert _schema_differences(url) == []


async def test_two_replicas_starting_at_once_migrate_once(database_url_pair: tuple[str, str]):
    """Two stores opening the same empty database together both end up at head, without error."""
    url, _ = database_url_pair
    first, second = await asyncio.gather(open_store(url), open_store(url))
    try:
        await first.ping()
        await second.ping()
    finally:
        await first.close()
        await second.close()
    assert _schema_differences(url) == []


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url_pair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/race.db", "sqlite"
    return str(request.getfixturevalue("postgres_url")), "postgresql"


def test_migrate_command_applies_the_migrations_then_says_it_is_up_to_date(tmp_path: Path):
    """``dumptask-bot migrate`` needs only DATABASE_URL, migrates, and is idempotent."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
    }

    def migrate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "migrate"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    first = migrate()
    assert first.returncode == 0, first.stderr
    assert f"from revision none to {head_revision()}" in first.stdout
    second = migrate()
    assert second.returncode == 0, second.stderr
    assert f"already at the newest revision {head_revision()}" in second.stdout


def test_migrate_command_explains_a_bad_database_url(tmp_path: Path):
    """A wrong scheme is one configuration line naming DATABASE_URL, exit status 2."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        env={"PATH": os.environ.get("PATH", ""), "DATABASE_URL": "mysql://x@y/z"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
