"""Run the real bot (``create_bot`` + uvicorn, the production HTTP path) on a background thread.

The end-to-end tests and the demo drive the bot over real HTTP while they keep their own thread
for stand-ins and assertions; the bot gets its own event loop, exactly as in ``serve``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self, TypeVar

from bot.app import Bot, create_bot
from bot.clock import utc_now
from bot.settings import Settings
from bot.sim.server import StartStop, bind_socket
from bot.web import uvicorn_server

if TYPE_CHECKING:
    from collections.abc import Coroutine

    import uvicorn

T = TypeVar("T")


class BotThread(StartStop):
    """The bot served on ``settings.host`` (port 0 picks a free one) from its own thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        sweep_interval: float | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.bot: Bot | None = None
        self.port = settings.port

    @property
    def url(self) -> str:
        """The bot's base URL."""
        return f"http://{self._settings.host}:{self.port}"

    @property
    def events_url(self) -> str:
        """Where Slack (or its stand-in) sends commands and clicks."""
        return f"{self.url}/slack/events"

    def start(self) -> Self:
        """Start serving and return once the bot answers on its socket."""
        sock = bind_socket(self._settings.host, self._settings.port)
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True, name="bot")
        self._thread.start()
        if not self._started.wait(timeout=30):
            raise RuntimeError("the bot did not start within 30 seconds")
        if self._error is not None:
            raise RuntimeError(f"the bot failed to start: {self._error}") from self._error
        return self

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the bot's loop (e.g. a service call) and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        """Shut the server down gracefully (the bot's lifespan closes its resources)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self, sock: Any) -> None:
        # asyncio.run cancels and awaits what is still running when the server stops (a click
        # being executed, say) before it closes the loop, as a real process exit would.
        try:
            asyncio.run(self._serve(sock))
        except BaseException as exc:  # reported to the thread that called start()
            self._error = exc
            self._started.set()

    async def _serve(self, sock: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self.bot = await create_bot(
            self._settings, clock=self._clock, sweep_interval=self._sweep_interval
        )
        self._server = uvicorn_server(self.bot, self._settings)
        serving = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.01)
        self._started.set()
        await serving
