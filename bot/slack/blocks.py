"""Block Kit messages for requests: the approval card and the outcome reply in its thread.

Pure functions from domain values to ``Message`` (a plain-text fallback plus blocks). Blocks are
built with ``slack_sdk.models.blocks``, which checks Slack's limits; everything a user typed or
DIS returned is escaped with ``escape_mrkdwn`` before it enters mrkdwn or the fallback text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
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

from bot.audit import AuditEvent
from bot.lifecycle import (
    NotifyMode,
    Outcome,
    Policy,
    PolicyBreach,
    Reach,
    Request,
    RequestedTask,
    RequestState,
    TaskOutcome,
)
from bot.text import escape_mrkdwn
from bot.vocabulary import DumpTask, TaskAction, TaskState

APPROVE_ACTION_ID = "dumptask.approve"
CANCEL_ACTION_ID = "dumptask.cancel"
DENY_ACTION_ID = "dumptask.deny"
RESUME_ACTION_ID = "dumptask.resume"

# Slack's Block Kit limits; ``slack_sdk`` checks most of them when a block is serialised, but not
# the length of a section field, so every text is cut to fit before it is built.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
CONFIRM_TITLE_LIMIT = 100
CONFIRM_TEXT_LIMIT = 300
# DIS error messages and task details are cut before escaping (which can make text five times
# longer), so the request id and the advice after them always fit.
DIS_TEXT_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Message:
    """A Slack message: ``text`` is the fallback notifications and screen readers use."""

    text: str
    blocks: list[dict[str, Any]]


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mention(entity_id: str) -> str:
    """A user (``U``/``W``) or user-group (``S``) mention."""
    # Ids come from Slack or validated settings; escaping is a no-op for them and keeps a
    # malformed id from closing the mention early.
    safe = escape_mrkdwn(entity_id)
    return f"<!subteam^{safe}>" if entity_id.startswith("S") else f"<@{safe}>"


def slack_date(when: datetime) -> str:
    """Slack's date formatting, shown in each reader's time zone, with a UTC fallback."""
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def join_words(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``: a list as a sentence reads it."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _verb(action: TaskAction) -> str:
    return "start" if action is TaskAction.START else "stop"


def _doing(action: TaskAction) -> str:
    return "starting" if action is TaskAction.START else "stopping"


def _count(request: Request) -> str:
    count = len(request.tasks)
    return f"{count} dump task{'s' if count != 1 else ''}"


_HEADERS = {
    RequestState.PENDING: "Approval needed: {verb} {count}",
    RequestState.SCHEDULED: "{Verb} {count}: approved, scheduled",
    RequestState.EXECUTING: "{Verb} {count}: approved, {doing}…",
    RequestState.SUCCEEDED: "{Verb} {count}: succeeded",
    RequestState.PARTIAL: "{Verb} {count}: partly succeeded",
    RequestState.FAILED: "{Verb} {count}: failed",
    RequestState.UNKNOWN: "{Verb} {count}: outcome unknown",
    RequestState.CANCELLED: "{Verb} {count}: cancelled",
    RequestState.DENIED: "{Verb} {count}: denied",
    RequestState.EXPIRED: "{Verb} {count}: expired",
    RequestState.DISALLOWED: "{Verb} {count}: no longer allowed",
}

# Why a request was closed when the operator's policy changed under it.
_BREACHES = {
    PolicyBreach.CHANNEL: "this channel is no longer in `DUMPTASK_ALLOWED_CHANNELS`",
    PolicyBreach.STREAM: "the stream no longer matches `DUMPTASK_ALLOWED_STREAMS`",
    PolicyBreach.REQUESTER: "the requester is no longer in `DUMPTASK_REQUESTERS`",
}


def header_text(request: Request) -> str:
    """The card's headline for the request's current state (plain text, so not escaped)."""
    verb = _verb(request.action)
    return _HEADERS[request.state].format(
        verb=verb, Verb=verb.capitalize(), doing=_doing(request.action), count=_count(request)
    )


def _task_lines(request: Request) -> str:
    """One line per task: its state when asked, and once executed, where it ended up."""
    target = request.action.target_state
    final = (
        {task.task_id: task.final_state for task in request.outcome.tasks}
        if request.outcome
        else {}
    )
    lines = ["*Tasks*"]
    for task in request.tasks:
        name = f"`{escape_mrkdwn(task.name)}` " if task.name else ""
        state = task.state_at_request.value if task.state_at_request else "state unknown"
        if task.task_id in final:
            ended = final[task.task_id]
            state += f" → {ended.value if ended else TaskState.UNKNOWN.value}"
        elif task.state_at_request is target:
            state += f" · already {target.value}"
        if task.safe_until is not None and request.state.is_open:
            state += f" · {_safe_window_text(request, task.safe_until)}"
        lines.append(f"• {name}(`{escape_mrkdwn(task.task_id)}`): {state}")
    if request.state_unknown_because:
        lines.append(
            "_Current state unknown: DIS could not be asked "
            f"({escape_mrkdwn(request.state_unknown_because)})._"
        )
    return "\n".join(lines)


def duration_text(span: timedelta) -> str:
    """``23 h 40 m``, ``45 m``, ``30 s``: a duration as people read it."""
    seconds = max(int(span.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} m" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} m"
    return f"{secs} s"


def _safe_window_text(request: Request, safe_until: datetime) -> str:
    retention = f"{request.retention_hours} h" if request.retention_hours else "its retention"
    return (
        f"data older than {retention} is deleted: resume within "
        f"{duration_text(safe_until - request.created_at)}"
    )


def _schedule_lines(request: Request) -> list[str]:
    """What the request will do besides the call itself: later, and for how long."""
    lines = []
    if request.run_at is not None and request.state.is_open:
        lines.append(f"*Runs at* {slack_date(request.run_at)}, once approved (not before).")
    if request.pause_for is not None and request.state.is_open:
        lines.append(
            f"*Timed pause:* pauses for {duration_text(request.pause_for)}, then starts the "
            "tasks again by itself. Approving covers both: the resume needs no second approval."
        )
    limits = [task.safe_until for task in request.tasks if task.safe_until is not None]
    if request.action is TaskAction.STOP and request.pause_for is None and request.state.is_open:
        suggestion = ""
        if limits:
            safe = min(limits) - request.created_at
            hours = int(safe.total_seconds() // 3600)
            suggestion = f" Add `--for {hours}h`" if hours else " Add `--for 30m`"
            suggestion += " to have them started again by themselves."
        lines.append(
            ":warning: *No end set:* paused tasks lose the data that ages out of the stream's "
            f"retention while they wait.{suggestion}"
        )
    return lines


def _approvers_text(request: Request, policy: Policy) -> str:
    configured = request.approvers_of(policy)
    if configured:
        who = ", ".join(_who(entity, policy) for entity in configured)
    elif policy.allow_self_approval:
        who = "anyone, including the requester"
    else:
        who = "anyone but the requester"
    progress = f"{len(request.approvals)} of {request.approvals_required} approvals"
    if request.approvals:
        progress += ": " + ", ".join(mention(user) for user in request.approver_ids)
    escalated = ""
    if request.escalated_to:
        added = join_words([_who(entity, policy) for entity in request.escalated_to])
        escalated = f" · escalated to {added} after nobody decided"
    return f"*May approve:* {who} · {progress}{escalated}"


def _who(entity_id: str, policy: Policy) -> str:
    """A person or group: a mention that pings, unless the operator switched pings off."""
    if policy.notify is NotifyMode.OFF:
        return f"`{escape_mrkdwn(entity_id)}`"
    return mention(entity_id)


def _status_line(request: Request) -> str | None:
    """What happened, for every state but pending."""
    approvers = join_words([mention(user) for user in request.approver_ids])
    approved = f"Approved by {approvers}" if approvers else "Approved"
    match request.state:
        case RequestState.PENDING:
            return None
        case RequestState.EXECUTING:
            return f"{approved}, {_doing(request.action)}…"
        case RequestState.SCHEDULED:
            when = slack_date(request.run_at) if request.run_at else "later"
            return f"{approved}. Runs at {when}; it can be cancelled until then."
        case RequestState.CANCELLED:
            by = f" by {mention(request.decided_by)}" if request.decided_by else ""
            at = f" at {slack_date(request.decided_at)}" if request.decided_at else ""
            return f"Cancelled{by}{at}."
        case RequestState.DENIED:
            by = f" by {mention(request.decided_by)}" if request.decided_by else ""
            at = f" at {slack_date(request.decided_at)}" if request.decided_at else ""
            why = escape_mrkdwn(truncate(request.denied_because or "no reason given", 500))
            return f"Denied{by}{at}: {why}"
        case RequestState.EXPIRED:
            return f"Expired at {slack_date(request.expires_at)} without enough approvals."
        case RequestState.DISALLOWED:
            why = _BREACHES[request.closed_because] if request.closed_because else "policy"
            return (
                f"Closed without calling DIS: the operator's policy changed and {why}. "
                "Ask an operator, or make a new request where it is allowed."
            )
        case _:
            return _outcome_summary(request, approved)


def _outcome_summary(request: Request, approved: str) -> str:
    outcome = request.outcome
    if outcome is None:
        return f"{approved}."
    reached = sum(task.reached_target for task in outcome.tasks)
    line = (
        f"{approved}. {reached} of {len(outcome.tasks)} tasks {request.action.target_state.value}."
    )
    if outcome.interrupted:
        line += " " + _INTERRUPTED
    if outcome.call_failed:
        line += "\n" + _error_text(outcome)
    if request.state is RequestState.UNKNOWN:
        line += "\n" + _UNKNOWN_HINT
    return line


_INTERRUPTED = "The bot was interrupted while executing; these states were read back from DIS."
_UNKNOWN_HINT = (
    "The batch call may or may not have reached DIS, and no task has reached its goal yet. "
    "Check the tasks with `/dumptask list <stream>` before asking again: a second request "
    "could repeat what DIS may already be doing."
)


def _error_text(outcome: Outcome) -> str:
    """The failed DIS call as support needs it: code, message, request id, then what to do."""
    if outcome.reach is Reach.INTERRUPTED:
        return (
            "The bot stopped after recording that it was sending the batch call, so whether "
            "DIS received it is unknown."
        )
    code = escape_mrkdwn(outcome.error_code or "error")
    message = escape_mrkdwn(truncate(outcome.error_message or "no message", DIS_TEXT_LIMIT))
    request_id = (
        f"request id `{escape_mrkdwn(outcome.dis_request_id)}`"
        if outcome.dis_request_id
        else "no request id"
    )
    advice = f" {escape_mrkdwn(outcome.error_advice)}" if outcome.error_advice else ""
    return f"DIS answered *{code}*: {message} ({request_id}).{advice}"


def _confirm_text(request: Request) -> str:
    """Exactly what the click will do, cut to the dialog's 300 characters.

    The action, stream and goal always fit (a stream name has at most 64 characters); the task
    list shrinks from names with ids, to names, to a cut list.
    """
    action = "start" if request.action is TaskAction.START else "stop (pause)"
    head = (
        f"This will {action} {_count(request)} on stream {request.stream}, "
        f"aiming for {request.action.target_state.value}: "
    )
    budget = CONFIRM_TEXT_LIMIT - len(head) - 1
    choices = (
        ", ".join(
            f"{task.name} ({task.task_id})" if task.name else task.task_id for task in request.tasks
        ),
        ", ".join(task.name or task.task_id for task in request.tasks),
    )
    tasks = next((choice for choice in choices if len(choice) <= budget), None)
    return truncate(head + (tasks or truncate(choices[-1], budget)) + ".", CONFIRM_TEXT_LIMIT)


def _buttons(request: Request) -> ActionsBlock:
    verb = _verb(request.action)
    confirm = ConfirmObject(
        title=truncate(f"{verb.capitalize()} {_count(request)}?", CONFIRM_TITLE_LIMIT),
        text=PlainTextObject(text=_confirm_text(request)),
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
            ButtonElement(text="Deny", action_id=DENY_ACTION_ID, value=request.id, style="danger"),
            ButtonElement(text="Cancel", action_id=CANCEL_ACTION_ID, value=request.id),
        ],
    )


def _after_pause(request: Request, resume: Request | None) -> tuple[str, str] | None:
    """For a stop that paused its tasks: when they resume, and the button's label if any."""
    outcome = request.outcome
    if request.action is not TaskAction.STOP or outcome is None:
        return None
    if not any(task.reached_target for task in outcome.tasks):
        return None
    if resume is None:
        if request.pause_for is not None:
            return None
        return "The tasks stay paused until someone starts them.", "Resume"
    match resume.state:
        case RequestState.SCHEDULED:
            when = slack_date(resume.run_at) if resume.run_at else "later"
            return f"*Resumes at* {when}, by itself (approved with the pause).", "Resume now"
        case RequestState.EXECUTING:
            who = f" for {mention(resume.run_early_by)}" if resume.run_early_by else ""
            return f"Resuming now{who}…", ""
        case RequestState.CANCELLED:
            return "The scheduled resume was cancelled; the tasks stay paused.", "Resume"
    reached = sum(task.reached_target for task in (resume.outcome.tasks if resume.outcome else ()))
    late = ""
    if resume.started_late_by and resume.started_late_by >= 60:
        late = f", {duration_text(timedelta(seconds=resume.started_late_by))} late"
    elif resume.run_early_by:
        late = f", early for {mention(resume.run_early_by)}"
    return (
        f"*Resumed* (`{resume.id}`{late}): {reached} of {len(resume.tasks)} tasks RUNNING.",
        "",
    )


