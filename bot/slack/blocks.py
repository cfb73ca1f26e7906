"""Block Kit messages for requests: the approval card and the outcome reply in its thread.

Pure functions from domain values to ``Message`` (a plain-text fallback plus blocks). Blocks are
built with ``slack_sdk.models.blocks``, which checks Slack's limits; everything a user typed or
DIS returned is escaped with ``escape_mrkdwn`` before it enters mrkdwn or the fallback text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.dis.models import DumpTask, TaskAction, TaskState
from bot.requests import Request, RequestState
from bot.store import AuditEvent
from bot.text import escape_mrkdwn

APPROVE_ACTION_ID = "dumptask.approve"
CANCEL_ACTION_ID = "dumptask.cancel"

HEADER_LIMIT = 150
CONFIRM_TEXT_LIMIT = 300
SECTION_LIMIT = 3000


@dataclass(frozen=True, slots=True)
class Message:
    """A Slack message: ``text`` is the fallback notifications and screen readers use."""

    text: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class CardContext:
    """What the card says about who may approve."""

    approvers: tuple[str, ...] = ()
    allow_self_approval: bool = False


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mention(entity_id: str) -> str:
    """A user (``U``/``W``) or user-group (``S``) mention."""
    return f"<!subteam^{entity_id}>" if entity_id.startswith("S") else f"<@{entity_id}>"


def slack_date(when: datetime) -> str:
    """Slack's date formatting, shown in each reader's time zone, with a UTC fallback."""
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _verb(action: TaskAction) -> str:
    return "start" if action is TaskAction.START else "stop"


def _count(request: Request) -> str:
    count = len(request.tasks)
    return f"{count} dump task{'s' if count != 1 else ''}"


_HEADERS = {
    RequestState.PENDING: "Approval needed: {verb} {count}",
    RequestState.EXECUTING: "{Verb} {count}: approved, {verb_ing}…",
    RequestState.SUCCEEDED: "{Verb} {count}: succeeded",
    RequestState.PARTIAL: "{Verb} {count}: partly succeeded",
    RequestState.FAILED: "{Verb} {count}: failed",
    RequestState.CANCELLED: "{Verb} {count}: cancelled",
    RequestState.EXPIRED: "{Verb} {count}: expired",
}


def header_text(request: Request) -> str:
    """The card's headline for the request's current state."""
    verb = _verb(request.action)
    return _HEADERS[request.state].format(
        verb=verb,
        Verb=verb.capitalize(),
        verb_ing="starting" if verb == "start" else "stopping",
        count=_count(request),
    )


def _task_lines(request: Request) -> str:
    """One line per task: its state when asked, and once executed, where it ended up."""
    target = request.action.target_state
    final = (
        {task.task_id: task.final_state for task in request.outcome.tasks}
        if request.outcome
        else {}
    )
    lines = []
    for task in request.tasks:
        name = f"`{escape_mrkdwn(task.name)}` " if task.name else ""
        state = task.state_at_request.value if task.state_at_request else "state unknown"
        if task.task_id in final:
            ended = final[task.task_id]
            state += f" → {ended.value if ended else TaskState.UNKNOWN.value}"
        elif task.state_at_request is target:
            state += f" · already {target}"
        lines.append(f"• {name}(`{escape_mrkdwn(task.task_id)}`): {state}")
    text = "\n".join(lines)
    if request.state_unknown_because:
        text += (
            "\n_Current state unknown: DIS could not be asked "
            f"({escape_mrkdwn(request.state_unknown_because)})._"
        )
    return text


def _approvers_text(request: Request, context: CardContext) -> str:
    if context.approvers:
        who = ", ".join(mention(entity) for entity in context.approvers)
    elif context.allow_self_approval:
        who = "anyone, including the requester"
    else:
        who = "anyone but the requester"
    progress = f"{len(request.approvals)} of {request.approvals_required} approvals"
    if request.approvals:
        progress += ": " + ", ".join(mention(user) for user in request.approver_ids)
    return f"{who} · {progress}"


def _status_line(request: Request) -> str | None:
    """What happened, for every state but pending."""
    approvers = ", ".join(mention(user) for user in request.approver_ids)
    match request.state:
        case RequestState.PENDING:
            return None
        case RequestState.EXECUTING:
            doing = "starting" if request.action is TaskAction.START else "stopping"
            return f"Approved by {approvers}, {doing}…"
        case RequestState.CANCELLED:
            when = slack_date(request.decided_at) if request.decided_at else "now"
            return f"Cancelled by {mention(request.decided_by or '')} at {when}."
        case RequestState.EXPIRED:
            return f"Expired at {slack_date(request.expires_at)} without enough approvals."
        case _:
            return _outcome_summary(request, approvers)


def _outcome_summary(request: Request, approvers: str) -> str:
    outcome = request.outcome
    target = request.action.target_state
    if outcome is None:
        return f"Approved by {approvers}."
    reached = sum(task.reached_target for task in outcome.tasks)
    line = f"Approved by {approvers}. {reached} of {len(outcome.tasks)} tasks {target}."
    if outcome.error_code or outcome.error_message:
        line += "\n" + _error_text(request)
    return line


def _error_text(request: Request) -> str:
    outcome = request.outcome
    assert outcome is not None
    code = escape_mrkdwn(outcome.error_code or "error")
    message = escape_mrkdwn(outcome.error_message or "")
    request_id = escape_mrkdwn(outcome.dis_request_id or "none")
    advice = escape_mrkdwn(outcome.error_advice or "")
    return f"DIS answered *{code}*: {message} (request id `{request_id}`). {advice}".strip()


def _buttons(request: Request) -> ActionsBlock:
    verb = _verb(request.action)
    names = ", ".join(task.name or task.task_id for task in request.tasks)
    confirm = ConfirmObject(
        title=truncate(f"{verb.capitalize()} {_count(request)}?", 100),
        text=PlainTextObject(
            text=truncate(
                f"This will {verb} {names} on stream {request.stream} "
                f"({'RUNNING' if verb == 'start' else 'PAUSED'} is the goal).",
                CONFIRM_TEXT_LIMIT,
            )
        ),
        confirm=f"Yes, {verb}",
        deny="Go back",
    )
    return ActionsBlock(
        block_id="dumptask.buttons",
        elements=[
            ButtonElement(
                text="Approve",
                action_id=APPROVE_ACTION_ID,
                value=request.id,
                style="primary",
                confirm=confirm,
            ),
            ButtonElement(text="Cancel", action_id=CANCEL_ACTION_ID, value=request.id),
        ],
    )


def render_card(request: Request, context: CardContext) -> Message:
    """The approval card for the request's current state; buttons only while it is open."""
    reason = escape_mrkdwn(request.reason) if request.reason else "_no reason given_"
    action = "start" if request.action is TaskAction.START else "stop (pause)"
    stream = escape_mrkdwn(request.stream)
    blocks: list[Block] = [
        HeaderBlock(text=truncate(header_text(request), HEADER_LIMIT)),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Requested by*\n{mention(request.requester)}"),
                MarkdownTextObject(text=f"*Action*\n{action}"),
                MarkdownTextObject(text=f"*Stream*\n`{stream}`"),
                MarkdownTextObject(text=f"*Expires*\n{slack_date(request.expires_at)}"),
            ]
        ),
        SectionBlock(text=MarkdownTextObject(text=truncate(_task_lines(request), SECTION_LIMIT))),
        SectionBlock(text=MarkdownTextObject(text=truncate(f"*Reason*\n{reason}", SECTION_LIMIT))),
        ContextBlock(
            elements=[MarkdownTextObject(text=f"*Approvers:* {_approvers_text(request, context)}")]
        ),
    ]
    status = _status_line(request)
    if status is None and not request.state.is_final:
        blocks.append(_buttons(request))
    elif status is not None:
        blocks.append(DividerBlock())
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(status, SECTION_LIMIT))))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"Request `{request.id}`")]))
    fallback = (
        f"{header_text(request)}: {_count(request)} on stream {stream}, "
        f"requested by {mention(request.requester)}. Reason: {reason}"
    )
    if status:
        fallback += f" {status}"
    return Message(text=fallback, blocks=[block.to_dict() for block in blocks])


