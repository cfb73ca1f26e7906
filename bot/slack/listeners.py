"""What Slack can trigger: the ``/dumptask`` command and the card's two buttons.

Each listener is a short adapter: acknowledge at once (Slack gives 3 seconds), translate the
payload into a service call, render the result. A typed ``start``, ``stop`` or ``list`` is only
stored before its ack (an ``ask`` job); ``run_ask`` answers it from the job runner, which ``serve``
runs in its worker process. Other work that waits on the store or the Web API happens after the
ack. User mistakes (``CommandError``) and everything unexpected reach the one error handler,
which answers the user ephemerally.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
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
from bot.errors import CommandError, DisError, Refusal, StoreError
from bot.jobs import HeldJob
from bot.logs import bind
from bot.service import Click, DumptaskService
from bot.slack.blocks import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    DENY_ACTION_ID,
    RESUME_ACTION_ID,
    render_history,
    render_recent,
    render_task_list,
)
from bot.slack.command_results import INVALID, command_kind, command_result
from bot.slack.modals import (
    DENY_CALLBACK_ID,
    REASON_BLOCK,
    START_CALLBACK_ID,
    START_SHORTCUT_ID,
    STREAM_ACTION_ID,
    DenyTarget,
    chosen_stream,
    deny_view,
    read_deny,
    read_start,
    start_channel,
    start_view,
    stream_options,
)
from bot.slack.notifier import SlackNotifier
from bot.slack.wording import explain

logger = logging.getLogger(__name__)

COMMAND = "/dumptask"
# Slack waits three seconds for an options list; DIS gets most of them.
OPTIONS_DEADLINE_S = 2.5
_NO_TASKS = "This stream has no dump tasks."
# A failed store call may come after a write that succeeded, so this never claims that nothing
# was changed.
STORE_DOWN = (
    "I could not reach my database just now, so I cannot tell whether this was recorded. "
    "Check the card (or `/dumptask status`) in a minute, and try again if nothing changed."
)
# Slack shows "operation_timeout" to the user after 3 seconds without an ack.
QUEUE_DEADLINE_S = 2.0
NOT_QUEUED = (
    "I could not reach my database just now (it is down or too busy), so this command may not "
    "be recorded. If no approval card or answer appears here within a minute, send it again."
)
# What a stored command keeps of Slack's form: enough to answer it, and to tell its author.
COMMAND_FIELDS = ("user_id", "channel_id", "text", "response_url")
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


def _stored_command(text: str) -> TaskCommand | ListCommand:
    """A stored command's text, parsed again (it parsed as start, stop or list when stored)."""
    parsed = parse_command(text)
    if not isinstance(parsed, TaskCommand | ListCommand):
        raise CommandError(f"not a command the bot stores: {text}")
    return parsed


async def _stored_in_time(
    storing: Awaitable[object], what: str
) -> StoreError | TimeoutError | None:
    """Hand work over within the ack's deadline; the failure if it could not be stored in time."""
    failure: StoreError | TimeoutError | None = None
    try:
        await asyncio.wait_for(storing, QUEUE_DEADLINE_S)
    except (StoreError, TimeoutError) as error:
        failure = error
    if failure is not None:
        logger.error("could not queue %s: %s", what, str(failure) or "the database was too slow")
    return failure


def _stored_fields(held: HeldJob, key: str) -> dict[str, str]:
    """The Slack fields a listener stored in a job's payload under ``key``."""
    stored = held.job.payload.get(key)
    assert isinstance(stored, Mapping)
    return {str(name): str(value) for name, value in stored.items()}


def _answer_to(fields: Mapping[str, str]) -> AsyncRespond | None:
    """Where a stored request's author is answered: its ``response_url``, if it had one."""
    url = fields.get("response_url")
    return AsyncRespond(response_url=url) if url else None


