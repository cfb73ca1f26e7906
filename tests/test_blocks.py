"""Block Kit messages: the approval card in every state, escaping, limits and the outcome reply."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.audit import AuditEvent, AuditKind
from bot.lifecycle import (
    Approval,
    NotifyMode,
    Outcome,
    Policy,
    Request,
    RequestedTask,
    RequestState,
    TaskDrift,
    TaskOutcome,
    open_request,
)
from bot.slack.blocks import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    DENY_ACTION_ID,
    Message,
    render_card,
    render_error,
    render_history,
    render_outcome_reply,
    render_refusal,
    render_reminder,
)
from bot.vocabulary import TaskAction, TaskState

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(minutes=15)
EXPIRY_MARKUP = (
    f"<!date^{int(EXPIRES.timestamp())}^{{date_short_pretty}} at {{time}}|2026-11-28 12:15 UTC>"
)
ANYONE = Policy()
ARCHIVE = RequestedTask("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED)
TO_OBS = RequestedTask("As805BudhcH1lDs6gbn", "orders-to-obs", TaskState.RUNNING)
DIS_FAILURE = Outcome(
    tasks=(
        TaskOutcome(ARCHIVE.task_id, ARCHIVE.name, TaskState.RUNNING, reached_target=True),
        TaskOutcome(
            TO_OBS.task_id,
            TO_OBS.name,
            TaskState.PAUSED,
            reached_target=False,
            detail="still PAUSED after 30 s",
        ),
    ),
    dis_request_id="d1c2b3a4-req",
    error_code="DIS.4116",
    error_message="Invalid <task> & stuff",
    error_advice="Check the stream and task names with `/dumptask list <stream>`.",
)


def make_request(**changes: Any) -> Request:
    request = open_request(
        action=TaskAction.START,
        stream="orders-stream",
        tasks=(ARCHIVE, TO_OBS),
        requester="U0ALICE",
        channel="C0INCIDENT",
        reason="INC-4312 OBS dump stalled",
        now=NOW,
        policy=Policy(ttl=timedelta(minutes=15), approvals_required=1),
    )
    return replace(request, **changes)


def decided(state: RequestState, **changes: Any) -> Request:
    """A request that left PENDING, approved (or cancelled) by bob."""
    outcome = {
        RequestState.SUCCEEDED: Outcome(
            tasks=tuple(
                TaskOutcome(task.task_id, task.name, TaskState.RUNNING, reached_target=True)
                for task in (ARCHIVE, TO_OBS)
            ),
            dis_request_id="d1c2b3a4-req",
        ),
        RequestState.PARTIAL: DIS_FAILURE,
        RequestState.FAILED: replace(
            DIS_FAILURE,
            tasks=tuple(replace(task, reached_target=False) for task in DIS_FAILURE.tasks),
        ),
    }.get(state)
    approvals = () if state is RequestState.CANCELLED else (Approval("U0BOB", NOW),)
    defaults: dict[str, Any] = {
        "state": state,
        "approvals": approvals,
        "decided_by": "U0BOB",
        "decided_at": NOW + timedelta(minutes=2),
        "outcome": outcome,
    }
    return make_request(**(defaults | changes))


def buttons(message: Message) -> list[dict[str, Any]]:
    return [
        element
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def button(message: Message, action_id: str) -> dict[str, Any]:
    [found] = [element for element in buttons(message) if element["action_id"] == action_id]
    return found


def dump(message: Message) -> str:
    """Everything sent to Slack, as Slack receives it."""
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def mrkdwn_texts(node: Any) -> list[str]:
    """Every string Slack parses as mrkdwn (plain_text objects are shown literally)."""
    if isinstance(node, list):
        return [text for item in node for text in mrkdwn_texts(item)]
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [text for value in node.values() for text in mrkdwn_texts(value)]
    return []


def shown(message: Message) -> str:
    """The text Slack renders as mrkdwn: the fallback and every mrkdwn object."""
    return "\n".join([message.text, *mrkdwn_texts(message.blocks)])


def assert_within_limits(message: Message) -> None:
    """Slack's Block Kit limits, checked by slack_sdk's models and by hand where it does not."""
    assert 0 < len(message.blocks) <= 50
    for block in message.blocks:
        Block.parse(block).validate_json()
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(field["text"]) <= 2000 for field in block.get("fields", []))
    for element in buttons(message):
        assert len(element["value"]) <= 2000
        if "confirm" in element:
            assert len(element["confirm"]["title"]["text"]) <= 100
            assert len(element["confirm"]["text"]["text"]) <= 300


DECIDED_STATES = [state for state in RequestState if state is not RequestState.PENDING]


def test_approve_button_carries_action_id_request_id_and_primary_style():
    """The pending card's Approve button is dumptask.approve, primary, valued with the request id."""
    request = make_request()
    approve = button(render_card(request, ANYONE), APPROVE_ACTION_ID)
    assert APPROVE_ACTION_ID == "dumptask.approve"
    assert (approve["value"], approve["style"], approve["text"]["text"]) == (
        request.id,
        "primary",
        "Approve",
    )