def render_outcome_reply(request: Request) -> Message:
    """The thread reply: each task's final state, and the DIS error and advice if any."""
    outcome = request.outcome
    target = request.action.target_state
    lines = []
    for task in outcome.tasks if outcome else ():
        name = f"`{escape_mrkdwn(task.name)}` " if task.name else ""
        state = task.final_state.value if task.final_state else TaskState.UNKNOWN.value
        mark = "✅" if task.reached_target else "⚠️"
        detail = f" ({escape_mrkdwn(task.detail)})" if task.detail else ""
        lines.append(f"{mark} {name}(`{escape_mrkdwn(task.task_id)}`): {state}{detail}")
    if outcome and (outcome.error_code or outcome.error_message):
        lines.append(_error_text(request))
    elif outcome and outcome.dis_request_id:
        lines.append(f"DIS request id `{escape_mrkdwn(outcome.dis_request_id)}`.")
    title = f"Result of request `{request.id}` ({_verb(request.action)}, goal {target}):"
    text = truncate("\n".join([title, *lines]), SECTION_LIMIT)
    return Message(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()])


def render_text(text: str) -> Message:
    """A text-only message (ephemeral answers); ``text`` must already be mrkdwn-safe."""
    return Message(text=text, blocks=[])


def render_task_list(stream: str, tasks: Sequence[DumpTask]) -> Message:
    """``/dumptask list``: each task's name, id, state, destination and last transfer."""
    title = f"Dump tasks of stream `{escape_mrkdwn(stream)}`:"
    lines = [title]
    for task in tasks:
        last = slack_date(task.last_transfer_at) if task.last_transfer_at else "never"
        lines.append(
            f"• `{escape_mrkdwn(task.name)}` (`{escape_mrkdwn(task.task_id)}`): {task.state} · "
            f"{escape_mrkdwn(task.destination_type or 'unknown destination')} · "
            f"last transfer {last}"
        )
    if not tasks:
        lines.append("_This stream has no dump tasks._")
    return render_text(truncate("\n".join(lines), SECTION_LIMIT))


