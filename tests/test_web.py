"""``bot.web``'s hand-over to Bolt: the request it builds is still checked by Bolt itself."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr
from starlette.requests import Request

from bot.settings import Settings
from bot.sim.slack import SlackStandIn
from bot.sim.slack_client import signature_headers
from bot.slack.bolt import build_bolt_app
from bot.slack.client import slack_client
from bot.slack.inbound import parse_body
from bot.web import EVENTS_PATH, bolt_request
from tests.conftest import BOT_TOKEN, SIGNING_SECRET

BODY = urlencode(
    {
        "command": "/dumptask",
        "text": 'start payload-stream a --reason "bad payload upstream"',
        "user_id": "U0PAYLOAD",
        "channel_id": "C0PAYLOAD",
    }
).encode()


def starlette_request(headers: dict[str, str]) -> Request:
    """A Starlette request for ``POST /slack/events`` with ``headers`` (the body comes apart)."""
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": EVENTS_PATH,
            "query_string": b"",
            "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        }
    )


def bolt_app_seeing(slack: SlackStandIn, texts: list[str]) -> Any:
    """The bot's Bolt app, built as production builds it, with a command listener noting texts."""
    settings = Settings(
        _env_file=None,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=slack.api_url,
        dis_endpoint="http://127.0.0.1:9",
        dis_project_id="project",
        dis_access_key="AK",
        dis_secret_key=SecretStr("SK"),
    )
    app = build_bolt_app(settings, slack_client(settings))

    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        texts.append(command["text"])
        await ack()

    app.command("/dumptask")(on_command)
    return app


async def test_bolt_refuses_a_forged_request_that_bot_web_hands_it(slack):
    """Bolt's own signature check runs on the raw body bot.web passes: a forgery gets 401."""
    texts: list[str] = []
    app = bolt_app_seeing(slack, texts)
    forged = signature_headers(SIGNING_SECRET, BODY, int(time.time()), signature="v0=" + "0" * 64)
    response = await app.async_dispatch(
        bolt_request(starlette_request(forged), BODY, parse_body(BODY))
    )
    assert response.status == 401
    assert texts == []


async def test_bolt_routes_a_signed_command_containing_payload_to_its_listener(slack):
    """A signed command whose body contains `payload`, handed over by bot.web, reaches the listener."""
    texts: list[str] = []
    app = bolt_app_seeing(slack, texts)
    signed = signature_headers(SIGNING_SECRET, BODY, int(time.time()))
    response = await app.async_dispatch(
        bolt_request(starlette_request(signed), BODY, parse_body(BODY))
    )
    assert response.status == 200
    assert texts == ['start payload-stream a --reason "bad payload upstream"']