def test_cancel_button_carries_action_id_and_request_id_without_style():
    """The pending card's Cancel button is dumptask.cancel, unstyled, valued with the request id."""
    request = make_request()
    cancel = button(render_card(request, ANYONE), CANCEL_ACTION_ID)
    assert CANCEL_ACTION_ID == "dumptask.cancel"
    assert cancel["value"] == request.id
    assert "style" not in cancel
    assert "confirm" not in cancel


def test_approve_confirm_dialog_restates_action_stream_and_tasks():
    """The confirm dialog names the action, the stream and every task by name and id."""
    confirm = button(render_card(make_request(), ANYONE), APPROVE_ACTION_ID)["confirm"]
    assert confirm["title"]["text"] == "Start 2 dump tasks?"
    assert confirm["confirm"]["text"] == "Yes, start"
    assert confirm["deny"]["text"] == "Go back"
    text = confirm["text"]["text"]
    for expected in ("start", "orders-stream", "orders-archive", ARCHIVE.task_id, TO_OBS.task_id):
        assert expected in text


def test_stop_card_says_pause_and_confirms_a_stop():
    """A stop request reads "stop (pause)" and its dialog asks to stop, aiming for PAUSED."""
    message = render_card(make_request(action=TaskAction.STOP), ANYONE)
    confirm = button(message, APPROVE_ACTION_ID)["confirm"]
    assert confirm["title"]["text"] == "Stop 2 dump tasks?"
    assert confirm["confirm"]["text"] == "Yes, stop"
    assert "PAUSED" in confirm["text"]["text"]
    assert "stop (pause)" in shown(message)
    assert message.blocks[0]["text"]["text"] == "Approval needed: stop 2 dump tasks"


def test_pending_card_keeps_buttons_while_approvals_are_missing():
    """A pending request with one of two approvals still offers both buttons."""
    request = make_request(approvals_required=2, approvals=(Approval("U0BOB", NOW),))
    actions = [element["action_id"] for element in buttons(render_card(request, ANYONE))]
    assert actions == [APPROVE_ACTION_ID, DENY_ACTION_ID, CANCEL_ACTION_ID]


@pytest.mark.parametrize(
    "state", [state for state in DECIDED_STATES if state is not RequestState.SCHEDULED]
)
def test_decided_card_has_no_buttons(state):
    """Every state but pending (and scheduled) shows no buttons, so nobody can click twice."""
    assert buttons(render_card(decided(state), ANYONE)) == []


def test_scheduled_card_offers_only_cancel_until_its_time():
    """An approved request waiting for its time can still be cancelled, and nothing else."""
    request = decided(RequestState.SCHEDULED, run_at=NOW + timedelta(hours=2))
    message = render_card(request, ANYONE)
    assert [button["action_id"] for button in buttons(message)] == [CANCEL_ACTION_ID]
    runs_at = f"<!date^{int((NOW + timedelta(hours=2)).timestamp())}^"
    assert "Runs at " + runs_at in shown(message)


def test_pending_card_past_its_deadline_shows_expired_without_buttons():
    """Given the time, a pending request past its deadline renders as expired, with no buttons."""
    message = render_card(make_request(), ANYONE, now=EXPIRES + timedelta(seconds=1))
    assert buttons(message) == []
    assert message.blocks[0]["text"]["text"] == "Start 2 dump tasks: expired"


@pytest.mark.parametrize(
    ("request_", "header"),
    [
        (make_request(), "Approval needed: start 2 dump tasks"),
        (decided(RequestState.EXECUTING), "Start 2 dump tasks: approved, starting…"),
        (decided(RequestState.SUCCEEDED), "Start 2 dump tasks: succeeded"),
        (decided(RequestState.PARTIAL), "Start 2 dump tasks: partly succeeded"),
        (decided(RequestState.FAILED), "Start 2 dump tasks: failed"),
        (decided(RequestState.CANCELLED), "Start 2 dump tasks: cancelled"),
        (decided(RequestState.EXPIRED), "Start 2 dump tasks: expired"),
        (make_request(tasks=(ARCHIVE,)), "Approval needed: start 1 dump task"),
    ],
)
def test_header_names_the_state(request_, header):
    """The header says what is asked and where the request stands."""
    assert render_card(request_, ANYONE).blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": header, "emoji": True},
    }


def test_executing_card_names_every_approver():
    """An executing card says who approved, joined as a sentence, and that it is starting."""
    request = decided(
        RequestState.EXECUTING,
        approvals_required=2,
        approvals=(Approval("U0BOB", NOW), Approval("U0CAROL", NOW)),
    )
    assert "Approved by <@U0BOB> and <@U0CAROL>, starting…" in shown(render_card(request, ANYONE))


def test_executing_stop_card_says_stopping():
    """An executing stop request says it is stopping."""
    request = decided(RequestState.EXECUTING, action=TaskAction.STOP)
    assert "Approved by <@U0BOB>, stopping…" in shown(render_card(request, ANYONE))


def test_succeeded_card_counts_tasks_in_target_state():
    """A succeeded card says how many tasks reached the target state."""
    assert "2 of 2 tasks RUNNING" in shown(render_card(decided(RequestState.SUCCEEDED), ANYONE))


@pytest.mark.parametrize("state", [RequestState.PARTIAL, RequestState.FAILED])
def test_failed_card_shows_dis_code_message_request_id_and_advice(state):
    """A card whose DIS call failed shows the error code, message, request id and advice."""
    text = shown(render_card(decided(state), ANYONE))
    for expected in (
        "DIS.4116",
        "Invalid &lt;task&gt; &amp; stuff",
        "d1c2b3a4-req",
        "`/dumptask list &lt;stream&gt;`",
    ):
        assert expected in text


def test_partial_card_counts_tasks_that_made_it():
    """A partly succeeded card says one of two tasks is RUNNING."""
    assert "1 of 2 tasks RUNNING" in shown(render_card(decided(RequestState.PARTIAL), ANYONE))


def test_final_card_shows_each_task_from_requested_to_final_state():
    """After execution a task line reads "state when asked → final state"."""
    assert "PAUSED → RUNNING" in shown(render_card(decided(RequestState.SUCCEEDED), ANYONE))


def test_cancelled_card_says_who_and_when():
    """A cancelled card names who cancelled and when, in Slack date markup."""
    when = int((NOW + timedelta(minutes=2)).timestamp())
    assert (
        f"Cancelled by <@U0BOB> at <!date^{when}^{{date_short_pretty}} at {{time}}|"
        "2026-11-28 12:02 UTC>."
    ) in shown(render_card(decided(RequestState.CANCELLED), ANYONE))


