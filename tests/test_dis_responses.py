"""Error classification, written out by hand from dis-api.md's error table, row by row.

The expected kinds below are copied from the documentation, never computed from the code's own
mapping, so a wrong entry in ``bot.dis.responses`` cannot agree with its own test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from bot.dis.client import DisClient
from bot.dis.responses import classify, error_from_response, parse_retry_after
from bot.dis.retry import RetryPolicy
from bot.errors import DisError, DisErrorKind
from bot.vocabulary import TaskAction

USER = DisErrorKind.USER
BUG = DisErrorKind.BUG
AUTH = DisErrorKind.AUTH
PERMISSION = DisErrorKind.PERMISSION
CONFIGURATION = DisErrorKind.CONFIGURATION
BLOCKED = DisErrorKind.BLOCKED
THROTTLED = DisErrorKind.THROTTLED
TRANSIENT = DisErrorKind.TRANSIENT

# (HTTP status, code or None, kind): every row of dis-api.md, then the status-only answers.
DOCUMENTED = [
    (400, "DIS.4301", USER),  # stream does not exist
    (400, "DIS.4354", USER),  # dump task does not exist
    (400, "DIS.4200", BUG),  # invalid request body
    (400, "DIS.4202", BUG),  # empty request body
    (400, "DIS.4300", BUG),  # request body is empty
    (400, "DIS.4117", CONFIGURATION),  # invalid project id
    (400, "DIS.4305", THROTTLED),  # too many requests
    (400, "DIS.4309", BLOCKED),  # too many failed requests, IP blacklisted
    (403, "DIS.4116", PERMISSION),  # no DIS permission / in arrears
    (441, "DIS.4100", AUTH),  # bad/missing Authorization ... (4100-4114)
    (441, "DIS.4101", AUTH),
    (441, "DIS.4105", AUTH),
    (441, "DIS.4109", AUTH),
    (441, "DIS.4110", AUTH),
    (441, "DIS.4113", AUTH),
    (441, "DIS.4114", AUTH),
    (400, "DIS.4100", AUTH),  # an auth code is auth whatever the status
    (400, "DIS.4114", AUTH),
    (400, "DIS.4099", BUG),  # just below the auth range: not auth by its code
    (400, "DIS.4115", BUG),  # just above the auth range: not auth by its code
    (401, "APIGW.0301", AUTH),  # signature, expired signature or token
    (401, "APIG.0301", AUTH),  # the same from a dedicated gateway
    (404, "APIGW.0101", CONFIGURATION),  # API not found: wrong host, path or method
    (404, "APIG.0101", CONFIGURATION),
    (429, "APIGW.0308", THROTTLED),  # throttled by the gateway
    (429, "APIG.0308", THROTTLED),
    (500, "DIS.5000", TRANSIENT),  # system error
    (500, None, TRANSIENT),  # bare 5xx
    (502, None, TRANSIENT),
    (503, None, TRANSIENT),
    (504, None, TRANSIENT),
    (599, None, TRANSIENT),
    (401, None, AUTH),  # never transient: retried in a loop, it would lock the key
    (441, None, AUTH),
    (403, None, PERMISSION),
    (404, None, CONFIGURATION),
    (408, None, TRANSIENT),
    (429, None, THROTTLED),
    (400, None, BUG),
    (None, None, TRANSIENT),  # no answer at all
]


def row_id(row: tuple[int | None, str | None, DisErrorKind]) -> str:
    status, code, kind = row
    return f"{status}-{code or 'nocode'}-{kind}"


@pytest.mark.parametrize(("status", "code", "kind"), DOCUMENTED, ids=map(row_id, DOCUMENTED))
def test_classify_follows_the_documented_table(status, code, kind):
    """Each (status, code) of dis-api.md gets the kind the documentation gives it."""
    assert classify(status, code) is kind


# The code decides before the status does, whichever gateway prefix it has; these statuses are
# not the documented ones for these codes, so only the code can give the right kind.
CODE_FIRST = [
    (400, "APIGW.0301", AUTH),
    (400, "APIG.0301", AUTH),
    (400, "APIGW.0101", CONFIGURATION),
    (400, "APIG.0101", CONFIGURATION),
    (400, "APIGW.0308", THROTTLED),
    (400, "APIG.0308", THROTTLED),
    (503, "DIS.4301", USER),
]


@pytest.mark.parametrize(("status", "code", "kind"), CODE_FIRST, ids=map(row_id, CODE_FIRST))
def test_code_decides_before_status(status, code, kind):
    """A known code gives its kind whatever the status, for APIGW. and APIG. gateways alike."""
    assert classify(status, code) is kind


def dis_body(code: str) -> dict[str, str]:
    return {"errorCode": code, "message": f"{code} happened"}


def gateway_body(code: str) -> dict[str, str]:
    return {"error_code": code, "error_msg": f"{code} happened", "request_id": "gw-req-1"}


def answer(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body)
    request = httpx.Request("POST", "https://dis.example.com/v2/p/streams/s/transfer-tasks/action")
    return httpx.Response(status, content=content, headers=headers or {}, request=request)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [row for row in DOCUMENTED if row[0] is not None],
    ids=map(row_id, [row for row in DOCUMENTED if row[0] is not None]),
)
def test_answers_become_errors_of_the_documented_kind(status, code, kind):
    """A real answer in either body shape becomes a DisError of the documented kind and code."""
    shape = gateway_body if code and code.startswith("APIG") else dis_body
    error = error_from_response(answer(status, shape(code) if code else None))
    assert (error.kind, error.status, error.code) == (kind, status, code)


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        (USER, False),
        (BUG, False),
        (AUTH, False),
        (PERMISSION, False),
        (CONFIGURATION, False),
        (BLOCKED, False),
        (THROTTLED, True),
        (TRANSIENT, True),
    ],
)
def test_only_throttling_and_transient_failures_are_retryable(kind, retryable):
    """Auth, blocked, permission, configuration, user and bug failures are never retried."""
    assert kind.retryable is retryable


def test_every_kind_is_in_the_retryable_table():
    """A new kind must be added to the table above, saying whether it is retried."""
    assert set(DisErrorKind) == {
        USER,
        BUG,
        AUTH,
        PERMISSION,
        CONFIGURATION,
        BLOCKED,
        THROTTLED,
        TRANSIENT,
    }


@pytest.mark.parametrize(
    ("response", "not_received"),
    [
        (answer(400, dis_body("DIS.4301")), True),
        (answer(400, dis_body("DIS.4305")), True),
        (answer(403, dis_body("DIS.4116")), True),
        (answer(441, dis_body("DIS.4100")), True),
        (answer(401, gateway_body("APIGW.0301")), True),
        (answer(404, gateway_body("APIGW.0101")), True),
        (answer(429, gateway_body("APIGW.0308")), True),
        (answer(429), True),
        (answer(408), True),
        (answer(503, gateway_body("APIGW.0202")), True),  # the gateway turned it away
        (answer(503, gateway_body("APIG.0202")), True),
        (answer(500, dis_body("DIS.5000")), False),  # DIS itself failed, maybe half-way
        (answer(500), False),
        (answer(502), False),
        (answer(503), False),  # no gateway body: a proxy we know nothing of
        (answer(504), False),
        (answer(502, b"<html>Bad Gateway</html>"), False),
        (answer(504, gateway_body("APIGW.0203")), False),  # the gateway timed out waiting on DIS
        (answer(502, gateway_body("APIGW.0202")), False),  # DIS's answer was bad: it had the call
    ],
    ids=lambda value: (
        f"{value.status_code}-{value.text[:40]}" if isinstance(value, httpx.Response) else None
    ),
)
def test_certainly_not_received_only_for_refusals(response, not_received):
    """A 4xx, or a 503 in the gateway's own shape, is a refusal; any other 5xx may have landed."""
    assert error_from_response(response).certainly_not_received is not_received


