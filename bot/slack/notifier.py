"""Show a request's changes in Slack: update its card, reply in its thread, never lose an outcome.

Slack's own hiccups (rate limits, 5xx, dropped connections) are retried by the SDK's retry
handlers configured on the client. Past those, ``deliver`` (run as a durable job, retried with
back-off and after restarts) finds another way to tell people what happened: the card and a
thread reply; else one new message in the channel; else a direct message to the requester.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.lifecycle import CardCopy, Policy, Request, RequestedTask
from bot.slack.blocks import (
    Message,
    render_card,
    render_drift_note,
    render_outcome_reply,
    render_reading_back,
    render_reminder,
    render_retention_warning,
)

logger = logging.getLogger(__name__)

# What a failed Web API call can raise: Slack's error answers, and the transport's own errors
# once the SDK's retry handlers have given up.
SLACK_FAILURES = (SlackClientError, OSError, TimeoutError)


class DeliveryFailedError(Exception):
    """Neither the channel nor the requester could be told; the delivery job tries again later."""


def _slack_error(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error", "slack_error"))
    return type(error).__name__


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

    async def _card(self, request: Request) -> tuple[Request, Message]:
        """The request whose card shows ``request``, and that card.

        The start that ends a timed pause has no card of its own: it is shown on the pause's
        card (with the resume's state), so a change of either renders the pause's card.
        """
        if request.parent_id is not None:
            parent = await self._load(request.parent_id)
            if parent is not None:
                return parent, render_card(parent, self._policy, resume=request)
        resume = await self._load(request.resume_id) if request.resume_id else None
        return request, render_card(request, self._policy, resume=resume)

    async def post_card(self, request: Request) -> str:
        """Post a new card into the request's channel and return its ``ts``."""
        message = render_card(request, self._policy)
        response = await self._client.chat_postMessage(
            channel=request.channel, text=message.text, blocks=message.blocks
        )
        return str(response["ts"])

    async def _latest(self, request: Request) -> Request:
        """The freshest stored state: a late update must never bring back buttons."""
        return await self._load(request.id) or request

    async def _update_card(self, request: Request) -> bool:
        """Update the card and every copy; whether the card itself (in the channel) was updated."""
        owner, message = await self._card(request)
        for copy in owner.copies:
            await self._update(owner, copy.channel, copy.ts, message)
        if owner.card_ts is None:
            return False
        return await self._update(owner, owner.channel, owner.card_ts, message)

    async def _update(self, request: Request, channel: str, ts: str, message: Message) -> bool:
        try:
            await self._client.chat_update(
                channel=channel, ts=ts, text=message.text, blocks=message.blocks
            )
        except SLACK_FAILURES as error:
            logger.warning(
                "could not update the card of %s in %s (%s)",
                request.id,
                channel,
                _slack_error(error),
            )
            return False
        return True

    async def send_copies(
        self, request: Request, users: Sequence[str], already: set[str]
    ) -> tuple[CardCopy, ...]:
        """Send each user the card directly, with the same buttons; the copies that were sent.

        One user's closed DMs or a Slack error for them never keeps the others from theirs.
        """
        message = render_card(request, self._policy)
        copies = []
        for user in users:
            try:
                opened = await self._client.conversations_open(users=user)
                channel = str(opened["channel"]["id"])
                if channel in already:
                    continue
                posted = await self._client.chat_postMessage(
                    channel=channel, text=message.text, blocks=message.blocks
                )
            except SLACK_FAILURES as error:
                logger.warning(
                    "could not send %s to %s directly (%s)", request.id, user, _slack_error(error)
                )
                continue
            copies.append(CardCopy(channel, str(posted["ts"])))
        return tuple(copies)

    async def retention_warning(
        self, request: Request, share: int, paused: Sequence[RequestedTask]
    ) -> None:
        """Tell the requester and approvers, in the card's thread, that paused tasks wait."""
        people = list(dict.fromkeys([request.requester, *request.approver_ids]))
        message = render_retention_warning(request, share, paused, people, self._policy)
        await self._client.chat_postMessage(
            channel=request.channel,
            thread_ts=request.card_ts,
            text=message.text,
            blocks=message.blocks,
        )

    async def remind(self, request: Request, approvers: Sequence[str]) -> None:
        """The one reminder, in the card's thread (or the channel); raises when Slack refuses."""
        message = render_reminder(request, approvers, self._policy)
        await self._client.chat_postMessage(
            channel=request.channel,
            thread_ts=request.card_ts,
            text=message.text,
            blocks=message.blocks,
        )

    async def request_changed(self, request: Request) -> None:
        """Update the card from the freshest stored state; best effort, never raises."""
        await self._update_card(await self._latest(request))

    async def reading_back(self, request: Request) -> None:
        """Say in the card's thread that the bot was interrupted and is reading back."""
        message = render_reading_back(request)
        try:
            await self._client.chat_postMessage(
                channel=request.channel,
                thread_ts=request.card_ts,
                text=message.text,
                blocks=message.blocks,
            )
        except SLACK_FAILURES as error:
            logger.warning(
                "could not say %s is being read back (%s)", request.id, _slack_error(error)
            )

    async def deliver(self, request: Request) -> str:
        """Show a decided request; returns ``thread``, ``card``, ``channel`` or ``dm``.

        Raises ``DeliveryFailedError`` when every way failed, so that the job tries again.
        """
        request = await self._latest(request)
        card_updated = await self._update_card(request)
        if request.state.is_open and request.drift:
            return await self._reply_or_post(
                request, render_drift_note(request), card_updated=card_updated
            )
        if not request.state.was_executed:
            if card_updated:
                return "card"
            return await self._post_elsewhere(request, (await self._card(request))[1])
        return await self._reply_or_post(
            request, render_outcome_reply(request), card_updated=card_updated
        )

    async def _reply_or_post(self, request: Request, reply: Message, *, card_updated: bool) -> str:
        """A reply in the card's thread; else the card and the reply as one new message."""
        if card_updated:
            try:
                await self._client.chat_postMessage(
                    channel=request.channel,
                    thread_ts=request.card_ts,
                    text=reply.text,
                    blocks=reply.blocks,
                )
            except SLACK_FAILURES as error:
                logger.warning(
                    "could not reply in the thread of %s (%s)", request.id, _slack_error(error)
                )
            else:
                return "thread"
        _, card = await self._card(request)
        combined = Message(text=f"{card.text}\n\n{reply.text}", blocks=card.blocks + reply.blocks)
        return await self._post_elsewhere(request, combined)

    async def _post_elsewhere(self, request: Request, message: Message) -> str:
        """A new message in the channel, else a direct message to the requester."""
        failures = []
        for route, channel in (("channel", request.channel), ("dm", request.requester)):
            try:
                await self._client.chat_postMessage(
                    channel=channel, text=message.text, blocks=message.blocks
                )
            except SLACK_FAILURES as error:
                failures.append(f"{route}: {_slack_error(error)}")
                logger.warning("could not deliver %s by %s", request.id, failures[-1])
            else:
                return route
        raise DeliveryFailedError(
            f"could not tell anyone about {request.id} ({'; '.join(failures)})"
        )
