"""A receiver of the signed audit stream, as an operator would write one, for the tests.

It verifies each delivery the way README's snippet does (HMAC-SHA256 over ``"<ts>.<body>"``,
a fresh timestamp, a constant-time comparison), written here independently of the bot's code,
and records every delivery and every event. It can answer errors for a while, or stop
listening (``stop``) and come back on the same port (``start``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

from bot.sim.server import StartStop, ThreadedServer
from tests.processes import free_port

TOLERANCE_SECONDS = 300


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """README's verification: a recent timestamp and a matching v1 HMAC-SHA256 signature."""
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(signature, "v1=" + expected.hexdigest())


@dataclass(frozen=True)
class Delivery:
    """One POST as received: its event id header, whether it verified, and the answer sent."""

    event_id: str
    valid: bool
    status: int
    event: dict[str, Any]


class AuditReceiver(StartStop):
    """The receiver, on a fixed loopback port so it can go away and come back."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = free_port()
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._failures_left = 0
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        """Where the bot posts (``DUMPTASK_AUDIT_WEBHOOK_URL``)."""
        return f"http://127.0.0.1:{self.port}/audit"

    def start(self) -> Self:
        """Listen (again) on the receiver's port."""
        app = web.Application()
        app.router.add_post("/audit", self._receive)
        self._server = ThreadedServer(app, port=self.port).start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def fail_next(self, count: int) -> None:
        """Answer the next ``count`` deliveries with HTTP 500."""
        with self._lock:
            self._failures_left = count

    @property
    def deliveries(self) -> list[Delivery]:
        """Every POST received, in arrival order."""
        with self._lock:
            return list(self._deliveries)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events accepted (answered 2xx), in arrival order, duplicates included."""
        return [d.event for d in self.deliveries if d.status == 200]

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Dumptask-Timestamp", "0")
        signature = request.headers.get("X-Dumptask-Signature", "")
        valid = verify(self.secret, timestamp, body, signature)
        with self._lock:
            status = 200 if valid else 401
            if valid and self._failures_left:
                self._failures_left -= 1
                status = 500
            self._deliveries.append(
                Delivery(
                    request.headers.get("X-Dumptask-Event-Id", ""),
                    valid,
                    status,
                    json.loads(body),
                )
            )
        return web.json_response({"ok": status == 200}, status=status)
