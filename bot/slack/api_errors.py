"""Count the Slack Web API's error answers, whoever made the call (the bot or Bolt).

Bolt builds a Web API client of its own for each request, copying the list of retry handlers
of the client it was given, so a handler is the one place that sees every call's answer. This
one never asks for a retry: it reports each failed attempt (an ``ok: false`` answer, an HTTP
error, a dropped connection) and lets the real retry handlers after it decide.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState


def method_of(url: str) -> str:
    """``chat.postMessage`` from ``https://slack.com/api/chat.postMessage?...``."""
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


class ErrorRecorder(AsyncRetryHandler):
    """Tells ``record(method, error)`` of every failed Web API attempt; never retries itself."""

    def __init__(self, record: Callable[[str, str], None]) -> None:
        super().__init__(max_retry_count=0)
        self._record = record

    async def can_retry_async(
        self,
        *,
        state: RetryState,  # noqa: ARG002 - the signature is the SDK's
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        """Report the failure, if this attempt failed; leave retrying to the other handlers."""
        method = method_of(request.url)
        if error is not None:
            self._record(method, type(error).__name__)
        elif response is not None:
            body = response.body or {}
            if response.status_code >= 400 or body.get("ok") is False:
                self._record(method, str(body.get("error") or f"http_{response.status_code}"))
        return False
