"""The audit channel: one escaped line per decision, with a link to the card, never in the way.

The bot runs for real between the stand-ins; the lines are read from the Slack stand-in's
audit channel.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.audit import AuditEvent, AuditKind
from bot.lifecycle import Outcome, Reach, RequestState, TaskOutcome
from bot.outbox import Sink, wants
from bot.slack.audit_channel import audit_line, card_link
from bot.vocabulary import TaskState
from tests.conftest import APPROVER1, APPROVER2, INCIDENT, REQUESTER, STREAM
from tests.fakes import make_request
from tests.flow_helpers import (
    APPROVE,
    CANCEL,
    eventually,
    request_id_of,
    wait_for_ephemeral,
    wait_for_stored_card,
    wait_for_thread_reply,
)
from tests.ops_helpers import not_in_channel_errors, scrape, value

AUDIT = "C0AUDIT"
NASTY_REASON = "<!channel> & <https://evil.example|click me>"


def audit_lines(slack, count: int, timeout: float = 30) -> list[str]:
    """Wait for ``count`` lines in the audit channel, and return their texts in order."""
    return eventually(
        lambda: len(found := [m.text for m in slack.messages(AUDIT)]) >= count and found,
        timeout=timeout,
        what=f"{count} audit channel line(s)",
    )


def lines_of(lines: list[str], request_id: str) -> list[str]:
    return [line for line in lines if f"`{request_id}`" in line]


def test_every_decision_gets_one_escaped_line_with_a_link(start_bot, slack):
    """Opened, refused click, approved and executed; opened and cancelled: each line in order."""
    slack.add_channel(AUDIT, "dumptask-audit", [APPROVER2])
    bot = start_bot(dumptask_audit_channel=AUDIT)
    slack.send_command(
        REQUESTER, INCIDENT, f'start {STREAM} orders-archive --reason "{NASTY_REASON}"'
    )
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(REQUESTER, INCIDENT, card.ts, APPROVE)
    wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    slack.send_command(REQUESTER, INCIDENT, f"stop {STREAM} orders-to-obs")
    second = wait_for_stored_card(bot, slack, INCIDENT, count=2)
    slack.click(REQUESTER, INCIDENT, second.ts, CANCEL)

    lines = audit_lines(slack, 6)
    first_id, second_id = request_id_of(card), request_id_of(second)
    started = lines_of(lines, first_id)
    assert len(started) == 4
    assert "opened by `U0REQUESTER`" in started[0]
    assert "refused a click by `U0REQUESTER`" in started[1]
    assert "approved by `U0APPROVER1` (1 of 1), executing" in started[2]
    assert "executed: *succeeded*" in started[3]
    assert "`orders-archive` RUNNING" in started[3]
    assert all(f"<{card_link(INCIDENT, card.ts)}|card>" in line for line in started)
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click me&gt;" in started[0]
    stopped = lines_of(lines, second_id)
    assert len(stopped) == 2
    assert "cancelled by `U0REQUESTER`" in stopped[1]
    assert f"<{card_link(INCIDENT, second.ts)}|card>" in stopped[1]
    shown = [m.text for m in slack.messages(AUDIT)]
    assert not any("<!channel>" in text or "<https://evil" in text for text in shown)
    assert all(f"start `{STREAM}` in <#{INCIDENT}>" in line for line in started)


def test_an_expired_request_gets_its_line(start_bot, slack, clock):
    """A request nobody approves is reported expired once the sweeper closes it."""
    slack.add_channel(AUDIT, "dumptask-audit", [APPROVER2])
    bot = start_bot(dumptask_audit_channel=AUDIT)
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    clock.advance(16 * 60)
    opened, expired = audit_lines(slack, 2)
    assert "opened" in opened
    assert f"`{request_id_of(card)}`" in expired
    assert "expired without enough approvals" in expired


def test_a_failing_audit_channel_never_holds_back_a_request(start_bot, slack, dis):
    """Without the bot in the audit channel the request succeeds; the lines follow it in later."""
    slack.add_channel(AUDIT, "dumptask-audit", [APPROVER2], bot_member=False)
    bot = start_bot(dumptask_audit_channel=AUDIT)
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    assert "RUNNING" in wait_for_thread_reply(slack, INCIDENT, card.ts).text
    request = bot.run(bot.bot.store.get(request_id_of(card)))
    assert request is not None
    assert request.state is RequestState.SUCCEEDED
    assert len(dis.action_calls()) == 1
    assert slack.messages(AUDIT) == []

    def waiting():
        samples = scrape(bot.url)
        failed = not_in_channel_errors(samples)
        return failed and value(samples, "dumptask_outbox_undelivered", sink="channel")

    assert eventually(waiting, what="the undelivered lines to show in /metrics") >= 1
    slack.add_channel(AUDIT, "dumptask-audit", [APPROVER2], bot_member=True)
    opened, approved, executed = audit_lines(slack, 3)
    assert (
        opened.split(": ")[1].split(" ")[0],
        approved.split(": ")[1].split(" ")[0],
        executed.split(": ")[1].split(" ")[0],
    ) == ("opened", "approved", "executed")
    eventually(
        lambda: value(scrape(bot.url), "dumptask_outbox_undelivered", sink="channel") == 0,
        what="the channel outbox to empty",
    )


def test_what_dis_said_is_escaped_in_the_outcome_line():
    """A DIS error message cannot ping anyone from the audit channel."""
    request = replace(
        make_request(),
        state=RequestState.FAILED,
        card_ts="1715938215.000100",
        outcome=Outcome(
            tasks=(TaskOutcome("9dSu1wfCytSk1aOLxvF", "<!here>", TaskState.PAUSED, False),),
            dis_request_id="req-<1>",
            error_code="DIS.4116",
            error_message="no <!subteam^S1> permission & more",
            reach=Reach.REFUSED,
        ),
    )
    document = {
        "request": request.id,
        "kind": "delivered",
        "actor": "bot",
        "channel": request.channel,
        "stream": request.stream,
        "action": "start",
        "detail": {"state": "failed"},
    }
    line = audit_line(document, request)
    assert "executed: *failed*" in line
    assert "`&lt;!here&gt;` PAUSED" in line
    assert "no &lt;!subteam^S1&gt; permission &amp; more" in line
    assert "`req-&lt;1&gt;`" in line
    assert "<https://slack.com/archives/C0INCIDENT/p1715938215000100|card>" in line
    assert line.count("<") == line.count(">") == 2  # the channel and the link, nothing else


@pytest.mark.parametrize(
    ("kind", "detail", "words"),
    [
        (
            AuditKind.DENIED,
            {"reason": "bucket <!channel> full"},
            "denied by `U0BOB`: bucket &lt;!channel&gt; full",
        ),
        (AuditKind.DRIFT, {}, "sent back for a fresh approval"),
        (AuditKind.STARTED, {"late_seconds": 120.4}, "started at its scheduled time, 120 s late"),
        (AuditKind.RESUMED, {}, "resumed early by `U0BOB`"),
        (AuditKind.RETENTION_WARNING, {"share": 90}, "still paused at 90 %"),
    ],
)
def test_approval_and_schedule_decisions_get_their_lines(kind, detail, words):
    """Denials, drift, scheduled starts, early resumes and retention warnings are worded."""
    event = AuditEvent("dt-k7m2q9xa", kind, "U0BOB", datetime(2026, 11, 29, tzinfo=UTC), detail)
    assert wants(Sink.CHANNEL, event)
    document = {"request": "dt-k7m2q9xa", "kind": str(kind), "actor": "U0BOB", "detail": detail}
    assert words in audit_line(document, None)