def test_expired_card_says_when_and_why():
    """An expired card gives its deadline and says approvals were missing."""
    text = shown(render_card(decided(RequestState.EXPIRED), ANYONE))
    assert f"Expired at {EXPIRY_MARKUP} without enough approvals." in text


@pytest.mark.parametrize("state", list(RequestState))
def test_text_fallback_is_meaningful_in_every_state(state):
    """Every card has a plain fallback naming the state, stream, tasks and requester."""
    request = make_request() if state is RequestState.PENDING else decided(state)
    message = render_card(request, ANYONE)
    for expected in (
        message.blocks[0]["text"]["text"],
        "orders-stream",
        "orders-archive",
        "<@U0ALICE>",
    ):
        assert expected in message.text


def test_card_shows_requester_action_stream_and_tasks():
    """The card names the requester, the action, the stream in backticks and each task."""
    text = shown(render_card(make_request(), ANYONE))
    for expected in (
        "*Requested by*\n<@U0ALICE>",
        "*Action*\nstart",
        "*Stream*\n`orders-stream`",
        f"`orders-archive` (`{ARCHIVE.task_id}`): PAUSED",
        f"`orders-to-obs` (`{TO_OBS.task_id}`): RUNNING",
    ):
        assert expected in text


def test_reason_is_shown():
    """The requester's reason is on the card."""
    assert "*Reason*\nINC-4312 OBS dump stalled" in shown(render_card(make_request(), ANYONE))


def test_missing_reason_says_so():
    """A request without a reason says that none was given."""
    assert "no reason given" in shown(render_card(make_request(reason=None), ANYONE))


def test_expiry_uses_slack_date_formatting_with_utc_fallback():
    """The expiry is Slack date markup with the ISO date and UTC time as fallback."""
    assert f"*Expires*\n{EXPIRY_MARKUP}" in shown(render_card(make_request(), ANYONE))


@pytest.mark.parametrize("state", list(RequestState))
def test_expiry_is_shown_only_while_the_request_is_pending(state):
    """Only a pending card shows when it expires; once decided, the deadline no longer matters."""
    request = make_request() if state is RequestState.PENDING else decided(state)
    fields = [
        field["text"]
        for block in render_card(request, ANYONE).blocks
        for field in block.get("fields", [])
    ]
    assert any(text.startswith("*Expires*") for text in fields) is (state is RequestState.PENDING)


def test_request_id_is_in_a_context_block():
    """The last block is a context naming the request id."""
    request = make_request()
    last = render_card(request, ANYONE).blocks[-1]
    assert last["type"] == "context"
    assert request.id in last["elements"][0]["text"]


@pytest.mark.parametrize(
    ("action", "flag"), [(TaskAction.START, "already RUNNING"), (TaskAction.STOP, "already PAUSED")]
)
def test_task_already_in_target_state_is_flagged(action, flag):
    """A task already in the wanted state is flagged, and only that one."""
    text = shown(render_card(make_request(action=action), ANYONE))
    assert text.count(flag) == 1


def test_unknown_state_is_shown_with_its_reason_once():
    """When DIS could not be asked, each task says "state unknown" and the reason appears once."""
    request = make_request(
        tasks=(RequestedTask("orders-archive", None, None), RequestedTask("t2", None, None)),
        state_unknown_because="DIS timed out <after 10 s>",
    )
    message = render_card(request, ANYONE)
    assert shown(message).count("`): state unknown") == 2
    assert json.dumps(message.blocks).count("DIS timed out &lt;after 10 s&gt;") == 1


def test_approval_progress_names_who_approved():
    """With two approvals needed and one given, the card shows "1 of 2 approvals" and who."""
    request = make_request(approvals_required=2, approvals=(Approval("U0BOB", NOW),))
    assert "1 of 2 approvals: <@U0BOB>" in shown(render_card(request, ANYONE))


def test_configured_approvers_are_mentioned():
    """Configured approvers appear as user and user-group mentions."""
    text = shown(render_card(make_request(), Policy(approvers=("S0LEADS", "U0BOB"))))
    assert "<!subteam^S0LEADS>, <@U0BOB>" in text


