"""Small helpers for end-to-end tests: wait for something, read what a user saw."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from bot.app import Bot
from bot.audit import AuditKind
from bot.sim.slack import SlackStandIn
from bot.sim.slack_api import Message

T = TypeVar("T")

APPROVE, CANCEL = "dumptask.approve", "dumptask.cancel"
REQUESTER_ID = "U0REQUESTER"


class RunningBot(Protocol):
    """A bot under test whose store the test may read on the bot's own loop (``BotThread``)."""

    bot: Bot | None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coroutine`` on the bot's event loop and return its result."""
        ...


def eventually(probe: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def ephemerals(slack: SlackStandIn, channel: str, user: str) -> list[str]:
    """Texts only ``user`` sees in ``channel``, oldest first."""
    return [m.text for m in slack.messages(channel) if m.visible_to == user]


def wait_for_ephemeral(slack: SlackStandIn, channel: str, user: str, count: int = 1) -> list[str]:
    """Wait until ``user`` has seen ``count`` ephemeral messages, and return them."""
    return eventually(
        lambda: (found := ephemerals(slack, channel, user)) and len(found) >= count and found,
        what=f"{count} ephemeral message(s) for {user}",
    )


def cards(slack: SlackStandIn, channel: str) -> list[Message]:
    """The bot's top-level, non-ephemeral messages in ``channel``."""
    return [
        m
        for m in slack.messages(channel)
        if m.bot_id and not m.is_ephemeral and m.thread_ts in (None, m.ts)
    ]


def wait_for_card(slack: SlackStandIn, channel: str, count: int = 1) -> Message:
    """Wait for the ``count``-th card in ``channel`` and return it."""
    return eventually(
        lambda: len(found := cards(slack, channel)) >= count and found[count - 1],
        what="the approval card",
    )


def wait_for_stored_card(
    bot: RunningBot, slack: SlackStandIn, channel: str, count: int = 1
) -> Message:
    """Wait for the ``count``-th card and until the bot has recorded it; return the card.

    Slack has the card once ``chat.postMessage`` returns, but the bot then writes the card's
    ``ts`` into the request (a new version of it) and audits ``card_posted``. A test that
    clicks, moves the clock, stops the bot or changes the stored request before those writes
    races them: the bot may find no card to update or reply under, a read-modify-write loses
    to the newer version, and a bot stopped mid-write leaks its database connection. Call
    this, not ``wait_for_card``, before acting on a card or ending the test.
    """
    card = wait_for_card(slack, channel, count)
    request_id = request_id_of(card)
    assert bot.bot is not None
    store = bot.bot.store

    def card_is_recorded() -> bool:
        request = bot.run(store.get(request_id))
        trail = bot.run(store.audit_trail(request_id))
        return (
            request is not None
            and request.card_ts == card.ts
            and any(event.kind == AuditKind.CARD_POSTED for event in trail)
        )

    eventually(card_is_recorded, what=f"the bot to record card {card.ts} of {request_id}")
    return card


def wait_for_refusals(slack: SlackStandIn, channel: str, count: int) -> list[Message]:
    """Wait until ``count`` ephemeral answers (to anyone) are in ``channel``, and return them.

    When many people click at once, the winning click's outcome may land while the bot still
    answers the others; the test must not end (and stop the bot) before every click is answered.
    """
    return eventually(
        lambda: (
            len(found := [m for m in slack.messages(channel) if m.is_ephemeral]) >= count and found
        ),
        what=f"{count} refused click(s) to be answered",
    )


def request_id_of(card: Message) -> str:
    """The id of the request a card asks to approve, the value of its Approve button."""
    values = [
        element["value"]
        for block in card.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("action_id") == APPROVE
    ]
    assert values, f"card {card.ts} has no Approve button"
    return str(values[0])


def card_text(slack: SlackStandIn, channel: str, ts: str) -> str:
    """Everything the card shows, its blocks flattened to text, for simple assertions."""
    message = slack.message(channel, ts)
    return message.text + "\n" + str(message.blocks)


def has_buttons(slack: SlackStandIn, channel: str, ts: str) -> bool:
    """Whether the card still offers Approve/Cancel."""
    return any(block.get("type") == "actions" for block in slack.message(channel, ts).blocks)


def wait_for_thread_reply(slack: SlackStandIn, channel: str, ts: str) -> Message:
    """Wait for the bot's outcome reply under the card."""
    return eventually(
        lambda: slack.thread(channel, ts) and slack.thread(channel, ts)[-1], what="a thread reply"
    )
