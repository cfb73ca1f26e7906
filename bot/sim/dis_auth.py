"""Checks AK/SK ("SDK-HMAC-SHA256") signatures the way the API gateway in front of DIS does.

This is deliberately a second, independent implementation of the scheme in ``dis-api.md``: it
rebuilds the canonical request from what arrived on the wire (the raw method, path and query,
the headers the client *says* it signed, the exact body bytes) rather than reusing the bot's
signer, so a mistake in the signer cannot be mirrored here and pass unnoticed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from collections.abc import Mapping

ALGORITHM = "SDK-HMAC-SHA256"
MAX_CLOCK_SKEW = timedelta(minutes=15)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_DATE = re.compile(r"\d{8}T\d{6}Z")
_PREFIX = "Incorrect IAM authentication information: "


@dataclass(frozen=True, slots=True)
class Credential:
    """An AK/SK pair the stand-in accepts; with a token it acts as a temporary credential."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class WireRequest:
    """A request exactly as received: raw path and query, lower-cased header names, body bytes."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


class SignatureRejectedError(Exception):
    """The gateway refused the request; the message is the ``error_msg`` of its APIGW.0301."""


def verify(
    request: WireRequest, credentials: Mapping[str, Credential], now: datetime
) -> Credential:
    """Return the credential that signed ``request``, or raise ``SignatureRejectedError``.

    The checks run in the gateway's order: the Authorization header, the access key, the date
    (at most 15 minutes off ``now``), the mandatory signed headers, the security token, and
    last the signature itself, whose failure message carries the canonical request computed
    here with ``|`` for newlines so it can be diffed against the client's.
    """
    header = request.headers.get("authorization")
    if not header:
        raise SignatureRejectedError(_PREFIX + "Authorization header is missing")
    access_key, signed_headers, claimed = _parse_authorization(header)
    credential = credentials.get(access_key)
    if credential is None:
        raise SignatureRejectedError(_PREFIX + f"access key {access_key} does not exist")
    sdk_date = request.headers.get("x-sdk-date", "")
    _check_date(sdk_date, now)
    names = signed_headers.split(";")
    lowered = [name.lower() for name in names]
    if "host" not in lowered or "x-sdk-date" not in lowered:
        raise SignatureRejectedError(
            _PREFIX + f"SignedHeaders must include host and x-sdk-date, got {signed_headers}"
        )
    if credential.security_token is not None:
        _check_token(request, credential.security_token, lowered)
    missing = [name for name in lowered if name not in request.headers]
    if missing:
        raise SignatureRejectedError(
            _PREFIX + f"verify aksk signature fail, signed header {missing[0]} is missing"
        )
    canonical = canonical_request(request, names)
    expected = _hmac_hex(credential.secret_key, _string_to_sign(canonical, sdk_date))
    if not hmac.compare_digest(expected, claimed):
        flattened = canonical.replace("\n", "|")
        raise SignatureRejectedError(
            f"{_PREFIX}verify aksk signature fail, SignedHeaders: {signed_headers}, "
            f"CanonicalRequest: {flattened}"
        )
    return credential


def canonical_request(request: WireRequest, signed_names: list[str]) -> str:
    """The canonical request over the headers listed in ``SignedHeaders``, in the listed order."""
    header_lines = "".join(
        f"{name.lower()}:{request.headers[name.lower()].strip()}\n" for name in signed_names
    )
    if request.headers.get("x-sdk-content-sha256") == UNSIGNED_PAYLOAD:
        payload = UNSIGNED_PAYLOAD
    else:
        payload = hashlib.sha256(request.body).hexdigest()
    return "\n".join(
        [
            request.method.upper(),
            _canonical_uri(request.path),
            _canonical_query(request.query),
            header_lines,
            ";".join(name.lower() for name in signed_names),
            payload,
        ]
    )


def _parse_authorization(header: str) -> tuple[str, str, str]:
    """Split ``SDK-HMAC-SHA256 Access=.., SignedHeaders=.., Signature=..`` into its three values."""
    algorithm, _, rest = header.strip().partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value.strip()
    access_key = fields.get("Access", "")
    signed_headers = fields.get("SignedHeaders", "")
    claimed = fields.get("Signature", "")
    if algorithm != ALGORITHM or not (access_key and signed_headers and claimed):
        raise SignatureRejectedError(
            _PREFIX + f"Authorization header is malformed, expected {ALGORITHM} "
            "Access=..., SignedHeaders=..., Signature=..."
        )
    return access_key, signed_headers, claimed


def _check_date(sdk_date: str, now: datetime) -> None:
    """Refuse a missing or unparseable X-Sdk-Date, or one more than 15 minutes off ``now``."""
    if not _DATE.fullmatch(sdk_date):
        raise SignatureRejectedError(
            _PREFIX + f"signature expired: X-Sdk-Date {sdk_date!r} is missing or malformed"
        )
    try:
        signed_at = datetime.strptime(sdk_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRejectedError(
            _PREFIX + f"signature expired: X-Sdk-Date {sdk_date!r} is not a valid time"
        ) from None
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureRejectedError(
            _PREFIX + f"signature expired: X-Sdk-Date {sdk_date} is more than 15 minutes "
            f"from the gateway's clock {now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        )


def _check_token(request: WireRequest, token: str, signed: list[str]) -> None:
    """A temporary credential is only valid with its own token, sent and signed."""
    sent = request.headers.get("x-security-token")
    if sent is None:
        raise SignatureRejectedError(_PREFIX + "X-Security-Token is required for this access key")
    if "x-security-token" not in signed:
        raise SignatureRejectedError(_PREFIX + "X-Security-Token must be in SignedHeaders")
    if not hmac.compare_digest(sent.encode(), token.encode()):
        raise SignatureRejectedError(_PREFIX + "the security token is invalid or expired")


def _canonical_uri(raw_path: str) -> str:
    """Decode the path, re-encode each segment (keeping ``~``) and end it with ``/``."""
    encoded = "/".join(quote(segment, safe="~") for segment in unquote(raw_path).split("/"))
    return encoded if encoded.endswith("/") else f"{encoded}/"


def _canonical_query(raw_query: str) -> str:
    """Sort parameters by name, each name's values too, and re-encode every ``key=value``."""
    grouped: dict[str, list[str]] = {}
    for item in raw_query.split("&"):
        if item:
            key, _, value = item.partition("=")
            grouped.setdefault(unquote(key), []).append(unquote(value))
    return "&".join(
        f"{quote(key, safe='~')}={quote(value, safe='~')}"
        for key in sorted(grouped)
        for value in sorted(grouped[key])
    )


def _string_to_sign(canonical: str, sdk_date: str) -> str:
    return "\n".join([ALGORITHM, sdk_date, hashlib.sha256(canonical.encode()).hexdigest()])


def _hmac_hex(secret_key: str, message: str) -> str:
    return hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()
