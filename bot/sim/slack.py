"""A stand-in for Slack's servers, over real HTTP on loopback.

Two directions, as at Slack:

- the bot calls the Web API (``{url}/api/{method}``) and posts to response URLs
  (``{url}/response/{token}``): ``slack_api`` answers, changes the workspace and records
  every call;
- Slack calls the bot: ``send_command`` and ``click`` build the exact requests Slack sends
  (``slack_client``), sign them with the signing secret and POST them to ``request_url``.

Tests configure the workspace (users, channels, user groups), arm faults, and read back the
messages and calls; everything is thread-safe, because the server runs on its own thread.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Self

import httpx

from bot.sim.server import StartStop, ThreadedServer
from bot.sim.slack_api import (
    ApiError,
    BotUser,
    Channel,
    Message,
    ResponsePost,
    Team,
    User,
    UserGroup,
    WebApiCall,
    Workspace,
    create_app,
    find_button,
)
from bot.sim.slack_client import (
    EnvelopeKind,
    JsonDict,
    block_actions_payload,
    click_body,
    command_body,
    signature_headers,
    slash_command_fields,
    socket_mode_envelope,
)

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "BotUser",
    "Channel",
    "Message",
    "ResponsePost",
    "SlackStandIn",
    "Team",
    "User",
    "UserGroup",
    "WebApiCall",
]

ACK_TIMEOUT_SECONDS = 3.0
# Slack still sends its deprecated verification token in every payload; Bolt ignores it.
VERIFICATION_TOKEN = "sim-verification-token"  # noqa: S105 - a fixed sample, not a secret


class SlackStandIn(StartStop):
    """Slack's Web API, response URLs and outgoing requests, around one in-memory workspace.

    ``request_url`` (the bot's ``/slack/events``) may be set after construction, once the bot
    listens. ``clock`` (epoch seconds) mints message timestamps and ages response URLs; request
    signatures always use the real time, since the bot checks them against its own clock.
    ``ack_timeout`` is how long Slack waits for the bot's answer before showing
    ``operation_timeout``.
    """

    def __init__(
        self,
        bot_token: str,
        signing_secret: str,
        request_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        team: Team | None = None,
        bot: BotUser | None = None,
        command: str = "/dumptask",
        verification_token: str = VERIFICATION_TOKEN,
        clock: Callable[[], float] = time.time,
        ack_timeout: float = ACK_TIMEOUT_SECONDS,
    ) -> None:
        self.signing_secret = signing_secret
        self.request_url = request_url
        self.command = command
        self.verification_token = verification_token
        self.ack_timeout = ack_timeout
        self.workspace = Workspace(
            bot_token=bot_token, team=team or Team(), bot=bot or BotUser(), clock=clock
        )
        self._host = host
        self._port = port
        self._server: ThreadedServer | None = None
        self._extensions: list[Callable[[web.Application], None]] = []
        self._random = random.Random()

    # Serving.

    @property
    def url(self) -> str:
        """The base URL (no trailing slash); only valid while serving."""
        if self._server is None:
            raise RuntimeError("the Slack stand-in is not running; use start() or `with`")
        return self._server.url

    @property
    def api_url(self) -> str:
        """The Web API base URL, with the trailing slash ``AsyncWebClient(base_url=...)`` wants."""
        return f"{self.url}/api/"

    def start(self) -> Self:
        """Start serving on its own thread and return once the socket listens."""
        if self._server is not None:
            raise RuntimeError("the Slack stand-in is already running")
        app = create_app(self.workspace)
        for install in self._extensions:
            install(app)
        self._server = ThreadedServer(app, self._host, self._port).start()
        return self

    def extend_app(self, install: Callable[[web.Application], None]) -> None:
        """Have ``install`` add routes (such as the demo's page) to the app when it starts."""
        if self._server is not None:
            raise RuntimeError("extend the Slack stand-in's app before starting it")
        self._extensions.append(install)

    def stop(self) -> None:
        """Stop serving; the workspace and the call log are kept."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    # The workspace.

    @property
    def team(self) -> Team:
        """The workspace's team."""
        return self.workspace.team

    @property
    def bot(self) -> BotUser:
        """The app's bot user."""
        return self.workspace.bot

    def add_user(self, user_id: str, name: str, real_name: str) -> User:
        """Add (or replace) a person."""
        user = User(user_id, name, real_name)
        self.workspace.add_user(user)
        return user

    def add_channel(
        self, channel_id: str, name: str, members: Iterable[str], *, bot_member: bool = True
    ) -> Channel:
        """Add (or replace) a channel; ``name`` may start with ``#``."""
        channel = Channel(channel_id, name.removeprefix("#"), frozenset(members), bot_member)
        self.workspace.add_channel(channel)
        return channel

    def add_usergroup(self, group_id: str, handle: str, members: Iterable[str]) -> UserGroup:
        """Add (or replace) a user group."""
        group = UserGroup(group_id, handle, tuple(members))
        self.workspace.add_usergroup(group)
        return group

    def with_sample_workspace(self) -> Self:
        """Four people, ``#incident`` (with the bot), ``#random`` (without it), on-call leads.

        Users: U0REQUESTER alice, U0APPROVER1 bob, U0APPROVER2 carol, U0OUTSIDER mallory;
        everyone is in both channels; user group S0ONCALL (oncall-leads) is bob and carol.
        """
        people = [
            ("U0REQUESTER", "alice", "Alice Archer"),
            ("U0APPROVER1", "bob", "Bob Baker"),
            ("U0APPROVER2", "carol", "Carol Chen"),
            ("U0OUTSIDER", "mallory", "Mallory Moss"),
        ]
        for user_id, name, real_name in people:
            self.add_user(user_id, name, real_name)
        everyone = [user_id for user_id, _, _ in people]
        self.add_channel("C0INCIDENT", "incident", everyone, bot_member=True)
        self.add_channel("C0RANDOM", "random", everyone, bot_member=False)
        self.add_usergroup("S0ONCALL", "oncall-leads", ["U0APPROVER1", "U0APPROVER2"])
        return self

    def post_as_user(
        self, user_id: str, channel_id: str, text: str, *, thread_ts: str | None = None
    ) -> Message:
        """Post a message as a person, which the bot can read but not edit."""
        return self.workspace.post_as_user(channel_id, user_id, text, thread_ts=thread_ts)

    def messages(self, channel_id: str) -> list[Message]:
        """Every message of a channel, thread replies and ephemeral ones included, by ``ts``."""
        return self.workspace.messages(channel_id)

    def message(self, channel_id: str, ts: str) -> Message:
        """One message; ``KeyError`` when there is none with that ``ts``."""
        return self.workspace.message(channel_id, ts)

    def thread(self, channel_id: str, ts: str) -> list[Message]:
        """The replies under ``ts`` (without the parent), oldest first."""
        return self.workspace.thread(channel_id, ts)

    # Calls and faults.

    @property
    def calls(self) -> list[WebApiCall]:
        """Every Web API call received so far, oldest first."""
        return self.workspace.calls

    def calls_to(self, method: str) -> list[WebApiCall]:
        """The calls to one Web API method, oldest first."""
        return self.workspace.calls_to(method)

    def clear_calls(self) -> None:
        """Forget the Web API calls and response URL posts received so far."""
        self.workspace.clear_calls()

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[WebApiCall]:
        """Block until ``count`` calls to ``method`` were answered; return all calls to it."""
        return self.workspace.wait_for(method, count, timeout)

    @property
    def response_posts(self) -> list[ResponsePost]:
        """Every post to a response URL so far, accepted or not, oldest first."""
        return self.workspace.response_posts

    def wait_for_response_posts(self, count: int = 1, timeout: float = 5.0) -> list[ResponsePost]:
        """Block until ``count`` response URL posts arrived; return them all."""
        return self.workspace.wait_for_response_posts(count, timeout)

    def fail_next(
        self,
        method: str,
        error: str | None = None,
        *,
        count: int = 1,
        status: int | None = None,
        retry_after: int = 1,
    ) -> None:
        """Answer the next ``count`` calls to ``method`` with an error instead of serving them.

        With neither ``error`` nor ``status``: 429 ``ratelimited``. ``ratelimited`` (or 429)
        answers HTTP 429 with ``Retry-After: retry_after``; ``internal_error`` (or any 5xx)
        answers that status with ``internal_error``; any other error answers HTTP 200 with
        ``ok: false``, like Slack.
        """
        if error is None:
            if status is None or status == 429:
                error = "ratelimited"
            elif status >= 500:
                error = "internal_error"
            else:
                raise ValueError(f"name the error to answer with HTTP {status}")
        if status is None:
            status = {"ratelimited": 429, "internal_error": 500}.get(error, 200)
        self.workspace.fail_next(
            method,
            error,
            status=status,
            count=count,
            retry_after=retry_after if status == 429 else None,
        )

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.workspace.clear_faults()

    # Requests Slack sends to the bot.

    def build_slash_command(self, user_id: str, channel_id: str, text: str) -> dict[str, str]:
        """The form fields of ``/dumptask text`` typed by ``user_id``, with a fresh response URL."""
        user = self.workspace.user(user_id)
        channel = self.workspace.channel(channel_id)
        return slash_command_fields(
            team=self.team,
            app_id=self.bot.app_id,
            verification_token=self.verification_token,
            user=user,
            channel=channel,
            command=self.command,
            text=text,
            response_url=self.workspace.mint_response_url(
                self.url, channel=channel.id, user=user.id, message_ts=None
            ),
            trigger_id=self._trigger_id(),
        )

    def build_block_action(
        self,
        user_id: str,
        channel_id: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        *,
        message: Message | None = None,
    ) -> JsonDict:
        """The ``block_actions`` payload of ``user_id`` clicking ``action_id`` on a message.

        The button (its ``block_id``, text, value) is read from the message as the clicker's
        client shows it: ``message`` when given, else the newest stored version that has the
        button. So a click after an update removed the buttons replays a click on a stale
        card, as a client that has not redrawn yet (or a double click) sends it; a button the
        message never had raises ``LookupError``.
        """
        user = self.workspace.user(user_id)
        channel = self.workspace.channel(channel_id)
        shown = message or self._shown(channel_id, message_ts, action_id)
        return block_actions_payload(
            team=self.team,
            app_id=self.bot.app_id,
            verification_token=self.verification_token,
            user=user,
            channel=channel,
            message=shown,
            action_id=action_id,
            value=value,
            response_url=self.workspace.mint_response_url(
                self.url, channel=channel.id, user=user.id, message_ts=shown.ts
            ),
            trigger_id=self._trigger_id(),
            action_ts=f"{time.time():.6f}",
        )

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        """Slack's request headers for ``body``: content type, timestamp and ``v0`` signature."""
        return signature_headers(self.signing_secret, body, timestamp)

    def socket_mode_envelope(self, kind: EnvelopeKind, payload: JsonDict) -> JsonDict:
        """The Socket Mode envelope around a slash command (``slash_commands``) or click."""
        return socket_mode_envelope(kind, payload)

    def send_command(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """``asend_command`` for tests that run no event loop of their own."""
        return asyncio.run(
            self.asend_command(user_id, channel_id, text, timestamp=timestamp, signature=signature)
        )

    async def asend_command(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """Send ``/dumptask text`` to the bot, signed, and show its answer like Slack.

        ``timestamp`` and ``signature`` override the real ones to forge stale or bad requests.
        See ``_after_command`` for what the answer changes.
        """
        fields = self.build_slash_command(user_id, channel_id, text)
        body = command_body(fields)
        headers = self._headers(body, timestamp, signature)
        try:
            async with httpx.AsyncClient(timeout=self.ack_timeout) as client:
                response = await client.post(self._target(), content=body, headers=headers)
        except httpx.TimeoutException:
            self._command_failed(fields, "operation_timeout")
            raise
        self._after_command(fields, response)
        return response

    def click(
        self,
        user_id: str,
        channel_id: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        *,
        message: Message | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """``aclick`` for tests that run no event loop of their own."""
        return asyncio.run(
            self.aclick(
                user_id,
                channel_id,
                message_ts,
                action_id,
                value,
                message=message,
                timestamp=timestamp,
                signature=signature,
            )
        )

    async def aclick(
        self,
        user_id: str,
        channel_id: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        *,
        message: Message | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """Send a signed button click to the bot; Slack ignores what the bot answers to it."""
        payload = self.build_block_action(
            user_id, channel_id, message_ts, action_id, value, message=message
        )
        body = click_body(payload)
        async with httpx.AsyncClient(timeout=self.ack_timeout) as client:
            return await client.post(
                self._target(), content=body, headers=self._headers(body, timestamp, signature)
            )

    # Internals.

    def _shown(self, channel_id: str, ts: str, action_id: str) -> Message:
        versions = self.workspace.versions(channel_id, ts)
        for version in reversed(versions):
            try:
                find_button(version.blocks, action_id)
            except LookupError:
                continue
            return version
        return versions[-1]

    def _target(self) -> str:
        if self.request_url is None:
            raise RuntimeError("set request_url to the bot's /slack/events URL first")
        return self.request_url

    def _headers(self, body: bytes, timestamp: int | None, signature: str | None) -> dict[str, str]:
        when = int(time.time()) if timestamp is None else timestamp
        return signature_headers(self.signing_secret, body, when, signature=signature)

    def _trigger_id(self) -> str:
        return (
            f"{self._random.randrange(10**12, 10**13)}."
            f"{self._random.randrange(10**11, 10**12)}.{self._random.getrandbits(128):032x}"
        )

    def _after_command(self, fields: dict[str, str], response: httpx.Response) -> None:
        """Show the ack like Slack: a body becomes a message, an error status a failure note.

        A JSON body is a message (ephemeral unless ``response_type`` is ``in_channel``), plain
        text an ephemeral message, an empty body nothing. Any status but 200 is Slack's
        ``dispatch_failed``.
        """
        if response.status_code != 200:
            self._command_failed(fields, "dispatch_failed")
            return
        if not response.content.strip():
            return
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                answer = json.loads(response.content)
            except ValueError:
                self._command_failed(fields, "invalid_payload")
                return
        else:
            answer = {"text": response.text}
        if not isinstance(answer, dict) or not (answer.get("text") or answer.get("blocks")):
            return
        try:
            self.workspace.apply_response(fields["channel_id"], fields["user_id"], None, answer)
        except ApiError:
            self._command_failed(fields, "invalid_blocks")

    def _command_failed(self, fields: dict[str, str], error: str) -> None:
        text = f'{fields["command"]} failed with the error "{error}"'
        self.workspace.add_slackbot_notice(fields["channel_id"], fields["user_id"], text)
