"""The audit channel: one line per decision that matters, posted to ``DUMPTASK_AUDIT_CHANNEL``.

The lines come from the outbox (``bot.outbox``), shipped by the audit shipper, so a Slack
outage or a channel the bot is not in delays them (in order) but never loses one, and never
holds back a request. Each line names the request, what happened and who did it, and links to
the card. People are shown by user id, not mentioned: an audit channel that pinged everyone
involved at every click would soon be muted. Everything a user typed or DIS returned is
escaped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.audit import AuditKind
from bot.lifecycle import Request
from bot.outbox import OutboxEvent, SinkError
from bot.slack.blocks import truncate
from bot.slack.notifier import SLACK_FAILURES
from bot.text import escape_mrkdwn

LINE_LIMIT = 3000
DETAIL_LIMIT = 300
ARCHIVE_URL = "https://slack.com/archives/{channel}/p{ts}"


def card_link(channel: str, ts: str) -> str:
    """The permanent link of a message, as ``chat.getPermalink`` builds it for any workspace."""
    return ARCHIVE_URL.format(channel=channel, ts=ts.replace(".", ""))


def _code(value: object) -> str:
    return f"`{escape_mrkdwn(truncate(str(value), DETAIL_LIMIT))}`"


def _text(value: object) -> str:
    return escape_mrkdwn(truncate(str(value), DETAIL_LIMIT))


def _outcome(request: Request | None, detail: Mapping[str, Any]) -> str:
    """``executed: succeeded`` with each task's final state, and DIS's error if any."""
    state = request.state.value if request is not None else str(detail.get("state", "?"))
    words = f"executed: *{_text(state)}*"
    outcome = None if request is None else request.outcome
    if outcome is None:
        return words
    tasks = ", ".join(
        f"{_code(task.name or task.task_id)} {_text(task.final_state or 'unknown')}"
        for task in outcome.tasks
    )
    words += f" ({tasks})" if tasks else ""
    if outcome.error_code or outcome.error_message:
        words += (
            f"; DIS said {_code(outcome.error_code or '')} {_text(outcome.error_message or '')}"
        )
    if outcome.dis_request_id:
        words += f"; DIS request id {_code(outcome.dis_request_id)}"
    return words


def _opened(actor: str, detail: Mapping[str, Any], request: Request | None) -> str:
    del actor, detail
    reason = "" if request is None or not request.reason else request.reason
    asked = f"opened by {_code(request.requester)}" if request else "opened"
    return asked + (f": {_text(reason)}" if reason else "")


def _approved(actor: str, detail: Mapping[str, Any], request: Request | None) -> str:
    del request
    progress = f"{detail.get('approvals', '?')} of {detail.get('required', '?')}"
    done = ", executing" if detail.get("quorum_reached") else ""
    return f"approved by {_code(actor)} ({_text(progress)}){done}"


def _started(actor: str, detail: Mapping[str, Any], request: Request | None) -> str:
    del actor, request
    late = detail.get("late_seconds")
    return "started at its scheduled time" + (
        f", {_text(round(float(late)))} s late" if late else ""
    )


Wording = Callable[[str, Mapping[str, Any], Request | None], str]

# What happened, in a few words, for each kind of event the audit channel receives.
_WHAT: dict[str, Wording] = {
    AuditKind.CARD_POSTED: _opened,
    AuditKind.APPROVED: _approved,
    AuditKind.REFUSED_CLICK: lambda actor, detail, _: (
        f"refused a click by {_code(actor)}: {_text(detail.get('why', ''))}"
    ),
    AuditKind.CANCELLED: lambda actor, _, __: f"cancelled by {_code(actor)}",
    AuditKind.DENIED: lambda actor, detail, _: (
        f"denied by {_code(actor)}: {_text(detail.get('reason', ''))}"
    ),
    AuditKind.EXPIRED: lambda *_: "expired without enough approvals",
    AuditKind.DISALLOWED: lambda _, detail, __: (
        f"closed: no longer allowed by the policy ({_text(detail.get('because', 'policy'))})"
    ),
    AuditKind.DRIFT: lambda *_: "sent back for a fresh approval: a task changed before the call",
    AuditKind.STARTED: _started,
    AuditKind.RESUMED: lambda actor, _, __: f"resumed early by {_code(actor)}",
    AuditKind.RETENTION_WARNING: lambda _, detail, __: (
        f"tasks still paused at {_text(detail.get('share', '?'))} % of their safe window "
        "(data expires after that)"
    ),
    AuditKind.DELIVERED: lambda _, detail, request: _outcome(request, detail),
}


def _what(kind: str, actor: str, detail: Mapping[str, Any], request: Request | None) -> str:
    """What happened, in a few words."""
    wording = _WHAT.get(kind)
    if wording is None:
        return f"{_text(kind)} by {_code(actor)}"
    return wording(actor, detail, request)


def audit_line(document: Mapping[str, Any], request: Request | None) -> str:
    """One line of the audit channel for an outbox event's document (mrkdwn, escaped)."""
    request_id = document.get("request") or "-"
    subject = _code(request_id)
    if document.get("action") and document.get("stream"):
        subject += f" {_text(document['action'])} {_code(document['stream'])}"
    channel = document.get("channel")
    if channel:
        subject += f" in <#{escape_mrkdwn(str(channel))}>"
    detail = document.get("detail") or {}
    what = _what(str(document.get("kind")), str(document.get("actor") or "bot"), detail, request)
    line = f"{subject}: {what}"
    if channel and request is not None and request.card_ts:
        line += f" · <{card_link(str(channel), request.card_ts)}|card>"
    return truncate(line, LINE_LIMIT)


class AuditChannel:
    """An ``OutboxSink`` posting each event's line to the audit channel."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        load: Callable[[str], Awaitable[Request | None]],
    ) -> None:
        self._client = client
        self._channel = channel
        self._load = load

    async def send(self, event: OutboxEvent) -> None:
        """Post the event's line; Slack's refusal or silence is a ``SinkError``."""
        request = None if event.request_id is None else await self._load(event.request_id)
        text = audit_line(event.document, request)
        try:
            await self._client.chat_postMessage(
                channel=self._channel, text=text, unfurl_links=False, unfurl_media=False
            )
        except SLACK_FAILURES as error:
            why = (
                error.response.get("error", "slack_error")
                if isinstance(error, SlackApiError)
                else type(error).__name__
            )
            raise SinkError(f"could not post to the audit channel ({why})") from error
