"""The Bolt app, built with every value passed explicitly from ``Settings``.

Bolt falls back to environment variables for anything not passed. The bot token is the one it
reads even when it is given a client: with ``SLACK_BOT_TOKEN`` set (as our own configuration
contract asks) it then warns at every start that the token "will be unused". The client we pass
already holds that token, so exactly that warning is filtered, and nothing else of Bolt's.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

SOCKET_MODE_SIGNING_SECRET = "unused-in-socket-mode"  # noqa: S105 - Socket Mode signs nothing


class _TokenFallbackFilter(logging.Filter):
    """Drop Bolt's warning that the environment's token is unused in favour of our client."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def build_bolt_app(settings: Settings, client: AsyncWebClient) -> AsyncApp:
    """An ``AsyncApp`` using ``client``, the signing secret, and acks before listeners finish."""
    bolt_logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _TokenFallbackFilter) for f in bolt_logger.filters):
        bolt_logger.addFilter(_TokenFallbackFilter())
    return AsyncApp(
        client=client,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else SOCKET_MODE_SIGNING_SECRET
        ),
        logger=bolt_logger,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
