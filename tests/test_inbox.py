"""The inbox ``serve`` hands commands to its worker through on SQLite (``bot.inbox``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.inbox import Inbox, InboxReader, inbox_path
from bot.jobs import JobState, ask_job
from tests.fakes import FakeStore

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _command(number: int) -> dict[str, str]:
    return {"user_id": "U1", "channel_id": "C1", "text": f"start s t{number}", "response_url": ""}


async def test_entries_become_jobs_once_even_when_read_again(tmp_path: Path):
    """A restarted reader reads everything again; the store keeps one job per entry."""
    inbox, store, woken = Inbox(tmp_path / "bot.db.inbox"), FakeStore(), []
    for number in range(3):
        await inbox.append(ask_job(f"dt-{number}", _command(number), NOW))
    for _ in range(2):  # the second reader starts from the beginning, as after a restart
        reader = InboxReader(
            inbox, store, wake_runner=lambda: woken.append(1), clock=lambda: NOW, poll_seconds=60
        )
        await reader.read_once()
    assert sorted(store.jobs) == ["ask:dt-0", "ask:dt-1", "ask:dt-2"]
    job = store.jobs["ask:dt-1"]
    assert (job.request_id, job.state, job.payload["command"]) == (
        "dt-1",
        JobState.QUEUED,
        _command(1),
    )
    assert woken


async def test_entries_after_a_prune_that_emptied_the_inbox_are_still_read(tmp_path: Path):
    """Pruning everything must not make new entries reuse old ids (the reader would skip them)."""
    inbox, store = Inbox(tmp_path / "bot.db.inbox"), FakeStore()
    clock_seconds = [0.0]
    reader = InboxReader(
        inbox,
        store,
        wake_runner=lambda: None,
        clock=lambda: NOW,
        poll_seconds=60,
        monotonic=lambda: clock_seconds[0],
    )
    await inbox.append(ask_job("dt-first", _command(1), NOW))
    clock_seconds[0] = 3600.0  # time to prune
    assert await reader.read_once() == 1
    assert await inbox.after(0) == []  # pruned: the table is empty
    await inbox.append(ask_job("dt-second", _command(2), NOW))
    assert await reader.read_once() == 1
    assert "ask:dt-second" in store.jobs


def test_only_a_sqlite_file_store_has_an_inbox():
    """PostgreSQL (row locks) and in-memory SQLite take the job directly."""
    assert inbox_path("sqlite:////var/lib/bot/dumptask.db") == Path(
        "/var/lib/bot/dumptask.db.inbox"
    )
    assert inbox_path("postgresql+psycopg://bot@db/bot") is None
    assert inbox_path("sqlite:///:memory:") is None
