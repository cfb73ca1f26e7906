"""A stand-in for Slack's servers, over real HTTP on loopback.

Two directions, as at Slack:

- the bot calls the Web API (``{url}/api/{method}``) and posts to response URLs
  (``{url}/response/{token}``): ``slack_api`` answers, changes the workspace and records
  every call;
- Slack calls the bot: ``send_command``, ``click``, ``shortcut`` and, in a modal the bot
  opened, ``submit_view``, ``close_view``, ``select_in_view`` and ``suggest_options`` build the
  exact requests Slack sends (``slack_client``), sign them with the signing secret and POST
  them to ``request_url`` (options requests to ``options_url``, the same URL unless set).
  Each has an ``a``-prefixed twin for callers inside an event loop, and a ``build_*`` method
  that only builds the payload, for Socket Mode envelopes.

Tests configure the workspace (users, channels, user groups), arm faults, and read back the
messages, direct messages, modal views and calls; everything is thread-safe, because the server
runs on its own thread.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar

import httpx

from bot.sim.server import StartStop, ThreadedServer
from bot.sim.slack_api import (
    TRIGGER_TTL_SECONDS,
    ApiError,
    BotUser,
    Channel,
    Message,
    ResponsePost,
    Team,
    User,
    UserGroup,
    View,
    WebApiCall,
    Workspace,
    create_app,
    find_button,
)
from bot.sim.slack_blockkit import (
    DEFAULT_MIN_QUERY_LENGTH,
    InvalidOptionsError,
    check_options,
)
from bot.sim.slack_client import (
    EnvelopeKind,
    Installation,
    JsonDict,
    block_actions_payload,
    block_suggestion_payload,
    click_body,
    command_body,
    shortcut_payload,
    signature_headers,
    slash_command_fields,
    socket_mode_envelope,
    view_action_payload,
    view_closed_payload,
    view_submission_payload,
)
from bot.sim.slack_views import MissingInputError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "BotUser",
    "Channel",
    "Message",
    "MissingInputError",
    "ResponsePost",
    "SlackStandIn",
    "Suggestions",
    "Team",
    "User",
    "UserGroup",
    "View",
    "WebApiCall",
]

T = TypeVar("T")
P = ParamSpec("P")
ACK_TIMEOUT_SECONDS = 3.0
# Slack still sends its deprecated verification token in every payload; Bolt ignores it.
VERIFICATION_TOKEN = "sim-verification-token"  # noqa: S105 - a fixed sample, not a secret


def blocking(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The same call for callers that run no event loop of their own: it runs one.

    Every ``a``-prefixed sender of ``SlackStandIn`` has such a twin without the prefix.
    """

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return asyncio.run(method(*args, **kwargs))

    return run


@dataclass(frozen=True, slots=True)
class Suggestions:
    """What an external select shows after an options request.

    ``response`` is ``None`` when fewer characters were typed than the element's
    ``min_query_length`` (3 unless set), so Slack sent nothing. ``error`` says why an answer
    shows no options (an error status, a body that is not JSON, options Slack refuses).
    """

    response: httpx.Response | None
    options: list[JsonDict] = field(default_factory=list)
    option_groups: list[JsonDict] = field(default_factory=list)
    error: str | None = None

    @property
    def values(self) -> list[str]:
        """Every option's value, groups flattened, in the order shown."""
        grouped = [o for group in self.option_groups for o in group.get("options", [])]
        return [str(option["value"]) for option in [*self.options, *grouped]]


