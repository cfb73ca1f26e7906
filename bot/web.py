"""HTTP mode: an ASGI app served by uvicorn, a production server.

``POST /slack/events`` takes slash commands and button clicks (Bolt verifies Slack's signature
and answers 401 to anything forged or stale); ``GET /healthz`` answers 200 while the store can be
reached, so a load balancer stops sending traffic to a replica that lost its database.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

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


def build_asgi(bot: Bot) -> Starlette:
    """The ASGI application for ``bot``; the bot's background work runs with its lifespan."""
    handler = AsyncSlackRequestHandler(bot.app)

    async def events(request: Request) -> Response:
        response: Response = await handler.handle(request)
        return response

    async def health(_: Request) -> Response:
        try:
            await bot.store.ping()
        except StoreError as error:
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


def uvicorn_server(bot: Bot, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``bot`` with logging left to the bot's own configuration."""
    config = uvicorn.Config(
        build_asgi(bot), host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    return uvicorn.Server(config)


async def serve(bot: Bot, host: str, port: int) -> None:
    """Serve until interrupted."""
    await uvicorn_server(bot, host, port).serve()
