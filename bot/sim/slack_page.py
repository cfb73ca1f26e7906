"""The demo's web page: a Slack-like channel view served by the Slack stand-in.

The page itself is plain HTML, CSS and JavaScript modules in ``static/`` (no build step, nothing
fetched from the network). It reads the stand-in's workspace through a small JSON API and sends
what the person at the keyboard does back through the stand-in, which builds and signs the
requests exactly as Slack does and posts them to the bot's real ``/slack/events``::

    GET  /                          the page
    GET  /static/{name}             its scripts and style sheet
    GET  /page/api/workspace        people (with their demo roles), channels, user groups, bot,
                                    the slash command's usage hint, whether DIS is there
    GET  /page/api/messages         ?channel=C...&user=U...: the channel (or that person's DM
                                    with the app) as they see it, ephemeral messages only for
                                    the one they were sent to; the modal they see, if any; and
                                    how many messages each of their DMs holds
    POST /page/api/command          {user, channel, text}: a slash command typed in the box
    POST /page/api/message          {user, channel, text}: a plain message typed in the box
    POST /page/api/click            {user, channel, ts, action_id}: a button click
    POST /page/api/dm               {user}: open the person's DM with the app (its Messages tab)

plus the modal's routes (``page_modals``) and the DIS console's (``page_console``). Errors answer
``{"ok": false, "error": "..."}`` with a 4xx status, so the page can show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bot.sim.page_api import PageError, as_json, read_fields
from bot.sim.page_console import ConsoleRoutes, DisConsole
from bot.sim.page_modals import ModalRoutes, modal_view
from bot.sim.slack import SlackStandIn
from bot.sim.slack_api import SLACKBOT, Channel, Message, Workspace

__all__ = [
    "COMMAND_DESCRIPTION",
    "STATIC_DIR",
    "USAGE_HINT",
    "PageConfig",
    "SlackPage",
    "install_page",
]

JsonDict = dict[str, Any]

STATIC_DIR = Path(__file__).with_name("static")
# Only these files are served, so no request path can reach anything else on disk.
STATIC_FILES: Mapping[str, str] = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "dom.js": "text/javascript",
    "mrkdwn.js": "text/javascript",
    "blocks.js": "text/javascript",
    "modal.js": "text/javascript",
    "console.js": "text/javascript",
    "style.css": "text/css",
}
# The page runs nothing it did not get from the stand-in and talks to nothing else.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The same strings as ``app-manifest.yml``'s slash command (a test keeps them equal), so the
# demo's message box hints exactly what Slack's would.
USAGE_HINT = 'start|stop <stream> <task>... [--reason "..."] | help'
COMMAND_DESCRIPTION = "Ask to start or pause DIS dump tasks (needs an approval)"
MAX_MESSAGE_LENGTH = 4000


@dataclass(frozen=True, slots=True)
class PageConfig:
    """What the page shows beyond the workspace itself.

    ``roles`` labels people in the "who are you" picker (``requester``, ``approver``...); the
    stand-in knows nothing of the bot's policy, the demo does.
    """

    roles: Mapping[str, str] = field(default_factory=dict)
    default_channel: str = "C0INCIDENT"
    usage_hint: str = USAGE_HINT
    command_description: str = COMMAND_DESCRIPTION


class SlackPage:
    """The page's routes over one ``SlackStandIn``; ``install`` adds them to its app.

    ``dis`` (the DIS stand-in) feeds the page's DIS console; without it there is none.
    """

    def __init__(
        self,
        stand_in: SlackStandIn,
        config: PageConfig | None = None,
        *,
        dis: DisConsole | None = None,
    ) -> None:
        self._stand_in = stand_in
        self._config = config or PageConfig()
        self._modals = ModalRoutes(stand_in)
        self._console = ConsoleRoutes(dis)

    @property
    def _workspace(self) -> Workspace:
        return self._stand_in.workspace

    def install(self, app: web.Application) -> None:
        """Add the page and its API to the stand-in's ``aiohttp`` app."""
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/page/api/workspace", as_json(self.workspace))
        app.router.add_get("/page/api/messages", as_json(self.messages))
        app.router.add_post("/page/api/command", as_json(self.command))
        app.router.add_post("/page/api/message", as_json(self.message))
        app.router.add_post("/page/api/click", as_json(self.click))
        app.router.add_post("/page/api/dm", as_json(self.dm))
        self._modals.install(app)
        self._console.install(app)

    # Static files.

    async def index(self, _request: web.Request) -> web.Response:
        """The page."""
        return _static_file("index.html")

    async def static(self, request: web.Request) -> web.Response:
        """The page's script and style sheet, read afresh so edits show on reload."""
        return _static_file(request.match_info["name"])

    # The JSON API.

    async def workspace(self, _request: web.Request) -> JsonDict:
        """Everything the page needs once: people, channels, groups, the bot, the command."""
        workspace = self._workspace
        return {
            "team": {
                "id": workspace.team.id,
                "name": workspace.team.name,
                "domain": workspace.team.domain,
            },
            "bot": {
                "user_id": workspace.bot.user_id,
                "bot_id": workspace.bot.bot_id,
                "name": workspace.bot.name,
            },
            "users": [
                {
                    "id": user.id,
                    "name": user.name,
                    "real_name": user.real_name,
                    "role": self._config.roles.get(user.id, ""),
                }
                for user in workspace.users()
            ],
            "channels": [
                {
                    "id": channel.id,
                    "name": channel.name,
                    "members": sorted(channel.members),
                    "bot_member": channel.bot_member,
                }
                for channel in workspace.channels()
                if not channel.is_im
            ],
            "usergroups": [
                {"id": group.id, "handle": group.handle, "members": list(group.members)}
                for group in workspace.usergroups()
            ],
            "default_channel": self._config.default_channel,
            "command": {
                "name": self._stand_in.command,
                "usage_hint": self._config.usage_hint,
                "description": self._config.command_description,
            },
            "dis_console": self._console.available,
        }

    async def messages(self, request: web.Request) -> JsonDict:
        """A channel as ``user`` sees it: everyone's messages and only their own ephemerals.

        Without ``user`` no ephemeral message is shown, and no DM can be read. ``version``
        changes whenever anything in the workspace does (a view included), so the page can
        skip redrawing when nothing happened. ``modal`` is the view ``user`` sees, and ``dms``
        their direct messages with the app and how many messages each holds.
        """
        channel_id = request.query.get("channel", self._config.default_channel)
        channel = self._channel(channel_id)
        user = request.query.get("user") or None
        if user is not None:
            self._user(user)
        if channel.is_im and user != channel.im_user:
            raise PageError(403, "not_in_channel")
        version, messages = self._workspace.snapshot(channel.id)
        return {
            "version": version,
            "channel": {
                "id": channel.id,
                "name": channel.name,
                "is_im": channel.is_im,
                "im_user": channel.im_user,
            },
            "messages": [
                self._message_view(message)
                for message in messages
                if message.visible_to is None or message.visible_to == user
            ],
            "modal": None if user is None else modal_view(self._stand_in.open_view(user)),
            "dms": [] if user is None else self._dms(user),
        }

    async def dm(self, request: web.Request) -> JsonDict:
        """Open the person's direct message with the app, as its Messages tab does."""
        fields = await read_fields(request, "user")
        channel = self._workspace.open_im(self._user(fields["user"]))
        return {"ok": True, "channel": channel.id}

    async def command(self, request: web.Request) -> JsonDict:
        """Send a slash command typed in the box (``/dumptask ...``) as Slack would.

        The stand-in signs it and posts it to the bot, then shows the bot's answer like Slack
        (an ephemeral message, or a failure note from Slackbot). An unknown command gets
        Slackbot's usual note and never reaches the bot.
        """
        fields = await read_fields(request, "user", "channel", "text")
        user, channel = self._member(fields["user"], fields["channel"])
        word, _, text = fields["text"].strip().partition(" ")
        if word != self._stand_in.command:
            self._workspace.add_slackbot_notice(
                channel,
                user,
                f"{escape(word)} is not a valid command. In Slack, all messages that start "
                'with the "/" character are interpreted as commands.',
            )
            return {"ok": False, "error": "unknown_command"}
        self._require_bot()
        try:
            response = await self._stand_in.asend_command(user, channel, text.strip())
        except httpx.TimeoutException:
            return {"ok": False, "error": "operation_timeout"}
        except httpx.HTTPError:
            self._workspace.add_slackbot_notice(
                channel, user, f'{word} failed with the error "dispatch_failed"'
            )
            return {"ok": False, "error": "dispatch_failed"}
        return {"ok": response.status_code == 200, "status": response.status_code}

    async def message(self, request: web.Request) -> JsonDict:
        """Post a plain message as a person; Slack stores what people type escaped."""
        fields = await read_fields(request, "user", "channel", "text")
        user, channel = self._member(fields["user"], fields["channel"])
        text = fields["text"].strip()
        if not text or len(text) > MAX_MESSAGE_LENGTH:
            raise PageError(400, "no_text" if not text else "msg_too_long")
        posted = self._workspace.post_as_user(channel, user, escape(text))
        return {"ok": True, "ts": posted.ts}

    async def click(self, request: web.Request) -> JsonDict:
        """Click a button on a message the person can see, signed and sent as Slack would."""
        fields = await read_fields(request, "user", "channel", "ts", "action_id")
        user, channel = self._member(fields["user"], fields["channel"])
        try:
            shown = self._workspace.message(channel, fields["ts"])
        except KeyError:
            raise PageError(404, "message_not_found") from None
        if shown.visible_to not in (None, user):
            raise PageError(404, "message_not_found")
        self._require_bot()
        try:
            response = await self._stand_in.aclick(user, channel, shown.ts, fields["action_id"])
        except KeyError:
            raise PageError(404, "message_not_found") from None
        except LookupError:
            raise PageError(400, "no_such_action") from None
        except httpx.HTTPError as error:
            return {"ok": False, "error": type(error).__name__}
        return {"ok": response.status_code == 200, "status": response.status_code}

    # Helpers.

    def _dms(self, user: str) -> list[JsonDict]:
        return [
            {
                "id": im.id,
                "count": sum(
                    m.visible_to in (None, user) and m.thread_ts in (None, m.ts)
                    for m in self._workspace.messages(im.id)
                ),
            }
            for im in self._workspace.ims(user)
        ]

    def _message_view(self, message: Message) -> JsonDict:
        return {
            "ts": message.ts,
            "thread_ts": message.thread_ts,
            "text": message.text,
            "blocks": message.blocks,
            "edited": message.edited,
            "ephemeral": message.is_ephemeral,
            "author": self._author(message),
        }

    def _author(self, message: Message) -> JsonDict:
        bot = self._workspace.bot
        if message.bot_id is not None or message.user == bot.user_id:
            return {"id": bot.user_id, "name": bot.name, "real_name": bot.name, "kind": "app"}
        if message.user == SLACKBOT:
            return {"id": SLACKBOT, "name": "Slackbot", "real_name": "Slackbot", "kind": "slackbot"}
        try:
            user = self._workspace.user(message.user or "")
        except KeyError:
            name = message.user or "unknown"
            return {"id": name, "name": name, "real_name": name, "kind": "person"}
        return {"id": user.id, "name": user.name, "real_name": user.real_name, "kind": "person"}

    def _user(self, user_id: str) -> str:
        try:
            return self._workspace.user(user_id).id
        except KeyError:
            raise PageError(400, "user_not_found") from None

    def _channel(self, channel_id: str) -> Channel:
        try:
            return self._workspace.channel(channel_id)
        except KeyError:
            raise PageError(404, "channel_not_found") from None

    def _member(self, user_id: str, channel_id: str) -> tuple[str, str]:
        user = self._user(user_id)
        channel = self._channel(channel_id)
        if user not in channel.members:
            raise PageError(403, "not_in_channel")
        return user, channel.id

    def _require_bot(self) -> None:
        if self._stand_in.request_url is None:
            raise PageError(503, "bot_not_connected")


def install_page(
    stand_in: SlackStandIn, config: PageConfig | None = None, *, dis: DisConsole | None = None
) -> SlackPage:
    """Serve the page from ``stand_in`` (call before it starts), its DIS console from ``dis``."""
    page = SlackPage(stand_in, config, dis=dis)
    stand_in.extend_app(page.install)
    return page


def escape(text: str) -> str:
    """Slack's escaping of ``&``, ``<`` and ``>``, as it stores text people type."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _static_file(name: str) -> web.Response:
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound
    return web.Response(
        body=(STATIC_DIR / name).read_bytes(),
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": "no-store", "Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )
