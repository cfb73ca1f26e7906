"""AK/SK request signing ("SDK-HMAC-SHA256"), the API gateway's scheme in front of DIS.

``sign`` is a pure function of the request and a clock reading, pinned by the official test
vector in ``dis-api.md``; ``AkSkAuth`` applies it to every ``httpx`` request, afresh on each
retry, because the gateway refuses a date more than 15 minutes off.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

import httpx

from bot.clock import utc_now

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import SecretStr

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
SIGNED_HEADER_NAMES = ("host", "content-type", "x-sdk-date", "x-project-id", "x-security-token")


@dataclass(frozen=True, slots=True)
class Credentials:
    """The service account's access key, secret key and optional security token."""

    access_key: str
    secret_key: SecretStr = field(repr=False)
    security_token: SecretStr | None = field(default=None, repr=False)


def _encode(text: str) -> str:
    """Percent-encode everything but unreserved characters, as the gateway does."""
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """Encode each path segment and add the trailing slash used for signing only."""
    encoded = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def canonical_query(query: str) -> str:
    """Sort the query parameters by name (then value) and encode each ``key=value`` pair."""
    pairs = []
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        pairs.append((_encode(unquote(key)), _encode(unquote(value))))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def canonical_request(
    method: str, url: str, headers: Mapping[str, str], body: bytes
) -> tuple[str, str]:
    """Return the canonical request and its signed-header list for these request parts.

    Only the headers the gateway expects to be signed are included, and only when present. (The
    DIS stand-in computes its own canonical request from what arrives on the wire, on purpose,
    so that a mistake here cannot hide behind the same mistake there.)
    """
    parts = urlsplit(url)
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    names = sorted(name for name in SIGNED_HEADER_NAMES if name in lowered)
    header_lines = "".join(f"{name}:{lowered[name]}\n" for name in names)
    signed_headers = ";".join(names)
    lines = [
        method.upper(),
        canonical_uri(parts.path or "/"),
        canonical_query(parts.query),
        header_lines,
        signed_headers,
        hashlib.sha256(body).hexdigest(),
    ]
    return "\n".join(lines), signed_headers


def string_to_sign(canonical: str, sdk_date: str) -> str:
    """Combine the algorithm, the date and the canonical request's hash."""
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    """HMAC-SHA256 keyed with the secret key itself, in lower-case hex."""
    return hmac.new(secret_key.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    when: datetime,
) -> dict[str, str]:
    """Return the headers to add so the gateway accepts this request at time ``when``.

    ``headers`` must already hold ``Host``, ``Content-Type`` and ``X-Project-Id``; the result
    holds ``X-Sdk-Date``, ``Authorization`` and, for temporary credentials, ``X-Security-Token``.
    """
    added = {"X-Sdk-Date": when.astimezone(UTC).strftime(DATE_FORMAT)}
    if credentials.security_token is not None:
        added["X-Security-Token"] = credentials.security_token.get_secret_value()
    canonical, signed_headers = canonical_request(method, url, {**headers, **added}, body)
    to_sign = string_to_sign(canonical, added["X-Sdk-Date"])
    digest = signature(credentials.secret_key.get_secret_value(), to_sign)
    added["Authorization"] = (
        f"{ALGORITHM} Access={credentials.access_key}, "
        f"SignedHeaders={signed_headers}, Signature={digest}"
    )
    return added


class AkSkAuth(httpx.Auth):
    """Signs each outgoing request over the exact body bytes that will be sent."""

    requires_request_body = True

    def __init__(self, credentials: Credentials, clock: Callable[[], datetime] = utc_now) -> None:
        self._credentials = credentials
        self._clock = clock

    def __repr__(self) -> str:
        return f"AkSkAuth(access_key={self._credentials.access_key!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the signature headers; ``httpx`` has already set ``Host`` and the body."""
        headers = dict(request.headers.items())
        headers.setdefault("host", request.url.netloc.decode("ascii"))
        added = sign(
            request.method,
            str(request.url),
            headers,
            request.content,
            self._credentials,
            self._clock(),
        )
        request.headers.update(added)
        yield request