def _resume_button(request: Request, label: str) -> ActionsBlock:
    return ActionsBlock(
        block_id="dumptask.resume",
        elements=[
            ButtonElement(text=label, action_id=RESUME_ACTION_ID, value=request.id, style="primary")
        ],
    )


def _cancel_only(request: Request) -> ActionsBlock:
    return ActionsBlock(
        block_id="dumptask.scheduled",
        elements=[ButtonElement(text="Cancel", action_id=CANCEL_ACTION_ID, value=request.id)],
    )


def _field(label: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(f"*{label}*\n{value}", FIELD_LIMIT))


def render_card(
    request: Request,
    policy: Policy,
    *,
    now: datetime | None = None,
    resume: Request | None = None,
) -> Message:
    """The approval card for the request's current state; buttons only while it is open.

    Given ``now``, a pending request past its deadline is shown as expired (without buttons)
    even before the store has recorded the expiry. ``resume`` is the scheduled start that ends
    a timed pause, shown on the pause's card with its **Resume now** button.
    """
    if now is not None and request.is_expired(now):
        request = replace(request, state=RequestState.EXPIRED, decided_at=request.expires_at)
    reason = escape_mrkdwn(request.reason) if request.reason else "_no reason given_"
    action = "start" if request.action is TaskAction.START else "stop (pause)"
    stream = escape_mrkdwn(request.stream)
    headline = header_text(request)
    blocks: list[Block] = [
        HeaderBlock(text=truncate(headline, HEADER_LIMIT)),
        SectionBlock(
            fields=[
                _field("Requested by", mention(request.requester)),
                _field("Action", action),
                _field("Stream", f"`{stream}`"),
                *(
                    [_field("Expires", slack_date(request.expires_at))]
                    if request.state.is_open
                    else []
                ),
            ]
        ),
        SectionBlock(text=MarkdownTextObject(text=truncate(_task_lines(request), SECTION_LIMIT))),
        SectionBlock(text=MarkdownTextObject(text=truncate(f"*Reason*\n{reason}", SECTION_LIMIT))),
        ContextBlock(
            elements=[
                MarkdownTextObject(text=truncate(_approvers_text(request, policy), SECTION_LIMIT))
            ]
        ),
    ]
    schedule = _schedule_lines(request)
    if schedule:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(schedule), SECTION_LIMIT)))
        )
    status = _status_line(request)
    if status is None and request.drift:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_drift_text(request))))
    if status is None:
        blocks.append(_buttons(request))
    else:
        blocks.append(DividerBlock())
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(status, SECTION_LIMIT))))
        after = _after_pause(request, resume)
        if after is not None:
            blocks.append(SectionBlock(text=MarkdownTextObject(text=after[0])))
            if after[1]:
                blocks.append(_resume_button(request, after[1]))
        if request.state is RequestState.SCHEDULED:
            blocks.append(_cancel_only(request))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"Request `{request.id}`")]))
    # The fallback is what a notification or a screen reader says: the same facts, one per line.
    names = ", ".join(escape_mrkdwn(task.name or task.task_id) for task in request.tasks)
    fallback = "\n".join(
        [
            headline,
            f"Stream `{stream}`, tasks: {names}",
            f"Requested by {mention(request.requester)}",
            f"Reason: {reason}",
            status or f"Expires {slack_date(request.expires_at)}",
            f"Request `{request.id}`",
            *_pings(request, policy),
        ]
    )
    return Message(text=fallback, blocks=[block.to_dict() for block in blocks])