@pytest.mark.parametrize(
    ("allow_self_approval", "who"),
    [(False, "anyone but the requester"), (True, "anyone, including the requester")],
)
def test_open_approval_says_who_may_approve(allow_self_approval, who):
    """Without configured approvers the card says whether the requester may approve too."""
    context = Policy(allow_self_approval=allow_self_approval)
    assert who in shown(render_card(make_request(), context))


def test_channel_ping_in_reason_is_escaped_in_blocks_and_text():
    """A reason of <!channel> reaches Slack only as &lt;!channel&gt;, in blocks and fallback."""
    message = render_card(make_request(reason="<!channel> wake up"), ANYONE)
    assert "<!channel>" not in dump(message)
    assert "&lt;!channel&gt; wake up" in message.text
    assert "&lt;!channel&gt; wake up" in json.dumps(message.blocks)


def test_disguised_link_in_task_name_is_escaped():
    """A task name like <https://evil|innocent> is shown literally, never as a link."""
    task = RequestedTask("id-1", "<https://evil|innocent>", TaskState.PAUSED)
    message = render_card(make_request(tasks=(task,)), ANYONE)
    text = shown(message)
    assert "<https://evil" not in text
    assert "&lt;https://evil|innocent&gt;" in text
    assert "&lt;https://evil|innocent&gt;" in message.text


def test_stream_and_task_id_are_escaped():
    """A stream or task id with control characters is escaped wherever it is mrkdwn."""
    task = RequestedTask("<!here>", None, TaskState.PAUSED)
    message = render_card(make_request(stream="a&b<c>", tasks=(task,)), ANYONE)
    text = shown(message)
    assert "<!here>" not in text
    assert "`a&amp;b&lt;c&gt;`" in text


def test_ampersand_is_escaped_once():
    """An ampersand becomes &amp; and an already-escaped entity is not unescaped."""
    message = render_card(make_request(reason="R&D &lt;"), ANYONE)
    assert "R&amp;D &amp;lt;" in message.text


def test_plain_text_parts_are_not_escaped():
    """The header and the confirm dialog are plain text, so they show characters as typed."""
    task = RequestedTask("id-1", "a<b", TaskState.PAUSED)
    confirm = button(render_card(make_request(tasks=(task,)), ANYONE), APPROVE_ACTION_ID)
    assert "a<b (id-1)" in confirm["confirm"]["text"]["text"]


def extreme_request(**changes: Any) -> Request:
    """Five 64-character names and a 500-character reason made only of characters to escape."""
    tasks = tuple(
        RequestedTask(f"{i}" * 19, f"<{chr(97 + i)}>" * 21 + "x", TaskState.PAUSED)
        for i in range(5)
    )
    return make_request(
        stream="s" * 64,
        tasks=tasks,
        reason="&" * 500,
        state_unknown_because="<" * 500,
        **changes,
    )


@pytest.mark.parametrize("state", list(RequestState))
def test_extremes_stay_within_block_kit_limits(state):
    """The largest request the command allows still makes a valid card in every state."""
    changes: dict[str, Any] = {}
    if state is not RequestState.PENDING:
        changes = {
            "state": state,
            "approvals_required": 5,
            "approvals": tuple(Approval(f"U0APPROVER{i}", NOW) for i in range(5)),
            "decided_by": "U0BOB",
            "decided_at": NOW,
            "outcome": replace(DIS_FAILURE, error_message="<" * 5000, error_advice="x" * 200),
        }
    approvers = Policy(approvers=tuple(f"U0LEAD{i:04}" for i in range(50)))
    assert_within_limits(render_card(extreme_request(**changes), approvers))


def test_extreme_confirm_text_still_names_action_and_stream():
    """When the task list is cut to fit 300 characters, the action and stream remain."""
    confirm = button(render_card(extreme_request(), ANYONE), APPROVE_ACTION_ID)["confirm"]
    text = confirm["text"]["text"]
    assert len(text) <= 300
    assert text.startswith(f"This will start 5 dump tasks on stream {'s' * 64}")


