"""Bounded retries with exponential backoff and full jitter, honouring ``Retry-After``.

Only failures whose ``DisErrorKind`` is retryable (throttled or transient) are tried again:
authentication failures repeated in a loop lock the key and get the caller's IP blacklisted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.errors import DisError, DisErrorKind

logger = logging.getLogger(__name__)

T = TypeVar("T")

THROTTLE_MIN_DELAY = 2.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and for how long to try a call; both bounds always hold."""

    attempts: int = 4
    total_seconds: float = 30.0
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def delay_before(self, attempt: int, error: DisError) -> float:
        """The pause before attempt ``attempt + 1``: the server's word first, else backoff."""
        if error.retry_after is not None:
            return float(error.retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        delay = ceiling * self.jitter()
        if error.kind is DisErrorKind.THROTTLED:
            delay = max(delay, min(THROTTLE_MIN_DELAY, self.max_delay))
        return delay


def _retryable(error: DisError) -> bool:
    return error.kind.retryable


async def call_with_retries(
    policy: RetryPolicy,
    operation: str,
    call: Callable[[], Awaitable[T]],
    *,
    may_retry: Callable[[DisError], bool] = _retryable,
    on_retry: Callable[[], None] = lambda: None,
) -> T:
    """Run ``call`` until it succeeds, fails for good, or a bound is reached.

    ``may_retry`` narrows which failures are tried again (never wider than the retryable
    kinds); ``on_retry`` is told before each new attempt. The last error is re-raised
    unchanged, so the caller sees the real code and request id.
    """
    started = policy.clock()
    attempt = 1
    while True:
        try:
            return await call()
        except DisError as error:
            if not (error.kind.retryable and may_retry(error)) or attempt >= policy.attempts:
                raise
            delay = policy.delay_before(attempt, error)
            remaining = policy.total_seconds - (policy.clock() - started)
            if delay >= remaining:
                logger.warning(
                    "DIS %s failed (%s); not retrying, %.1fs wait exceeds the %.1fs left",
                    operation,
                    error.summary,
                    delay,
                    max(remaining, 0.0),
                )
                raise
            logger.warning(
                "DIS %s failed (%s); retry %d/%d in %.2fs",
                operation,
                error.summary,
                attempt,
                policy.attempts - 1,
                delay,
            )
            await policy.sleep(delay)
            on_retry()
            attempt += 1