def _pings(request: Request, policy: Policy) -> list[str]:
    """The approvers, mentioned in the text that notifications read, while a decision is due."""
    configured = request.approvers_of(policy)
    if not request.state.is_open or not configured or policy.notify is NotifyMode.OFF:
        return []
    return [f"Approvers: {' '.join(mention(entity) for entity in configured)}"]


def _drift_text(request: Request) -> str:
    """Why a request that was approved is waiting for approval again."""
    changes = join_words(
        [
            f"`{escape_mrkdwn(change.name or change.task_id)}` went from {change.was.value} "
            f"to {change.now.value}"
            for change in request.drift
        ]
    )
    return (
        f":warning: *Not started: the tasks changed after the approval.* {changes} "
        "(in the console, or by another request). DIS was not called and the approvals were "
        "cleared: approve again if this is still wanted, or cancel."
    )


def render_drift_note(request: Request) -> Message:
    """The thread note when a request is sent back for a fresh approval."""
    text = _drift_text(request)
    return Message(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()])


def render_reminder(request: Request, approvers: Sequence[str], policy: Policy) -> Message:
    """The one reminder in the card's thread, with the escalation if there is one."""
    missing = request.approvals_required - len(request.approvals)
    who = " ".join(_who(entity, policy) for entity in approvers) or "Approvers"
    text = (
        f"{who}: request `{request.id}` ({_verb(request.action)} {_count(request)} on "
        f"`{escape_mrkdwn(request.stream)}`) still needs {missing} approval"
        f"{'s' if missing != 1 else ''}; it expires {slack_date(request.expires_at)}."
    )
    if request.escalated_to:
        added = join_words([_who(entity, policy) for entity in request.escalated_to])
        text += f"\nNobody decided yet, so it is escalated: {added} may approve it now."
    return Message(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()])


