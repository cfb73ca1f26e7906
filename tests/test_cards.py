"""Block Kit rendering: the card in every state, escaping, limits, and the outcome reply."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block

from bot.dis.models import TaskAction, TaskState
from bot.requests import (
    Approval,
    Outcome,
    RequestedTask,
    RequestState,
    TaskOutcome,
    open_request,
)
from bot.slack.blocks import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    CardContext,
    render_card,
    render_outcome_reply,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CONTEXT = CardContext()


def make_request(**changes):
    request = open_request(
        action=TaskAction.START,
        stream="orders-stream",
        tasks=(
            RequestedTask("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED),
            RequestedTask("As805BudhcH1lDs6gbn", "orders-to-obs", TaskState.RUNNING),
        ),
        requester="U0ALICE",
        channel="C0INCIDENT",
        reason="INC-4312 OBS dump stalled",
        now=NOW,
        ttl=timedelta(minutes=15),
        approvals_required=1,
    )
    return replace(request, **changes)


def actions(message) -> list[dict]:
    return [block for block in message.blocks if block["type"] == "actions"]


def everything(message) -> str:
    return message.text + json.dumps(message.blocks, ensure_ascii=False)


def mrkdwn_texts(node) -> list[str]:
    """Every string Slack parses as mrkdwn (plain_text objects are shown literally)."""
    if isinstance(node, list):
        return [text for item in node for text in mrkdwn_texts(item)]
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [text for value in node.values() for text in mrkdwn_texts(value)]
    return []


def test_pending_card_has_approve_and_cancel_with_request_id():
    """A pending card offers Approve (primary, confirmed) and Cancel, valued with the request id."""
    request = make_request()
    [block] = actions(render_card(request, CONTEXT))
    approve, cancel = block["elements"]
    assert (approve["action_id"], approve["value"], approve["style"]) == (
        APPROVE_ACTION_ID,
        request.id,
        "primary",
    )
    assert (cancel["action_id"], cancel["value"]) == (CANCEL_ACTION_ID, request.id)
    confirm = approve["confirm"]
    assert "Start 2 dump tasks?" in confirm["title"]["text"]
    assert "orders-stream" in confirm["text"]["text"]
    assert "orders-archive" in confirm["text"]["text"]


def test_card_shows_requester_stream_tasks_reason_approvers_and_expiry():
    """Everything an approver needs is on the card."""
    shown = everything(render_card(make_request(), CardContext(approvers=("S0LEADS", "U0BOB"))))
    for expected in (
        "<@U0ALICE>",
        "`orders-stream`",
        "`orders-archive`",
        "9dSu1wfCytSk1aOLxvF",
        "PAUSED",
        "INC-4312 OBS dump stalled",
        "<!subteam^S0LEADS>",
        "<@U0BOB>",
        "0 of 1 approvals",
        f"<!date^{int((NOW + timedelta(minutes=15)).timestamp())}^",
    ):
        assert expected in shown


def test_task_already_in_target_state_is_flagged():
    """A RUNNING task on a start card is flagged as already RUNNING."""
    assert "already RUNNING" in everything(render_card(make_request(), CONTEXT))


def test_unknown_state_says_why():
    """When DIS could not be asked, the card says the state is unknown and why."""
    request = make_request(
        tasks=(RequestedTask("orders-archive", None, None),),
        state_unknown_because="DIS could not be reached (ConnectError)",
    )
    shown = everything(render_card(request, CONTEXT))
    assert "state unknown" in shown
    assert "ConnectError" in shown


def test_approval_progress_is_shown():
    """With two approvals needed and one given, the card shows 1 of 2 and who."""
    request = make_request(approvals_required=2, approvals=(Approval("U0BOB", NOW),))
    assert "1 of 2 approvals: <@U0BOB>" in everything(render_card(request, CONTEXT))


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (RequestState.EXECUTING, "Approved by <@U0BOB>, starting"),
        (RequestState.CANCELLED, "Cancelled by <@U0BOB>"),
        (RequestState.EXPIRED, "Expired at"),
        (RequestState.SUCCEEDED, "succeeded"),
        (RequestState.PARTIAL, "partly succeeded"),
        (RequestState.FAILED, "failed"),
    ],
)
def test_decided_cards_have_no_buttons_and_say_what_happened(state, words):
    """Every state but pending removes the buttons and states the outcome."""
    request = make_request(
        state=state, approvals=(Approval("U0BOB", NOW),), decided_by="U0BOB", decided_at=NOW
    )
    message = render_card(request, CONTEXT)
    assert not actions(message)
    assert words in everything(message)
    assert message.text


def test_user_text_is_escaped_everywhere():
    """A reason or name with <!channel> or a disguised link cannot ping or mislead."""
    request = make_request(
        reason="<!channel> & <https://evil.example|innocent>",
        tasks=(RequestedTask("id1", "<!here>", TaskState.PAUSED),),
    )
    message = render_card(request, CONTEXT)
    shown = "\n".join([message.text, *mrkdwn_texts(message.blocks)])
    assert "<!channel>" not in shown
    assert "<!here>" not in shown
    assert "<https://evil" not in shown
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|innocent&gt;" in shown


def test_outcome_reply_lists_tasks_and_dis_error():
    """The thread reply gives each task's final state and the DIS code, message and request id."""
    outcome = Outcome(
        tasks=(
            TaskOutcome(
                "id1",
                "orders-archive",
                TaskState.PAUSED,
                reached_target=False,
                detail="not changed",
            ),
            TaskOutcome("id2", "orders-to-obs", TaskState.RUNNING, reached_target=True),
        ),
        dis_request_id="abc123",
        error_code="DIS.4116",
        error_message="No <b>permission</b>",
        error_advice="Ask an operator.",
    )
    reply = render_outcome_reply(make_request(state=RequestState.PARTIAL, outcome=outcome))
    shown = everything(reply)
    for expected in (
        "orders-archive",
        "PAUSED",
        "orders-to-obs",
        "RUNNING",
        "DIS.4116",
        "abc123",
        "Ask an operator.",
    ):
        assert expected in shown
    assert "<b>" not in shown


def test_extremes_stay_within_block_kit_limits():
    """Five 64-character names and a 500-character reason still make a valid message."""
    long_tasks = tuple(
        RequestedTask(f"{i}" * 19, chr(97 + i) * 64, TaskState.PAUSED) for i in range(5)
    )
    request = make_request(tasks=long_tasks, reason="r" * 500)
    message = render_card(request, CONTEXT)
    assert len(message.blocks) <= 50
    for block in message.blocks:
        Block.parse(block).validate_json()
    [block] = actions(message)
    assert len(block["elements"][0]["confirm"]["text"]["text"]) <= 300
    header = message.blocks[0]["text"]["text"]
    assert len(header) <= 150


def test_final_card_shows_each_task_from_requested_to_final_state():
    """After execution, each task line reads 'state when asked → final state'."""
    outcome = Outcome(
        tasks=(
            TaskOutcome(
                "9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.RUNNING, reached_target=True
            ),
            TaskOutcome(
                "As805BudhcH1lDs6gbn", "orders-to-obs", TaskState.RUNNING, reached_target=True
            ),
        )
    )
    request = make_request(
        state=RequestState.SUCCEEDED, outcome=outcome, approvals=(Approval("U0BOB", NOW),)
    )
    shown = everything(render_card(request, CONTEXT))
    assert "PAUSED → RUNNING" in shown
    assert "already RUNNING" not in shown
