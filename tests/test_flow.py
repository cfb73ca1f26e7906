"""The approval flow end to end, over real HTTP on loopback.

Signed requests go to the real bot (uvicorn, SQLite); stand-ins play the Slack Web API and DIS.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace as dataclass_replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.jobs import Job, JobKind
from bot.lifecycle import Approval, Phase, RequestState
from bot.sim.dis import Fault
from bot.vocabulary import TaskState
from tests.conftest import (
    APPROVER1,
    APPROVER2,
    ARCHIVE_ID,
    BOT_TOKEN,
    DIS_SK,
    DLI_ID,
    INCIDENT,
    OBS_ID,
    OUTSIDER,
    RANDOM,
    REQUESTER,
    SIGNING_SECRET,
    STREAM,
)
from tests.flow_helpers import (
    APPROVE,
    CANCEL,
    card_text,
    cards,
    eventually,
    has_buttons,
    request_id_of,
    wait_for_card,
    wait_for_ephemeral,
    wait_for_refusals,
    wait_for_stored_card,
    wait_for_thread_reply,
)
from tests.processes import StoreReader


def test_start_happy_path(start_bot, slack, dis):
    """Request, approve, one signed start call, the card and thread report RUNNING."""
    bot = start_bot()
    ack = slack.send_command(
        REQUESTER, INCIDENT, f'start {STREAM} orders-archive --reason "INC-1 stalled"'
    )
    assert ack.status_code == 200
    card = wait_for_stored_card(bot, slack, INCIDENT)
    shown = card_text(slack, INCIDENT, card.ts)
    assert "orders-archive" in shown and ARCHIVE_ID in shown and "PAUSED" in shown
    assert "INC-1 stalled" in shown
    assert has_buttons(slack, INCIDENT, card.ts)

    assert slack.click(APPROVER1, INCIDENT, card.ts, APPROVE).status_code == 200
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert "RUNNING" in reply.text
    assert dis.task_state(STREAM, ARCHIVE_ID) == TaskState.RUNNING
    [call] = dis.action_calls()
    assert (call.action, call.task_ids, call.status) == ("start", (ARCHIVE_ID,), 200)
    assert not has_buttons(slack, INCIDENT, card.ts)
    assert "succeeded" in card_text(slack, INCIDENT, card.ts).lower()
    assert all(not c.missing_text_fallback for c in slack.calls if c.method.startswith("chat."))


def test_stop_happy_path(start_bot, slack, dis):
    """A stop request, once approved, pauses the task and reports PAUSED."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"stop {STREAM} {OBS_ID}")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert "PAUSED" in reply.text
    assert dis.task_state(STREAM, OBS_ID) == TaskState.PAUSED
    assert [c.action for c in dis.action_calls()] == ["stop"]


def test_names_are_resolved_to_ids(start_bot, slack, dis):
    """Tasks named by name (and by id, with commas) are sent to DIS by id, once each."""
    bot = start_bot()
    slack.send_command(
        REQUESTER, INCIDENT, f"START {STREAM} orders-archive,{DLI_ID} orders-archive"
    )
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    [call] = dis.action_calls()
    assert sorted(call.task_ids) == sorted([ARCHIVE_ID, DLI_ID])


def test_already_in_wanted_state_is_flagged(start_bot, slack):
    """A task already RUNNING is flagged on a start card."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-to-obs")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    assert "already" in card_text(slack, INCIDENT, card.ts).lower()


def test_unknown_task_is_refused_with_the_tasks_that_exist(start_bot, slack, dis):
    """An unknown task gets an ephemeral refusal listing the stream's tasks; no card is posted."""
    start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} no-such-task")
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "no-such-task" in text
    assert "orders-archive" in text and ARCHIVE_ID in text
    assert not slack.calls_to("chat.postMessage")