def render_outcome_reply(request: Request) -> Message:
    """The thread reply: each task's final state, and the DIS error and advice if any."""
    outcome = request.outcome
    target = request.action.target_state
    title = (
        f"*Result of request `{request.id}`*: {_verb(request.action)} on stream "
        f"`{escape_mrkdwn(request.stream)}`, goal {target.value}"
    )
    if request.parent_id is not None:
        title += f" (the end of the timed pause of `{request.parent_id}`)"
    lines = [title]
    if request.started_late_by and request.started_late_by >= 60:
        late = duration_text(timedelta(seconds=request.started_late_by))
        lines.append(f"Started {late} after its time: the bot was not running then.")
    for task in outcome.tasks if outcome else ():
        name = f"`{escape_mrkdwn(task.name)}` " if task.name else ""
        state = task.final_state.value if task.final_state else TaskState.UNKNOWN.value
        mark = "✅ reached" if task.reached_target else "⚠️ not reached"
        detail = _task_detail(outcome, task, target) if outcome else None
        shown = f" ({escape_mrkdwn(truncate(detail, DIS_TEXT_LIMIT))})" if detail else ""
        lines.append(f"• {name}(`{escape_mrkdwn(task.task_id)}`): {state} {mark}{shown}")
    if outcome is not None and outcome.interrupted:
        lines.append(_INTERRUPTED)
    if outcome is None:
        lines.append("No outcome has been recorded yet.")
    elif outcome.call_failed:
        lines.append(_error_text(outcome))
        if request.state is RequestState.UNKNOWN:
            lines.append(_UNKNOWN_HINT)
    elif outcome.dis_request_id:
        lines.append(f"DIS request id `{escape_mrkdwn(outcome.dis_request_id)}`.")
    text = truncate("\n".join(lines), SECTION_LIMIT)
    return Message(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()])


