"""The bot's two modals: Deny (asking for the reason) and Start (three taps instead of typing ids).

Views are built with ``slack_sdk.models.views`` (which checks Slack's limits) by pure functions,
and read back from ``view_submission`` payloads by pure functions, next to their callback and
action ids. ``private_metadata`` carries what the submission needs that the form does not show:
the request and the message that was clicked, or the channel the card goes to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    ConversationSelectElement,
    ExternalDataSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    RadioButtonsElement,
    SectionBlock,
    StaticMultiSelectElement,
)
from slack_sdk.models.views import View

from bot.commands import MAX_REASON_LENGTH, MAX_TASKS, TaskCommand
from bot.lifecycle import Request
from bot.text import escape_mrkdwn
from bot.vocabulary import DumpTask, TaskAction

DENY_CALLBACK_ID = "dumptask.deny_modal"
START_CALLBACK_ID = "dumptask.start_modal"
START_SHORTCUT_ID = "dumptask.start"
STREAM_ACTION_ID = "dumptask.stream"
TASKS_ACTION_ID = "dumptask.tasks"
REASON_BLOCK, REASON_ACTION = "reason", "dumptask.reason"
STREAM_BLOCK, TASKS_BLOCK = "stream", "tasks"
ACTION_BLOCK, ACTION_ACTION = "action", "dumptask.action"
CHANNEL_BLOCK, CHANNEL_ACTION = "channel", "dumptask.channel"
MAX_OPTIONS = 100  # what Slack shows of an options list


@dataclass(frozen=True, slots=True)
class DenyTarget:
    """What a Deny modal was opened for: the request, and the message whose button was pressed."""

    request_id: str
    channel: str
    message_ts: str | None


def _label(text: str) -> str:
    return text[:150]


def deny_view(request: Request, target: DenyTarget) -> dict[str, Any]:
    """The modal asking an approver why they deny the request (the reason is required)."""
    summary = (
        f"Deny request `{request.id}`: {request.action.value} "
        f"{len(request.tasks)} dump task{'s' if len(request.tasks) != 1 else ''} on "
        f"`{escape_mrkdwn(request.stream)}`, asked by <@{escape_mrkdwn(request.requester)}>."
    )
    view = View(
        type="modal",
        callback_id=DENY_CALLBACK_ID,
        title="Deny the request",
        submit="Deny",
        close="Go back",
        private_metadata=json.dumps(
            {"request": target.request_id, "channel": target.channel, "ts": target.message_ts}
        ),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=summary)),
            InputBlock(
                block_id=REASON_BLOCK,
                label="Why? The requester reads this on the card.",
                element=PlainTextInputElement(
                    action_id=REASON_ACTION,
                    multiline=True,
                    max_length=MAX_REASON_LENGTH,
                    placeholder="e.g. the OBS bucket is still full; wait for INC-4313",
                ),
            ),
        ],
    )
    return view.to_dict()


def read_deny(view: Mapping[str, Any]) -> tuple[DenyTarget, str]:
    """The request and the (stripped) reason of a submitted Deny modal."""
    metadata = json.loads(view.get("private_metadata") or "{}")
    target = DenyTarget(
        request_id=str(metadata.get("request", "")),
        channel=str(metadata.get("channel", "")),
        message_ts=metadata.get("ts"),
    )
    value = _values(view).get(REASON_BLOCK, {}).get(REASON_ACTION, {}).get("value") or ""
    return target, str(value).strip()


def _values(view: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    state = view.get("state") or {}
    values = state.get("values") or {}
    return values if isinstance(values, dict) else {}


def start_view(
    channel: str | None,
    *,
    stream: str | None = None,
    tasks: Sequence[DumpTask] = (),
    notice: str | None = None,
) -> dict[str, Any]:
    """The start modal: stream (picked from DIS), then its tasks with their states, action, reason.

    Without a ``channel`` (opened from the global shortcut) it asks where the card should go.
    The task list appears once a stream is picked (the bot updates the view then).
    """
    blocks: list[Block] = []
    if channel is None:
        blocks.append(
            InputBlock(
                block_id=CHANNEL_BLOCK,
                label="Post the approval card in",
                element=ConversationSelectElement(
                    action_id=CHANNEL_ACTION, default_to_current_conversation=True
                ),
            )
        )
    blocks.append(
        InputBlock(
            block_id=STREAM_BLOCK,
            label="Stream",
            dispatch_action=True,
            element=ExternalDataSelectElement(
                action_id=STREAM_ACTION_ID,
                placeholder="Type to search the streams you may use",
                min_query_length=0,
                initial_option=Option(text=stream, value=stream) if stream else None,
            ),
        )
    )
    if tasks:
        blocks.append(
            InputBlock(
                block_id=TASKS_BLOCK,
                label=_label(f"Dump tasks of {stream} (state now)"),
                element=StaticMultiSelectElement(
                    action_id=TASKS_ACTION_ID,
                    placeholder="Pick the tasks",
                    max_selected_items=MAX_TASKS,
                    options=[
                        Option(text=_label(f"{task.name} ({task.state.value})"), value=task.task_id)
                        for task in tasks
                    ],
                ),
            )
        )
    else:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=notice or "Pick a stream to see its dump tasks and their states."
                    )
                ]
            )
        )
    blocks.append(
        InputBlock(
            block_id=ACTION_BLOCK,
            label="Action",
            element=RadioButtonsElement(
                action_id=ACTION_ACTION,
                initial_option=Option(text="Start", value=TaskAction.START.value),
                options=[
                    Option(text="Start", value=TaskAction.START.value),
                    Option(text="Pause (stop)", value=TaskAction.STOP.value),
                ],
            ),
        )
    )
    blocks.append(
        InputBlock(
            block_id=REASON_BLOCK,
            label="Reason (shown on the card)",
            optional=True,
            element=PlainTextInputElement(
                action_id=REASON_ACTION, max_length=MAX_REASON_LENGTH, placeholder="INC-4312 ..."
            ),
        )
    )
    return View(
        type="modal",
        callback_id=START_CALLBACK_ID,
        title="Start or pause tasks",
        submit="Ask for approval",
        close="Cancel",
        private_metadata=json.dumps({"channel": channel}),
        blocks=blocks,
    ).to_dict()


def start_channel(view: Mapping[str, Any]) -> str | None:
    """The channel the start modal posts its card in: chosen in it, or where it was opened."""
    chosen = _values(view).get(CHANNEL_BLOCK, {}).get(CHANNEL_ACTION, {})
    if chosen.get("selected_conversation"):
        return str(chosen["selected_conversation"])
    metadata = json.loads(view.get("private_metadata") or "{}")
    return str(metadata["channel"]) if metadata.get("channel") else None


def chosen_stream(view: Mapping[str, Any]) -> str | None:
    """The stream picked in the start modal so far."""
    option = _values(view).get(STREAM_BLOCK, {}).get(STREAM_ACTION_ID, {}).get("selected_option")
    return str(option["value"]) if option else None


def read_start(view: Mapping[str, Any]) -> TaskCommand | dict[str, str]:
    """The command a submitted start modal asks for, or Slack's per-block errors to show."""
    values = _values(view)
    stream = chosen_stream(view)
    picked = values.get(TASKS_BLOCK, {}).get(TASKS_ACTION_ID, {}).get("selected_options") or []
    action = values.get(ACTION_BLOCK, {}).get(ACTION_ACTION, {}).get("selected_option") or {}
    reason = str(values.get(REASON_BLOCK, {}).get(REASON_ACTION, {}).get("value") or "").strip()
    errors: dict[str, str] = {}
    if not stream:
        errors[STREAM_BLOCK] = "Pick a stream."
    elif not picked:
        errors[TASKS_BLOCK if TASKS_BLOCK in values else STREAM_BLOCK] = "Pick at least one task."
    if action.get("value") not in (TaskAction.START.value, TaskAction.STOP.value):
        errors[ACTION_BLOCK] = "Pick start or pause."
    if CHANNEL_BLOCK in values and start_channel(view) is None:
        errors[CHANNEL_BLOCK] = "Pick the channel for the approval card."
    if errors or stream is None:
        return errors
    return TaskCommand(
        action=TaskAction(action["value"]),
        stream=stream,
        tasks=tuple(dict.fromkeys(str(option["value"]) for option in picked)),
        reason=reason or None,
    )


def stream_options(streams: Sequence[str], typed: str) -> dict[str, Any]:
    """The options answer for the stream picker: streams containing what was typed."""
    wanted = typed.strip().casefold()
    matching = [stream for stream in streams if wanted in stream.casefold()][:MAX_OPTIONS]
    return {"options": [Option(text=_label(name), value=name).to_dict() for name in matching]}
