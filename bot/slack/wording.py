"""What a refused user reads: each typed ``Refusal`` of the rules, worded as Slack mrkdwn.

The rules (``bot.lifecycle``, ``bot.service``) raise refusals that carry facts; this module is the
one place that turns them into sentences, with everything a user typed or DIS returned escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from bot import lifecycle, service
from bot.errors import Refusal
from bot.lifecycle import Request, RequestState
from bot.text import escape_mrkdwn
from bot.vocabulary import DumpTask


def code(text: str) -> str:
    """Inline code, escaped; a backtick inside is shown as a straight quote."""
    return "`" + escape_mrkdwn(text.replace("`", "'")) + "`"


def channel_link(channel_id: str) -> str:
    """A channel mention that Slack shows as ``#name``."""
    return f"<#{escape_mrkdwn(channel_id)}>"


def describe_tasks(tasks: Sequence[DumpTask]) -> str:
    """List a stream's tasks for an error message: name, id and state each."""
    if not tasks:
        return "It has no dump tasks."
    listed = ", ".join(f"{code(task.name)} ({code(task.task_id)}, {task.state})" for task in tasks)
    return f"Its tasks are: {listed}."


def card_link(channel: str, ts: str) -> str:
    """The permanent link Slack gives a message: the channel's archive and the ts without dot."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def _card_link(request: Request) -> str:
    if request.card_ts is None:
        return f"in {channel_link(request.channel)}"
    return f"<{card_link(request.channel, request.card_ts)}|see its card>"


_DECIDED_VERBS = {
    RequestState.EXECUTING: "approved",
    RequestState.SUCCEEDED: "approved",
    RequestState.PARTIAL: "approved",
    RequestState.FAILED: "approved",
    RequestState.UNKNOWN: "approved",
    RequestState.CANCELLED: "cancelled",
    RequestState.DENIED: "denied",
}


def _already_decided(refusal: lifecycle.RequestDecided) -> str:
    """Who decided ("already approved by @bob"), so a stale copy of the card explains itself."""
    verb = _DECIDED_VERBS.get(refusal.state)
    if verb and refusal.decided_by:
        return (
            f"Request {code(refusal.request_id)} was already {verb} by "
            f"<@{escape_mrkdwn(refusal.decided_by)}>; it is {refusal.state.value} now."
        )
    return f"Request {code(refusal.request_id)} is already {refusal.state.value}; nothing to do."


def _bad_schedule(refusal: service.BadSchedule) -> str:
    limit = _hours(refusal.limit) if refusal.limit else ""
    match refusal.problem:
        case service.ScheduleProblem.AT_PAST:
            return "That `--at` time has passed. Give a time to come, like `--at 14:30`."
        case service.ScheduleProblem.AT_TOO_FAR:
            return (
                f"`--at` may be at most {limit} ahead. Ask again closer to the time, or run it now."
            )
        case service.ScheduleProblem.FOR_TOO_LONG:
            return (
                f"`--for` may be at most {limit}: the stream keeps its data that long, so a "
                "longer pause would lose data. Pause for less, and ask again if needed."
            )
    return f"`--for` needs at least {limit}, in minutes or hours: `--for 30m`, `--for 2h`."


def _hours(span: timedelta) -> str:
    hours, rest = divmod(int(span.total_seconds()), 3600)
    if hours and not rest:
        return f"{hours} h"
    minutes, seconds = divmod(rest, 60)
    return f"{hours * 60 + minutes} min" if not seconds else f"{int(span.total_seconds())} s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


# One sentence per kind of refusal; each function receives the refusal of its key's type.
_WORDING: dict[type[Refusal], Callable[[Any], str]] = {
    service.ChannelNotAllowed: lambda r: (
        "`/dumptask` does not work in this channel. "
        f"Use it in {', '.join(map(channel_link, r.allowed))}."
    ),
    service.StreamNotAllowed: lambda r: (
        f"The bot may not touch stream {code(r.stream)}. "
        f"Streams it may touch: {', '.join(map(code, r.allowed))}."
    ),
    service.NotARequester: lambda _: (
        "You are not allowed to ask for dump task changes. Ask one of the on-call "
        "requesters, or an operator to add you to `DUMPTASK_REQUESTERS`."
    ),
    service.UnknownTasks: lambda r: (
        f"Stream {code(r.stream)} has no dump task {', '.join(map(code, r.unknown))}. "
        f"{describe_tasks(r.known)} Use a name or an id from that list."
    ),
    service.UnknownStream: lambda r: (
        f"DIS does not know stream {code(r.stream)} ({escape_mrkdwn(r.error.summary)}). "
        "Check the name and try again."
    ),
    service.DisUnavailable: lambda r: (
        f"Could not list stream {code(r.stream)}: {escape_mrkdwn(r.error.summary)}. "
        f"{r.error.kind.advice}"
    ),
    service.NoSuchRequest: lambda r: (
        f"There is no request {code(r.request_id)}. "
        "Type `/dumptask status` to see your recent requests."
    ),
    service.WrongChannel: lambda r: (
        f"Request {code(r.request_id)} belongs to {channel_link(r.channel)}; "
        "act on it or ask about it there."
    ),
    lifecycle.RequestExpired: lambda r: (
        f"Request {code(r.request_id)} has expired, so it can no longer be decided."
    ),
    lifecycle.RequestDecided: _already_decided,
    lifecycle.SelfApproval: lambda _: (
        "You asked for this request, so someone else has to approve it."
    ),
    lifecycle.NotAnApprover: lambda _: "You are not one of the approvers for dump task requests.",
    lifecycle.AlreadyApproved: lambda r: (
        f"You already approved {code(r.request_id)}; it needs "
        f"{_plural(r.missing, 'more approval')} from someone else."
    ),
    lifecycle.RequesterCannotDeny: lambda _: (
        "You asked for this request: to withdraw it, use *Cancel*."
    ),
    service.ConflictingRequest: lambda r: (
        f"Task {code(r.task_id)} is already part of request {code(r.holder.id)} "
        f"({r.holder.state.value}, {_card_link(r.holder)}). One operation per task at a time: "
        "approve, deny or cancel that one first."
    ),
    service.BadSchedule: _bad_schedule,
    service.NotAllowedToResume: lambda _: (
        "Only the requester or an approver can resume these tasks early."
    ),
    service.NothingToResume: lambda r: (
        f"The tasks of {code(r.request_id)} are not paused any more: nothing to resume."
    ),
    lifecycle.NotAllowedToCancel: lambda _: (
        "Only the requester or an approver can cancel this request."
    ),
}


def explain(refusal: Refusal) -> str:
    """The ephemeral answer to a refused command or click: what was wrong, and what to do."""
    for kind in type(refusal).__mro__:
        if kind in _WORDING:
            return _WORDING[kind](refusal)
    return f"That was refused: {escape_mrkdwn(str(refusal))}."
