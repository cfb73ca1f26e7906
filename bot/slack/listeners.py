"""What Slack can trigger: the ``/dumptask`` command and the card's two buttons.

Each listener is a short adapter: acknowledge at once (Slack gives 3 seconds), translate the
payload into a service call, render the result. Work that waits on DIS or the Web API happens
after the ack. User mistakes (``CommandError``) and everything unexpected reach the one error
handler, which answers the user ephemerally.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import (
    HelpCommand,
    ListCommand,
    StatusCommand,
    TaskCommand,
    parse_command,
    usage_text,
)
from bot.errors import CommandError, Refusal, StoreError
from bot.logs import bind
from bot.service import DumptaskService
from bot.slack.blocks import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    render_history,
    render_recent,
    render_task_list,
)
from bot.slack.command_results import INVALID, command_kind, command_result
from bot.slack.notifier import SlackNotifier
from bot.slack.wording import explain

logger = logging.getLogger(__name__)

COMMAND = "/dumptask"
# A failed store call may come after a write that succeeded, so this never claims that nothing
# was changed.
STORE_DOWN = (
    "I could not reach my database just now, so I cannot tell whether this was recorded. "
    "Check the card (or `/dumptask status`) in a minute, and try again if nothing changed."
)
NOT_IN_CHANNEL_HELP = (
    "I could not post the approval card: I am not a member of this channel. "
    "Invite me with `/invite @dumptask`, then send the command again."
)


async def tell_user(
    client: AsyncWebClient, respond: AsyncRespond | None, body: dict[str, Any], text: str
) -> None:
    """Answer only the person who acted, through ``response_url`` or else the Web API.

    ``respond`` does not raise when the URL has expired or been used five times, so its status
    is checked and ``chat.postEphemeral`` takes over.
    """
    if respond is not None:
        try:
            response = await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception:
            logger.warning("response_url answer failed; falling back to chat.postEphemeral")
        else:
            if response.status_code == 200:
                return
    channel = str(body.get("channel_id") or (body.get("channel") or {}).get("id"))
    user = str(body.get("user_id") or (body.get("user") or {}).get("id"))
    await client.chat_postEphemeral(channel=channel, user=user, text=text)


class Listeners:
    """The bot's listeners, bound to the service and notifier they drive."""

    def __init__(
        self,
        service: DumptaskService,
        notifier: SlackNotifier,
        count_command: Callable[[str, str], None] = lambda _kind, _result: None,
    ) -> None:
        self._service = service
        self._notifier = notifier
        self._count_command = count_command  # (kind, result): see bot.slack.command_results

    def register(self, app: AsyncApp) -> None:
        """Attach every listener and the error handler to ``app``."""
        app.command(COMMAND)(self.on_command)
        app.action(APPROVE_ACTION_ID)(self.on_approve)
        app.action(CANCEL_ACTION_ID)(self.on_cancel)
        app.error(self.on_error)

    async def on_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        """Parse in the ack (it is instant); ask DIS and post the card after it."""
        bind(user=command.get("user_id"), channel=command.get("channel_id"))
        try:
            parsed = parse_command(command.get("text") or "")
        except CommandError as error:
            await ack(response_type="ephemeral", text=str(error))
            self._count_command(INVALID, command_result(error))
            return
        if isinstance(parsed, HelpCommand):
            policy = self._service.policy
            await ack(
                response_type="ephemeral",
                text=usage_text(policy.allowed_streams, policy.allowed_channels),
            )
            self._count_command(command_kind(parsed), command_result(None))
            return
        await ack()
        if isinstance(parsed, TaskCommand):
            work = self._ask(parsed, command)
        elif isinstance(parsed, ListCommand):
            work = self._list(parsed, command, respond)
        else:
            work = self._status(parsed, command, respond)
        failure = await self._after_ack(command, client, respond, work)
        self._count_command(command_kind(parsed), command_result(failure))

    async def _list(
        self, command: ListCommand, payload: dict[str, Any], respond: AsyncRespond
    ) -> None:
        tasks = await self._service.list_tasks(
            command.stream, payload["user_id"], payload["channel_id"]
        )
        await respond(text=render_task_list(command.stream, tasks).text, response_type="ephemeral")

    async def _status(
        self, command: StatusCommand, payload: dict[str, Any], respond: AsyncRespond
    ) -> None:
        if command.request_id is None:
            message = render_recent(await self._service.recent(payload["user_id"]))
        else:
            message = render_history(
                *await self._service.history(
                    command.request_id, payload["user_id"], payload["channel_id"]
                )
            )
        await respond(text=message.text, response_type="ephemeral")

    async def on_approve(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """Record the approval; the click that completes the quorum executes the request."""
        self._bind_click(body)
        await ack()
        await self._after_ack(body, client, respond, self._approve(body))

    async def on_cancel(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """Cancel an open request; the card then says who cancelled it."""
        self._bind_click(body)
        await ack()
        await self._after_ack(body, client, respond, self._cancel(body))

    async def _ask(self, command: TaskCommand, payload: dict[str, Any]) -> None:
        request = await self._service.open_request(
            command, payload["user_id"], payload["channel_id"]
        )
        try:
            ts = await self._notifier.post_card(request)
        except SlackApiError as error:
            if error.response.get("error") in ("not_in_channel", "channel_not_found"):
                raise CommandError(NOT_IN_CHANNEL_HELP) from error
            raise
        await self._service.attach_card(request, ts)

    async def _approve(self, body: dict[str, Any]) -> None:
        result = await self._service.approve(
            self._request_id(body), body["user"]["id"], self._channel_id(body)
        )
        if not result.request.state.is_final and not result.must_execute:
            # More approvals are needed: show the progress. A decided request is shown by the
            # job its decision created, which also survives a crash right after this click.
            await self._notifier.request_changed(result.request)

    async def _cancel(self, body: dict[str, Any]) -> None:
        await self._service.cancel(
            self._request_id(body), body["user"]["id"], self._channel_id(body)
        )

    async def _after_ack(
        self,
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
        work: Awaitable[None],
    ) -> Exception | None:
        """Run the work that follows an ack, reporting its failure through ``on_error``.

        Bolt's async runner, when a listener raises after acking, resets the ack to the error
        handler's response; if that happens before its 10 ms polling step saw the ack, Slack
        never gets one. Errors after the ack therefore never leave the listener: the failure,
        if any, is returned instead.
        """
        try:
            await work
        except Exception as error:
            await self.on_error(error, body, client, respond)
            return error
        return None

    async def on_error(
        self,
        error: Exception,
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond | None = None,
    ) -> None:
        """Tell the user what went wrong: their mistake as it is, anything else in general."""
        if isinstance(error, Refusal):
            text = explain(error)
        elif isinstance(error, CommandError):
            text = str(error)
        elif isinstance(error, StoreError):
            logger.error("the store failed while handling a Slack request: %s", error)
            text = STORE_DOWN
        else:
            logger.error("unexpected error while handling a Slack request", exc_info=error)
            text = (
                "Something went wrong on my side while handling this. Check the card (or "
                "`/dumptask status`) before trying again; if it keeps failing, an operator can "
                "find the details in the bot's log."
            )
        try:
            await tell_user(client, respond, body, text)
        except SlackApiError:
            logger.exception("could not tell the user about an error")

    @classmethod
    def _bind_click(cls, body: dict[str, Any]) -> None:
        """Name the clicker, the channel and the request on every line logged for this click."""
        bind(
            user=body["user"]["id"], channel=cls._channel_id(body), request_id=cls._request_id(body)
        )

    @staticmethod
    def _request_id(body: dict[str, Any]) -> str:
        return str(body["actions"][0]["value"])

    @staticmethod
    def _channel_id(body: dict[str, Any]) -> str:
        return str((body.get("channel") or {}).get("id") or "")
