"""A typed command or a button press is stored before Slack gets its ack, and done by a job.

The ack waits for one insert, so what Slack was told we received survives a crash; the job
(``ask``) asks DIS, opens the request and posts the card, and a rerun after a crash finishes
what the first attempt started instead of opening a second request.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.commands import TaskCommand, parse_command
from bot.jobs import HeldJob, JobKind, JobState, Lease, ask_job
from bot.slack.listeners import NOT_QUEUED, STORE_DOWN
from tests.conftest import APPROVER1, ARCHIVE_ID, INCIDENT, REQUESTER, STREAM
from tests.flow_helpers import (
    APPROVE,
    cards,
    eventually,
    request_id_of,
    wait_for_ephemeral,
    wait_for_stored_card,
)


@contextlib.contextmanager
def database_held(path: Path) -> Iterator[None]:
    """Another process's exclusive transaction on the bot's SQLite file, for the block's length."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(20)
        connection.execute("ROLLBACK")
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def test_a_command_is_a_stored_job_that_ends_done_with_its_card(start_bot, slack):
    """The card comes from the ``ask`` job the listener stored; the job is then done."""
    bot = start_bot()
    ack = slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {ARCHIVE_ID}")
    assert ack.status_code == 200
    assert not ack.content  # an empty ack: the card follows
    card = wait_for_stored_card(bot, slack, INCIDENT)
    request_id = request_id_of(card)
    assert bot.bot is not None
    store = bot.bot.store

    def ask_done() -> bool:
        jobs = bot.run(store.jobs_of(request_id))
        return [(j.kind, j.state) for j in jobs if j.kind is JobKind.ASK] == [
            (JobKind.ASK, JobState.DONE)
        ]

    eventually(ask_done, what="the ask job to end")


def test_a_rerun_after_a_crash_posts_the_missing_card_and_opens_nothing_new(start_bot, slack):
    """An attempt that stored the request and died before the card: the rerun posts it once."""
    bot = start_bot()
    assert bot.bot is not None
    listeners, store = bot.bot.listeners, bot.bot.store
    fields = {
        "user_id": REQUESTER,
        "channel_id": INCIDENT,
        "text": f"start {STREAM} {ARCHIVE_ID}",
        "response_url": "",
    }
    job = replace(ask_job("dt-rerun01", fields, datetime.now(UTC)), attempts=1)
    held = HeldJob(job, Lease(job.id, "first"), 15, lambda: datetime.now(UTC))
    # The first attempt got as far as storing the request (its card never went out).
    command = parse_command(fields["text"])
    assert isinstance(command, TaskCommand)
    bot.run(bot.bot.service.open_request(command, REQUESTER, INCIDENT, "dt-rerun01"))
    rerun = replace(held, job=replace(job, attempts=2))

    bot.run(listeners.run_ask(rerun))
    bot.run(listeners.run_ask(rerun))  # and once more: the card is there now

    posted = cards(slack, INCIDENT)
    assert [request_id_of(card) for card in posted] == ["dt-rerun01"]
    stored = bot.run(store.get("dt-rerun01"))
    assert stored is not None
    assert stored.card_ts == posted[0].ts
    assert [r.id for r in bot.run(store.recent_for(REQUESTER))] == ["dt-rerun01"]


def test_a_database_too_busy_to_store_the_command_gets_an_honest_answer_in_time(
    start_bot, slack, tmp_path
):
    """While another process holds the database, the ack says so before Slack gives up."""
    start_bot()
    with database_held(tmp_path / "bot.db"):
        started = time.monotonic()
        ack = slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {ARCHIVE_ID}")
        answered = time.monotonic() - started
    assert ack.status_code == 200
    assert ack.json()["text"] == NOT_QUEUED
    assert answered < 3.0


def test_a_click_is_a_stored_job_too(start_bot, slack):
    """Approve is stored as a ``click`` job before its ack, and that job records it."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {ARCHIVE_ID}")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    request_id = request_id_of(card)
    ack = slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    assert ack.status_code == 200
    assert bot.bot is not None
    store = bot.bot.store

    def click_done() -> bool:
        jobs = bot.run(store.jobs_of(request_id))
        return [j.state for j in jobs if j.kind is JobKind.CLICK] == [JobState.DONE]

    eventually(click_done, what="the click job to end")
    stored = bot.run(store.get(request_id))
    assert stored is not None
    assert [approval.user_id for approval in stored.approvals] == [APPROVER1]


def test_a_click_the_database_cannot_store_is_answered_honestly(start_bot, slack, tmp_path):
    """While the database is held, the clicker hears it may not be recorded (never silence)."""
    bot = start_bot()
    assert bot.bot is not None
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {ARCHIVE_ID}")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    with database_held(tmp_path / "bot.db"):
        slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
        [answer] = wait_for_ephemeral(slack, INCIDENT, APPROVER1)
    assert answer == STORE_DOWN