def _task_detail(outcome: Outcome, task: TaskOutcome, target: TaskState) -> str | None:
    """Why a task ended where it did, from how the call went; never "not changed" unless known."""
    if task.detail:  # outcomes stored before the wording moved here carry their own
        return task.detail
    if task.final_state is None:
        return "DIS could not be read back"
    if task.reached_target:
        failed = outcome.call_failed and outcome.reach is not Reach.INTERRUPTED
        return "although the DIS call failed" if failed else None
    if not outcome.call_failed:
        waited = f" within {outcome.waited_seconds:g}s" if outcome.waited_seconds else ""
        return f"did not reach {target.value}{waited}"
    if outcome.reach is Reach.REFUSED:
        return "not changed: DIS refused the call"
    return "the DIS call may or may not have reached DIS"


def render_reading_back(request: Request) -> Message:
    """The thread note when a replica takes over an execution another one left unfinished."""
    text = (
        f"The bot was interrupted while executing request `{request.id}`. It is reading the "
        "tasks back from DIS and will post the outcome here; the batch call is never sent "
        "twice."
    )
    return Message(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()])


def render_text(text: str) -> Message:
    """A text-only message (ephemeral answers); ``text`` must already be mrkdwn-safe."""
    return Message(text=text, blocks=[])


def render_refusal(text: str) -> Message:
    """An ephemeral answer to a click or command the rules refused.

    ``text`` is the bot's own sentence (a ``CommandError`` message), with any user or DIS text
    in it already escaped where it was composed, so it is not escaped again.
    """
    return render_text(text)


