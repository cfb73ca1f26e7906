"""A fake bot that opens modals and answers what people do in them, and the modals it opens.

``FakeBot`` is a tiny aiohttp app, served on loopback as the Slack stand-in's ``request_url``,
that answers the way a bot would. The stand-in's modal tests, the page API tests and the
browser tests drive it; the real bot does not open modals yet.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sim.slack import SlackStandIn

JsonDict = dict[str, Any]
STREAMS = ["orders-stream", "clicks-stream", "orders-archive-stream"]
TASKS = {"orders-stream": ["orders-to-obs", "orders-archive"], "clicks-stream": ["clicks-to-obs"]}


def text(value: str) -> JsonDict:
    return {"type": "plain_text", "text": value}


def option(value: str) -> JsonDict:
    return {"text": text(value), "value": value}


def deny_view(metadata: str = "dt-k7m2q9xa") -> JsonDict:
    """A modal like the bot's "Deny with a reason": a section and one required input."""
    return {
        "type": "modal",
        "callback_id": "dumptask.deny",
        "private_metadata": metadata,
        "title": text("Deny the request"),
        "submit": text("Deny"),
        "close": text("Cancel"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Deny *dt-k7m2q9xa*?"}},
            {
                "type": "input",
                "block_id": "reason",
                "label": text("Why?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason_text",
                    "multiline": True,
                },
            },
        ],
    }


def start_view(stream: str | None = None) -> JsonDict:
    """A start modal: a stream picked from the bot's options, then that stream's tasks."""
    blocks: list[JsonDict] = [
        {
            "type": "input",
            "block_id": "stream",
            "dispatch_action": True,
            "label": text("Stream"),
            "element": {
                "type": "external_select",
                "action_id": "stream_select",
                "min_query_length": 1,
                "placeholder": text("Find a stream"),
            },
        }
    ]
    if stream is not None:
        blocks.append(
            {
                "type": "input",
                "block_id": "tasks",
                "label": text("Tasks"),
                "element": {
                    "type": "multi_static_select",
                    "action_id": "tasks_select",
                    "options": [option(task) for task in TASKS[stream]],
                },
            }
        )
    blocks += [
        {
            "type": "input",
            "block_id": "action",
            "label": text("Action"),
            "element": {
                "type": "radio_buttons",
                "action_id": "action_choice",
                "options": [option("start"), option("stop")],
                "initial_option": option("start"),
            },
        },
        {
            "type": "input",
            "block_id": "channel",
            "optional": True,
            "label": text("Post the card in"),
            "element": {"type": "conversations_select", "action_id": "channel_select"},
        },
        {
            "type": "input",
            "block_id": "priority",
            "optional": True,
            "label": text("Priority"),
            "element": {
                "type": "static_select",
                "action_id": "priority_select",
                "options": [option("low"), option("high")],
            },
        },
        {
            "type": "input",
            "block_id": "note",
            "optional": True,
            "label": text("Reason"),
            "element": {"type": "plain_text_input", "action_id": "note_text"},
        },
    ]
    return {
        "type": "modal",
        "callback_id": "dumptask.start",
        "external_id": "start-U0REQUESTER",
        "title": text("Start dump tasks"),
        "submit": text("Ask for approval"),
        "notify_on_close": True,
        "blocks": blocks,
    }


Answer = JsonDict | None


@dataclass
class FakeBot:
    """A tiny bot: opens ``view`` on a command or shortcut and answers as each test tells it.

    ``answers`` are popped for each submission (an empty ack when there are none left);
    a dispatching select of a stream updates the modal with that stream's tasks; options are
    the streams whose name contains what was typed.
    """

    api_url: str
    token: str
    view: JsonDict = field(default_factory=deny_view)
    answers: list[Answer] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    payloads: list[JsonDict] = field(default_factory=list)
    bodies: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    api_errors: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        async def events(request: web.Request) -> web.Response:
            body = await request.read()
            self.bodies.append((dict(request.headers), body))
            fields = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            if self.delay:
                await asyncio.sleep(self.delay)
            if "payload" not in fields:
                await self.open(fields["trigger_id"])
                return web.Response(status=self.status)
            payload = json.loads(fields["payload"])
            self.payloads.append(payload)
            answer = await self.answer(payload)
            if answer is None:
                return web.Response(status=self.status)
            return web.json_response(answer, status=self.status)

        app = web.Application()
        app.router.add_post("/slack/events", events)
        return app

    async def open(self, trigger_id: str) -> None:
        try:
            await self.client().views_open(trigger_id=trigger_id, view=self.view)
        except SlackApiError as error:
            self.api_errors.append(error.response["error"])

    async def answer(self, payload: JsonDict) -> Answer:
        kind = payload["type"]
        if kind == "shortcut":
            await self.open(payload["trigger_id"])
        elif kind == "block_suggestion":
            typed = payload["value"]
            return {"options": [option(name) for name in STREAMS if typed in name]}
        elif kind == "block_actions" and "selected_option" in payload["actions"][0]:
            chosen = payload["actions"][0]["selected_option"]["value"]
            view = payload["view"]
            await self.client().views_update(
                view_id=view["id"], hash=view["hash"], view=start_view(chosen)
            )
        elif kind == "view_submission" and self.answers:
            return self.answers.pop(0)
        return None

    def client(self) -> AsyncWebClient:
        return AsyncWebClient(token=self.token, base_url=self.api_url)


def call_api(slack: SlackStandIn, method: str, **arguments: object) -> JsonDict:
    """Call the stand-in's Web API with the bot's token, as the bot does; it must succeed."""
    answer: JsonDict = httpx.post(
        f"{slack.api_url}{method}",
        headers={"Authorization": f"Bearer {slack.workspace.bot_token}"},
        json=arguments,
    ).json()
    assert answer["ok"], answer
    return answer


def open_modal(slack: SlackStandIn, user: str, view: JsonDict) -> str:
    """What a bot does on someone's click: views.open with its trigger id; the view's id."""
    trigger = slack.mint_trigger_id(user)
    return str(call_api(slack, "views.open", trigger_id=trigger, view=view)["view"]["id"])
