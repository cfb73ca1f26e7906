"""Run an ``aiohttp`` application on loopback in a background thread.

The stand-ins are real HTTP servers so the bot's own clients, timeouts and connection handling
are exercised; running them on their own thread and event loop lets synchronous and asynchronous
tests and the demo share one way of starting them. ``stop_signals`` lets the commands that
serve them run until Ctrl-C, however they were started.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from typing import TYPE_CHECKING, Self

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType, TracebackType


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening socket first, so a caller asking for port 0 learns the real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class StartStop:
    """``with thing:`` starts ``thing`` and stops it on the way out, whatever happened.

    Every stand-in and runner here has the same two verbs; subclasses supply them.
    """

    def start(self) -> Self:
        """Start serving and return once ready."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving and release what was held."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThreadedServer(StartStop):
    """An ``aiohttp`` app served on ``host:port`` (port 0 picks a free one) from its own thread."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = port

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> Self:
        """Start serving and return once the socket is listening."""
        self._thread = threading.Thread(target=self._run, name="stand-in", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._error is not None:
            raise RuntimeError(f"stand-in server failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to finish."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _startup(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes the bound port nowhere else
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """Inside, SIGINT (Ctrl-C) and SIGTERM set the event yielded; the old handlers come back after.

    A command that serves until stopped installs its handlers explicitly: a shell that ignores
    SIGINT (one running a background job) passes that on, and Python then never raises
    ``KeyboardInterrupt``, so Ctrl-C and ``kill -INT`` would do nothing. Wait on the event with
    a short timeout, which keeps the main thread responsive to signals on every platform.
    """
    stopping = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in STOP_SIGNALS}
    try:
        yield stopping
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