def test_outcome_reply_lists_every_task_with_its_final_state():
    """The thread reply gives each task's name, id, final state and whether it got there."""
    reply = render_outcome_reply(decided(RequestState.PARTIAL))
    assert f"`orders-archive` (`{ARCHIVE.task_id}`): RUNNING ✅ reached" in reply.text
    assert (
        f"`orders-to-obs` (`{TO_OBS.task_id}`): PAUSED ⚠️ not reached (still PAUSED after 30 s)"
    ) in reply.text


def test_outcome_reply_gives_dis_error_request_id_and_advice():
    """The thread reply gives the DIS code, escaped message, request id and what to do next."""
    reply = render_outcome_reply(decided(RequestState.FAILED))
    assert (
        "DIS answered *DIS.4116*: Invalid &lt;task&gt; &amp; stuff (request id `d1c2b3a4-req`). "
        "Check the stream and task names with `/dumptask list &lt;stream&gt;`."
    ) in reply.text


def test_outcome_reply_blocks_say_what_the_fallback_says():
    """The reply's fallback text lists the same as its one section."""
    reply = render_outcome_reply(decided(RequestState.PARTIAL))
    assert reply.blocks == [{"type": "section", "text": {"type": "mrkdwn", "text": reply.text}}]


def test_successful_outcome_reply_gives_dis_request_id():
    """Without an error, the reply still gives the DIS request id for the audit trail."""
    reply = render_outcome_reply(decided(RequestState.SUCCEEDED))
    assert "DIS request id `d1c2b3a4-req`." in reply.text
    assert "⚠️" not in reply.text


def test_outcome_reply_escapes_dis_text():
    """Task names, details and error text from DIS cannot ping or hide a link in the reply."""
    outcome = replace(
        DIS_FAILURE,
        tasks=(TaskOutcome("id-1", "<!channel>", None, reached_target=False, detail="<!here>"),),
        error_code="<!everyone>",
    )
    reply = render_outcome_reply(decided(RequestState.FAILED, outcome=outcome))
    for ping in ("<!channel>", "<!here>", "<!everyone>"):
        assert ping not in dump(reply)
    assert "UNKNOWN ⚠️ not reached" in reply.text


def test_outcome_reply_at_extremes_keeps_request_id_within_limits():
    """A huge DIS message is cut so the reply fits and still shows the DIS request id."""
    request = decided(
        RequestState.FAILED,
        outcome=replace(DIS_FAILURE, error_message="<" * 10_000, error_advice="x" * 200),
    )
    reply = render_outcome_reply(replace(request, tasks=extreme_request().tasks))
    assert_within_limits(reply)
    assert "d1c2b3a4-req" in reply.text


@pytest.mark.parametrize("render", [render_refusal, render_error])
def test_ephemeral_helpers_carry_text_and_no_blocks(render):
    """Refusals and errors are plain ephemeral answers: the text, and no blocks."""
    assert render("You cannot approve your own request.") == Message(
        text="You cannot approve your own request.", blocks=[]
    )


HOSTILE = ["<!channel>", "<https://evil|x>", "<!subteam^S0ALL>", "<@U0BOSS>", "a&b"]


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("where", ["key", "value", "kind"])
def test_history_escapes_audit_details(hostile, where):
    """An audit event's detail keys and values and its kind reach Slack only escaped."""
    event = AuditEvent(
        request_id="dt-abc",
        kind=hostile if where == "kind" else AuditKind.REFUSED_CLICK,
        actor="U0MALLORY",
        at=NOW,
        detail={hostile: "ok"} if where == "key" else {"why": hostile},
    )
    message = render_history(make_request(), [event])
    assert hostile not in shown(message)
    escaped = hostile.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in message.text


