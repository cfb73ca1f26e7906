"""The Slack stand-in in a process of its own, with a timed log of what the bot posted.

``python -m bench.slack_server`` serves ``bot.sim.slack.SlackStandIn`` (the sample workspace:
alice asks, bob approves, ``#incident``) and prints its base URL on the first line. Why a
process of its own: at a few hundred requests a second the stand-in spends about as much CPU
answering the bot's Web API calls as the load generator spends sending, and on its own thread
in the load generator it would hold the GIL while send times are taken, adding its work to
every measured ack.

A middleware times every Web API call and response URL post (``time.monotonic()``, one clock
for every process of the machine) and keeps a compact event for each; control routes under
``/bench/`` build the exact signed-request bodies Slack sends (the load generator only signs
and sends them), and hand out the events:

- ``POST /bench/commands`` ``{"texts": [...]}``: one ``/dumptask`` form body per text, typed by
  alice in ``#incident``, each with a fresh response URL;
- ``POST /bench/clicks`` ``{"cards": [[channel, ts], ...]}``: bob clicking Approve on each card;
- ``GET /bench/events?since=N``: the events from the ``N``-th on (see ``Event``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import astuple
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from bench.config import APPROVE_ACTION_ID, APPROVER, BOT_TOKEN, CHANNEL, REQUESTER, SIGNING_SECRET
from bench.config import TASK_NAME as TASK_PATTERN
from bench.events import Event, note_of
from bot.sim.server import stop_signals
from bot.sim.slack import SlackStandIn
from bot.sim.slack_client import click_body, command_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _request_args(request: web.Request) -> dict[str, Any]:
    """The request's arguments, read again from aiohttp's cache of the body."""
    raw = await request.read()
    if request.content_type == "application/json":
        try:
            loaded = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {key: values[-1] for key, values in parse_qs(raw.decode(errors="replace")).items()}


async def _event(
    request: web.Request, response: web.StreamResponse, started: float, ended: float
) -> Event:
    args = await _request_args(request)
    body: dict[str, Any] = {}
    if isinstance(response, web.Response) and isinstance(response.body, bytes | bytearray):
        try:
            loaded = json.loads(response.body or b"{}")
        except ValueError:
            loaded = {}
        body = loaded if isinstance(loaded, dict) else {}
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    assert isinstance(message, dict)
    text = str(args.get("text") or message.get("text") or "")
    found = TASK_PATTERN.search(json.dumps(message) if message else text)
    method = request.match_info.get("method", "")
    thread_ts = str(message.get("thread_ts") or args.get("thread_ts") or "")
    if request.path.startswith("/response/"):
        kind = "response"
    elif method == "chat.postMessage":
        kind = "reply" if thread_ts else "card" if found else "message"
    elif method == "chat.update":
        kind = "update"
    elif method == "chat.postEphemeral":
        kind = "ephemeral"
    else:
        kind = method
    return Event(
        started=started,
        ended=ended,
        kind=kind,
        channel=str(body.get("channel") or args.get("channel") or ""),
        ts=(
            request.match_info.get("token", "")
            if kind == "response"
            else str(body.get("ts") or message.get("ts") or "")
        ),
        thread_ts=thread_ts,
        task=found.group(0) if found else "",
        note=note_of(text),
        status=response.status,
    )


class BenchSlack:
    """The stand-in, its event log, and the control routes."""

    def __init__(self, port: int = 0) -> None:
        self.stand_in = SlackStandIn(BOT_TOKEN, SIGNING_SECRET, port=port).with_sample_workspace()
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self.stand_in.extend_app(self._install)

    def _install(self, app: web.Application) -> None:
        app.middlewares.append(self._timed)
        app.router.add_post("/bench/commands", self._commands)
        app.router.add_post("/bench/clicks", self._clicks)
        app.router.add_get("/bench/events", self._list_events)

    @web.middleware
    async def _timed(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/bench/"):
            return await handler(request)
        started = time.monotonic()
        response = await handler(request)
        ended = time.monotonic()
        event = await _event(request, response, started, ended)
        with self._lock:
            self._events.append(event)
        return response

    async def _commands(self, request: web.Request) -> web.Response:
        texts = (await request.json())["texts"]
        bodies = [
            command_body(self.stand_in.build_slash_command(REQUESTER, CHANNEL, text)).decode()
            for text in texts
        ]
        return web.json_response({"bodies": bodies})

    async def _clicks(self, request: web.Request) -> web.Response:
        cards = (await request.json())["cards"]
        bodies = [
            click_body(
                self.stand_in.build_block_action(APPROVER, channel, ts, APPROVE_ACTION_ID)
            ).decode()
            for channel, ts in cards
        ]
        return web.json_response({"bodies": bodies})

    async def _list_events(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        with self._lock:
            events = self._events[since:]
        return web.json_response(
            {"events": [astuple(event) for event in events], "next": since + len(events)}
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, printing the base URL on the first line for the parent."""
    parser = argparse.ArgumentParser(prog="python -m bench.slack_server")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    args = parser.parse_args(argv)
    server = BenchSlack(args.port)
    with stop_signals() as stopping, server.stand_in:
        sys.stdout.write(f"{server.stand_in.url}\n")
        sys.stdout.flush()
        while not stopping.wait(timeout=0.5):
            pass


if __name__ == "__main__":
    main()
