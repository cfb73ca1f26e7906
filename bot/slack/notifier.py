"""Show a request's changes in Slack: update its card, reply in its thread.

Slack's own hiccups (rate limits, 5xx, dropped connections) are retried by the SDK's retry
handlers configured on the client. When the card still cannot be updated, the change is posted
as a new message instead, so the outcome always reaches the channel; the store already holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.lifecycle import Policy, Request
from bot.slack.blocks import render_card, render_outcome_reply

logger = logging.getLogger(__name__)


class SlackNotifier:
    """A ``Notifier`` that renders requests as Block Kit cards."""

    def __init__(
        self,
        client: AsyncWebClient,
        policy: Policy,
        load: Callable[[str], Awaitable[Request | None]],
    ) -> None:
        self._client = client
        self._policy = policy
        self._load = load

    async def post_card(self, request: Request) -> str:
        """Post a new card into the request's channel and return its ``ts``."""
        message = render_card(request, self._policy)
        response = await self._client.chat_postMessage(
            channel=request.channel, text=message.text, blocks=message.blocks
        )
        return str(response["ts"])

    async def request_changed(self, request: Request) -> None:
        """Update the card from the freshest stored state.

        Two clicks may finish out of order; reading the request again right before rendering
        means a late update never brings back buttons a newer state removed.
        """
        latest = await self._load(request.id) or request
        message = render_card(latest, self._policy)
        if latest.card_ts is not None:
            try:
                await self._client.chat_update(
                    channel=latest.channel,
                    ts=latest.card_ts,
                    text=message.text,
                    blocks=message.blocks,
                )
            except SlackApiError as error:
                logger.warning(
                    "could not update the card of %s (%s); posting it anew",
                    latest.id,
                    error.response.get("error"),
                )
            else:
                return
        if latest.state.is_final or latest.card_ts is not None:
            await self._client.chat_postMessage(
                channel=latest.channel, text=message.text, blocks=message.blocks
            )

    async def outcome_ready(self, request: Request) -> None:
        """Reply in the card's thread with each task's final state."""
        message = render_outcome_reply(request)
        await self._client.chat_postMessage(
            channel=request.channel,
            thread_ts=request.card_ts,
            text=message.text,
            blocks=message.blocks,
        )
