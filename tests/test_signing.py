"""AK/SK signing: the official test vector, byte for byte, and the parts it is built from."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from pydantic import SecretStr

from bot.dis.signing import (
    AkSkAuth,
    Credentials,
    canonical_query,
    canonical_request,
    canonical_uri,
    sign,
)

VECTOR_URL = (
    "https://dis.eu-de.otc.t-systems.com/v2/0123456789abcdef0123456789abcdef"
    "/streams/my-stream/transfer-tasks/action"
)
VECTOR_HEADERS = {
    "Content-Type": "application/json",
    "X-Project-Id": "0123456789abcdef0123456789abcdef",
    "Host": "dis.eu-de.otc.t-systems.com",
}
VECTOR_BODY = b'{"action": "start", "tasks": [{"id": "9dSu1wfCytSk1aOLxvF"}]}'
VECTOR_WHEN = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
VECTOR_AUTHORIZATION = (
    "SDK-HMAC-SHA256 Access=AKEXAMPLE, "
    "SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
    "Signature=be938d873e6e4aeda26fd4e636b31e7ccf5dfa5d89e65961c71d39053d17f568"
)
CREDENTIALS = Credentials("AKEXAMPLE", SecretStr("SKEXAMPLE"))


def test_official_vector_authorization_matches():
    """The signer reproduces the official Authorization header byte for byte."""
    added = sign("POST", VECTOR_URL, VECTOR_HEADERS, VECTOR_BODY, CREDENTIALS, VECTOR_WHEN)
    assert added["X-Sdk-Date"] == "20250101T120000Z"
    assert added["Authorization"] == VECTOR_AUTHORIZATION


def test_official_vector_intermediate_hashes_match():
    """The body hash and canonical request hash match the vector's intermediate values."""
    headers = {**VECTOR_HEADERS, "X-Sdk-Date": "20250101T120000Z"}
    canonical, signed = canonical_request("POST", VECTOR_URL, headers, VECTOR_BODY)
    assert canonical.endswith("a3b9503ea4a3f59ee5ba6bad5d567a1b06f05ed3674e2f7ad760af3a62fd5bc4")
    assert signed == "content-type;host;x-project-id;x-sdk-date"
    assert (
        hashlib.sha256(canonical.encode()).hexdigest()
        == "f4d0f68924c2698c4258cd7fc15583aab7cb000daabd063150b40fe9822eee20"
    )


def test_httpx_auth_signs_the_exact_bytes_sent():
    """AkSkAuth, plugged into httpx with a fixed clock, produces the vector's header."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    client = httpx.Client(
        transport=httpx.MockTransport(record),
        auth=AkSkAuth(CREDENTIALS, clock=lambda: VECTOR_WHEN),
        headers={k: v for k, v in VECTOR_HEADERS.items() if k != "Host"},
    )
    with client:
        client.post(VECTOR_URL, content=VECTOR_BODY)
    assert seen[0].headers["Authorization"] == VECTOR_AUTHORIZATION
    assert seen[0].url.path.endswith("/action")


def test_canonical_uri_adds_trailing_slash_for_signing_only():
    """The signed path ends with '/', and each segment is percent-encoded."""
    assert (
        canonical_uri("/v2/p/streams/a b/transfer-tasks") == "/v2/p/streams/a%20b/transfer-tasks/"
    )
    assert canonical_uri("/v2/p/") == "/v2/p/"


def test_canonical_query_is_sorted_and_encoded():
    """Query parameters are sorted by name and encoded with %20 for spaces."""
    assert canonical_query("b=2&a=x y&a=1") == "a=1&a=x%20y&b=2"
    assert canonical_query("") == ""


def test_security_token_is_sent_and_signed():
    """With temporary credentials, X-Security-Token is added and listed in SignedHeaders."""
    temporary = Credentials("AK", SecretStr("SK"), SecretStr("TOKEN"))
    added = sign("GET", VECTOR_URL, VECTOR_HEADERS, b"", temporary, VECTOR_WHEN)
    assert added["X-Security-Token"] == "TOKEN"
    assert "x-security-token" in added["Authorization"].split("SignedHeaders=")[1]


def test_signature_changes_with_body():
    """A different body gives a different signature, so a tampered body is caught."""
    one = sign("POST", VECTOR_URL, VECTOR_HEADERS, VECTOR_BODY, CREDENTIALS, VECTOR_WHEN)
    two = sign("POST", VECTOR_URL, VECTOR_HEADERS, VECTOR_BODY + b" ", CREDENTIALS, VECTOR_WHEN)
    assert one["Authorization"] != two["Authorization"]


def test_auth_repr_hides_the_secret():
    """The auth object's repr names the access key only."""
    assert "SKEXAMPLE" not in repr(AkSkAuth(CREDENTIALS))
    assert "SKEXAMPLE" not in repr(CREDENTIALS)


def test_canonical_query_encodes_slashes_and_keeps_equals_signs_in_values():
    """A value's ``/`` is encoded and only the first ``=`` separates the name from the value."""
    assert canonical_query("path=a/b&k=v=w") == "k=v%3Dw&path=a%2Fb"


def test_a_url_without_a_path_is_signed_as_the_root():
    """``https://host`` and ``https://host/`` are the same request to the gateway."""
    bare = sign("GET", "https://dis.example", VECTOR_HEADERS, b"", CREDENTIALS, VECTOR_WHEN)
    root = sign("GET", "https://dis.example/", VECTOR_HEADERS, b"", CREDENTIALS, VECTOR_WHEN)
    assert bare["Authorization"] == root["Authorization"]


@pytest.fixture
def machine_in_tokyo() -> Iterator[None]:
    """The machine's local zone is Tokyo for the test, and back to what it was after."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        yield
    time.tzset()


@pytest.mark.usefixtures("machine_in_tokyo")
def test_the_date_signed_is_utc_whatever_the_machine_zone():
    """X-Sdk-Date is UTC even on a machine set to another zone, given a time in a third zone."""
    when = datetime(2025, 1, 1, 13, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    added = sign("POST", VECTOR_URL, VECTOR_HEADERS, VECTOR_BODY, CREDENTIALS, when)
    assert added["X-Sdk-Date"] == "20250101T120000Z"
    assert added["Authorization"] == VECTOR_AUTHORIZATION
