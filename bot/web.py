"""HTTP mode: an ASGI app served by uvicorn, a production server.

``POST /slack/events`` takes slash commands and button clicks: a body over the size limit gets
413, anything forged or stale 401, anything signed but not shaped like Slack's requests 400
(``bot.slack.inbound``), each with one log line; the rest goes to Bolt, which checks the
signature again. ``GET /healthz`` answers 200 while the store can be reached, so a load balancer
stops sending traffic to a replica that lost its database; why it cannot is logged, not shown.
``GET /metrics`` serves the Prometheus metrics (``bot.metrics_http``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Generator, Sequence
from typing import Any

import uvicorn
from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncBoltRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import Bot
from bot.errors import ConfigError, SlackRequestError, StoreError
from bot.metrics_http import metrics_route
from bot.settings import Settings
from bot.slack.inbound import check_signature, parse_body, read_body

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# A load balancer's health check gives up after a few seconds: answer before it does.
HEALTH_TIMEOUT_S = 1.5
SHUTTING_DOWN = JSONResponse(
    {"ok": False, "error": "shutting down"}, status_code=503, headers={"Retry-After": "1"}
)


def bolt_request(request: Request, raw_body: bytes, body: dict[str, Any]) -> AsyncBoltRequest:
    """The request Bolt dispatches: the body as parsed here, and its raw text to verify.

    Bolt's own parser (``parse_body`` in ``slack_bolt/request/internals.py``, still in 1.30)
    takes any form body containing the letters "payload" for an interaction, so a command like
    ``--reason "bad payload"`` reached no listener. ``AsyncBoltRequest`` accepts a parsed body
    only in Socket Mode, so it is built so and then put in HTTP mode with the raw text, which
    Bolt's ``RequestVerification`` checks the signature of. Once Bolt parses form bodies by
    field, Bolt's own ``AsyncSlackRequestHandler`` can take this function's place again.
    """
    headers: dict[str, str | Sequence[str]] = dict(request.headers.items())
    bolt = AsyncBoltRequest(body=body, query=request.url.query, headers=headers, mode="socket_mode")
    bolt.raw_body = raw_body.decode()
    bolt.mode = "http"
    return bolt


def build_asgi(bot: Bot, signing_secret: str) -> Starlette:
    """The ASGI application for ``bot``; the bot's background work runs with its lifespan."""

    async def events(request: Request) -> Response:
        if bot.draining:
            return SHUTTING_DOWN
        headers = request.headers
        try:
            raw_body = await read_body(request.stream(), headers.get("content-length"))
            check_signature(
                signing_secret,
                raw_body,
                headers.get("x-slack-request-timestamp"),
                headers.get("x-slack-signature"),
                time.time(),
            )
            body = parse_body(raw_body)
        except SlackRequestError as rejected:
            logger.warning(
                "refused a request to %s with HTTP %d: %s", EVENTS_PATH, rejected.status, rejected
            )
            return JSONResponse({"error": str(rejected)}, status_code=rejected.status)
        response: Response = to_starlette_response(
            await bot.app.async_dispatch(bolt_request(request, raw_body, body))
        )
        return response

    async def health(_: Request) -> Response:
        if bot.draining:
            return SHUTTING_DOWN
        try:
            await asyncio.wait_for(bot.store.ping(), HEALTH_TIMEOUT_S)
        except (StoreError, TimeoutError) as error:
            # The detail names the database's user and host: for the operator's log only.
            logger.warning(
                "health check failed: %s", error or "the database did not answer in time"
            )
            return JSONResponse({"ok": False, "error": "database unreachable"}, status_code=503)
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
            metrics_route(bot),
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


def uvicorn_server(bot: Bot, settings: Settings) -> uvicorn.Server:
    """A uvicorn server for ``bot`` on ``HOST:PORT``, logging left to the bot's configuration."""
    if settings.slack_signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET is required for HTTP mode but not set")
    config = uvicorn.Config(
        build_asgi(bot, settings.slack_signing_secret.get_secret_value()),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return DrainingServer(config, bot)


async def serve(bot: Bot, settings: Settings) -> None:
    """Serve until interrupted."""
    await uvicorn_server(bot, settings).serve()
