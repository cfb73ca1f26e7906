"""``dumptask-bot work``: run the stored jobs, and nothing else, until told to stop.

``serve`` starts one of these itself (``bot.worker``) and talks to it over a socket pair whose
descriptor it passes; run alone, without that link, it polls the store for due jobs, so more
workers can be added beside the replicas for throughput. SIGTERM or SIGINT drains it like
``serve``: executions in flight finish within ``SHUTDOWN_GRACE_SECONDS``, the rest are
released to the next owner. When ``serve`` closes the link (it stopped, or died), so does this.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.app import Bot
from bot.worker import serve_link

logger = logging.getLogger(__name__)


async def work(bot: Bot, link_fd: int | None) -> None:
    """Run ``bot``'s jobs until a signal, or the end of the link to ``serve``, then drain."""
    bot.start_background()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiting: list[asyncio.Task[object]] = [asyncio.create_task(stop.wait(), name="signals")]
    if link_fd is not None:

        async def own_metrics() -> bytes:
            return bot.metrics.exposition()

        link = serve_link(link_fd, bot.wake_jobs, own_metrics)
        waiting.append(asyncio.create_task(link, name="link"))
    logger.info("working: running stored jobs")
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()
        logger.info("stopping: finishing the jobs in flight")
        await bot.aclose()
