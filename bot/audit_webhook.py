"""The signed audit stream: every audit event POSTed as JSON to ``DUMPTASK_AUDIT_WEBHOOK_URL``.

Each request carries::

    Content-Type: application/json
    X-Dumptask-Event-Id: <the event's idempotency key, also in the body>
    X-Dumptask-Timestamp: <Unix time in seconds when this attempt was sent>
    X-Dumptask-Signature: v1=<hex of HMAC-SHA256(secret, "<timestamp>.<raw body>")>

so a receiver recomputes the HMAC over the timestamp, a dot and the raw body with the shared
``DUMPTASK_AUDIT_WEBHOOK_SECRET``, compares in constant time, refuses old timestamps (replays),
and de-duplicates on the idempotency key. Any 2xx answer delivers the event; anything else, or
no answer, makes the shipper send the same body again later (with a fresh timestamp).

Signing is an ``httpx.Auth`` over the pure ``sign`` function, as DIS's AK/SK is.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Generator

import httpx

from bot.outbox import OutboxEvent, SinkError

SIGNATURE_VERSION = "v1"
TIMESTAMP_HEADER = "X-Dumptask-Timestamp"
SIGNATURE_HEADER = "X-Dumptask-Signature"
EVENT_ID_HEADER = "X-Dumptask-Event-Id"
TIMEOUT_SECONDS = 10.0


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``v1=`` and the hex HMAC-SHA256 of ``"<ts>.<body>"``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


class WebhookAuth(httpx.Auth):
    """Adds the timestamp and the signature over it and the body to each request."""

    requires_request_body = True

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode()
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign the request as it is sent (each retry gets a fresh timestamp)."""
        timestamp = int(self._clock())
        request.headers[TIMESTAMP_HEADER] = str(timestamp)
        request.headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, request.content)
        yield request


def webhook_client(secret: str, user_agent: str) -> httpx.AsyncClient:
    """The HTTP client of the audit stream: signing, a timeout, no redirects followed."""
    return httpx.AsyncClient(
        auth=WebhookAuth(secret),
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        headers={"User-Agent": user_agent},
        follow_redirects=False,
    )


class WebhookSink:
    """An ``OutboxSink`` that POSTs each event's JSON body to the receiver's URL."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url

    async def send(self, event: OutboxEvent) -> None:
        """POST the body; a non-2xx answer or no answer is a ``SinkError`` (URL not shown)."""
        try:
            response = await self._http.post(
                self._url,
                content=event.body.encode(),
                headers={
                    "Content-Type": "application/json",
                    EVENT_ID_HEADER: event.idempotency_key,
                },
            )
        except httpx.HTTPError as exc:
            raise SinkError(
                f"the audit webhook could not be reached ({type(exc).__name__})"
            ) from exc
        if not response.is_success:
            raise SinkError(f"the audit webhook answered HTTP {response.status_code}")