def render_error(text: str) -> Message:
    """An ephemeral answer when something failed; ``text`` must already be mrkdwn-safe."""
    return render_text(text)


def render_task_list(
    stream: str, tasks: Sequence[DumpTask], windows: Mapping[str, timedelta] | None = None
) -> Message:
    """``/dumptask list``: each task's name, id, state, destination and last transfer.

    A paused task also shows how long it may stay paused before its data starts to expire.
    """
    title = f"Dump tasks of stream `{escape_mrkdwn(stream)}`:"
    lines = [title]
    for task in tasks:
        last = slack_date(task.last_transfer_at) if task.last_transfer_at else "never"
        window = (windows or {}).get(task.task_id)
        safe = ""
        if window is not None:
            safe = (
                f" · *safe for {duration_text(window)}*" if window else " · *data is expiring now*"
            )
        lines.append(
            f"• `{escape_mrkdwn(task.name)}` (`{escape_mrkdwn(task.task_id)}`): {task.state}{safe}"
            f" · {escape_mrkdwn(task.destination_type or 'unknown destination')} · "
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


def render_recent(requests: Sequence[Request], scheduled: Sequence[Request] = ()) -> Message:
    """``/dumptask status``: the caller's recent requests, and the scheduled actions."""
    lines = []
    if requests:
        lines.append("Your recent requests (`/dumptask status <request>` shows one in full):")
        lines.extend(
            f"• `{request.id}` {_verb(request.action)} {_count(request)} on "
            f"`{escape_mrkdwn(request.stream)}`: *{request.state.value}* · "
            f"{slack_date(request.created_at)}"
            for request in requests
        )
    else:
        lines.append("You have no requests yet. Try `/dumptask help`.")
    if scheduled:
        lines.append("*Scheduled* (yours, and this channel's):")
        lines.extend(
            f"• `{request.id}` {_verb(request.action)} {_count(request)} on "
            f"`{escape_mrkdwn(request.stream)}` at "
            f"{slack_date(request.run_at) if request.run_at else 'a time to come'}"
            + (f" (ends the pause of `{request.parent_id}`)" if request.parent_id else "")
            for request in scheduled
        )
    return render_text(truncate("\n".join(lines), SECTION_LIMIT))


def render_retention_warning(
    request: Request,
    share: int,
    paused: Sequence[RequestedTask],
    people: Sequence[str],
    policy: Policy,
) -> Message:
    """The reminder that paused tasks are using up their safe window, with the Resume button."""
    names = join_words([f"`{escape_mrkdwn(task.name or task.task_id)}`" for task in paused])
    limits = [task.safe_until for task in paused if task.safe_until is not None]
    deadline = f" before {slack_date(min(limits))}" if limits else ""
    retention = f"{request.retention_hours} h" if request.retention_hours else "its retention"
    who = " ".join(_who(entity, policy) for entity in people)
    text = (
        f"{who}: {names} of `{escape_mrkdwn(request.stream)}` are still paused ({share} % of "
        f"their safe window is gone). DIS deletes data older than {retention}, so they must "
        f"resume{deadline} to lose nothing."
    )
    label = "Resume now" if request.resume_id else "Resume"
    blocks = [SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_LIMIT)))]
    return Message(
        text=text,
        blocks=[block.to_dict() for block in (*blocks, _resume_button(request, label))],
    )
