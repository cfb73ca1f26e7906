"""Turn a failed DIS answer into one ``DisError``, whichever of its two body shapes it has.

DIS itself answers ``{"errorCode", "message"}``; the API gateway in front of it answers
``{"error_code", "error_msg", "request_id"}``; proxies answer HTML. All three become the same
typed error, classified following the table in ``dis-api.md``.

This is also the one place where text from DIS enters the bot, so credentials are scrubbed here,
before anything logs, stores or shows it: the gateway's APIGW.0301 message carries the canonical
request it computed, ``x-security-token:<token>`` included (newlines rendered as ``|``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from bot.errors import DisError, DisErrorKind

_BY_CODE = {
    "DIS.4301": DisErrorKind.USER,
    "DIS.4354": DisErrorKind.USER,
    "DIS.4200": DisErrorKind.BUG,
    "DIS.4202": DisErrorKind.BUG,
    "DIS.4300": DisErrorKind.BUG,
    "DIS.4117": DisErrorKind.CONFIGURATION,
    "DIS.4305": DisErrorKind.THROTTLED,
    "DIS.4309": DisErrorKind.BLOCKED,
    "DIS.4116": DisErrorKind.PERMISSION,
    "DIS.5000": DisErrorKind.TRANSIENT,
    "APIGW.0301": DisErrorKind.AUTH,
    "APIGW.0101": DisErrorKind.CONFIGURATION,
    "APIGW.0308": DisErrorKind.THROTTLED,
}
_DIS_AUTH_CODE = re.compile(r"^DIS\.41(0\d|1[0-4])$")
MAX_MESSAGE_CHARS = 500
CREDENTIAL_HEADERS = ("x-security-token", "x-auth-token", "x-subject-token", "authorization")
REDACTED = "[redacted]"
# A credential header's name, its separator (``:`` in a canonical request, ``=`` or a JSON
# ``": "`` elsewhere) and its value, up to the end of the line or the gateway's ``|``.
_CREDENTIAL_VALUE = re.compile(
    rf"\b({'|'.join(map(re.escape, CREDENTIAL_HEADERS))})([\"']?\s*[:=]\s*)[^|\r\n]*",
    re.IGNORECASE,
)


def scrub(text: str, sent: Iterable[str] = ()) -> str:
    """``text`` without the value of any credential header, nor any credential ``sent``.

    The rest stays, so an operator can still diff a rejected canonical request.
    """
    for secret in sent:
        if secret:
            text = text.replace(secret, REDACTED)
    return _CREDENTIAL_VALUE.sub(rf"\1\2{REDACTED}", text)


def _sent_credentials(response: httpx.Response) -> list[str]:
    """The credential header values of the request that got ``response``, if it is known."""
    try:
        headers = response.request.headers
    except RuntimeError:  # a response built without its request
        return []
    return [headers[name] for name in CREDENTIAL_HEADERS if name in headers]


def classify(status: int | None, code: str | None) -> DisErrorKind:
    """Say what a failure means for the caller, from its code first and its HTTP status next."""
    if code:
        normalised = code.replace("APIG.", "APIGW.", 1) if code.startswith("APIG.") else code
        if normalised in _BY_CODE:
            return _BY_CODE[normalised]
        if _DIS_AUTH_CODE.match(normalised):
            return DisErrorKind.AUTH
    if status is None or status >= 500 or status == 408:
        return DisErrorKind.TRANSIENT
    if status == 429:
        return DisErrorKind.THROTTLED
    if status in (401, 441):
        return DisErrorKind.AUTH
    if status == 403:
        return DisErrorKind.PERMISSION
    if status == 404:
        return DisErrorKind.CONFIGURATION
    return DisErrorKind.BUG


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Read ``Retry-After`` as seconds, whether given as a number or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_from_response(response: httpx.Response) -> DisError:
    """Build the typed error for a non-2xx answer (or a 2xx whose body was unreadable)."""
    header_request_id = response.headers.get("X-Request-Id")
    code = message = body_request_id = None
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error_code")
        message = body.get("message") or body.get("error_msg")
        body_request_id = body.get("request_id")
    sent = _sent_credentials(response)
    if message:
        message = scrub(str(message), sent)
    else:
        snippet = scrub(response.text, sent).strip()[:120]
        message = f"DIS answered HTTP {response.status_code} with an unreadable body" + (
            f": {snippet}" if snippet else ""
        )
    # A 503 in the gateway's own shape means the gateway turned the call away. A 502 or 504 from
    # it means it passed the call on and got a bad or late answer: DIS may have carried it out.
    gateway_refusal = (
        response.status_code == 503 and bool(code) and str(code).startswith(("APIGW.", "APIG."))
    )
    return DisError(
        classify(response.status_code, str(code) if code else None),
        message[:MAX_MESSAGE_CHARS],
        status=response.status_code,
        code=str(code) if code else None,
        request_id=str(body_request_id or header_request_id or "") or None,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        # A 4xx is a refusal, by the gateway or by DIS; a 5xx is one only as a gateway 503.
        certainly_not_received=response.is_client_error or gateway_refusal,
    )


def malformed_body_error(response: httpx.Response, detail: str) -> DisError:
    """A 2xx answer whose body is not what the API documents: treated as transient."""
    return DisError(
        DisErrorKind.TRANSIENT,
        f"DIS answered with a body the bot could not read ({detail})",
        status=response.status_code,
        request_id=response.headers.get("X-Request-Id"),
    )
