"""The bot's exception tree.

::

    DumptaskError               anything the bot raises on purpose
    ├── ConfigError             a bad or missing setting; start-up prints it and stops
    ├── CommandError            a mistake in the command text; its message (mrkdwn, from the
    │                           parser) says what to type instead
    ├── Refusal                 the rules refuse a command or click; typed, with the facts, so
    │                           the Slack layer can word it
    ├── TaskInUseError          a task is held by another open request (one operation at a time)
    ├── StoreError              the durable store cannot be reached or refused a write
    ├── SlackRequestError       a request to /slack/events that is not a signed, well-formed
    │                           Slack request; carries the HTTP status to answer (413, 401, 400)
    └── DisError                a DIS call failed; carries status, code, message, request id
                                and a ``DisErrorKind`` that says what the caller should do

Errors raised while handling another one are chained with ``raise ... from exc`` so the log
keeps the cause; none of them ever carries a secret in its message.
"""

from __future__ import annotations

import enum


class DumptaskError(Exception):
    """Base of every exception the bot raises on purpose."""


class ConfigError(DumptaskError):
    """The configuration is unusable; the message names each bad variable on its own line."""


class CommandError(DumptaskError):
    """A user's mistake: the message says what was wrong and what to type instead."""


class Refusal(DumptaskError):  # noqa: N818 - a refusal is the rules working, not an error
    """The rules refuse what a user asked; subclasses carry the facts the answer needs.

    The message is plain English for logs and the audit trail; what the user reads is worded by
    the Slack layer (``bot.slack.wording``), so the rules know nothing of Slack's markup.
    """


class TaskInUseError(DumptaskError):
    """A task is already held by another open or executing request (one operation at a time)."""

    def __init__(self, request_id: str, task_id: str) -> None:
        self.request_id = request_id
        self.task_id = task_id
        super().__init__(f"task {task_id} is held by request {request_id}")


class StoreError(DumptaskError):
    """The durable store failed; the request must not be considered changed."""


class SlackRequestError(DumptaskError):
    """An HTTP request the bot refuses before Bolt sees it; the message says why, for the log.

    The message never quotes the request: its body and headers are whatever the sender chose.
    """

    def __init__(self, status: int, why: str) -> None:
        self.status = status
        super().__init__(why)


class DisErrorKind(enum.StrEnum):
    """What a DIS failure means for the caller, following the table in ``dis-api.md``."""

    USER = "user"  # unknown stream or task: the user should fix the command
    BUG = "bug"  # the request body was refused: a defect in the bot
    AUTH = "auth"  # AK/SK, signature, date or token refused: never retry in a loop
    PERMISSION = "permission"  # the account lacks DIS rights or is in arrears
    CONFIGURATION = "configuration"  # wrong endpoint, path or project id
    BLOCKED = "blocked"  # the caller's IP is blacklisted: stop and alert
    THROTTLED = "throttled"  # back off and retry
    TRANSIENT = "transient"  # network trouble or a 5xx: back off and retry

    @property
    def retryable(self) -> bool:
        """Only throttling and transient failures are worth another attempt."""
        return self in (DisErrorKind.THROTTLED, DisErrorKind.TRANSIENT)

    @property
    def advice(self) -> str:
        """One sentence telling an on-call engineer what to do next."""
        return _ADVICE[self]


_ADVICE = {
    DisErrorKind.USER: "Check the stream and task names with `/dumptask list <stream>`.",
    DisErrorKind.BUG: "The bot sent a request DIS refused; please report it to the bot's owners.",
    DisErrorKind.AUTH: "The bot's AK/SK or token was refused; ask an operator to check them.",
    DisErrorKind.PERMISSION: "The service account lacks DIS permission or the account is in "
    "arrears; ask an operator to check its IAM policy.",
    DisErrorKind.CONFIGURATION: "The bot's DIS endpoint or project id looks wrong; ask an "
    "operator to run `dumptask-bot check`.",
    DisErrorKind.BLOCKED: "DIS blacklisted the bot's IP after too many failures; ask an operator "
    "to contact support before trying again.",
    DisErrorKind.THROTTLED: "DIS is throttling requests; try again in a minute.",
    DisErrorKind.TRANSIENT: "DIS could not be reached or failed; try again in a few minutes.",
}


class DisError(DumptaskError):
    """A failed DIS call, with everything support asks for.

    ``certainly_not_received`` is true only when the call cannot have been carried out: the
    connection was never made, or the gateway or DIS answered that they refused it. A timeout,
    a dropped connection or a 5xx leave it false: the call may have taken effect.
    """

    def __init__(
        self,
        kind: DisErrorKind,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        certainly_not_received: bool = False,
    ) -> None:
        self.kind = kind
        self.certainly_not_received = certainly_not_received
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """A one-line description: code, message, HTTP status and request id when known."""
        parts = [f"{self.code}: {self.message}" if self.code else self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return " (".join([parts[0], ", ".join(parts[1:]) + ")"]) if len(parts) > 1 else parts[0]
