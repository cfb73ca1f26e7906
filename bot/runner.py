"""Run the jobs in the store: claim what is due, hold each lease while working, drain on shutdown.

One ``JobRunner`` per process. It polls the store every ``poll_seconds`` (and at once when
``wake()`` says new work was stored), claims due jobs whose lease is free, and runs each with a
renewer beside it. A job whose lease cannot be renewed is cancelled: another replica may already
own it. A job that fails is queued again with exponential back-off, up to ``max_attempts``.
``drain(grace)`` stops claiming, lets running jobs finish within the grace period, then cancels
the rest and releases their leases so another replica takes them over at once. A recurring job
(the audit shipper) returns when it wants to run again instead of ``None``; it is then queued
again for that time, its attempts counted from zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Collection, Coroutine
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.clock import utc_now
from bot.errors import StoreError
from bot.jobs import HeldJob, Job, JobKind, JobState, Lease, LeaseLostError, new_owner_id
from bot.store import Store

logger = logging.getLogger(__name__)

# A handler returns ``None`` when the job is done, or when a recurring job should run again.
JobHandler = Callable[[HeldJob], Coroutine[Any, Any, datetime | None]]

LEASE_SECONDS = 15.0
RENEW_SECONDS = 5.0
POLL_SECONDS = 1.0
MAX_ATTEMPTS = 8
MAX_BACKOFF_SECONDS = 120.0


def backoff(attempts: int, jitter: Callable[[], float] = random.random) -> float:
    """Seconds before attempt ``attempts + 1``: 2, 4, 8... capped, with a little jitter."""
    base = min(MAX_BACKOFF_SECONDS, 2.0**attempts)
    return base * (0.8 + 0.4 * jitter())


class JobRunner:
    """Claims and runs due jobs for this process, each under a live lease."""

    def __init__(
        self,
        store: Store,
        handler: JobHandler,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        lease_clock: Callable[[], datetime] = utc_now,
        lease_seconds: float = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        concurrency: int = 32,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._store = store
        self._handler = handler
        self.owner = owner or new_owner_id()
        self._clock = clock
        self._lease_clock = lease_clock
        self._lease_seconds = lease_seconds
        self._renew_seconds = renew_seconds
        self._poll_seconds = poll_seconds
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._running: dict[str, tuple[asyncio.Task[None], Lease]] = {}
        self._wakeup = asyncio.Event()
        self._backlog = False
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> frozenset[str]:
        """The ids of the jobs this process is working on."""
        return frozenset(self._running)

    def wake(self) -> None:
        """New work was stored: look for it now rather than at the next poll."""
        self._wakeup.set()

    def start(self) -> None:
        """Start claiming and running jobs in the background."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="job-runner")

    async def _loop(self) -> None:
        while not self._stopping:
            await self.claim_and_start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)
            self._wakeup.clear()

    async def claim_and_start(self, kinds: Collection[JobKind] | None = None) -> list[Job]:
        """Claim what is due (within the concurrency limit) and start working on it.

        ``kinds`` narrows what is claimed (while draining, only outcomes to show).
        """
        free = self._concurrency - len(self._running)
        if free <= 0 or (self._stopping and kinds is None):
            return []
        now = self._lease_clock()
        try:
            jobs = await self._store.claim_due(
                self.owner,
                due_by=self._clock(),
                lease_now=now,
                lease_until=now + timedelta(seconds=self._lease_seconds),
                limit=free,
                skip=tuple(self._running),
                kinds=tuple(kinds or JobKind),
            )
        except StoreError as error:
            logger.warning("could not look for due jobs: %s", error)
            return []
        # A full claim may have left due jobs behind: a finished job then frees its slot for
        # them at once instead of at the next poll.
        self._backlog = len(jobs) == free
        for job in jobs:
            lease = Lease(job.id, self.owner)
            task = asyncio.create_task(self._run(job, lease), name=f"job {job.id}")
            self._running[job.id] = (task, lease)
            task.add_done_callback(partial(self._forget, job.id))
        return jobs

    def _forget(self, job_id: str, _: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        if self._backlog:
            self._wakeup.set()

    async def _run(self, job: Job, lease: Lease) -> None:
        held = HeldJob(job, lease, self._lease_seconds, self._lease_clock)
        work = asyncio.create_task(self._handler(held), name=f"work {job.id}")
        renewer = asyncio.create_task(self._keep(lease, work), name=f"lease {job.id}")
        try:
            await asyncio.wait({work})
        except asyncio.CancelledError:  # drained: stop the work too, and let drain release it
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            raise
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        if work.cancelled():
            return  # the renewer found the lease lost and stopped the work; not ours to settle
        error = work.exception()
        if error is None:
            again = work.result()
            if again is None:
                await self._settle(lease, JobState.DONE)
            else:
                await self._reschedule(lease, again)
        elif isinstance(error, LeaseLostError):
            logger.warning("lost the lease on %s; another owner may finish it", job.id)
        elif isinstance(error, Exception):
            await self._failed(job, lease, error)
        else:
            raise error

    async def _keep(self, lease: Lease, work: asyncio.Task[datetime | None]) -> None:
        """Renew the lease while ``work`` runs; cancel it if the lease was lost."""
        while not work.done():
            await asyncio.sleep(self._renew_seconds)
            now = self._lease_clock()
            try:
                held = await self._store.renew(
                    lease, now, now + timedelta(seconds=self._lease_seconds)
                )
            except StoreError as error:
                logger.warning("could not renew the lease on %s: %s", lease.job_id, error)
                continue
            if not held:
                logger.warning("the lease on %s lapsed; stopping work on it", lease.job_id)
                work.cancel()
                return

    async def _failed(self, job: Job, lease: Lease, error: Exception) -> None:
        if job.attempts >= self._max_attempts:
            logger.error(
                "job %s failed for good after %d attempts", job.id, job.attempts, exc_info=error
            )
            await self._settle(lease, JobState.DEAD, error=repr(error))
            return
        delay = backoff(job.attempts)
        logger.warning(
            "job %s failed (attempt %d of %d): %s; trying again in %.0fs",
            job.id,
            job.attempts,
            self._max_attempts,
            error,
            delay,
            exc_info=not isinstance(error, StoreError),
        )
        retry_at = self._lease_clock() + timedelta(seconds=delay)
        await self._settle(lease, JobState.QUEUED, retry_at=retry_at, error=repr(error))

    async def _settle(
        self,
        lease: Lease,
        state: JobState,
        *,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        try:
            await self._store.settle_job(
                lease, state, self._clock(), retry_at=retry_at, error=error
            )
        except StoreError as failure:
            # The lease then lapses by itself and the job runs again; every job is idempotent.
            logger.warning("could not record the end of %s: %s", lease.job_id, failure)

    async def _reschedule(self, lease: Lease, at: datetime) -> None:
        try:
            await self._store.reschedule(lease, at)
        except StoreError as failure:
            # The lease lapses by itself and the job runs again then.
            logger.warning("could not reschedule %s: %s", lease.job_id, failure)

    async def drain(self, grace: float) -> list[str]:
        """Stop claiming, give running jobs ``grace`` seconds, then release what is left.

        Returns the ids of the jobs released unfinished, which another owner takes over at once.
        """
        self._stopping = True
        self._wakeup.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        deadline = asyncio.get_running_loop().time() + grace
        if self._running:
            logger.info("waiting up to %.0fs for %d job(s) to finish", grace, len(self._running))
        # What finishes in the grace period is also shown: the outcomes it produced are
        # delivered before the process goes (any left over are delivered by the next owner).
        while True:
            await self.claim_and_start(kinds=(JobKind.DELIVER,))
            pending = [task for task, _ in self._running.values() if not task.done()]
            left = deadline - asyncio.get_running_loop().time()
            if not pending or left <= 0:
                break
            await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        running = dict(self._running)
        released = []
        for job_id, (task, lease) in running.items():
            if task.done():
                continue
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            try:
                await self._store.release(lease)
            except StoreError as error:
                logger.warning("could not release %s (it lapses by itself): %s", job_id, error)
            released.append(job_id)
        if released:
            logger.warning("released unfinished job(s) to other replicas: %s", ", ".join(released))
        return released
