"""Slack's side of the wire: the workspace, the Web API and ``response_url``, over real HTTP.

``Workspace`` is the in-memory model (users, user groups, channels, direct messages with the
app, their messages, and modal views) plus everything the bot's calls leave behind: the Web API
call log, armed faults, and the response URLs and trigger ids minted for what people do. Every
method takes one lock, so tests and the browser page can read it from their own thread while
the server runs on another.

``create_app`` serves it: ``POST|GET /api/{method}`` answers like ``slack.com/api`` (form,
JSON or query arguments; HTTP 200 with ``ok: false`` for errors, 429/500 only when a fault is
armed) and ``POST /response/{token}`` answers like a ``response_url``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.sim.slack_errors import ApiError
from bot.sim.slack_views import Modals, View

__all__ = [
    "ApiError",
    "BotUser",
    "Channel",
    "Message",
    "ResponsePost",
    "Team",
    "User",
    "UserGroup",
    "View",
    "WebApiCall",
    "Workspace",
    "create_app",
]

JsonDict = dict[str, Any]
T = TypeVar("T")

SLACKBOT = "USLACKBOT"
MAX_BLOCKS = 50
MAX_TEXT = 40_000
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60
# A trigger id is good for one views.open (or views.push) within three seconds.
TRIGGER_TTL_SECONDS = 3.0
# Slack names every direct message conversation so in interaction payloads.
IM_NAME = "directmessage"
CHAT_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral"})


@dataclass(frozen=True, slots=True)
class Team:
    """The workspace itself, as ``auth.test`` and every payload name it."""

    id: str = "T0SIMTEAM"
    domain: str = "dumptask-sim"
    name: str = "Dumptask Sim"


@dataclass(frozen=True, slots=True)
class BotUser:
    """The app's bot user: who ``auth.test`` says the token belongs to."""

    user_id: str = "U0DUMPBOT"
    bot_id: str = "B0DUMPBOT"
    app_id: str = "A0DUMPTASK"
    name: str = "dumptask"


@dataclass(frozen=True, slots=True)
class User:
    """A person in the workspace, with the time zone Slack knows them by."""

    id: str
    name: str
    real_name: str
    tz: str = "Europe/Berlin"


@dataclass(frozen=True, slots=True)
class UserGroup:
    """A user group (``S...``) and the ids of its members."""

    id: str
    handle: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel, its human members, and whether the bot was invited.

    A direct message between the app and one person (``is_im``, id ``D...``) has that person
    as its only member, the bot in it, and the name Slack gives every DM in payloads.
    """

    id: str
    name: str
    members: frozenset[str]
    bot_member: bool
    is_im: bool = False

    @property
    def im_user(self) -> str | None:
        """The person a direct message is with; ``None`` for a channel."""
        return next(iter(self.members)) if self.is_im else None


@dataclass(frozen=True, slots=True)
class Message:
    """One stored message; ``visible_to`` is set only on ephemeral ones.

    ``blocks`` are as Slack stores them: every block carries a ``block_id`` (Slack invents one
    when the sender gave none). Readers get deep copies, so changing them changes nothing.
    """

    channel: str
    ts: str
    text: str
    blocks: list[JsonDict]
    user: str | None
    bot_id: str | None = None
    app_id: str | None = None
    thread_ts: str | None = None
    edited: bool = False
    visible_to: str | None = None

    @property
    def is_ephemeral(self) -> bool:
        """Whether only ``visible_to`` can see it."""
        return self.visible_to is not None

    def as_payload(self, team_id: str) -> JsonDict:
        """The message as Slack hands it out (``message`` in API answers and clicks)."""
        payload: JsonDict = {"type": "message", "ts": self.ts, "text": self.text}
        if self.user is not None:
            payload["user"] = self.user
        if self.bot_id is not None:
            payload["bot_id"] = self.bot_id
        if self.app_id is not None:
            payload["app_id"] = self.app_id
        payload["team"] = team_id
        payload["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts is not None:
            payload["thread_ts"] = self.thread_ts
        if self.edited:
            payload["edited"] = {"user": self.user, "ts": self.ts}
        return payload


@dataclass(frozen=True, slots=True)
class WebApiCall:
    """One Web API request as received, and how it was answered.

    ``args`` merges query, form and JSON arguments, without the token, with ``blocks`` decoded
    into a list when they came as a JSON string. ``missing_text_fallback`` is set for
    ``chat.*`` calls that sent blocks without a top-level ``text``.
    """

    method: str
    args: JsonDict
    token: str | None
    missing_text_fallback: bool
    status: int = 200
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether Slack answered ``ok: true``."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class ResponsePost:
    """One post to a ``response_url``: its token, the JSON body, and the HTTP status answered."""

    token: str
    body: JsonDict
    status: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer, before it becomes an ``aiohttp`` response."""

    status: int
    body: JsonDict | str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Fault:
    error: str
    status: int
    retry_after: int | None