def test_history_of_a_long_trail_is_cut_to_one_section():
    """A long audit trail is cut (visibly) to fit one Block Kit section's 3000 characters."""
    trail = [
        AuditEvent("dt-abc", AuditKind.REFUSED_CLICK, "U0MALLORY", NOW, {"why": "<" * 200})
        for _ in range(40)
    ]
    request = make_request()
    message = render_history(request, trail)
    assert len(message.text) <= 3000
    assert message.text.endswith("…"), "the input really was longer than a section allows"
    assert message.text.startswith(f"Request `{request.id}`")


# -- approvals that reach people -----------------------------------------------------------------


def test_deny_button_is_danger_and_carries_the_request_id():
    """Deny sits between Approve and Cancel, styled as danger, with the request id as value."""
    request = make_request()
    [_, deny, _] = buttons(render_card(request, ANYONE))
    assert (deny["action_id"], deny["value"], deny["style"]) == (
        DENY_ACTION_ID,
        request.id,
        "danger",
    )
    assert "confirm" not in deny, "Deny asks for a reason in a modal instead"


def test_denied_card_says_who_denied_and_why_escaped():
    """A denied card has no buttons and shows the denier and the reason, escaped."""
    request = make_request(
        state=RequestState.DENIED,
        decided_by="U0BOB",
        decided_at=NOW,
        denied_because="bucket <!channel> full",
    )
    message = render_card(request, ANYONE)
    assert not buttons(message)
    text = shown(message)
    assert "Denied by <@U0BOB>" in text
    assert "bucket &lt;!channel&gt; full" in text
    assert "<!channel>" not in text
    assert "Start 2 dump tasks: denied" in message.text


def test_configured_approvers_are_pinged_in_the_fallback_while_pending():
    """Notifications read the text: it mentions the approver group and users until decided."""
    policy = Policy(approvers=("S0LEADS", "U0BOB"))
    assert "Approvers: <!subteam^S0LEADS> <@U0BOB>" in render_card(make_request(), policy).text
    executing = make_request(state=RequestState.EXECUTING, approvals=(Approval("U0BOB", NOW),))
    assert "Approvers:" not in render_card(executing, policy).text


def test_pings_can_be_switched_off():
    """With notifications off the approvers are named, not mentioned."""
    policy = Policy(approvers=("S0LEADS",), notify=NotifyMode.OFF)
    text = shown(render_card(make_request(), policy))
    assert "<!subteam^" not in text
    assert "`S0LEADS`" in text


def test_escalation_is_said_on_the_card():
    """After the reminder the card names who the request was escalated to."""
    policy = Policy(approvers=("S0LEADS",))
    request = make_request(escalated_to=("U0DAN",), reminded_at=NOW)
    text = shown(render_card(request, policy))
    assert "escalated to <@U0DAN>" in text
    assert "<@U0DAN>" in render_card(request, policy).text


def test_reopened_card_says_what_changed_and_offers_the_buttons_again():
    """A request sent back after drift shows the change and Approve, Deny and Cancel."""
    request = make_request(
        round=1,
        drift=(
            TaskDrift(ARCHIVE.task_id, "orders-<archive>", TaskState.PAUSED, TaskState.RUNNING),
        ),
    )
    message = render_card(request, ANYONE)
    assert len(buttons(message)) == 3
    text = shown(message)
    assert "went from PAUSED to RUNNING" in text
    assert "orders-&lt;archive&gt;" in text
    assert "DIS was not called" in text


def test_reminder_names_approvers_escalation_and_deadline():
    """The reminder mentions the approvers, how many approvals are missing, the escalation."""
    policy = Policy(approvers=("S0LEADS",), escalate_to=("U0DAN",))
    request = make_request(approvals_required=2, escalated_to=("U0DAN",))
    text = render_reminder(request, ("S0LEADS", "U0DAN"), policy).text
    assert text.startswith("<!subteam^S0LEADS> <@U0DAN>")
    assert "still needs 2 approvals" in text
    assert "escalated: <@U0DAN> may approve it now" in text
    assert EXPIRY_MARKUP in text
