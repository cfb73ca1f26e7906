"""Small helpers for end-to-end tests: wait for something, read what a user saw."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from bot.lifecycle import Request
from bot.sim.bot_thread import BotThread
from bot.sim.slack import SlackStandIn
from bot.sim.slack_api import Message

T = TypeVar("T")

APPROVE, CANCEL = "dumptask.approve", "dumptask.cancel"
REQUESTER_ID = "U0REQUESTER"


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


def wait_for_stored_card(bot: BotThread, requester: str | None = None) -> Request:
    """The newest request of ``requester`` once its card's ``ts`` is stored (the card's last write).

    A test that changes the stored request must wait for this, not for the card to appear in
    Slack: the bot records the card's ``ts`` right after posting it, which bumps the version.
    """
    assert bot.bot is not None
    store = bot.bot.store

    def stored() -> Request | None:
        found = bot.run(store.recent_for(requester or REQUESTER_ID, limit=1))
        return found[0] if found and found[0].card_ts else None

    return eventually(stored, what="the card's ts in the store")