@dataclass(slots=True)
class _ResponseUrl:
    """Where a ``response_url`` answer lands: the triggering user, channel and message."""

    channel: str
    user: str
    message_ts: str | None
    created: float
    posts: int = 0


@dataclass(slots=True)
class _Trigger:
    """A trigger id: who did what minted it, when, and whether an app exchanged it already."""

    user: str
    created: float
    used: bool = False


class Workspace:
    """The workspace model and the behaviour of Slack's servers; safe to use from any thread.

    ``clock`` (epoch seconds) mints message timestamps and ages response URLs, so a test can
    expire a URL by moving a fake clock; it also ages trigger ids, which ``views.open`` and
    ``views.push`` accept once and within ``trigger_ttl`` seconds (Slack's three by default).
    """

    def __init__(
        self,
        *,
        bot_token: str,
        team: Team,
        bot: BotUser,
        clock: Callable[[], float] = time.time,
        trigger_ttl: float = TRIGGER_TTL_SECONDS,
    ) -> None:
        self.bot_token = bot_token
        # Socket Mode: the app-level token ``apps.connections.open`` accepts, and the WebSocket
        # URL it hands out (a ``SocketModeStandIn``); both unset in HTTP-mode tests.
        self.app_token: str | None = None
        self.socket_url: str | None = None
        self.team = team
        self.bot = bot
        self._clock = clock
        self._cond = threading.Condition(threading.RLock())
        self._users: dict[str, User] = {}
        self._groups: dict[str, UserGroup] = {}
        self._channels: dict[str, Channel] = {}
        self._messages: dict[str, list[Message]] = {}
        self._replaced: dict[tuple[str, str], list[Message]] = {}
        self._calls: list[WebApiCall] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._response_posts: list[ResponsePost] = []
        self._last_ts = 0
        self._version = 0
        self._random = random.Random()
        self.trigger_ttl = trigger_ttl
        self._triggers: dict[str, _Trigger] = {}
        self._modals = Modals(self._random, clock)
        self._methods: dict[str, Callable[[JsonDict], JsonDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "conversations.open": self._conversations_open,
            "usergroups.users.list": self._usergroup_members,
            "users.info": self._user_info,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
        }

    # Configuration.

    def add_user(self, user: User) -> None:
        """Add or replace a user."""
        with self._cond:
            self._users[user.id] = user
            self._changed()

    def add_channel(self, channel: Channel) -> None:
        """Add or replace a channel, keeping its messages."""
        with self._cond:
            self._channels[channel.id] = channel
            self._messages.setdefault(channel.id, [])
            self._changed()

    def add_usergroup(self, group: UserGroup) -> None:
        """Add or replace a user group."""
        with self._cond:
            self._groups[group.id] = group
            self._changed()

    # Reading.

    @property
    def version(self) -> int:
        """A counter bumped on every change, so a reader can tell whether to redraw."""
        with self._cond:
            return self._version

    def users(self) -> list[User]:
        """Every user, in the order added."""
        with self._cond:
            return list(self._users.values())

    def user(self, user_id: str) -> User:
        """One user; ``KeyError`` when unknown."""
        with self._cond:
            return self._users[user_id]

    def usergroups(self) -> list[UserGroup]:
        """Every user group, in the order added."""
        with self._cond:
            return list(self._groups.values())

    def channels(self) -> list[Channel]:
        """Every channel, in the order added."""
        with self._cond:
            return list(self._channels.values())

    def channel(self, channel_id: str) -> Channel:
        """One channel; ``KeyError`` when unknown."""
        with self._cond:
            return self._channels[channel_id]

    def messages(self, channel_id: str) -> list[Message]:
        """Every message of a channel, thread replies and ephemeral ones included, by ``ts``."""
        with self._cond:
            return [_copy(message) for message in self._messages[channel_id]]

    def snapshot(self, channel_id: str) -> tuple[int, list[Message]]:
        """The version and a channel's messages, read at once so they always belong together."""
        with self._cond:
            return self._version, [_copy(message) for message in self._messages[channel_id]]

    def message(self, channel_id: str, ts: str) -> Message:
        """One message; ``KeyError`` when there is none with that ``ts``."""
        with self._cond:
            return _copy(self._find(channel_id, ts))

    def versions(self, channel_id: str, ts: str) -> list[Message]:
        """Every version a message has had, oldest first, the current one last.

        A client that has not redrawn yet still shows an older version (and its buttons).
        """
        with self._cond:
            current = self._find(channel_id, ts)
            return [_copy(m) for m in [*self._replaced.get((channel_id, ts), []), current]]

    def thread(self, channel_id: str, ts: str) -> list[Message]:
        """The replies in the thread under ``ts`` (without the parent), oldest first."""
        with self._cond:
            return [
                _copy(message)
                for message in self._messages[channel_id]
                if message.thread_ts == ts and message.ts != ts
            ]

    @property
    def calls(self) -> list[WebApiCall]:
        """Every Web API call received so far, oldest first."""
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[WebApiCall]:
        """The calls to one method, oldest first."""
        with self._cond:
            return [call for call in self._calls if call.method == method]

    def clear_calls(self) -> None:
        """Forget the Web API calls and response URL posts received so far."""
        with self._cond:
            self._calls.clear()
            self._response_posts.clear()

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[WebApiCall]:
        """Block until ``count`` calls to ``method`` arrived, then return all calls to it.

        A call is recorded once it has been applied, so after this returns the workspace shows
        its effect. Raises ``TimeoutError`` naming what did arrive.
        """
        with self._cond:
            arrived = self._cond.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
            if not arrived:
                seen = [call.method for call in self._calls]
                raise TimeoutError(
                    f"waited {timeout}s for {count} call(s) to {method}; received {seen}"
                )
            return self.calls_to(method)

    def wait_until(self, probe: Callable[[], T | None], timeout: float, what: str) -> T:
        """Block until ``probe`` (called under the lock) returns something; ``TimeoutError``."""
        found: list[T] = []

        def ready() -> bool:
            result = probe()
            if result is not None:
                found.append(result)
            return result is not None

        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                raise TimeoutError(f"waited {timeout}s for {what}")
            return found[-1]

    @property
    def response_posts(self) -> list[ResponsePost]:
        """Every post to a ``response_url`` so far, accepted or not, oldest first."""
        with self._cond:
            return list(self._response_posts)

    def wait_for_response_posts(self, count: int = 1, timeout: float = 5.0) -> list[ResponsePost]:
        """Block until ``count`` response URL posts arrived, then return them all."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._response_posts) >= count, timeout):
                raise TimeoutError(f"waited {timeout}s for {count} response URL post(s)")
            return list(self._response_posts)

    # Faults.

    def fail_next(
        self, method: str, error: str, *, status: int, count: int, retry_after: int | None
    ) -> None:
        """Answer the next ``count`` calls to ``method`` with ``error`` and ``status``."""
        with self._cond:
            queue = self._faults.setdefault(method, deque())
            queue.extend(_Fault(error, status, retry_after) for _ in range(count))

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._cond:
            self._faults.clear()

    # The Web API.

    def call(self, method: str, args: JsonDict, token: str | None) -> Reply:
        """Answer one Web API call as Slack would, apply its effect and record it."""
        missing_text = method in CHAT_METHODS and _lacks_text(args)
        with self._cond:
            reply = self._answer(method, args, token)
            error = None if isinstance(reply.body, str) else reply.body.get("error")
            self._calls.append(WebApiCall(method, args, token, missing_text, reply.status, error))
            self._changed()
            return reply

    def _answer(self, method: str, args: JsonDict, token: str | None) -> Reply:
        queue = self._faults.get(method)
        if queue:
            fault = queue.popleft()
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return Reply(fault.status, {"ok": False, "error": fault.error}, headers)
        if method == "apps.connections.open":
            return self._connections_open(token)
        handler = self._methods.get(method)
        if handler is None:
            return _error("unknown_method")
        if not token:
            return _error("not_authed")
        if token != self.bot_token:
            return _error("invalid_auth")
        try:
            return Reply(200, {"ok": True, **handler(args)})
        except ApiError as exc:
            return _error(exc.error, exc.messages)

    def _connections_open(self, token: str | None) -> Reply:
        """Socket Mode's first step: an app-level token gets the WebSocket URL to connect to."""
        if not token:
            return _error("not_authed")
        if self.app_token is None or token != self.app_token:
            return _error("invalid_auth")
        if self.socket_url is None:
            return _error("internal_error")
        return Reply(200, {"ok": True, "url": self.socket_url})

    def _auth_test(self, _args: JsonDict) -> JsonDict:
        return {
            "url": f"https://{self.team.domain}.slack.com/",
            "team": self.team.name,
            "user": self.bot.name,
            "team_id": self.team.id,
            "user_id": self.bot.user_id,
            "bot_id": self.bot.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, args: JsonDict) -> JsonDict:
        channel = self._resolve_channel(args.get("channel"))
        if not channel.bot_member:
            raise ApiError("not_in_channel")
        text, blocks = self._content(args)
        thread_ts = self._thread_root(channel.id, args.get("thread_ts"))
        message = self._add_message(channel.id, text, blocks, thread_ts=thread_ts)
        return {
            "channel": channel.id,
            "ts": message.ts,
            "message": message.as_payload(self.team.id),
        }

    def _update(self, args: JsonDict) -> JsonDict:
        message = self._message_in(args, "ts")
        channel_id = message.channel
        if message.is_ephemeral or message.user != self.bot.user_id:
            raise ApiError("cant_update_message")
        has_text, has_blocks = "text" in args, "blocks" in args
        if not has_text and not has_blocks:
            raise ApiError("no_text")
        text = str(args["text"] or "") if has_text else message.text
        blocks = self._blocks(args["blocks"]) if has_blocks else message.blocks
        if not text and not blocks:
            raise ApiError("no_text")
        if len(text) > MAX_TEXT:
            raise ApiError("msg_too_long")
        updated = Message(
            channel=message.channel,
            ts=message.ts,
            text=text,
            blocks=blocks,
            user=message.user,
            bot_id=message.bot_id,
            app_id=message.app_id,
            thread_ts=message.thread_ts,
            edited=True,
        )
        self._replace(updated)
        return {
            "channel": channel_id,
            "ts": updated.ts,
            "text": updated.text,
            "message": updated.as_payload(self.team.id),
        }

    def _post_ephemeral(self, args: JsonDict) -> JsonDict:
        channel = self._resolve_channel(args.get("channel"))
        user = str(args.get("user") or "")
        if user not in channel.members:
            raise ApiError("user_not_in_channel")
        if not channel.bot_member:
            raise ApiError("not_in_channel")
        text, blocks = self._content(args)
        thread_ts = self._thread_root(channel.id, args.get("thread_ts"))
        message = self._add_message(channel.id, text, blocks, thread_ts=thread_ts, visible_to=user)
        return {"message_ts": message.ts}

    def _user_info(self, args: JsonDict) -> JsonDict:
        """``users.info``: the person's names and time zone (``user_not_found`` otherwise)."""
        user = self._users.get(str(args.get("user") or ""))
        if user is None:
            raise ApiError("user_not_found")
        offset = int(datetime.now(ZoneInfo(user.tz)).utcoffset().total_seconds())  # type: ignore[union-attr]
        return {
            "user": {
                "id": user.id,
                "team_id": self.team.id,
                "name": user.name,
                "real_name": user.real_name,
                "tz": user.tz,
                "tz_offset": offset,
                "is_bot": False,
            }
        }

    def _usergroup_members(self, args: JsonDict) -> JsonDict:
        group = self._groups.get(str(args.get("usergroup") or ""))
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group.members)}

    def _permalink(self, args: JsonDict) -> JsonDict:
        """``chat.getPermalink``: a thread reply's link also names its thread and channel."""
        message = self._message_in(args, "message_ts")
        channel_id = message.channel
        if message.is_ephemeral:
            raise ApiError("message_not_found")
        link = (
            f"https://{self.team.domain}.slack.com/archives/{channel_id}/"
            f"p{message.ts.replace('.', '')}"
        )
        if message.thread_ts is not None and message.thread_ts != message.ts:
            link += f"?thread_ts={message.thread_ts}&cid={channel_id}"
        return {"channel": channel_id, "permalink": link}

    def _conversations_open(self, args: JsonDict) -> JsonDict:
        """``conversations.open``: the direct message with one person, opened once.

        A second call answers the same channel with ``no_op`` and ``already_open``;
        ``return_im`` asks for the whole channel object. Group DMs are not modelled.
        """
        raw_users = args.get("users")
        users = raw_users if isinstance(raw_users, list) else str(raw_users or "").split(",")
        users = [str(user).strip() for user in users if str(user).strip()]
        if not users:
            channel = self._channels.get(str(args.get("channel") or ""))
            if not args.get("channel"):
                raise ApiError("users_list_not_supplied")
            if channel is None or not channel.is_im:
                raise ApiError("channel_not_found")
            users = [str(channel.im_user)]
        if len(users) > 1:
            raise ApiError("group_dms_not_modelled_by_the_stand_in")
        if users[0] == self.bot.user_id:
            raise ApiError("cannot_dm_bot")
        if users[0] not in self._users:
            raise ApiError("user_not_found")
        channel, created = self._open_im(users[0])
        answer: JsonDict = {} if created else {"no_op": True, "already_open": True}
        if _truthy(args.get("return_im")):
            answer["channel"] = {
                "id": channel.id,
                "created": int(self._clock()),
                "is_im": True,
                "is_org_shared": False,
                "user": users[0],
                "last_read": "0000000000.000000",
                "latest": None,
                "unread_count": 0,
                "unread_count_display": 0,
                "is_open": True,
                "priority": 0,
            }
        else:
            answer["channel"] = {"id": channel.id}
        return answer

    def _views_open(self, args: JsonDict) -> JsonDict:
        user = self._exchange_trigger(args)
        return {"view": self._view_payload(self._modals.open(user, _required(args, "view")))}

    def _views_push(self, args: JsonDict) -> JsonDict:
        user = self._exchange_trigger(args)
        return {"view": self._view_payload(self._modals.push(user, _required(args, "view")))}

    def _views_update(self, args: JsonDict) -> JsonDict:
        view = self._modals.update(
            str(args.get("view_id") or "") or None,
            str(args.get("external_id") or "") or None,
            _required(args, "view"),
            str(args.get("hash") or "") or None,
        )
        return {"view": self._view_payload(view)}

    def _exchange_trigger(self, args: JsonDict) -> str:
        """The user a trigger id was minted for, once; Slack's errors otherwise."""
        trigger_id = str(args.get("trigger_id") or "")
        if not trigger_id:
            raise ApiError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self._clock() - trigger.created > self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger.user

    def _view_payload(self, view: View) -> JsonDict:
        return view.as_payload(self.team.id, self.bot.app_id, self.bot.bot_id)

    # Triggers, direct messages and views, for the stand-in's own use.

    def mint_trigger(self, user: str) -> str:
        """A fresh trigger id for something ``user`` did, shaped like Slack's."""
        with self._cond:
            while True:
                trigger_id = (
                    f"{self._random.randrange(10**12, 10**13)}."
                    f"{self._random.randrange(10**11, 10**12)}."
                    f"{self._random.getrandbits(128):032x}"
                )
                if trigger_id not in self._triggers:
                    self._triggers[trigger_id] = _Trigger(user, self._clock())
                    return trigger_id

    def open_im(self, user: str) -> Channel:
        """The direct message between the app and ``user``, opened if need be."""
        with self._cond:
            if user not in self._users:
                raise KeyError(f"no user {user}")
            channel, _ = self._open_im(user)
            return channel

    def ims(self, user: str | None = None) -> list[Channel]:
        """The open direct messages with the app (only ``user``'s when given)."""
        with self._cond:
            return [
                channel
                for channel in self._channels.values()
                if channel.is_im and user in (None, channel.im_user)
            ]

    def view(self, view_id: str) -> View:
        """One modal view, open or closed; ``KeyError`` when no app opened it."""
        with self._cond:
            return self._modals.get(view_id)

    def open_view(self, user: str) -> View | None:
        """The view ``user`` sees now, or ``None`` when no modal is open for them."""
        with self._cond:
            return self._modals.top(user)

    def modal(self, user: str) -> list[View]:
        """The views of ``user``'s open modal, root first, the visible one last."""
        with self._cond:
            return self._modals.stack(user)

    def change_view(self, change: Callable[[Modals], T]) -> T:
        """Apply ``change`` to the modals under the lock and tell readers something changed."""
        with self._cond:
            try:
                return change(self._modals)
            finally:
                self._changed()

    # response_url.

    def mint_response_url(
        self, base_url: str, *, channel: str, user: str, message_ts: str | None
    ) -> str:
        """A fresh ``response_url`` whose answers land in ``channel`` for ``user``."""
        token = "".join(self._random.choices(string.ascii_letters + string.digits, k=24))
        with self._cond:
            self._response_urls[token] = _ResponseUrl(channel, user, message_ts, self._clock())
        return f"{base_url}/response/{token}"

    def respond(self, token: str, raw: bytes) -> Reply:
        """Answer a post to ``/response/{token}`` as Slack does, and apply it.

        Success is ``{"ok": true}`` (JSON, as Slack answers today). A URL used five times
        answers 404 ``used_url``; one older than 30 minutes, or never minted, 404
        ``expired_url``; a body that is not a JSON object, 400 ``invalid_payload``.
        """
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._cond:
            reply = self._respond(token, body)
            error = reply.body if isinstance(reply.body, str) else None
            recorded = body if isinstance(body, dict) else {"raw": raw.decode(errors="replace")}
            self._response_posts.append(ResponsePost(token, recorded, reply.status, error))
            self._changed()
            return reply

    def _respond(self, token: str, body: object) -> Reply:
        target = self._response_urls.get(token)
        if target is None or self._clock() - target.created > RESPONSE_URL_TTL_SECONDS:
            return Reply(404, "expired_url")
        if target.posts >= RESPONSE_URL_USES:
            return Reply(404, "used_url")
        if not isinstance(body, dict):
            return Reply(400, "invalid_payload")
        try:
            self.apply_response(target.channel, target.user, target.message_ts, body)
        except ApiError as exc:
            return Reply(400, exc.error)
        target.posts += 1
        return Reply(200, {"ok": True})

    def apply_response(
        self, channel_id: str, user: str, message_ts: str | None, body: JsonDict
    ) -> None:
        """Show a response message (``response_url`` post or slash command ack) like Slack.

        ``delete_original`` removes the message acted on, ``replace_original`` rewrites it, and
        otherwise a new message appears: in the channel for ``response_type: in_channel``,
        else ephemeral for ``user``. Response messages need no bot membership.
        """
        with self._cond:
            if body.get("delete_original") is True:
                if message_ts is not None:
                    self._delete(channel_id, message_ts)
                return
            text, blocks = self._content(body)
            if body.get("replace_original") is True and message_ts is not None:
                original = self._find(channel_id, message_ts)
                self._replace(
                    Message(
                        channel=channel_id,
                        ts=original.ts,
                        text=text,
                        blocks=blocks,
                        user=original.user,
                        bot_id=original.bot_id,
                        app_id=original.app_id,
                        thread_ts=original.thread_ts,
                        visible_to=original.visible_to,
                    )
                )
                return
            in_channel = body.get("response_type") == "in_channel"
            thread_ts = self._thread_root(channel_id, body.get("thread_ts"))
            self._add_message(
                channel_id,
                text,
                blocks,
                thread_ts=thread_ts,
                visible_to=None if in_channel else user,
            )

    def post_as_user(
        self, channel_id: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> Message:
        """A message typed by a person (the bot cannot edit it), e.g. from the browser page."""
        with self._cond:
            root = self._thread_root(channel_id, thread_ts)
            return _copy(self._add_message(channel_id, text, [], thread_ts=root, author=user))

    def add_slackbot_notice(self, channel_id: str, user: str, text: str) -> Message:
        """An ephemeral note from Slackbot, as Slack shows when a command fails."""
        with self._cond:
            notice = self._add_message(channel_id, text, [], visible_to=user, author=SLACKBOT)
            return _copy(notice)

    # Internals; callers hold the lock.

    def _changed(self) -> None:
        self._version += 1
        self._cond.notify_all()

    def _next_ts(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _resolve_channel(self, value: object) -> Channel:
        """A channel by id, or by name with or without ``#``, as ``chat.postMessage`` allows.

        A user id stands for the direct message between the app and that person (Slack posts
        it in the app's Messages tab), opened if need be.
        """
        key = str(value or "")
        channel = self._channels.get(key)
        if channel is None and key in self._users:
            channel, _ = self._open_im(key)
        if channel is None:
            name = key.removeprefix("#")
            channel = next(
                (c for c in self._channels.values() if c.name == name and not c.is_im), None
            )
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _thread_root(self, channel_id: str, thread_ts: object) -> str | None:
        """The parent ``ts`` for a reply; a reply to a reply joins its parent's thread.

        Slack quietly accepts an unknown ``thread_ts``; the stand-in answers
        ``thread_not_found`` instead so a bot bug cannot hide a reply.
        """
        if thread_ts is None or thread_ts == "":
            return None
        try:
            parent = self._find(channel_id, str(thread_ts))
        except KeyError:
            raise ApiError("thread_not_found") from None
        return parent.thread_ts or parent.ts

    def _content(self, args: Mapping[str, Any]) -> tuple[str, list[JsonDict]]:
        text = str(args.get("text") or "")
        blocks = self._blocks(args.get("blocks"))
        if not text and not blocks:
            raise ApiError("no_text")
        if len(text) > MAX_TEXT:
            raise ApiError("msg_too_long")
        return text, blocks

    def _blocks(self, value: object) -> list[JsonDict]:
        """Check blocks the way Slack rejects them, and give every block a ``block_id``."""
        if value is None or value == "":
            return []
        decoded = _decode_blocks(value)
        if not isinstance(decoded, list):
            raise ApiError("invalid_blocks_format")
        blocks: list[JsonDict] = copy.deepcopy(decoded)
        if len(blocks) > MAX_BLOCKS:
            raise ApiError("invalid_blocks")
        block_ids: set[str] = set()
        for block in blocks:
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise ApiError("invalid_blocks")
            block_id = block.get("block_id") or self._new_block_id(block_ids)
            if block_id in block_ids:
                raise ApiError("invalid_blocks")
            block_ids.add(block_id)
            block["block_id"] = block_id
            action_ids = [e.get("action_id") for e in _elements(block) if e.get("action_id")]
            if len(action_ids) != len(set(action_ids)):
                raise ApiError("invalid_blocks")
        return blocks

    def _new_block_id(self, taken: set[str]) -> str:
        while True:
            candidate = "".join(self._random.choices(string.ascii_letters + string.digits, k=4))
            if candidate not in taken:
                return candidate

    def _add_message(
        self,
        channel_id: str,
        text: str,
        blocks: list[JsonDict],
        *,
        thread_ts: str | None = None,
        visible_to: str | None = None,
        author: str | None = None,
    ) -> Message:
        is_bot = author is None
        message = Message(
            channel=channel_id,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            user=self.bot.user_id if is_bot else author,
            bot_id=self.bot.bot_id if is_bot else None,
            app_id=self.bot.app_id if is_bot else None,
            thread_ts=thread_ts,
            visible_to=visible_to,
        )
        self._messages[channel_id].append(message)
        self._changed()
        return message

    def _message_in(self, args: JsonDict, ts_argument: str) -> Message:
        """The message ``channel`` and ``ts_argument`` name, or Slack's error for either."""
        channel_id = str(args.get("channel") or "")
        if channel_id not in self._channels:
            raise ApiError("channel_not_found")
        try:
            return self._find(channel_id, str(args.get(ts_argument) or ""))
        except KeyError:
            raise ApiError("message_not_found") from None

    def _open_im(self, user: str) -> tuple[Channel, bool]:
        channel_id = f"D{user[1:]}"
        existing = self._channels.get(channel_id)
        if existing is not None:
            return existing, False
        channel = Channel(channel_id, IM_NAME, frozenset({user}), bot_member=True, is_im=True)
        self._channels[channel_id] = channel
        self._messages[channel_id] = []
        self._changed()
        return channel, True

    def _find(self, channel_id: str, ts: str) -> Message:
        for message in self._messages.get(channel_id, ()):
            if message.ts == ts:
                return message
        raise KeyError(f"no message {ts} in {channel_id}")

    def _replace(self, message: Message) -> None:
        messages = self._messages[message.channel]
        for index, stored in enumerate(messages):
            if stored.ts == message.ts:
                self._replaced.setdefault((stored.channel, stored.ts), []).append(stored)
                messages[index] = message
                self._changed()
                return
        raise KeyError(f"no message {message.ts} in {message.channel}")

    def _delete(self, channel_id: str, ts: str) -> None:
        messages = self._messages[channel_id]
        messages[:] = [message for message in messages if message.ts != ts]
        self._changed()


def find_button(blocks: Iterable[JsonDict], action_id: str) -> tuple[str, JsonDict]:
    """The ``block_id`` and element of the interactive element with ``action_id``."""
    for block in blocks:
        for element in _elements(block):
            if element.get("action_id") == action_id:
                return str(block["block_id"]), element
    raise LookupError(f"no element with action_id {action_id!r} in the message")


def _elements(block: JsonDict) -> list[JsonDict]:
    """The interactive elements of a block: an actions block's elements or an accessory."""
    elements = [e for e in block.get("elements") or () if isinstance(e, dict)]
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        elements.append(accessory)
    return elements


def _decode_blocks(value: object) -> object:
    """Blocks as sent: a list (JSON bodies) or a JSON string (form fields)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError("invalid_blocks_format") from None
    return value


def _required(args: JsonDict, name: str) -> object:
    if args.get(name) in (None, ""):
        raise ApiError("invalid_arguments", [f"[ERROR] missing required field: {name}"])
    return args[name]


def _truthy(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _lacks_text(args: JsonDict) -> bool:
    return bool(args.get("blocks")) and not str(args.get("text") or "").strip()


def _copy(message: Message) -> Message:
    return Message(
        channel=message.channel,
        ts=message.ts,
        text=message.text,
        blocks=copy.deepcopy(message.blocks),
        user=message.user,
        bot_id=message.bot_id,
        app_id=message.app_id,
        thread_ts=message.thread_ts,
        edited=message.edited,
        visible_to=message.visible_to,
    )


def _error(error: str, messages: Iterable[str] = ()) -> Reply:
    body: JsonDict = {"ok": False, "error": error}
    if messages:
        body["response_metadata"] = {"messages": list(messages)}
    return Reply(200, body)


# HTTP.


def create_app(workspace: Workspace) -> web.Application:
    """The ``aiohttp`` app serving the Web API and response URLs of ``workspace``."""

    async def api(request: web.Request) -> web.Response:
        args, token = await _read_api_request(request)
        reply = workspace.call(request.match_info["method"], args, token)
        return _response(reply)

    async def response_url(request: web.Request) -> web.Response:
        reply = workspace.respond(request.match_info["token"], await request.read())
        return _response(reply)

    app = web.Application()
    app.router.add_route("GET", "/api/{method}", api)
    app.router.add_route("POST", "/api/{method}", api)
    app.router.add_post("/response/{token}", response_url)
    return app


async def _read_api_request(request: web.Request) -> tuple[JsonDict, str | None]:
    """Arguments from the query string and a form or JSON body, and the bearer token."""
    args: JsonDict = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                args.update(body)
        else:
            form = await request.post()
            args.update({key: value for key, value in form.items() if isinstance(value, str)})
    token = args.pop("token", None)
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential:
        token = credential
    if "blocks" in args:
        # Undecodable blocks are recorded as sent; the method answers invalid_blocks_format.
        with contextlib.suppress(ApiError):
            args["blocks"] = _decode_blocks(args["blocks"])
    return args, None if token is None else str(token)


def _response(reply: Reply) -> web.Response:
    if isinstance(reply.body, str):
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)