def render_history(request: Request, trail: Sequence[AuditEvent]) -> Message:
    """``/dumptask status <request>``: the request's state and every audited step."""
    summary = (
        f"Request `{request.id}`: {_verb(request.action)} {_count(request)} on stream "
        f"`{escape_mrkdwn(request.stream)}`, *{request.state.value}*."
    )
    lines = [summary]
    for event in trail:
        who = mention(event.actor) if event.actor and event.actor != "bot" else "the bot"
        details = ", ".join(
            f"{escape_mrkdwn(str(key))}={escape_mrkdwn(str(value))}"
            for key, value in event.detail.items()
            if value not in (None, "", [], {})
        )
        lines.append(
            f"• {slack_date(event.at)} {escape_mrkdwn(str(event.kind))} by {who}"
            + (f": {details}" if details else "")
        )
    return render_text(truncate("\n".join(lines), SECTION_LIMIT))


def render_recent(requests: Sequence[Request]) -> Message:
    """``/dumptask status``: the caller's recent requests, newest first."""
    if not requests:
        return render_text("You have no requests yet. Try `/dumptask help`.")
    lines = ["Your recent requests (`/dumptask status <request>` shows one in full):"]
    lines.extend(
        f"• `{request.id}` {_verb(request.action)} {_count(request)} on "
        f"`{escape_mrkdwn(request.stream)}`: *{request.state.value}* · "
        f"{slack_date(request.created_at)}"
        for request in requests
    )
    return render_text("\n".join(lines))
