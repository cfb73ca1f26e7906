"""The worker process: ``serve`` acks in one process and does the work in another.

Slack gives a listener three seconds to ack, and the ack waits for the event loop. When the loop
also posts cards, calls DIS and reads tasks back, every ack queues behind that work, and in an
incident storm acks come late or never. So ``serve`` keeps its loop for Slack's requests: a
typed command is stored as an ``ask`` job and a button press as a ``click`` job, and both ack
at once. A child process, ``dumptask-bot work``, runs the jobs.

The hand-off is the store, not the link between the two: a job is in the database before Slack
gets its ack, so a crash of either process loses nothing (the jobs' leases bring a restarted or
another worker to it). The link, a socket pair, only carries hints and questions:

- ``w``: new work was stored, claim now instead of at the next poll;
- ``m``: send your metrics (the worker's counters join ``/metrics``, see
  ``bot.metrics.merge_exposition``); the answer is its length on one line, then the text.

The parent restarts a worker that died, stops it on SIGTERM (it drains like ``serve`` did
alone: in-flight executions finish within ``SHUTDOWN_GRACE_SECONDS``), and takes it down with
it if it is killed outright (``PR_SET_PDEATHSIG``, Linux), so a ``kill -9`` of ``serve`` stops
all of the bot as it did when it was one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

WAKE = b"w\n"
METRICS = b"m\n"
# How long ``/metrics`` waits for the worker's part before answering without it.
METRICS_TIMEOUT_S = 2.0
# How long a stopped worker may take beyond the grace period before it is killed.
STOP_MARGIN_S = 5.0
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
HEALTHY_RUN_S = 60.0
PR_SET_PDEATHSIG = 1


class WorkerLink:
    """The parent's side: starts the worker, wakes it, asks for its metrics, restarts, stops."""

    def __init__(self, command: list[str] | None = None) -> None:
        self._command = command or [sys.executable, "-m", "bot", "work"]
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._asking = asyncio.Lock()
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The running worker's process id, if one runs."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the worker, and keep one running until ``stop``."""
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="worker-supervisor")

    async def _spawn(self) -> asyncio.subprocess.Process:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                "--link-fd",
                str(theirs.fileno()),
                "--parent-pid",
                str(os.getpid()),
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self._reader, self._writer = await asyncio.open_connection(sock=ours)
        logger.info("started the worker process %d", process.pid)
        return process

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            started = time.monotonic()
            try:
                self._process = await self._spawn()
            except OSError:
                logger.exception("could not start the worker process")
                status = None
            else:
                status = await self._process.wait()
            self._close_link()
            if self._stopping:
                return
            if time.monotonic() - started > HEALTHY_RUN_S:
                failures = 0  # a crash after a long run is not part of a crash loop
            delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
            failures += 1
            logger.error(
                "the worker process exited (status %s); starting another in %.1f s; "
                "stored work waits for it meanwhile",
                status,
                delay,
            )
            await asyncio.sleep(delay)

    def _close_link(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    def wake(self) -> None:
        """Tell the worker new work was stored (a hint: without it the worker polls)."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(WAKE)

    async def metrics(self) -> bytes | None:
        """The worker's metrics text, or ``None`` when it cannot answer in time."""
        async with self._asking:
            reader, writer = self._reader, self._writer
            if reader is None or writer is None or writer.is_closing():
                return None
            try:
                async with asyncio.timeout(METRICS_TIMEOUT_S):
                    writer.write(METRICS)
                    size = int(await reader.readline())
                    return await reader.readexactly(size)
            except (TimeoutError, ValueError, OSError, asyncio.IncompleteReadError) as error:
                logger.warning("the worker did not send its metrics: %r", error)
                return None

    async def stop(self, grace: float) -> None:
        """Ask the worker to drain (SIGTERM), wait for it, and kill it if it takes too long."""
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace + STOP_MARGIN_S)
            except TimeoutError:
                late = True
            else:
                late = False
            if late:
                logger.error("the worker did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._close_link()


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the parent dies, even by SIGKILL; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        logger.warning("could not tie the worker's life to serve's (prctl failed)")
    if os.getppid() != parent_pid:
        os._exit(0)


async def serve_link(
    link_fd: int, wake: Callable[[], None], metrics: Callable[[], Awaitable[bytes]]
) -> None:
    """The worker's side of the link, until the parent closes it (or dies)."""
    sock = socket.socket(fileno=link_fd)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        while line := await reader.readline():
            if line == WAKE:
                wake()
            elif line == METRICS:
                text = await metrics()
                writer.write(b"%d\n" % len(text) + text)
                await writer.drain()
    finally:
        writer.close()
