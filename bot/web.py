"""HTTP mode: an ASGI app served by uvicorn, a production server.

``POST /slack/events`` takes slash commands and button clicks (Bolt verifies Slack's signature
and answers 401 to anything forged or stale); ``GET /healthz`` answers 200 while the store can be
reached, so a load balancer stops sending traffic to a replica that lost its database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Generator

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import Bot
from bot.errors import StoreError

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# A load balancer's health check gives up after a few seconds: answer before it does.
HEALTH_TIMEOUT_S = 1.5
SHUTTING_DOWN = JSONResponse(
    {"ok": False, "error": "shutting down"}, status_code=503, headers={"Retry-After": "1"}
)


def build_asgi(bot: Bot) -> Starlette:
    """The ASGI application for ``bot``; the bot's background work runs with its lifespan."""
    handler = AsyncSlackRequestHandler(bot.app)

    async def events(request: Request) -> Response:
        if bot.draining:
            return SHUTTING_DOWN
        response: Response = await handler.handle(request)
        return response

    async def health(_: Request) -> Response:
        if bot.draining:
            return SHUTTING_DOWN
        try:
            await asyncio.wait_for(bot.store.ping(), HEALTH_TIMEOUT_S)
        except (StoreError, TimeoutError) as error:
            return JSONResponse({"ok": False, "error": str(error)}, status_code=503)
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        bot.start_background()
        try:
            yield
        finally:
            await bot.aclose()

    return Starlette(
        routes=[
            Route(EVENTS_PATH, events, methods=["POST"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


class DrainingServer(uvicorn.Server):
    """uvicorn, shutting down the way a replica behind a load balancer should.

    On SIGTERM (or SIGINT) the bot first answers 503 to new work while in-flight executions
    finish (``SHUTDOWN_GRACE_SECONDS``), releases what could not finish, and only then lets
    uvicorn close its socket and exit with status 0. (uvicorn's own handler would close the
    socket at once and re-raise the signal after shutdown, ending the process by the signal.)
    """

    def __init__(self, config: uvicorn.Config, bot: Bot) -> None:
        super().__init__(config)
        self._bot = bot
        self._draining: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Handle SIGTERM and SIGINT on the event loop (only the main thread gets signals)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        if self._draining is not None:
            if sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: stop now
            return
        logger.info("received %s; draining", signal.Signals(sig).name)
        self._draining = asyncio.create_task(self._drain_then_exit(), name="drain")

    async def _drain_then_exit(self) -> None:
        try:
            await self._bot.drain()
        finally:
            self.should_exit = True


def uvicorn_server(bot: Bot, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``bot`` with logging left to the bot's own configuration."""
    config = uvicorn.Config(
        build_asgi(bot),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return DrainingServer(config, bot)


async def serve(bot: Bot, host: str, port: int) -> None:
    """Serve until interrupted."""
    await uvicorn_server(bot, host, port).serve()
