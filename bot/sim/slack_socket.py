"""A stand-in for Slack's Socket Mode WebSocket endpoint, over a real WebSocket on loopback.

The bot's Socket Mode client asks the Web API (``apps.connections.open``, answered by the Slack
stand-in with ``url`` below) where to connect, opens the WebSocket, receives ``hello``, then
envelopes; it acknowledges each envelope by sending back its ``envelope_id`` (with the ack's
payload for slash commands). ``deliver`` plays Slack's part: send one envelope to one
connection and wait for its acknowledgement.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Self

from aiohttp import WSMsgType, web

from bot.sim.server import StartStop, ThreadedServer

JsonDict = dict[str, Any]
LINK_PATH = "/link"


class SocketModeStandIn(StartStop):
    """Accepts Socket Mode connections and delivers envelopes to them, as Slack does."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_get(LINK_PATH, self._link)
        self._server = ThreadedServer(app, host, port)
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[JsonDict]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = threading.Event()

    @property
    def url(self) -> str:
        """The ``wss://``-style URL ``apps.connections.open`` hands out (plain ``ws`` here)."""
        return self._server.url.replace("http://", "ws://", 1) + LINK_PATH

    def start(self) -> Self:
        """Start listening."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop listening, closing open connections."""
        self._server.stop()

    @property
    def connections(self) -> int:
        """How many clients are connected now."""
        return len(self._sockets)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait until a client has connected and been greeted."""
        return self._connected.wait(timeout)

    def deliver(self, envelope: JsonDict, timeout: float = 5.0) -> JsonDict:
        """Send ``envelope`` to one connection; return the client's acknowledgement."""
        if self._loop is None:
            raise RuntimeError("no Socket Mode client has connected")
        future = asyncio.run_coroutine_threadsafe(self._deliver(envelope), self._loop)
        return future.result(timeout)

    async def _deliver(self, envelope: JsonDict) -> JsonDict:
        socket = self._sockets[0]
        ack: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()
        self._acks[str(envelope["envelope_id"])] = ack
        await socket.send_str(json.dumps(envelope))
        return await ack

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._loop = asyncio.get_running_loop()
        self._sockets.append(socket)
        await socket.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self._connected.set()
        try:
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                ack = self._acks.pop(str(data.get("envelope_id")), None)
                if ack is not None and not ack.done():
                    ack.set_result(data)
        finally:
            self._sockets.remove(socket)
        return socket