def test_error_keeps_code_message_and_request_id_of_each_shape():
    """DIS's shape takes the request id from the header, the gateway's from its body."""
    from_dis = error_from_response(answer(400, dis_body("DIS.4301"), {"X-Request-Id": "hdr-req-1"}))
    from_gateway = error_from_response(
        answer(401, gateway_body("APIGW.0301"), {"X-Request-Id": "hdr-req-2"})
    )
    assert (from_dis.code, from_dis.message, from_dis.request_id) == (
        "DIS.4301",
        "DIS.4301 happened",
        "hdr-req-1",
    )
    assert (from_gateway.code, from_gateway.message, from_gateway.request_id) == (
        "APIGW.0301",
        "APIGW.0301 happened",
        "gw-req-1",
    )


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("3", 3.0), ("0", 0.0), ("-5", 0.0), ("soon", None), (None, None)],
)
def test_retry_after_header_is_read_as_seconds(retry_after, seconds):
    """A numeric Retry-After is the wait in seconds; a negative one is no wait, garbage none."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    assert error_from_response(answer(429, None, headers)).retry_after == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("Sat, 28 Nov 2026 12:00:30 GMT", 30.0),
        ("Sat, 28 Nov 2026 11:59:00 GMT", 0.0),
        ("Sat, 28 Nov 2026 12:00:00 GMT", 0.0),
    ],
)
def test_retry_after_may_be_an_http_date(value, seconds):
    """A Retry-After date is the wait until then, and never negative."""
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == seconds


def test_retry_after_date_without_a_now_counts_from_the_real_time():
    """Without an explicit now, a date is measured from the current time."""
    assert parse_retry_after("Mon, 01 Jan 3000 00:00:00 GMT") > 3e10
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0


def test_an_answer_without_a_request_id_has_none():
    """No X-Request-Id and no request_id in the body leave the request id unknown, not empty."""
    assert error_from_response(answer(400, dis_body("DIS.4301"), {})).request_id is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "DIS answered HTTP 502 with an unreadable body"),
        (b"  <html>Bad Gateway</html>\n", "DIS answered HTTP 502 with an unreadable body: <html>Bad Gateway</html>"),
        (b"x" * 200, "DIS answered HTTP 502 with an unreadable body: " + "x" * 120),
    ],
    ids=["empty", "html", "long"],
)  # fmt: skip
def test_an_unreadable_answer_quotes_its_start(body, message):
    """A body that is not JSON is quoted, trimmed to 120 characters, or not at all when empty."""
    assert error_from_response(answer(502, body)).message == message


def test_an_unreadable_answer_never_quotes_the_token_sent():
    """A proxy page echoing the request's security token is quoted without it."""
    request = httpx.Request("GET", "https://dis.example", headers={"X-Security-Token": "SECRET1"})
    response = httpx.Response(502, content=b"<html>token SECRET1</html>", request=request)
    message = error_from_response(response).message
    assert "SECRET1" not in message
    assert message.endswith("<html>token [redacted]</html>")


