"""Socket Mode: the same listeners, reached over a WebSocket that the bot opens to Slack.

No public URL and no request signature; the app-level token (``xapp-...``) authenticates the
connection. Several replicas may connect: Slack gives each payload to one of them, and the store
settles every race, so running two is as safe as running one.
"""

from __future__ import annotations

import asyncio

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.app import Bot


def socket_mode_handler(bot: Bot, app_token: str) -> AsyncSocketModeHandler:
    """The Bolt handler that turns Socket Mode envelopes into Bolt requests for ``bot``."""
    return AsyncSocketModeHandler(bot.app, app_token)


async def run_socket_mode(bot: Bot, app_token: str) -> None:
    """Connect and serve until cancelled, then close the connection and the bot."""
    handler = socket_mode_handler(bot, app_token)
    bot.start_background()
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        await asyncio.Event().wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await bot.aclose()
