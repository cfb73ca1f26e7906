"""The Slack Web API client the bot uses, with Slack's own retry handlers."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.slack.api_errors import ErrorRecorder


def slack_client(
    settings: Settings,
    on_error: Callable[[str, str], None] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncWebClient:
    """A Web API client that retries rate limits, 5xx answers and dropped connections.

    ``on_error(method, error)`` hears of every failed attempt, retried or not. Without a
    ``session`` every call opens its own connection (and, to Slack, its own TLS handshake);
    the bot passes one pooled session, which Bolt also hands to the client it makes for each
    request. Its owner closes it.
    """
    recorder: list[AsyncRetryHandler] = [] if on_error is None else [ErrorRecorder(on_error)]
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=10,
        session=session,
        retry_handlers=[
            *recorder,
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