class SlackStandIn(StartStop):
    """Slack's Web API, response URLs and outgoing requests, around one in-memory workspace.

    ``request_url`` (the bot's ``/slack/events``) may be set after construction, once the bot
    listens. ``clock`` (epoch seconds) mints message timestamps and ages response URLs; request
    signatures always use the real time, since the bot checks them against its own clock.
    ``ack_timeout`` is how long Slack waits for the bot's answer before showing
    ``operation_timeout``. ``options_url`` is the app's options load URL (``request_url`` when
    unset, as for this bot). A trigger id is good for one ``views.open`` within
    ``trigger_ttl`` seconds of the ``clock`` (Slack's three; raise it for slow machines).
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
        options_url: str | None = None,
        trigger_ttl: float = TRIGGER_TTL_SECONDS,
    ) -> None:
        self.signing_secret = signing_secret
        self.request_url = request_url
        self.options_url = options_url
        self.command = command
        self.verification_token = verification_token
        self.ack_timeout = ack_timeout
        self.workspace = Workspace(
            bot_token=bot_token,
            team=team or Team(),
            bot=bot or BotUser(),
            clock=clock,
            trigger_ttl=trigger_ttl,
        )
        self._host = host
        self._port = port
        self._server: ThreadedServer | None = None
        self._extensions: list[Callable[[web.Application], None]] = []

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

    def add_user(self, user_id: str, name: str, real_name: str, tz: str = "Europe/Berlin") -> User:
        """Add (or replace) a person, in the time zone ``tz``."""
        user = User(user_id, name, real_name, tz)
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

    def dm(self, user_id: str) -> str:
        """The id of the direct message between the app and ``user_id``, opened if need be.

        The bot opens it with ``conversations.open`` (or posts to the user id); a person opens
        it from the app's Messages tab. Either way there is one, ``D`` and the user id's tail.
        """
        return self.workspace.open_im(user_id).id

    def view(self, view_id: str) -> View:
        """A modal view the bot opened, open or closed: its blocks, values, errors, hash."""
        return self.workspace.view(view_id)

    def open_view(self, user_id: str) -> View | None:
        """The modal view ``user_id`` sees now, or ``None``."""
        return self.workspace.open_view(user_id)

    def wait_for_view(
        self, user_id: str, timeout: float = 5.0, *, other_than: View | None = None
    ) -> View:
        """Block until ``user_id`` sees a modal view (a new one, or ``other_than`` changed)."""

        def shown() -> View | None:
            view = self.workspace.open_view(user_id)
            if view is None or (other_than is not None and view.hash == other_than.hash):
                return None
            return view

        return self.workspace.wait_until(shown, timeout, f"a modal view for {user_id}")

    def mint_trigger_id(self, user_id: str) -> str:
        """A fresh trigger id, as if ``user_id`` had just clicked or typed something.

        The stand-in's ``views.open`` accepts it once, within ``trigger_ttl`` seconds; every
        command, click, shortcut and modal interaction the stand-in sends carries one.
        """
        self.workspace.user(user_id)
        return self.workspace.mint_trigger(user_id)

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
            trigger_id=self.workspace.mint_trigger(user.id),
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
            trigger_id=self.workspace.mint_trigger(user.id),
            action_ts=_action_ts(),
        )

    def build_shortcut(self, user_id: str, callback_id: str) -> JsonDict:
        """The payload of ``user_id`` running the app's global shortcut ``callback_id``."""
        user = self.workspace.user(user_id)
        return shortcut_payload(
            self._installation,
            user,
            callback_id=callback_id,
            trigger_id=self.workspace.mint_trigger(user.id),
            action_ts=_action_ts(),
        )

    def build_view_submission(
        self, user_id: str, view_id: str, values: Mapping[str, object] | None = None
    ) -> JsonDict:
        """The ``view_submission`` of ``user_id`` submitting the view they see.

        ``values`` maps an input's ``action_id`` (or its block's ``block_id``) to what the
        person entered: text, an option's value (or a list of them), a channel id... Inputs
        not named keep what was entered before (``select_in_view``), else their initial value.
        An empty required input raises ``MissingInputError`` (Slack's client would not send
        it, and shows "Please complete this required field."); a view that is not the one
        ``user_id`` sees, or an element or option it does not have, raises ``LookupError``.
        """
        user = self.workspace.user(user_id)
        view = self.workspace.change_view(
            lambda modals: modals.submit(user.id, view_id, values or {})
        )
        return view_submission_payload(
            self._installation,
            user,
            self._view_payload(view),
            trigger_id=self.workspace.mint_trigger(user.id),
        )

    def build_view_action(
        self, user_id: str, view_id: str, action_id: str, selected: object = None
    ) -> JsonDict:
        """The ``block_actions`` of ``user_id`` choosing ``selected`` in an element of a view.

        The choice is recorded in the view whatever the element; whether Slack sends it is up
        to the caller (see ``select_in_view``).
        """
        user = self.workspace.user(user_id)
        self._users_view(user.id, view_id)
        block, element = self.workspace.change_view(
            lambda modals: modals.enter(view_id, action_id, selected)
        )
        view = self.workspace.view(view_id)
        return view_action_payload(
            self._installation,
            user,
            self._view_payload(view),
            block_id=block["block_id"],
            element=element,
            state=view.state().get(block["block_id"], {}).get(element["action_id"], {}),
            trigger_id=self.workspace.mint_trigger(user.id),
            action_ts=_action_ts(),
        )

    def build_block_suggestion(
        self, user_id: str, view_id: str, action_id: str, value: str
    ) -> JsonDict:
        """The options request of ``user_id`` typing ``value`` in an external select."""
        user = self.workspace.user(user_id)
        view = self._users_view(user.id, view_id)
        block, element = view.element(action_id)
        if element["type"] not in ("external_select", "multi_external_select"):
            raise LookupError(f"{action_id!r} is a {element['type']}, not an external select")
        return block_suggestion_payload(
            self._installation,
            user,
            self._view_payload(view),
            block_id=block["block_id"],
            action_id=element["action_id"],
            value=value,
        )

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        """Slack's request headers for ``body``: content type, timestamp and ``v0`` signature."""
        return signature_headers(self.signing_secret, body, timestamp)

    def socket_mode_envelope(self, kind: EnvelopeKind, payload: JsonDict) -> JsonDict:
        """The Socket Mode envelope around a slash command (``slash_commands``) or interaction."""
        return socket_mode_envelope(kind, payload)

    def answer_view_submission(self, view_id: str, answer: JsonDict | None) -> None:
        """Show the bot's answer to a submission: ``None`` (an empty ack) or its JSON body.

        For Socket Mode, pass the acknowledgement's ``payload``; over HTTP ``submit_view``
        does it. See ``slack_views`` for what each ``response_action`` does.
        """
        self.workspace.change_view(lambda modals: modals.answer_submission(view_id, answer))

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

    send_command = blocking(asend_command)

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
        return await self._interact(payload, timestamp=timestamp, signature=signature)

    click = blocking(aclick)

    async def ashortcut(self, user_id: str, callback_id: str) -> httpx.Response:
        """Run the app's global shortcut as ``user_id``; Slack ignores the answer's body."""
        return await self._interact(self.build_shortcut(user_id, callback_id))

    shortcut = blocking(ashortcut)

    async def asubmit_view(
        self,
        user_id: str,
        view_id: str,
        values: Mapping[str, object] | None = None,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """Submit the view ``user_id`` sees, and show the bot's answer in the modal like Slack.

        See ``build_view_submission`` for ``values`` and what is refused before sending. The
        answer is applied (``slack.view(view_id)`` shows the result: closed, updated, its
        ``errors``); an error status, or a body Slack cannot use, leaves the view open with a
        ``failure``. A bot slower than ``ack_timeout`` raises ``httpx.TimeoutException`` after
        the view records ``operation_timeout``.
        """
        payload = self.build_view_submission(user_id, view_id, values)
        try:
            response = await self._interact(payload, timestamp=timestamp, signature=signature)
        except httpx.TimeoutException:
            self._view_failed(view_id, "operation_timeout")
            raise
        except httpx.HTTPError:
            self._view_failed(view_id, "dispatch_failed")
            raise
        if response.status_code != 200:
            self._view_failed(view_id, "dispatch_failed")
        elif not response.content.strip():
            self.answer_view_submission(view_id, None)
        else:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if isinstance(answer, dict):
                self.answer_view_submission(view_id, answer)
            else:
                self._view_failed(view_id, "invalid_response")
        return response

    submit_view = blocking(asubmit_view)

    async def aclose_view(self, user_id: str, view_id: str) -> httpx.Response | None:
        """``user_id`` dismisses their modal; the bot hears of it only with ``notify_on_close``.

        Returns the bot's response to ``view_closed``, or ``None`` when nothing was sent.
        """
        user = self.workspace.user(user_id)
        stack = self.workspace.modal(user.id)
        view = self.workspace.change_view(lambda modals: modals.close(user.id, view_id))
        if not view.definition.get("notify_on_close"):
            return None
        payload = view_closed_payload(
            self._installation,
            user,
            self._view_payload(view),
            is_cleared=len(stack) > 1,
        )
        return await self._interact(payload)

    close_view = blocking(aclose_view)

    async def aselect_in_view(
        self, user_id: str, view_id: str, action_id: str, selected: object = None
    ) -> httpx.Response | None:
        """``user_id`` chooses (or types) ``selected`` in an element of the view they see.

        Slack sends ``block_actions`` at once for an element of an actions block or a
        section's accessory, and for an input's element only when the input block has
        ``dispatch_action: true``; otherwise the choice waits for the submission and this
        returns ``None``. The bot's answer body is ignored, as Slack does.
        """
        payload = self.build_view_action(user_id, view_id, action_id, selected)
        view = self.workspace.view(view_id)
        block, _ = view.element(action_id)
        if block["type"] == "input" and not block.get("dispatch_action"):
            return None
        return await self._interact(payload)

    select_in_view = blocking(aselect_in_view)

    async def asuggest_options(
        self, user_id: str, view_id: str, action_id: str, value: str
    ) -> Suggestions:
        """``user_id`` types ``value`` in an external select: ask the bot for options.

        Posted to ``options_url`` (else ``request_url``). Nothing is sent below the element's
        ``min_query_length``. The options answered are remembered, so ``submit_view`` or
        ``select_in_view`` can then choose one by its value.
        """
        payload = self.build_block_suggestion(user_id, view_id, action_id, value)
        view = self.workspace.view(view_id)
        _, element = view.element(action_id)
        if len(value) < int(element.get("min_query_length", DEFAULT_MIN_QUERY_LENGTH)):
            return Suggestions(None)
        response = await self._interact(payload, url=self.options_url)
        if response.status_code != 200:
            return Suggestions(response, error=f"HTTP {response.status_code}")
        try:
            options, groups = check_options(response.json())
        except (ValueError, InvalidOptionsError) as error:
            return Suggestions(response, error=str(error))
        shown = [*options, *(o for group in groups for o in group["options"])]
        self.workspace.change_view(
            lambda modals: modals.remember_options(
                view_id, payload["block_id"], payload["action_id"], shown
            )
        )
        return Suggestions(response, options, groups)

    suggest_options = blocking(asuggest_options)

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

    async def _interact(
        self,
        payload: JsonDict,
        *,
        url: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST an interaction payload to the bot, signed, as Slack does."""
        body = click_body(payload)
        async with httpx.AsyncClient(timeout=self.ack_timeout) as client:
            return await client.post(
                url or self._target(),
                content=body,
                headers=self._headers(body, timestamp, signature),
            )

    def _users_view(self, user_id: str, view_id: str) -> View:
        """The open view ``view_id``, which must be one of ``user_id``'s; else ``LookupError``."""
        try:
            view = self.workspace.view(view_id)
        except KeyError:
            raise LookupError(f"no view {view_id}") from None
        if view.user != user_id or not view.is_open:
            raise LookupError(f"{user_id} has no open view {view_id}")
        return view

    @property
    def _installation(self) -> Installation:
        return Installation(self.team, self.bot.app_id, self.verification_token)

    def _view_payload(self, view: View) -> JsonDict:
        return view.as_payload(self.team.id, self.bot.app_id, self.bot.bot_id)

    def _view_failed(self, view_id: str, reason: str) -> None:
        self.workspace.change_view(lambda modals: modals.fail(view_id, reason))

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


def _action_ts() -> str:
    return f"{time.time():.6f}"