def raising(exception: type[httpx.TransportError]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception("simulated", request=request)

    return httpx.MockTransport(handler)


class NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.mark.parametrize(
    ("exception", "not_received", "retries"),
    [
        (httpx.ConnectError, True, 2),  # no connection: it cannot have reached DIS
        (httpx.ConnectTimeout, True, 2),
        (httpx.PoolTimeout, True, 2),  # never left the bot's connection pool
        (httpx.ReadTimeout, False, 0),  # sent, then no answer: it may have been carried out
        (httpx.WriteTimeout, False, 0),
        (httpx.ReadError, False, 0),
        (httpx.RemoteProtocolError, False, 0),  # dropped connection after sending
    ],
)
async def test_transport_failures_say_whether_the_call_could_have_landed(
    exception, not_received, retries
):
    """Only failures before the request left are "certainly not received", so act retries them."""
    sleep = NoSleep()
    http = httpx.AsyncClient(base_url="https://dis.example.com", transport=raising(exception))
    client = DisClient(http, "p", RetryPolicy(attempts=3, sleep=sleep, jitter=lambda: 1.0))
    async with http:
        with pytest.raises(DisError) as caught:
            await client.act("orders-stream", TaskAction.START, ["9dSu1wfCytSk1aOLxvF"])
    assert caught.value.kind is TRANSIENT
    assert caught.value.certainly_not_received is not_received
    assert len(sleep.delays) == retries
    late = exception in (httpx.ReadTimeout, httpx.WriteTimeout)
    what = "did not answer in time" if late else "could not be reached"
    assert caught.value.message == f"DIS {what} ({exception.__name__})"
