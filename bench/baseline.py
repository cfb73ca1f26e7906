"""The baseline: a bare Bolt ``AsyncApp`` whose listeners only ack, served by uvicorn.

``python -m bench.baseline --port N --slack-api-url URL`` answers ``POST /slack/events`` with
Bolt's own Starlette adapter, verifying signatures with the benchmark's signing secret as the
bot does, so the ack the bot is compared with includes the same verification, parsing and
middleware. ``GET /healthz`` answers 200 at once, so start-up is timed the same way as the
bot's. Its Web API client points at the Slack stand-in: Bolt calls ``auth.test`` once, on the
first request, and must not reach the real Slack.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.config import APPROVE_ACTION_ID, BOT_TOKEN, SIGNING_SECRET


async def only_ack(ack: AsyncAck) -> None:
    """Acknowledge and do nothing else: the least any Slack app must do."""
    await ack()


def build_app(slack_api_url: str) -> Starlette:
    """The ASGI app: Bolt behind ``/slack/events``, and a health route."""
    bolt = AsyncApp(
        client=AsyncWebClient(token=BOT_TOKEN, base_url=slack_api_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    bolt.command("/dumptask")(only_ack)
    bolt.action(APPROVE_ACTION_ID)(only_ack)
    handler = AsyncSlackRequestHandler(bolt)

    async def events(request: Request) -> Response:
        response: Response = await handler.handle(request)
        return response

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve on loopback until SIGTERM or SIGINT (uvicorn's own handling)."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slack-api-url", required=True, help="the Slack stand-in's /api/ URL")
    args = parser.parse_args(argv)
    uvicorn.run(
        build_app(args.slack_api_url),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
