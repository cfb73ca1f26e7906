"""What may reach Bolt over HTTP: ``bot.slack.inbound`` checks size, signature and shape."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlencode

import pytest

from bot.errors import SlackRequestError
from bot.slack.inbound import MAX_BODY_BYTES, check_signature, parse_body, read_body

SECRET = "inbound-signing-secret"
NOW = 1_700_000_000.0
COMMAND = {
    "command": "/dumptask",
    "text": 'start payload-stream a --reason "bad payload upstream"',
    "user_id": "U0PAYLOAD",
    "user_name": "payload-oncall",
    "channel_id": "C0PAYLOAD",
    "channel_name": "payload-incidents",
}
CLICK = {
    "type": "block_actions",
    "user": {"id": "U0BOB"},
    "channel": {"id": "C0INCIDENT"},
    "actions": [{"action_id": "dumptask.approve", "value": "dt-1"}],
}


def signature(body: bytes, timestamp: str = str(int(NOW))) -> str:
    return (
        "v0="
        + hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    )


async def chunks_of(body: bytes, size: int, taken: list[int]) -> AsyncIterator[bytes]:
    """``body`` in chunks of ``size``, counting in ``taken`` how many were read."""
    for start in range(0, len(body), size):
        taken.append(1)
        yield body[start : start + size]


@contextlib.contextmanager
def rejected(status: int) -> Iterator[None]:
    """Expect a ``SlackRequestError`` answered with ``status``."""
    with pytest.raises(SlackRequestError) as caught:
        yield
    assert caught.value.status == status


async def test_body_within_the_limit_is_read_whole():
    """A body up to the limit comes back exactly, chunked or not."""
    body = b"x" * MAX_BODY_BYTES
    assert await read_body(chunks_of(body, 1000, []), str(len(body))) == body
    assert await read_body(chunks_of(body, 1000, []), None) == body


async def test_declared_length_over_the_limit_is_refused_before_reading():
    """A Content-Length over the limit is refused with 413 before a chunk is read."""
    taken: list[int] = []
    with rejected(413):
        await read_body(chunks_of(b"x" * 10, 10, taken), str(10 * 1024 * 1024))
    assert taken == []


async def test_undeclared_body_is_refused_at_the_first_chunk_past_the_limit():
    """Without a Content-Length, reading stops with 413 at the first chunk past the limit."""
    taken: list[int] = []
    with rejected(413):
        await read_body(chunks_of(b"x" * 10 * MAX_BODY_BYTES, 1024, taken), None)
    assert len(taken) == MAX_BODY_BYTES // 1024 + 1


def test_slack_signature_is_accepted():
    """A body signed with the secret within five minutes passes, UTF-8 or not."""
    for body in (b"command=%2Fdumptask", b"\xff\xfe"):
        check_signature(SECRET, body, str(int(NOW)), signature(body), NOW + 299)


@pytest.mark.parametrize(
    ("timestamp", "signed_with"),
    [
        (None, str(int(NOW))),
        ("", ""),
        ("yesterday", "yesterday"),
        ("1e9", "1e9"),
        ("١٢٣", "١٢٣"),
        (str(int(NOW) - 301), str(int(NOW) - 301)),
        (str(int(NOW)), str(int(NOW) + 1)),
    ],
    ids=["missing", "empty", "word", "float", "arabic-digits", "stale", "other-time"],
)
def test_bad_timestamp_or_signature_is_unauthorised(timestamp, signed_with):
    """A missing, non-numeric, stale or mismatched timestamp gets 401, never an exception."""
    body = b"command=%2Fdumptask"
    with rejected(401):
        check_signature(SECRET, body, timestamp, signature(body, signed_with), NOW)


def test_forged_signature_is_unauthorised():
    """A signature made with another secret, or not hex at all, gets 401."""
    body = b"command=%2Fdumptask"
    for forged in ("v0=" + "0" * 64, "v0=é", ""):
        with rejected(401):
            check_signature(SECRET, body, str(int(NOW)), forged, NOW)


def test_command_containing_payload_is_a_command():
    """A slash command's fields come back as fields, however often they say `payload`."""
    assert parse_body(urlencode(COMMAND).encode()) == COMMAND


def test_click_is_its_payload():
    """An interaction comes back as the JSON object of its `payload` field."""
    assert parse_body(urlencode({"payload": json.dumps(CLICK)}).encode()) == CLICK


def test_ssl_check_passes_to_bolt():
    """Slack's certificate check passes as fields, for Bolt to answer."""
    assert parse_body(b"ssl_check=1&token=x") == {"ssl_check": "1", "token": "x"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe",
        b'{"type": "block_actions"}',
        b"[1, 2]",
        b"42",
        b"text=payload",
        b"command=%2Fdumptask&user_id=U0A",
        b"payload=not-json",
        b"payload=" + b"%5B" * 100_000,
        b"payload=%5B1%5D",
        b"payload=%7B%7D",
        urlencode({"payload": json.dumps({**CLICK, "user": ["id"]})}).encode(),
        *(
            urlencode({"payload": json.dumps({**CLICK, "actions": actions})}).encode()
            for actions in ([], None, "dumptask.approve", [1], [{"value": "dt-1"}])
        ),
    ],
)
def test_anything_else_is_a_bad_request(body):
    """A body that is neither a command nor an interaction Bolt can route gets 400."""
    with rejected(400):
        parse_body(body)
