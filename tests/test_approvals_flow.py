"""Approvals that reach people, end to end: the real bot over HTTP with the Slack and DIS stand-ins.

Reminders use the bot's clock, which the tests move by hand; everything else waits on what the
stand-ins saw, never on a fixed sleep.
"""

from __future__ import annotations

from bot.jobs import JobState
from bot.sim.dis import Fault
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


# -- deny with a reason, through the modal ------------------------------------------------------

DENY = "dumptask.deny"


def test_deny_asks_for_a_reason_in_a_modal_and_the_card_keeps_it(start_bot, slack, dis):
    """Deny opens a modal; a blank reason is refused there; a real one closes the request."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(APPROVER1, INCIDENT, card.ts, DENY)
    view = slack.wait_for_view(APPROVER1)
    assert view.callback_id == "dumptask.deny_modal"
    answer = slack.submit_view(APPROVER1, view.id, {"dumptask.reason": "   "})
    assert answer.status_code == 200
    assert slack.view(view.id).errors == {
        "reason": "Say why, so the requester knows what to do instead."
    }
    assert slack.view(view.id).is_open
    slack.submit_view(APPROVER1, view.id, {"dumptask.reason": "bucket still <!channel> full"})
    assert not slack.view(view.id).is_open
    eventually(lambda: "Denied by" in card_text(slack, INCIDENT, card.ts), what="denied card")
    shown = card_text(slack, INCIDENT, card.ts)
    assert "bucket still &lt;!channel&gt; full" in shown
    assert not has_buttons(slack, INCIDENT, card.ts)
    assert dis.action_calls() == []


def test_the_requester_is_told_to_cancel_instead_of_deny(start_bot, slack):
    """The requester's Deny opens no modal and says to use Cancel."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(REQUESTER, INCIDENT, card.ts, DENY)
    [answer] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "Cancel" in answer
    assert slack.open_view(REQUESTER) is None


# -- direct messages to approvers -------------------------------------------------------------


def test_dms_reach_each_approver_and_one_decision_updates_every_copy(start_bot, slack, dis):
    """With DMs on, approvers get the card; one decision updates every copy; stale ones say who."""
    bot = start_bot(dumptask_approvers="S0ONCALL", dumptask_notify_approvers="dm")
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    dms = {user: slack.dm(user) for user in (APPROVER1, APPROVER2)}
    copies = {
        user: eventually(lambda d=dm: cards(slack, d) and cards(slack, d)[0], what=f"{user}'s DM")
        for user, dm in dms.items()
    }
    assert all(has_buttons(slack, dms[user], copy.ts) for user, copy in copies.items())
    slack.click(APPROVER2, dms[APPROVER2], copies[APPROVER2].ts, APPROVE)
    eventually(lambda: "succeeded" in card_text(slack, INCIDENT, card.ts), what="the outcome")
    for user, copy in copies.items():
        eventually(
            lambda u=user, c=copy: not has_buttons(slack, dms[u], c.ts), what=f"{user}'s copy"
        )
    slack.click(APPROVER1, dms[APPROVER1], copies[APPROVER1].ts, APPROVE)
    [stale] = wait_for_ephemeral(slack, dms[APPROVER1], APPROVER1)
    assert f"already approved by <@{APPROVER2}>" in stale
    assert len(dis.action_calls()) == 1


# -- the start modal ----------------------------------------------------------------------------


def test_the_start_modal_goes_from_stream_to_card(start_bot, slack, dis):
    """/dumptask alone opens the form: streams from DIS, tasks with states, then the card."""
    bot = start_bot(dumptask_allowed_streams="orders-*")
    slack.send_command(REQUESTER, INCIDENT, "")
    view = slack.wait_for_view(REQUESTER)
    assert view.callback_id == "dumptask.start_modal"
    offered = slack.suggest_options(REQUESTER, view.id, "dumptask.stream", "")
    assert offered.values == [STREAM], "clicks-stream is not allowed"
    assert slack.suggest_options(REQUESTER, view.id, "dumptask.stream", "nope").values == []
    slack.select_in_view(REQUESTER, view.id, "dumptask.stream", STREAM)
    view = slack.wait_for_view(REQUESTER, other_than=view)
    labels = str(view.blocks)
    assert "orders-archive (PAUSED)" in labels and "orders-to-obs (RUNNING)" in labels
    slack.submit_view(
        REQUESTER,
        view.id,
        {
            "dumptask.tasks": [ARCHIVE_ID],
            "dumptask.action": "start",
            "dumptask.reason": "from my phone",
        },
    )
    card = wait_for_stored_card(bot, slack, INCIDENT)
    shown = card_text(slack, INCIDENT, card.ts)
    assert "orders-archive" in shown and "from my phone" in shown


def test_the_start_modal_says_so_when_dis_does_not_know_the_stream(start_bot, slack, dis):
    """A stream picked in the form that DIS no longer knows is explained in the form."""
    start_bot()
    slack.send_command(REQUESTER, INCIDENT, "")
    view = slack.wait_for_view(REQUESTER)
    slack.suggest_options(REQUESTER, view.id, "dumptask.stream", "clicks")
    dis.inject(Fault.dis_error(400, "DIS.4301", "The stream does not exist.", method="GET"))
    slack.select_in_view(REQUESTER, view.id, "dumptask.stream", "clicks-stream")
    view = slack.wait_for_view(REQUESTER, other_than=view)
    assert "DIS does not know stream" in str(view.blocks)


def test_an_empty_command_in_a_channel_where_the_caller_may_not_ask_shows_help(start_bot, slack):
    """No form for someone who may not ask here: they get the usage and why."""
    start_bot(dumptask_requesters=APPROVER1)
    slack.send_command(REQUESTER, INCIDENT, "")
    [answer] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "not allowed to ask" in answer and "/dumptask start" in answer
    assert slack.open_view(REQUESTER) is None


def test_the_global_shortcut_asks_for_the_channel_too(start_bot, slack):
    """From the shortcut the form has a channel picker; the card goes to the chosen channel."""
    bot = start_bot()
    slack.shortcut(REQUESTER, "dumptask.start")
    view = slack.wait_for_view(REQUESTER)
    slack.suggest_options(REQUESTER, view.id, "dumptask.stream", "orders")
    slack.select_in_view(REQUESTER, view.id, "dumptask.stream", STREAM)
    view = slack.wait_for_view(REQUESTER, other_than=view)
    slack.submit_view(
        REQUESTER,
        view.id,
        {"dumptask.channel": INCIDENT, "dumptask.tasks": [ARCHIVE_ID], "dumptask.action": "stop"},
    )
    card = wait_for_stored_card(bot, slack, INCIDENT)
    assert "stop" in card_text(slack, INCIDENT, card.ts).lower()
