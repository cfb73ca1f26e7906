"""Deliver the audit outbox: one leased job per sink, events in order, each until it gets through.

Each configured sink has one job, ``ship:<sink>`` (``bot.outbox.ship_job``), created once and
never finished. The runner claims it like any job, under a lease, so across every replica only
the lease holder ships that sink, and a replica that dies is replaced within one lease period.
The holder delivers the sink's undelivered events in outbox order (the order they were
recorded) for one slice of time, polling for new ones, then hands the job back to be claimed
again at once, by itself or another replica.

A failed delivery is retried, the same event again, after a back-off (1 s, 2 s, 4 s... at most
a minute), and nothing behind it is sent meanwhile: a receiver sees each request's events in
order. Delivery is at least once: a bot that dies between a receiver's answer and recording it
sends that event again, with the same idempotency key. ``stop`` ends the slice after the event
being sent, so a shutdown neither waits for the slice nor sends an event twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot.clock import utc_now
from bot.errors import StoreError
from bot.jobs import HeldJob
from bot.logs import log_context
from bot.outbox import OutboxEvent, OutboxSink, SinkError, ship_job
from bot.store import Store

logger = logging.getLogger(__name__)

SLICE_SECONDS = 30.0
POLL_SECONDS = 0.5
BATCH = 50
MAX_RETRY_SECONDS = 60.0
# A replica without this sink configured leaves the job to one that has it, for a while.
UNCONFIGURED_RETRY_SECONDS = 60.0
KEEP_DELIVERED = timedelta(days=7)
MAX_ERROR_LENGTH = 500


def retry_delay(attempts: int, jitter: Callable[[], float] = random.random) -> float:
    """Seconds before delivery attempt ``attempts + 1``: 1, 2, 4... capped, with a little jitter."""
    base = min(MAX_RETRY_SECONDS, 2.0 ** max(attempts - 1, 0))
    return base * (0.8 + 0.4 * jitter())


def _describe(error: Exception) -> str:
    text = str(error) if isinstance(error, SinkError) else f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_LENGTH]


class Shipper:
    """Runs the ship jobs of this process: delivers outbox events to the configured sinks.

    ``clock`` is the real wall clock (leases and back-off are liveness time, as in
    ``bot.jobs``); ``observe(sink, result)`` is told the result (``ok``, ``failed``) of each
    attempt.
    """

    def __init__(
        self,
        store: Store,
        sinks: Mapping[str, OutboxSink],
        *,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        slice_seconds: float = SLICE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        observe: Callable[[str, str], None] = lambda _sink, _result: None,
    ) -> None:
        self._store = store
        self._sinks = dict(sinks)
        self._clock = clock
        self._monotonic = monotonic
        self._slice = slice_seconds
        self._poll = poll_seconds
        self._observe = observe
        self._stopping = asyncio.Event()

    @property
    def sinks(self) -> frozenset[str]:
        """The names of the sinks this process delivers to."""
        return frozenset(self._sinks)

    async def ensure_jobs(self, now: datetime) -> None:
        """Create each configured sink's ship job unless it exists (``now``: business time)."""
        for sink in sorted(self._sinks):
            await self._store.enqueue(ship_job(sink, now), now)

    def stop(self) -> None:
        """Finish the event being sent, then end every slice (a shutdown is under way)."""
        self._stopping.set()

    async def run(self, held: HeldJob) -> datetime:
        """Ship one sink for a slice; return when the job may be claimed again."""
        name = str(held.job.payload.get("sink", ""))
        sink = self._sinks.get(name)
        if sink is None:
            logger.warning(
                "the %r audit sink is not configured in this replica; leaving it to others", name
            )
            return self._clock() + timedelta(seconds=UNCONFIGURED_RETRY_SECONDS)
        ends = self._monotonic() + self._slice
        while not self._stopping.is_set() and (left := ends - self._monotonic()) > 0:
            await self._pause(min(left, await self._ship_due(name, sink)))
        await self._prune(name)
        return self._clock()

    async def _ship_due(self, name: str, sink: OutboxSink) -> float:
        """Deliver the due events at the outbox's head; seconds to wait before looking again."""
        try:
            events = await self._store.undelivered(name, BATCH)
        except StoreError as error:
            logger.warning("could not read the %s outbox: %s", name, error)
            return self._poll
        for event in events:
            if self._stopping.is_set():
                return 0
            if event.next_attempt_at is not None:
                wait = (event.next_attempt_at - self._clock()).total_seconds()
                if wait > 0:
                    return wait  # the head waits for its next attempt, and all behind it too
            delay = await self._deliver(name, sink, event)
            if delay is not None:
                return delay
        return self._poll if len(events) < BATCH else 0

    async def _deliver(self, name: str, sink: OutboxSink, event: OutboxEvent) -> float | None:
        """Send one event and record how it went; ``None``, or seconds before trying it again."""
        with log_context(request_id=event.request_id):
            try:
                await sink.send(event)
            except Exception as error:
                self._observe(name, "failed")
                return await self._failed(name, event, error)
            self._observe(name, "ok")
            try:
                await self._store.outbox_delivered(event.id, self._clock())
            except StoreError as error:
                logger.warning(
                    "delivered audit event %d to %s but could not record it (%s); "
                    "it will be delivered again",
                    event.id,
                    name,
                    error,
                )
                return self._poll
        return None

    async def _failed(self, name: str, event: OutboxEvent, error: Exception) -> float:
        attempts = event.attempts + 1
        delay = retry_delay(attempts)
        logger.warning(
            "could not deliver audit event %d to %s (attempt %d): %s; trying again in %.0fs",
            event.id,
            name,
            attempts,
            _describe(error),
            delay,
            exc_info=not isinstance(error, SinkError),
        )
        try:
            await self._store.outbox_failed(
                event.id,
                attempts=attempts,
                retry_at=self._clock() + timedelta(seconds=delay),
                error=_describe(error),
            )
        except StoreError as failure:
            logger.warning("could not record the failed delivery of %d: %s", event.id, failure)
        return delay

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the shipper is stopped meanwhile."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _prune(self, name: str) -> None:
        """Forget events delivered long ago; the audit table keeps every one of them."""
        try:
            await self._store.prune_outbox(name, self._clock() - KEEP_DELIVERED)
        except StoreError as error:
            logger.warning("could not prune the %s outbox: %s", name, error)
