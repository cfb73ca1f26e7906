"""What every route of the demo page's JSON API shares: reading a body, answering, refusing.

Errors answer ``{"ok": false, "error": "..."}`` with a 4xx status, so the page can show them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = ["Handler", "PageError", "as_json", "read_fields", "read_object"]

JsonDict = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[JsonDict]]


class PageError(Exception):
    """A request the page API refuses; answered as JSON with ``status``.

    ``details`` are added to the answer (the errors to show under a modal's inputs, say).
    """

    def __init__(self, status: int, error: str, **details: object) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = details


async def read_object(request: web.Request) -> JsonDict:
    """The JSON object of the body; anything else is a 400 ``invalid_json``."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise PageError(400, "invalid_json") from None
    if not isinstance(body, dict):
        raise PageError(400, "invalid_json")
    return body


async def read_fields(request: web.Request, *names: str) -> dict[str, str]:
    """The named non-empty string fields of a JSON object body; anything else is a 400."""
    body = await read_object(request)
    values = {name: body.get(name) for name in names}
    missing = [name for name, value in values.items() if not isinstance(value, str) or not value]
    if missing:
        raise PageError(400, f"missing_{missing[0]}")
    return {name: str(value) for name, value in values.items()}


def as_json(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Answer a handler's dict as JSON, and a ``PageError`` as ``{"ok": false, ...}``."""

    async def respond(request: web.Request) -> web.Response:
        try:
            body = await handler(request)
        except PageError as error:
            answer = {"ok": False, "error": error.error, **error.details}
            return web.json_response(answer, status=error.status)
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    return respond
