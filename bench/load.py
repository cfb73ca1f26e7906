"""The open-loop load generator: requests leave on a fixed schedule, whatever the answers.

A closed loop (send, wait, send) slows down with the server and so hides exactly the queueing
the benchmark looks for; here request ``i`` is due at ``start + i / rate`` and goes out then,
each in its own task, over a connection pool with no limit. Every request is signed just before
it leaves (Slack's ``v0`` signature over the timestamp and body), so bodies built in advance
never go stale. Times are ``time.monotonic()``, the clock the stand-ins' logs use too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from bench.config import SIGNING_SECRET
from bot.sim.slack_client import signature_headers

TIMEOUT_SECONDS = 30.0
# Slack shows the user an error when the ack takes longer than this.
SLACK_ACK_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Sent:
    """One request: when it was due and sent, how long the ack took, its status and body.

    ``status`` is 0 when no answer came (a transport error or the generator's timeout); its
    ``latency`` is then the time until the failure.
    """

    index: int
    due: float
    sent: float
    latency: float
    status: int
    body: str

    @property
    def ok(self) -> bool:
        """Whether the ack was HTTP 200, as Slack requires."""
        return self.status == 200


def session() -> aiohttp.ClientSession:
    """A client with an unbounded pool; idle connections are dropped before uvicorn drops them."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2.0)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    )


async def _send(
    client: aiohttp.ClientSession, url: str, index: int, due: float, body: bytes
) -> Sent:
    headers = signature_headers(SIGNING_SECRET, body, int(time.time()))
    sent = time.monotonic()
    try:
        async with client.post(url, data=body, headers=headers) as response:
            text = await response.text()
            return Sent(index, due, sent, time.monotonic() - sent, response.status, text[:300])
    except (aiohttp.ClientError, TimeoutError) as error:
        return Sent(index, due, sent, time.monotonic() - sent, 0, type(error).__name__)


async def fire(urls: Sequence[str], bodies: Sequence[bytes], rate: float) -> list[Sent]:
    """Send ``bodies`` at ``rate`` per second, taking turns among ``urls``; every result."""
    async with session() as client:
        start = time.monotonic() + 0.02
        tasks = []
        for index, body in enumerate(bodies):
            due = start + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            url = urls[index % len(urls)]
            tasks.append(asyncio.create_task(_send(client, url, index, due, body)))
        return list(await asyncio.gather(*tasks))


async def one(url: str, body: bytes) -> Sent:
    """Send one request and wait for its answer."""
    async with session() as client:
        now = time.monotonic()
        return await _send(client, url, 0, now, body)
