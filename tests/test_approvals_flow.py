"""Approvals that reach people, end to end: the real bot over HTTP with the Slack and DIS stand-ins.

Reminders use the bot's clock, which the tests move by hand; everything else waits on what the
stand-ins saw, never on a fixed sleep.
"""

from __future__ import annotations

from bot.jobs import JobState
from bot.vocabulary import TaskState
from tests.conftest import APPROVER1, APPROVER2, ARCHIVE_ID, INCIDENT, OUTSIDER, REQUESTER, STREAM
from tests.flow_helpers import (
    APPROVE,
    card_text,
    cards,
    eventually,
    has_buttons,
    request_id_of,
    wait_for_ephemeral,
    wait_for_stored_card,
    wait_for_thread_reply,
)


def reminders(slack, ts: str) -> list[str]:
    return [m.text for m in slack.thread(INCIDENT, ts) if "still needs" in m.text]


def wait_for_job_done(bot, job_id: str) -> None:
    assert bot.bot is not None
    store = bot.bot.store
    eventually(
        lambda: (job := bot.run(store.get_job(job_id))) and job.state is JobState.DONE,
        what=f"job {job_id} to be done",
    )


def test_one_reminder_with_escalation_reaches_the_thread(start_bot, slack, clock):
    """Nobody decides: after the delay one reminder mentions the approvers and the escalation."""
    bot = start_bot(
        dumptask_approvers="S0ONCALL",
        dumptask_remind_after_seconds=300,
        dumptask_escalate_to=OUTSIDER,
    )
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    request_id = request_id_of(card)
    assert "<!subteam^S0ONCALL>" in slack.message(INCIDENT, card.ts).text, "the group is pinged"
    clock.advance(301)
    wait_for_job_done(bot, f"remind:{request_id}")
    [reminder] = reminders(slack, card.ts)
    assert "<!subteam^S0ONCALL>" in reminder and f"<@{OUTSIDER}>" in reminder
    eventually(
        lambda: "escalated to" in card_text(slack, INCIDENT, card.ts), what="the card to say so"
    )
    slack.click(OUTSIDER, INCIDENT, card.ts, APPROVE)
    eventually(lambda: "Result" in slack.thread(INCIDENT, card.ts)[-1].text, what="the outcome")
    assert reminders(slack, card.ts) == [reminder]


def test_two_replicas_send_the_reminder_once(start_bot, slack, clock, postgres_url):
    """With two replicas on PostgreSQL sharing the clock, the reminder is sent exactly once."""
    settings = {"database_url": postgres_url, "dumptask_remind_after_seconds": 120}
    first = start_bot(**settings)
    start_bot(**settings)
    slack.request_url = first.events_url
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(first, slack, INCIDENT)
    clock.advance(121)
    wait_for_job_done(first, f"remind:{request_id_of(card)}")
    assert len(reminders(slack, card.ts)) == 1


def test_a_task_changed_in_the_console_before_the_call_needs_a_fresh_approval(
    start_bot, slack, dis
):
    """The approval found the task RUNNING, not PAUSED as shown: no call, card asks again."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    dis.set_state(STREAM, ARCHIVE_ID, TaskState.RUNNING)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    note = wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert "went from PAUSED to RUNNING" in note.text
    eventually(lambda: has_buttons(slack, INCIDENT, card.ts), what="the buttons back")
    assert "DIS was not called" in card_text(slack, INCIDENT, card.ts)
    assert dis.action_calls() == []
    assert bot.bot is not None
    trail = bot.run(bot.bot.store.audit_trail(request_id_of(card)))
    assert "drift" in [str(event.kind) for event in trail]
    slack.click(APPROVER2, INCIDENT, card.ts, APPROVE)
    eventually(
        lambda: "succeeded" in card_text(slack, INCIDENT, card.ts).lower(), what="the outcome"
    )
    assert len(dis.action_calls()) == 1


def test_a_second_request_for_the_same_task_points_to_the_open_card(start_bot, slack):
    """While a request holds a task, asking for it again is refused with a link to its card."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.send_command(APPROVER2, INCIDENT, f"stop {STREAM} orders-archive,orders-to-dli")
    [refusal] = wait_for_ephemeral(slack, INCIDENT, APPROVER2)
    assert request_id_of(card) in refusal
    assert f"/archives/{INCIDENT}/p{card.ts.replace('.', '')}" in refusal
    assert len(cards(slack, INCIDENT)) == 1
