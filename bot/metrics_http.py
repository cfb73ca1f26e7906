"""``GET /metrics`` over HTTP: a route of HTTP mode's app, or Socket Mode's own small server.

HTTP mode serves the route on ``PORT`` beside ``/slack/events``. Socket Mode has no HTTP
server, so with ``METRICS_PORT`` set it runs a small uvicorn server with only this route, on
the bot's event loop, started and stopped with the bot. Its uvicorn never installs signal
handlers: SIGTERM is the bot's to handle (it drains first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.app import Bot
from bot.metrics import CONTENT_TYPE

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"


def metrics_route(bot: Bot) -> Route:
    """``GET /metrics``: the bot's registry, with the store's gauges read at this scrape."""

    async def metrics(_: Request) -> Response:
        return Response(await bot.scrape(), media_type=CONTENT_TYPE)

    return Route(METRICS_PATH, metrics, methods=["GET"])


class _QuietServer(uvicorn.Server):
    """uvicorn leaving signals alone (its handler would re-raise SIGTERM after stopping)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install nothing: the bot's own handlers decide when everything stops."""
        yield


class MetricsServer:
    """``/metrics`` alone on ``host:port`` (port 0 picks a free one), on the running loop."""

    def __init__(self, bot: Bot, host: str, port: int) -> None:
        self._bot = bot
        self._host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, and return once the server answers."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.create_server((self._host, self.port), family=family)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            Starlette(routes=[metrics_route(self._bot)]),
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = _QuietServer(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=[sock]), name="metrics")
        while not self._server.started and not self._serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.01)
        if self._serving.done():
            self._serving.result()  # raises why it could not start
        logger.info("serving metrics on http://%s:%d%s", self._host, self.port, METRICS_PATH)

    async def stop(self) -> None:
        """Stop serving and wait until the socket is closed."""
        if self._server is None or self._serving is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._serving
        self._server = self._serving = None
