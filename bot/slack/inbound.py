"""What may reach Bolt over HTTP: a signed Slack request, of bounded size, in the shape Slack sends.

Slack sends ``/slack/events`` two kinds of request, both form-encoded: a slash command (fields
``command``, ``text``, ``user_id``, ``channel_id``...) and an interaction such as a button click
(one ``payload`` field holding a JSON object). A request is checked in the order that costs the
bot least, and refused with a ``SlackRequestError`` that carries the HTTP status:

1. size (413): at most ``MAX_BODY_BYTES``, enforced while the body arrives, so a huge body is
   never held in memory; Slack's own requests are a few kilobytes;
2. signature (401): Slack's ``v0`` HMAC-SHA256 over the exact bytes, at most five minutes old,
   checked before a byte of the body is parsed;
3. shape (400): UTF-8 form fields that are a command or an interaction Bolt can route.

Only a request that passes all three is parsed into the dict Bolt's listeners receive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterable
from typing import Any, Final
from urllib.parse import parse_qsl

from bot.errors import SlackRequestError

MAX_BODY_BYTES: Final = 64 * 1024
"""The largest body accepted; a click on the fullest card the bot draws is about 20 KiB."""
MAX_AGE_SECONDS: Final = 5 * 60
"""Slack's rule: a request signed longer ago than this may be a replay."""

_DIGITS = re.compile(r"[0-9]{1,15}")
_COMMAND_FIELDS: Final = ("command", "user_id", "channel_id")
# Bolt reads these to build a request's context and takes each for an id or an object.
_CONTEXT_FIELDS: Final = ("user", "team", "channel", "enterprise", "container")


async def read_body(
    chunks: AsyncIterable[bytes], declared_length: str | None, limit: int = MAX_BODY_BYTES
) -> bytes:
    """Read a body of at most ``limit`` bytes, refusing a longer one as soon as it shows.

    A ``Content-Length`` over the limit is refused before anything is read; without one (a
    chunked body) reading stops at the first chunk past the limit.
    """
    declared = int(declared_length) if declared_length and _DIGITS.fullmatch(declared_length) else 0
    if declared > limit:
        raise SlackRequestError(413, f"its body of {declared} bytes is over {limit}")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise SlackRequestError(413, f"its body grew past {limit} bytes")
    return bytes(body)


def check_signature(
    signing_secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> None:
    """Refuse a request Slack did not sign, or signed more than five minutes from ``now``.

    The HMAC covers the exact bytes received, so a body that is not even UTF-8 is still told
    apart as signed (a bad request) or not (unauthorised).
    """
    if not timestamp or not signature:
        raise SlackRequestError(401, "it carries no Slack signature")
    if not _DIGITS.fullmatch(timestamp):
        raise SlackRequestError(401, "its X-Slack-Request-Timestamp is not a number")
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        raise SlackRequestError(401, "its timestamp is more than five minutes from the bot's clock")
    signed = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("latin-1", "replace")):
        raise SlackRequestError(401, "its signature does not match the signing secret")


def parse_body(body: bytes) -> dict[str, Any]:
    """The fields of a slash command, or the JSON object of an interaction.

    The body is split into fields first and only then looked at, so the letters ``payload``
    in a command's text, a channel or a user name are just text.
    """
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise SlackRequestError(400, "its body is not UTF-8") from None
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in fields:
        return _interaction(fields["payload"])
    if "ssl_check" in fields:  # Slack checking the certificate; Bolt answers it.
        return fields
    missing = [name for name in _COMMAND_FIELDS if not fields.get(name)]
    if missing:
        raise SlackRequestError(
            400, f"it is neither an interaction nor a slash command (no {', '.join(missing)})"
        )
    return fields


def _interaction(payload: str) -> dict[str, Any]:
    try:
        parsed = json.loads(payload)
    except (ValueError, RecursionError):
        raise SlackRequestError(400, "its payload field is not JSON") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
        raise SlackRequestError(400, "its payload is not a JSON object with a type")
    for name in _CONTEXT_FIELDS:
        if not isinstance(parsed.get(name), str | dict | None):
            raise SlackRequestError(400, f"its payload's {name} is neither an id nor an object")
    if parsed["type"] == "block_actions":
        actions = parsed.get("actions")
        if not isinstance(actions, list) or not actions or not all(map(_is_action, actions)):
            raise SlackRequestError(400, "it is a click without a list of actions")
    return parsed


def _is_action(action: object) -> bool:
    return isinstance(action, dict) and isinstance(action.get("action_id"), str)
