"""Socket Mode: the same listeners, reached over a WebSocket that the bot opens to Slack.

No public URL and no request signature; the app-level token (``xapp-...``) authenticates the
connection. Several replicas may connect: Slack gives each payload to one of them, and the store
settles every race, so running two is as safe as running one.

On SIGTERM (or SIGINT) the bot disconnects first, so Slack sends new payloads to the other
connections, then finishes in-flight executions within ``SHUTDOWN_GRACE_SECONDS`` and releases
what could not finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.app import Bot
from bot.metrics_http import MetricsServer

logger = logging.getLogger(__name__)


def socket_mode_handler(bot: Bot, app_token: str) -> AsyncSocketModeHandler:
    """The Bolt handler that turns Socket Mode envelopes into Bolt requests for ``bot``."""
    return AsyncSocketModeHandler(bot.app, app_token)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM or SIGINT (only the main thread receives signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def run_socket_mode(
    bot: Bot,
    app_token: str,
    stop: asyncio.Event | None = None,
    *,
    metrics: MetricsServer | None = None,
) -> None:
    """Connect and serve until ``stop`` is set (or a signal arrives, or cancelled), then close.

    ``metrics``, when given (``METRICS_PORT``), serves ``/metrics`` for as long as the bot runs.
    """
    stop = stop or asyncio.Event()
    handler = socket_mode_handler(bot, app_token)
    bot.start_background()
    try:
        with stop_on_signals(stop):
            if metrics is not None:
                await metrics.start()
            await handler.connect_async()  # type: ignore[no-untyped-call]
            await stop.wait()
            logger.info("disconnecting from Slack; finishing what is in flight")
    finally:
        bot.begin_draining()
        await handler.close_async()  # type: ignore[no-untyped-call]
        if metrics is not None:
            await metrics.stop()
        await bot.aclose()