class Listeners:
    """The bot's listeners, bound to the service and notifier they drive."""

    def __init__(
        self,
        service: DumptaskService,
        notifier: SlackNotifier,
        client: AsyncWebClient,
        count_command: Callable[[str, str], None] = lambda _kind, _result: None,
    ) -> None:
        self._service = service
        self._notifier = notifier
        self._client = client  # answers commands whose work runs in a job, after the ack
        self._count_command = count_command  # (kind, result): see bot.slack.command_results
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def wait_idle(self, grace: float) -> bool:
        """Wait up to ``grace`` seconds for the work after acks to finish; whether it all did.

        Bolt runs that work in tasks of its own that nobody else waits for: on shutdown the
        store must not close under a click that is still being recorded.
        """
        pending = {task for task in self._in_flight if not task.done()}
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=grace)
        return not still

    def register(self, app: AsyncApp) -> None:
        """Attach every listener and the error handler to ``app``."""
        app.command(COMMAND)(self.on_command)
        app.action(APPROVE_ACTION_ID)(self.on_approve)
        app.action(CANCEL_ACTION_ID)(self.on_cancel)
        app.action(DENY_ACTION_ID)(self.on_deny)
        app.action(RESUME_ACTION_ID)(self.on_resume)
        app.view(DENY_CALLBACK_ID)(self.on_deny_submitted)
        app.shortcut(START_SHORTCUT_ID)(self.on_start_shortcut)
        app.options(STREAM_ACTION_ID)(self.on_stream_options)
        app.action(STREAM_ACTION_ID)(self.on_stream_picked)
        app.view(START_CALLBACK_ID)(self.on_start_submitted)
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
            usage = usage_text(policy.allowed_streams, policy.allowed_channels)
            if (command.get("text") or "").strip():
                await ack(response_type="ephemeral", text=usage)
                return
            # No arguments: the start modal, for people who may ask here (phones, no ids).
            await ack()
            await self._after_ack(
                command, client, respond, self._open_start(command, client, usage)
            )
            self._count_command(command_kind(parsed), command_result(None))
            return
        if isinstance(parsed, TaskCommand | ListCommand):
            # Both ask DIS: stored, and answered by the job runner (in the worker process).
            await self._queue_ask(ack, command, parsed)
            return
        await ack()
        failure = await self._after_ack(
            command, client, respond, self._status(parsed, command, respond)
        )
        self._count_command(command_kind(parsed), command_result(failure))

    async def _queue_ask(
        self, ack: AsyncAck, command: dict[str, Any], parsed: TaskCommand | ListCommand
    ) -> None:
        """Store the command as a job, then ack: Slack's "received" is then a durable promise.

        The ack waits only for one insert; DIS and the card come from the job
        (``run_ask``). When even that insert fails in time, the user is told to look for the
        card and send again, since the insert may still land.
        """
        fields = {name: str(command.get(name) or "") for name in COMMAND_FIELDS}
        failure = await _stored_in_time(self._service.queue_ask(fields), "a command")
        if failure is None:
            await ack()
            return
        await ack(response_type="ephemeral", text=NOT_QUEUED)
        self._count_command(command_kind(parsed), command_result(failure))

    async def run_ask(self, held: HeldJob) -> None:
        """The ``ask`` job: a stored command becomes a request and its card, or an answer.

        Whatever goes wrong is told to the command's author, as the listener would have, and
        the job ends: a command is answered once, never retried behind the user's back. A run
        after a crash finds the request an earlier attempt stored, and posts its card if that
        attempt did not get to.
        """
        fields = _stored_fields(held, "command")
        bind(user=fields["user_id"], channel=fields["channel_id"])
        respond = _answer_to(fields)
        failure: Exception | None = None
        kind = INVALID
        try:
            parsed = _stored_command(fields["text"])
            kind = command_kind(parsed)
            if isinstance(parsed, ListCommand):
                await self._list(parsed, fields, respond)
            else:
                await self._ask(
                    parsed, fields, request_id=held.job.request_id, may_exist=held.job.taken_over
                )
        except Exception as error:  # every failure is the user's answer, never a retry
            failure = error
            await self.on_error(error, fields, self._client, respond)
        self._count_command(kind, command_result(failure))

    async def _list(
        self, command: ListCommand, payload: dict[str, Any], respond: AsyncRespond | None
    ) -> None:
        tasks, windows = await self._service.list_with_windows(
            command.stream, payload["user_id"], payload["channel_id"]
        )
        message = render_task_list(command.stream, tasks, windows)
        await tell_user(self._client, respond, payload, message.text)

    async def _status(
        self, command: StatusCommand, payload: dict[str, Any], respond: AsyncRespond
    ) -> None:
        if command.request_id is None:
            message = render_recent(
                await self._service.recent(payload["user_id"]),
                await self._service.scheduled_for(payload["user_id"], payload["channel_id"]),
            )
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
        await self._queue_click(ack, body, client, respond)

    async def on_cancel(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """Cancel an open request; the card then says who cancelled it."""
        await self._queue_click(ack, body, client, respond)

    async def _open_start(
        self, command: dict[str, Any], client: AsyncWebClient, usage: str
    ) -> None:
        try:
            await self._service.check_caller(command["user_id"], command["channel_id"], None)
        except Refusal as refusal:
            raise CommandError(f"{explain(refusal)}\n\n{usage}") from refusal
        await client.views_open(
            trigger_id=command["trigger_id"], view=start_view(command["channel_id"])
        )

    async def on_start_shortcut(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """The global shortcut: the start modal, asking which channel the card goes to."""
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=start_view(None))

    async def on_stream_options(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """Options for the stream picker: the streams DIS has that the policy allows.

        Slack waits three seconds for options; a slow DIS gets an empty list, never a timeout.
        """
        view = body.get("view") or {}
        try:
            streams = await asyncio.wait_for(
                self._service.streams_for(body["user"]["id"], start_channel(view)),
                OPTIONS_DEADLINE_S,
            )
        except (TimeoutError, Refusal, DisError) as error:
            logger.warning("no stream options for the start modal: %s", error)
            streams = []
        await ack(**stream_options(streams, str(body.get("value") or "")))

    async def on_stream_picked(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """A stream was picked in the start modal: show its tasks with their states now."""
        await ack()
        view = body["view"]
        channel, stream = start_channel(view), chosen_stream(view)
        if stream is None:
            return
        try:
            tasks = await self._service.list_tasks(stream, body["user"]["id"], channel)
        except Refusal as refusal:
            updated = start_view(channel, stream=stream, notice=explain(refusal))
        else:
            updated = start_view(channel, stream=stream, tasks=tasks, notice=_NO_TASKS)
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated)

    async def on_start_submitted(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """The start modal, submitted: the same request and card as the typed command."""
        view = body["view"]
        parsed = read_start(view)
        if isinstance(parsed, dict):
            await ack(response_action="errors", errors=parsed)
            return
        await ack()
        channel = start_channel(view) or ""
        payload = {"user_id": body["user"]["id"], "channel_id": channel}
        bind(user=payload["user_id"], channel=channel, stream=parsed.stream)
        context = {"user": body["user"], "channel": {"id": channel}}
        await self._after_ack(context, client, None, self._ask(parsed, payload))

    async def on_deny(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """Ask the approver for the reason in a modal (after checking they may deny at all)."""
        self._bind_click(body)
        await ack()
        await self._after_ack(body, client, respond, self._open_deny(body, client))

    async def _open_deny(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        click = self._click(body)
        request = await self._service.may_deny(click)
        target = DenyTarget(click.request_id, click.channel_id, click.message_ts)
        await client.views_open(trigger_id=body["trigger_id"], view=deny_view(request, target))

    async def on_deny_submitted(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """The Deny modal, submitted: a reason is required; then the request is denied."""
        target, reason = read_deny(body["view"])
        if not reason:
            await ack(
                response_action="errors",
                errors={REASON_BLOCK: "Say why, so the requester knows what to do instead."},
            )
            return
        await ack()
        user = body["user"]["id"]
        bind(user=user, channel=target.channel, request_id=target.request_id)
        click = Click(target.request_id, user, target.channel, target.message_ts)
        context = {"user": body["user"], "channel": {"id": target.channel}}
        await self._after_ack(context, client, None, self._service.deny(click, reason))

    async def on_resume(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """Resume paused tasks: a timed pause's resume runs now; otherwise ask to start them."""
        await self._queue_click(ack, body, client, respond)

    async def _queue_click(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """Store the press as a job, then ack; ``run_click`` records it (in the worker)."""
        self._bind_click(body)
        click = self._click(body)
        fields = {
            "action": str(body["actions"][0].get("action_id") or ""),
            "request_id": click.request_id,
            "user_id": click.user_id,
            "channel_id": click.channel_id,
            "message_ts": click.message_ts or "",
            "response_url": str(body.get("response_url") or ""),
        }
        failure = await _stored_in_time(self._service.queue_click(fields), "a click")
        await ack()  # Slack shows nothing of a click's ack: a failure is told after it
        if failure is not None:
            await self.on_error(StoreError(str(failure)), body, client, respond)

    async def run_click(self, held: HeldJob) -> None:
        """The ``click`` job: record the press and show what changed, or tell the clicker why not.

        Like ``run_ask``, a failure is the clicker's answer, never a retry: the service's
        conditional updates make a press count once, however it races others.
        """
        fields = _stored_fields(held, "click")
        bind(user=fields["user_id"], channel=fields["channel_id"], request_id=fields["request_id"])
        respond = _answer_to(fields)
        click = Click(
            fields["request_id"],
            fields["user_id"],
            fields["channel_id"],
            fields.get("message_ts") or None,
        )
        clicks = {
            APPROVE_ACTION_ID: self._approve,
            CANCEL_ACTION_ID: self._cancel,
            RESUME_ACTION_ID: self._resume,
        }
        try:
            await clicks[fields["action"]](click)
        except Exception as error:  # every failure is the clicker's answer, never a retry
            await self.on_error(error, fields, self._client, respond)

    async def _resume(self, click: Click) -> None:
        result = await self._service.resume(click)
        if isinstance(result, TaskCommand):
            await self._ask(result, {"user_id": click.user_id, "channel_id": click.channel_id})
        else:
            await self._notifier.request_changed(result)

    async def _ask(
        self,
        command: TaskCommand,
        payload: dict[str, Any],
        *,
        request_id: str | None = None,
        may_exist: bool = False,
    ) -> None:
        request = await self._service.open_request(
            command,
            payload["user_id"],
            payload["channel_id"],
            request_id,
            may_exist=may_exist,
        )
        if request.card_ts is not None:
            return  # an earlier attempt posted it
        try:
            ts = await self._notifier.post_card(request)
        except SlackApiError as error:
            if error.response.get("error") in ("not_in_channel", "channel_not_found"):
                raise CommandError(NOT_IN_CHANNEL_HELP) from error
            raise
        await self._service.attach_card(request, ts)

    async def _approve(self, click: Click) -> None:
        result = await self._service.approve(click)
        if not result.request.state.is_final and not result.must_execute:
            # More approvals are needed: show the progress. A decided request is shown by the
            # job its decision created, which also survives a crash right after this click.
            await self._notifier.request_changed(result.request)

    async def _cancel(self, click: Click) -> None:
        await self._service.cancel(click)

    async def _after_ack(
        self,
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond | None,
        work: Awaitable[object],
    ) -> Exception | None:
        """Run the work that follows an ack, reporting its failure through ``on_error``.

        Bolt's async runner, when a listener raises after acking, resets the ack to the error
        handler's response; if that happens before its 10 ms polling step saw the ack, Slack
        never gets one. Errors after the ack therefore never leave the listener: the failure,
        if any, is returned instead.
        """
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await work
        except Exception as error:
            await self.on_error(error, body, client, respond)
            return error
        finally:
            if task is not None:
                self._in_flight.discard(task)
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

    @classmethod
    def _click(cls, body: dict[str, Any]) -> Click:
        """Who pressed which request's button, on which message (the card or a copy)."""
        container = body.get("container") or {}
        message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        return Click(cls._request_id(body), body["user"]["id"], cls._channel_id(body), message_ts)

    @staticmethod
    def _request_id(body: dict[str, Any]) -> str:
        return str(body["actions"][0]["value"])

    @staticmethod
    def _channel_id(body: dict[str, Any]) -> str:
        return str((body.get("channel") or {}).get("id") or "")