def test_requester_cannot_approve_own_request(start_bot, slack, dis):
    """The requester's own approve click is refused ephemerally; the card is unchanged."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    before = slack.message(INCIDENT, card.ts).blocks
    slack.click(REQUESTER, INCIDENT, card.ts, APPROVE)
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "someone else" in text
    assert slack.message(INCIDENT, card.ts).blocks == before
    assert not dis.action_calls()


def test_self_approval_when_allowed(start_bot, slack, dis):
    """With DUMPTASK_ALLOW_SELF_APPROVAL the requester's own click executes the request."""
    bot = start_bot(dumptask_allow_self_approval=True)
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(REQUESTER, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert len(dis.action_calls()) == 1


def test_non_approver_is_refused(start_bot, slack, dis):
    """Someone outside DUMPTASK_APPROVERS (a user group here) cannot approve."""
    bot = start_bot(dumptask_approvers="S0ONCALL")
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(OUTSIDER, INCIDENT, card.ts, APPROVE)
    [text] = wait_for_ephemeral(slack, INCIDENT, OUTSIDER)
    assert "not one of the approvers" in text
    assert has_buttons(slack, INCIDENT, card.ts)
    slack.click(APPROVER2, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert len(dis.action_calls()) == 1


def test_quorum_of_two(start_bot, slack, dis):
    """With two approvals required, the first shows progress and only the second executes."""
    bot = start_bot(dumptask_approvals_required=2)
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    eventually(lambda: "1 of 2" in card_text(slack, INCIDENT, card.ts), what="progress on the card")
    assert has_buttons(slack, INCIDENT, card.ts)
    assert not dis.action_calls()
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    [text] = wait_for_ephemeral(slack, INCIDENT, APPROVER1)
    assert "already approved" in text
    slack.click(APPROVER2, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert len(dis.action_calls()) == 1


def test_cancel(start_bot, slack, dis):
    """The requester cancels; the card says who, loses its buttons, and approval is refused."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(REQUESTER, INCIDENT, card.ts, CANCEL)
    eventually(lambda: not has_buttons(slack, INCIDENT, card.ts), what="buttons gone")
    assert "cancelled" in card_text(slack, INCIDENT, card.ts).lower()
    assert REQUESTER in card_text(slack, INCIDENT, card.ts)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    [text] = wait_for_ephemeral(slack, INCIDENT, APPROVER1)
    assert "cancelled" in text
    assert not dis.action_calls()


def test_outsider_cannot_cancel(start_bot, slack):
    """Someone who is neither requester nor approver cannot cancel."""
    bot = start_bot(dumptask_approvers="U0APPROVER1")
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(OUTSIDER, INCIDENT, card.ts, CANCEL)
    [text] = wait_for_ephemeral(slack, INCIDENT, OUTSIDER)
    assert "cancel" in text
    assert has_buttons(slack, INCIDENT, card.ts)


def test_expiry_updates_the_card_without_a_click(start_bot, slack, dis, clock):
    """Past the TTL the card says it expired by itself, and approval is refused."""
    bot = start_bot(dumptask_approval_ttl_seconds=60)
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    clock.advance(61)
    eventually(
        lambda: "expired" in card_text(slack, INCIDENT, card.ts).lower(), what="expired card"
    )
    assert not has_buttons(slack, INCIDENT, card.ts)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    [text] = wait_for_ephemeral(slack, INCIDENT, APPROVER1)
    assert "expired" in text
    assert not dis.action_calls()


def test_twenty_concurrent_approvals_make_one_dis_call(start_bot, slack, dis):
    """Twenty approve clicks at once (many users, double clicks) lead to exactly one DIS call."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    clickers = [APPROVER1, APPROVER2, OUTSIDER] * 7
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def click(user: str) -> None:
        barrier.wait()
        statuses.append(slack.click(user, INCIDENT, card.ts, APPROVE).status_code)

    threads = [threading.Thread(target=click, args=(user,)) for user in clickers[:20]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 20
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    wait_for_refusals(slack, INCIDENT, 19)
    assert len(dis.action_calls()) == 1
    assert len(slack.thread(INCIDENT, card.ts)) == 1


def test_dis_error_is_reported_with_code_and_request_id(start_bot, slack, dis):
    """A DIS refusal of the batch call shows its code, message, request id and advice."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    dis.inject(Fault.dis_error(403, "DIS.4116", "No permission for DIS.", method="POST"))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    [call] = [c for c in dis.calls if c.method == "POST"]
    shown = reply.text + str(reply.blocks)
    assert "DIS.4116" in shown
    assert call.request_id in shown
    assert "permission" in shown.lower()
    assert "failed" in card_text(slack, INCIDENT, card.ts).lower()


def test_dis_unavailable_when_asking_still_posts_card(start_bot, slack, dis):
    """When DIS cannot be reached, the card is posted saying the state is unknown and why."""
    bot = start_bot()
    dis.inject(Fault.status(503, fraction=1.0))
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {ARCHIVE_ID}")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    shown = card_text(slack, INCIDENT, card.ts).lower()
    assert "unknown" in shown
    assert "503" in shown or "unavailable" in shown
    dis.clear_faults()
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert "RUNNING" in reply.text


def test_dis_recovering_within_retries_succeeds(start_bot, slack, dis):
    """A DIS failing once with 503 on the batch call recovers through the retry."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    dis.inject(Fault.status(503, count=1, method="POST"))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert "RUNNING" in reply.text
    assert [c.status for c in dis.action_calls()] == [503, 200]


def test_dis_down_on_approval_then_retry_by_new_request(start_bot, slack, dis):
    """DIS down at approval time fails the request with advice; a new request then succeeds."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    dis.inject(Fault.status(503, fraction=1.0))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert "try again" in (reply.text + str(reply.blocks)).lower()
    dis.clear_faults()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    second = wait_for_stored_card(bot, slack, INCIDENT, count=2)
    slack.click(APPROVER1, INCIDENT, second.ts, APPROVE)
    assert "RUNNING" in wait_for_thread_reply(slack, INCIDENT, second.ts).text


def test_channel_mention_in_reason_is_escaped(start_bot, slack):
    """A reason of <!channel> is shown escaped, so it pings nobody."""
    bot = start_bot()
    slack.send_command(
        REQUESTER,
        INCIDENT,
        f'start {STREAM} orders-archive -r "<!channel> look <https://evil|here>"',
    )
    card = wait_for_stored_card(bot, slack, INCIDENT)
    message = slack.message(INCIDENT, card.ts)
    everything = message.text + str(message.blocks)
    assert "<!channel>" not in everything
    assert "<https://evil" not in everything
    assert "&lt;!channel&gt;" in everything


def test_forged_signature_is_rejected(start_bot, slack):
    """A request with a wrong signature gets 401 and changes nothing."""
    bot = start_bot()
    response = slack.send_command(
        REQUESTER, INCIDENT, f"start {STREAM} orders-archive", signature="v0=" + "0" * 64
    )
    assert response.status_code == 401
    assert not slack.calls_to("chat.postMessage")
    assert bot.url


def test_stale_timestamp_is_rejected(start_bot, slack):
    """A correctly signed request older than five minutes gets 401."""
    start_bot()
    response = slack.send_command(REQUESTER, INCIDENT, "help", timestamp=int(time.time()) - 600)
    assert response.status_code == 401


def test_disallowed_channel_is_refused(start_bot, slack):
    """Outside DUMPTASK_ALLOWED_CHANNELS the command is refused with where to use it."""
    start_bot(dumptask_allowed_channels="C0INCIDENT")
    slack.send_command(REQUESTER, RANDOM, f"start {STREAM} orders-archive")
    [text] = wait_for_ephemeral(slack, RANDOM, REQUESTER)
    assert "<#C0INCIDENT>" in text
    assert not slack.calls_to("chat.postMessage")


def test_disallowed_stream_is_refused(start_bot, slack):
    """A stream outside DUMPTASK_ALLOWED_STREAMS is refused, naming the allowed patterns."""
    start_bot(dumptask_allowed_streams="clicks-*")
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "clicks-*" in text
    assert not slack.calls_to("chat.postMessage")


def test_non_requester_is_refused(start_bot, slack):
    """Someone outside DUMPTASK_REQUESTERS cannot ask."""
    start_bot(dumptask_requesters="S0ONCALL")
    slack.send_command(OUTSIDER, INCIDENT, f"start {STREAM} orders-archive")
    [text] = wait_for_ephemeral(slack, INCIDENT, OUTSIDER)
    assert "not allowed" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("strat orders-stream a", "did you mean"),
        ("start", "stream"),
        ("start orders-stream", "task"),
        ("start orders.stream a", "orders.stream"),
        ("start orders-stream a b c d e f", "at most 5"),
        ('start orders-stream a --reason "unterminated', "quote"),
    ],
)
def test_bad_commands_are_answered_clearly(start_bot, slack, text, expected):
    """Each kind of bad command gets an ephemeral answer with the problem and the usage."""
    start_bot()
    slack.send_command(REQUESTER, INCIDENT, text)
    [answer] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert expected in answer.lower() or expected in answer
    assert "/dumptask" in answer
    assert not slack.calls_to("chat.postMessage")


def test_help_lists_usage_streams_and_channels(start_bot, slack):
    """`/dumptask help` shows usage plus the caller's allowed streams and channels."""
    start_bot(dumptask_allowed_streams="orders-*", dumptask_allowed_channels="C0INCIDENT")
    slack.send_command(REQUESTER, INCIDENT, "help")
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "/dumptask start" in text and "orders-*" in text and "<#C0INCIDENT>" in text


def test_not_in_channel_is_explained(start_bot, slack):
    """When the bot is not in the channel, the user is told to invite it."""
    start_bot()
    slack.fail_next("chat.postMessage", "not_in_channel")
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "/invite" in text


def test_slack_rate_limit_on_card_update_is_retried(start_bot, slack, dis):
    """A rate-limited chat.update is retried by the SDK handler and the card still updates."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.fail_next("chat.update", "ratelimited", retry_after=0)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    eventually(
        lambda: "succeeded" in card_text(slack, INCIDENT, card.ts).lower(), what="final card"
    )


def test_card_update_failure_posts_outcome_as_new_message(start_bot, slack, dis):
    """If the card cannot be updated, the card and the outcome are posted as one new message."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.fail_next("chat.update", "message_not_found", count=10)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    posted = wait_for_card(slack, INCIDENT, count=2)
    assert "succeeded" in posted.text.lower()
    assert "RUNNING" in posted.text and ARCHIVE_ID in posted.text
    assert not slack.thread(INCIDENT, card.ts)


def test_healthz(start_bot):
    """GET /healthz answers 200 while the store is reachable."""
    bot = start_bot()
    response = httpx.get(f"{bot.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_audit_trail_records_every_step(start_bot, slack, dis):
    """The audit trail holds requested, refused click, approved, DIS call and verification."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(REQUESTER, INCIDENT, card.ts, APPROVE)
    wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert bot.bot is not None
    [request] = bot.run(bot.bot.store.recent_for(REQUESTER))
    trail = bot.run(bot.bot.store.audit_trail(request.id))
    kinds = [event.kind for event in trail]
    for kind in (
        "requested",
        "card_posted",
        "refused_click",
        "approved",
        "dis_call",
        "verification",
    ):
        assert kind in kinds
    [post] = [call for call in dis.calls if call.method == "POST"]
    dis_call = next(event for event in trail if event.kind == "dis_call")
    assert dis_call.detail["dis_request_id"] == post.request_id
    assert dis_call.actor == "bot"
    approved = next(event for event in trail if event.kind == "approved")
    assert approved.actor == APPROVER1


def test_execution_abandoned_by_a_crash_is_finished_by_reading_back(start_bot, slack, dis, clock):
    """A request a dead process left "sending" is read back by a live one, never sent again."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    assert bot.bot is not None
    store = bot.bot.store
    request = bot.run(store.get(request_id_of(card)))
    assert request is not None
    crashed = dataclass_replace(
        request,
        state=RequestState.EXECUTING,
        phase=Phase.SENDING,
        approvals=(Approval(APPROVER1, clock.now),),
        decided_by=APPROVER1,
        decided_at=clock.now,
    )
    dead_owner = Job(
        f"execute:{request.id}",
        JobKind.EXECUTE,
        clock.now,
        request_id=request.id,
        attempts=1,
        owner="crashed-replica",
        lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    assert bot.run(store.update(crashed, request.version, enqueue=[dead_owner])) is not None
    dis.set_state(STREAM, ARCHIVE_ID, TaskState.RUNNING)
    notice = wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert "interrupted" in notice.text and "reading the tasks back" in notice.text
    eventually(
        lambda: "succeeded" in card_text(slack, INCIDENT, card.ts).lower(), what="final card"
    )
    reply = eventually(
        lambda: next((m for m in slack.thread(INCIDENT, card.ts) if "Result" in m.text), None),
        what="the outcome reply",
    )
    assert "interrupted" in reply.text
    assert "RUNNING" in reply.text
    assert not dis.action_calls()


def test_ack_is_immediate_even_when_dis_is_slow(start_bot, slack, dis):
    """With DIS taking longer than Slack's 3 s, eight commands at once are all acknowledged.

    They all name the same task, so one card is posted and the other seven are told that the
    task is already in that request (one operation per task at a time).
    """
    bot = start_bot(dis_timeout_seconds=10, dis_retry_total_seconds=10)
    dis.inject(Fault.latency(3.5, fraction=1.0))
    results: list[int] = []

    def ask() -> None:
        results.append(
            slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive").status_code
        )

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8, "no operation_timeout"
    card = wait_for_stored_card(bot, slack, INCIDENT)
    refusals = wait_for_ephemeral(slack, INCIDENT, REQUESTER, count=7)
    assert all(request_id_of(card) in text and "already part of" in text for text in refusals)
    assert len(cards(slack, INCIDENT)) == 1


def test_list_shows_tasks_with_ids_and_states(start_bot, slack):
    """`/dumptask list <stream>` answers only the caller with each task's name, id and state."""
    start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"list {STREAM}")
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert f"`orders-archive` (`{ARCHIVE_ID}`): PAUSED" in text
    assert f"`orders-to-obs` (`{OBS_ID}`): RUNNING" in text
    assert not slack.calls_to("chat.postMessage")


def test_list_respects_allowed_streams(start_bot, slack):
    """Listing a stream the bot may not touch is refused like a request would be."""
    start_bot(dumptask_allowed_streams="clicks-*")
    slack.send_command(REQUESTER, INCIDENT, f"list {STREAM}")
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "may not touch" in text


def test_status_shows_recent_requests_and_one_history(start_bot, slack, dis):
    """`/dumptask status` lists the caller's requests; with an id it shows the audit trail."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert bot.bot is not None
    [request] = bot.run(bot.bot.store.recent_for(REQUESTER))
    slack.send_command(REQUESTER, INCIDENT, "status")
    [recent] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert request.id in recent
    assert "succeeded" in recent
    slack.send_command(REQUESTER, INCIDENT, f"status {request.id}")
    history = wait_for_ephemeral(slack, INCIDENT, REQUESTER, count=2)[-1]
    for kind in ("requested", "approved", "dis_call", "verification"):
        assert kind in history
    assert f"<@{APPROVER1}>" in history


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_reaches_the_logs_during_a_whole_flow(
    start_bot, slack, dis, capture_logs, log_format
):
    """At DEBUG level, in either format, a whole flow never logs a token, secret or signature."""
    logs = capture_logs(log_format, "DEBUG")
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    signatures = [c.headers["authorization"].split("Signature=")[1] for c in dis.calls]
    text = logs.getvalue()
    assert "chat.postMessage" in text or "slack_bolt" in text, "debug logs were captured"
    if log_format == "json":
        assert all(json.loads(line)["level"] for line in text.splitlines())
    for secret in (BOT_TOKEN, SIGNING_SECRET, DIS_SK, *signatures):
        assert secret not in text


def test_stopping_the_bot_lets_a_command_in_progress_finish(start_bot, slack, dis, tmp_path):
    """A command acknowledged just before shutdown still gets its card, stored, before exit."""
    bot = start_bot()
    dis.inject(Fault.latency(1.0, method="GET"))
    assert (
        slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive").status_code == 200
    )
    bot.stop()
    [card] = cards(slack, INCIDENT)
    stored = StoreReader(f"sqlite:///{tmp_path}/bot.db").get(request_id_of(card))
    assert stored is not None
    assert stored.card_ts == card.ts
