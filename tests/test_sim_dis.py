"""The DIS stand-in, exercised over real HTTP with requests signed by the bot's own signer."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.dis.signing import AkSkAuth, Credentials, sign
from bot.sim.dis import SAMPLE_DATA, Credential, DisStandIn, Fault, TaskSpec, TaskState
from bot.sim.dis_auth import SignatureRejectedError, WireRequest, verify
from bot.sim.dis_data import DataFileError, parse_data

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "0123456789abcdef0123456789abcdef"
AK, SK = "TESTAK", "TESTSK"
STREAM = "orders-stream"
BASE = f"/v2/{PROJECT}/streams/{STREAM}/transfer-tasks"
RUNNING_ID = "As805BudhcH1lDs6gbn"
PAUSED_ID = "9dSu1wfCytSk1aOLxvF"
ERROR_ID = "Kq3ZtV8mYw2Lp0Rc7Hd"
STICKY_ID = "Gt1Ws4Pn7Ba9Kx3Lq6Y"
HEX32 = re.compile(r"[0-9a-f]{32}")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """The current reading."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


class FakeWallClock:
    """A wall clock starting at the real time, moved by hand, so signatures stay in range."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        """The current reading."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)


def _tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            "orders-to-obs",
            TaskState.RUNNING,
            task_id=RUNNING_ID,
            create_time=1,
            last_transfer_timestamp=2,
        ),
        TaskSpec(
            "orders-archive",
            TaskState.PAUSED,
            task_id=PAUSED_ID,
            create_time=3,
            last_transfer_timestamp=4,
        ),
        TaskSpec("orders-to-dli", TaskState.ERROR, task_id=ERROR_ID),
        TaskSpec("orders-broken", TaskState.ERROR, task_id=STICKY_ID, sticky_error=True),
    ]


def _stand_in(
    clock: FakeClock,
    *,
    credentials: list[Credential] | None = None,
    start_delay: float = 2.0,
    omit_task_id: bool = False,
    wall_clock: FakeWallClock | None = None,
    seed: int = 7,
) -> DisStandIn:
    return DisStandIn(
        project_id=PROJECT,
        credentials=credentials or [Credential(AK, SK)],
        streams={STREAM: _tasks()},
        start_delay=start_delay,
        stop_delay=1.0,
        omit_task_id=omit_task_id,
        clock=clock,
        wall_clock=wall_clock or (lambda: datetime.now(UTC)),
        seed=seed,
    )


def _auth(
    credentials: Credentials | None = None, clock: Callable[[], datetime] | None = None
) -> AkSkAuth:
    credentials = credentials or Credentials(AK, SecretStr(SK))
    return AkSkAuth(credentials) if clock is None else AkSkAuth(credentials, clock)


def _client(
    dis: DisStandIn,
    credentials: Credentials | None = None,
    clock: Callable[[], datetime] | None = None,
) -> httpx.Client:
    return httpx.Client(
        base_url=dis.url,
        auth=_auth(credentials, clock),
        headers={"Content-Type": "application/json", "X-Project-Id": PROJECT},
        timeout=5,
    )


def _action(action: str, *ids: str) -> dict[str, object]:
    return {"action": action, "tasks": [{"id": task_id} for task_id in ids]}


def _states(client: httpx.Client) -> dict[str, str]:
    response = client.get(BASE)
    assert response.status_code == 200
    return {task["task_name"]: task["state"] for task in response.json()["tasks"]}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dis(clock: FakeClock) -> Iterator[DisStandIn]:
    with _stand_in(clock) as stand_in:
        yield stand_in


@pytest.fixture
def client(dis: DisStandIn) -> Iterator[httpx.Client]:
    with _client(dis) as http:
        yield http


# The three calls and the task lifecycle.


def test_list_returns_every_task_with_the_quota(client: httpx.Client) -> None:
    """Listing a stream returns its tasks with ids, states and epoch-millisecond times."""
    response = client.get(BASE)
    assert response.status_code == 200
    body = response.json()
    assert body["total_number"] == 4
    assert body["quota"] == 5
    assert body["tasks"][0] == {
        "task_id": RUNNING_ID,
        "task_name": "orders-to-obs",
        "destination_type": "OBS",
        "state": "RUNNING",
        "create_time": 1,
        "last_transfer_timestamp": 2,
    }


def test_every_response_carries_a_request_id(client: httpx.Client) -> None:
    """Successful and failed answers both carry a 32-hex-digit X-Request-Id."""
    ok = client.get(BASE)
    missing = client.get(f"/v2/{PROJECT}/streams/nope/transfer-tasks")
    assert HEX32.fullmatch(ok.headers["X-Request-Id"])
    assert HEX32.fullmatch(missing.headers["X-Request-Id"])
    assert ok.headers["X-Request-Id"] != missing.headers["X-Request-Id"]


def test_describe_finds_a_task_by_name(client: httpx.Client) -> None:
    """Describing a task by name returns its id, state and a minimal OBS destination."""
    response = client.get(f"{BASE}/orders-archive")
    assert response.status_code == 200
    body = response.json()
    assert body["task_id"] == PAUSED_ID
    assert body["task_name"] == "orders-archive"
    assert body["stream_name"] == STREAM
    assert body["state"] == "PAUSED"
    assert body["obs_destination_description"]["task_name"] == "orders-archive"


def test_action_answers_200_with_an_empty_body(client: httpx.Client) -> None:
    """A batch start answers 200 with nothing in the body, like the real service."""
    response = client.post(f"{BASE}/action", json=_action("start", PAUSED_ID))
    assert response.status_code == 200
    assert response.content == b""


def test_start_goes_through_starting_to_running_after_the_delay(
    client: httpx.Client, clock: FakeClock
) -> None:
    """A started PAUSED task shows STARTING until the start delay passes, then RUNNING."""
    client.post(f"{BASE}/action", json=_action("start", PAUSED_ID))
    assert _states(client)["orders-archive"] == "STARTING"
    clock.advance(1.9)
    assert _states(client)["orders-archive"] == "STARTING"
    clock.advance(0.1)
    assert _states(client)["orders-archive"] == "RUNNING"


def test_start_without_a_delay_is_running_at_once(clock: FakeClock) -> None:
    """With no start delay the next list already shows RUNNING."""
    with _stand_in(clock, start_delay=0.0) as dis, _client(dis) as client:
        client.post(f"{BASE}/action", json=_action("start", PAUSED_ID))
        assert _states(client)["orders-archive"] == "RUNNING"


def test_a_task_that_starts_running_gets_a_fresh_transfer_time(clock: FakeClock) -> None:
    """The last transfer timestamp is refreshed when a task reaches RUNNING."""
    wall = FakeWallClock()
    with _stand_in(clock, wall_clock=wall) as dis, _client(dis) as client:
        wall.advance(60)
        client.post(f"{BASE}/action", json=_action("start", PAUSED_ID))
        clock.advance(2)
        task = client.get(f"{BASE}/orders-archive").json()
    assert task["last_transfer_timestamp"] == int(wall.now.timestamp() * 1000)


def test_stop_pauses_a_running_task_after_the_stop_delay(
    client: httpx.Client, clock: FakeClock
) -> None:
    """A stopped RUNNING task keeps showing RUNNING until the stop delay passes."""
    client.post(f"{BASE}/action", json=_action("stop", RUNNING_ID))
    assert _states(client)["orders-to-obs"] == "RUNNING"
    clock.advance(1)
    assert _states(client)["orders-to-obs"] == "PAUSED"


def test_stop_leaves_a_paused_task_paused(client: httpx.Client, clock: FakeClock) -> None:
    """Stopping a PAUSED task changes nothing."""
    client.post(f"{BASE}/action", json=_action("stop", PAUSED_ID))
    clock.advance(5)
    assert _states(client)["orders-archive"] == "PAUSED"


@pytest.mark.parametrize("state", [TaskState.ERROR, TaskState.ABNORMAL])
def test_start_recovers_a_failed_task(
    dis: DisStandIn, client: httpx.Client, clock: FakeClock, state: TaskState
) -> None:
    """An ERROR (not sticky) or ABNORMAL task starts like a paused one."""
    dis.set_state(STREAM, ERROR_ID, state)
    client.post(f"{BASE}/action", json=_action("start", ERROR_ID))
    assert _states(client)["orders-to-dli"] == "STARTING"
    clock.advance(2)
    assert _states(client)["orders-to-dli"] == "RUNNING"


def test_start_cancels_a_pending_stop(client: httpx.Client, clock: FakeClock) -> None:
    """Starting a task that is still being stopped keeps it RUNNING."""
    client.post(f"{BASE}/action", json=_action("stop", RUNNING_ID))
    client.post(f"{BASE}/action", json=_action("start", RUNNING_ID))
    clock.advance(5)
    assert _states(client)["orders-to-obs"] == "RUNNING"


def test_stop_during_starting_ends_paused(client: httpx.Client, clock: FakeClock) -> None:
    """A task stopped while STARTING shows STARTING until the stop delay, then PAUSED."""
    client.post(f"{BASE}/action", json=_action("start", PAUSED_ID))
    client.post(f"{BASE}/action", json=_action("stop", PAUSED_ID))
    assert _states(client)["orders-archive"] == "STARTING"
    clock.advance(1)
    assert _states(client)["orders-archive"] == "PAUSED"
    clock.advance(5)
    assert _states(client)["orders-archive"] == "PAUSED"


def test_a_sticky_error_survives_start(client: httpx.Client, clock: FakeClock) -> None:
    """A task with a sticky error stays in ERROR however often it is started."""
    response = client.post(f"{BASE}/action", json=_action("start", STICKY_ID))
    clock.advance(10)
    assert response.status_code == 200
    assert _states(client)["orders-broken"] == "ERROR"


def test_one_call_starts_several_tasks(client: httpx.Client, clock: FakeClock) -> None:
    """A batch start moves every listed task."""
    client.post(f"{BASE}/action", json=_action("start", PAUSED_ID, ERROR_ID))
    clock.advance(2)
    states = _states(client)
    assert (states["orders-archive"], states["orders-to-dli"]) == ("RUNNING", "RUNNING")


def test_omit_task_id_drops_ids_from_the_list_only(clock: FakeClock) -> None:
    """With omit_task_id the list has no task_id, while describe still gives it."""
    with _stand_in(clock, omit_task_id=True) as dis, _client(dis) as client:
        listed = client.get(BASE).json()["tasks"]
        described = client.get(f"{BASE}/orders-archive").json()
    assert all("task_id" not in task for task in listed)
    assert described["task_id"] == PAUSED_ID


def test_omit_task_id_can_be_set_per_stream(dis: DisStandIn, client: httpx.Client) -> None:
    """A stream's own omit_task_id switch affects that stream only."""
    dis.add_stream("clicks-stream", [TaskSpec("clicks-to-obs")], omit_task_id=True)
    clicks = client.get(f"/v2/{PROJECT}/streams/clicks-stream/transfer-tasks").json()["tasks"]
    orders = client.get(BASE).json()["tasks"]
    assert "task_id" not in clicks[0]
    assert orders[0]["task_id"] == RUNNING_ID


# DIS errors.


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/orders-archive"), ("POST", "/action")],
)
def test_unknown_stream_is_dis_4301(client: httpx.Client, method: str, suffix: str) -> None:
    """Every call on a stream that does not exist answers 400 DIS.4301."""
    path = f"/v2/{PROJECT}/streams/no-such-stream/transfer-tasks{suffix}"
    response = client.request(method, path, json=_action("start", PAUSED_ID))
    assert response.status_code == 400
    assert response.json() == {
        "errorCode": "DIS.4301",
        "message": "The stream does not exist. [no-such-stream]",
    }


def test_unknown_task_name_is_dis_4354(client: httpx.Client) -> None:
    """Describing a task name that does not exist answers 400 DIS.4354."""
    response = client.get(f"{BASE}/no-such-task")
    assert response.status_code == 400
    assert response.json()["errorCode"] == "DIS.4354"
    assert "no-such-task" in response.json()["message"]


def test_an_unknown_id_fails_the_whole_action(client: httpx.Client, clock: FakeClock) -> None:
    """An action naming one unknown id answers DIS.4354 and changes no task."""
    response = client.post(
        f"{BASE}/action", json=_action("start", PAUSED_ID, "AAAAAAAAAAAAAAAAAAA")
    )
    clock.advance(5)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "DIS.4354"
    assert _states(client)["orders-archive"] == "PAUSED"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "DIS.4202"),
        (b"{not json", "DIS.4200"),
        (b"\xff\xfe", "DIS.4200"),
        (b"[1, 2]", "DIS.4300"),
        (b'{"tasks": [{"id": "9dSu1wfCytSk1aOLxvF"}]}', "DIS.4300"),
        (b'{"action": "restart", "tasks": [{"id": "9dSu1wfCytSk1aOLxvF"}]}', "DIS.4200"),
        (b'{"action": "start"}', "DIS.4202"),
        (b'{"action": "start", "tasks": []}', "DIS.4202"),
        (b'{"action": "start", "tasks": ["9dSu1wfCytSk1aOLxvF"]}', "DIS.4300"),
    ],
)
def test_a_bad_action_body_is_refused(client: httpx.Client, body: bytes, code: str) -> None:
    """Action bodies that are empty, not JSON or not of the documented shape answer 400."""
    response = client.post(f"{BASE}/action", content=body)
    assert response.status_code == 400
    assert response.json()["errorCode"] == code
    assert set(response.json()) == {"errorCode", "message"}


def test_another_project_id_is_dis_4117(client: httpx.Client) -> None:
    """A path naming another project answers 400 DIS.4117."""
    response = client.get(f"/v2/{'f' * 32}/streams/{STREAM}/transfer-tasks")
    assert response.status_code == 400
    assert response.json()["errorCode"] == "DIS.4117"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v2/{PROJECT}/streams"),
        ("GET", f"/v1/{PROJECT}/streams/{STREAM}/transfer-tasks"),
        ("POST", BASE),
        ("DELETE", f"{BASE}/orders-archive"),
        ("PUT", f"{BASE}/action"),
        ("GET", f"{BASE}/"),
    ],
)
def test_an_unknown_api_is_apigw_0101(client: httpx.Client, method: str, path: str) -> None:
    """A path or method DIS does not serve gets the gateway's 404 with the request id."""
    response = client.request(method, path)
    assert response.status_code == 404
    assert response.json() == {
        "error_code": "APIGW.0101",
        "error_msg": "The API does not exist or has not been published in the environment",
        "request_id": response.headers["X-Request-Id"],
    }


# Signature verification.


def test_the_verifier_accepts_the_official_test_vector() -> None:
    """The stand-in's own verifier accepts the request signed by the official SDK signer."""
    request = WireRequest(
        method="POST",
        path=f"/v2/{PROJECT}/streams/my-stream/transfer-tasks/action",
        query="",
        headers={
            "content-type": "application/json",
            "x-project-id": PROJECT,
            "x-sdk-date": "20250101T120000Z",
            "host": "dis.eu-de.otc.t-systems.com",
            "authorization": "SDK-HMAC-SHA256 Access=AKEXAMPLE, SignedHeaders=content-type;host;"
            "x-project-id;x-sdk-date, Signature="
            "be938d873e6e4aeda26fd4e636b31e7ccf5dfa5d89e65961c71d39053d17f568",
        },
        body=b'{"action": "start", "tasks": [{"id": "9dSu1wfCytSk1aOLxvF"}]}',
    )
    credential = Credential("AKEXAMPLE", "SKEXAMPLE")
    when = datetime(2025, 1, 1, 12, 5, tzinfo=UTC)
    assert verify(request, {"AKEXAMPLE": credential}, when) == credential


def test_the_verifier_checks_the_query_string() -> None:
    """A query parameter added after signing breaks the signature."""
    when = datetime(2025, 1, 1, 12, tzinfo=UTC)
    base = {"Host": "dis.example", "Content-Type": "application/json", "X-Project-Id": PROJECT}
    url = f"https://dis.example{BASE}?limit=10&a=b"
    added = sign("GET", url, base, b"", Credentials(AK, SecretStr(SK)), when)
    headers = {name.lower(): value for name, value in {**base, **added}.items()}
    signed = WireRequest("GET", BASE, "limit=10&a=b", headers, b"")
    tampered = WireRequest("GET", BASE, "limit=11&a=b", headers, b"")
    credentials = {AK: Credential(AK, SK)}
    assert verify(signed, credentials, when).access_key == AK
    with pytest.raises(SignatureRejectedError, match="a=b&limit=11"):
        verify(tampered, credentials, when)


def test_a_wrong_secret_key_shows_the_canonical_request(dis: DisStandIn) -> None:
    """A bad signature answers 401 APIGW.0301 with the canonical request, newlines as '|'."""
    with _client(dis, Credentials(AK, SecretStr("WRONG"))) as client:
        response = client.get(BASE)
    host = dis.url.removeprefix("http://")
    body = response.json()
    assert response.status_code == 401
    assert body["error_code"] == "APIGW.0301"
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert "verify aksk signature fail" in body["error_msg"]
    assert (
        f"CanonicalRequest: GET|{BASE}/||content-type:application/json|host:{host}|"
        in body["error_msg"]
    )
    assert "SignedHeaders: content-type;host;x-project-id;x-sdk-date" in body["error_msg"]


def test_a_tampered_body_is_rejected(dis: DisStandIn) -> None:
    """A body changed after signing no longer matches the signature."""
    url = f"{dis.url}{BASE}/action"
    headers = {
        "Host": dis.url.removeprefix("http://"),
        "Content-Type": "application/json",
        "X-Project-Id": PROJECT,
    }
    signed_body = json.dumps(_action("stop", RUNNING_ID)).encode()
    sent_body = json.dumps(_action("stop", PAUSED_ID)).encode()
    added = sign(
        "POST", url, headers, signed_body, Credentials(AK, SecretStr(SK)), datetime.now(UTC)
    )
    response = httpx.post(url, content=sent_body, headers={**headers, **added})
    assert response.status_code == 401
    assert response.json()["error_code"] == "APIGW.0301"
    assert dis.task_state(STREAM, RUNNING_ID) is TaskState.RUNNING


@pytest.mark.parametrize(
    ("offset_minutes", "status"), [(-16, 401), (16, 401), (-14, 200), (14, 200)]
)
def test_the_signing_date_must_be_within_15_minutes(
    dis: DisStandIn, offset_minutes: int, status: int
) -> None:
    """A signature dated more than 15 minutes off the gateway's clock has expired."""
    signed_at = datetime.now(UTC) + timedelta(minutes=offset_minutes)
    with _client(dis, clock=lambda: signed_at) as client:
        response = client.get(BASE)
    assert response.status_code == status
    if status == 401:
        assert "signature expired" in response.json()["error_msg"]


def test_a_missing_signing_date_is_rejected(dis: DisStandIn) -> None:
    """A request whose X-Sdk-Date was removed after signing is refused as expired."""
    with _client(dis) as client:
        request = client.build_request("GET", BASE)
        signed = next(_auth().sync_auth_flow(request))
        del signed.headers["X-Sdk-Date"]
        response = client.send(signed, auth=None)
    assert response.status_code == 401
    assert "signature expired" in response.json()["error_msg"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer abc",
        "SDK-HMAC-SHA256 Access=TESTAK, Signature=00",
        "SDK-HMAC-SHA256 Access=NOSUCHAK, SignedHeaders=host;x-sdk-date, Signature=00",
    ],
)
def test_a_missing_or_malformed_authorization_is_rejected(
    dis: DisStandIn, authorization: str | None
) -> None:
    """No Authorization, another scheme, a missing part or an unknown AK all answer 401."""
    headers = {"X-Sdk-Date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.get(f"{dis.url}{BASE}", headers=headers)
    assert response.status_code == 401
    assert response.json()["error_code"] == "APIGW.0301"
    assert response.json()["error_msg"].startswith("Incorrect IAM authentication information")


def test_host_must_be_signed(dis: DisStandIn) -> None:
    """A signature that leaves out the host header is refused even if it is otherwise right."""
    url = f"{dis.url}{BASE}"
    headers = {"Content-Type": "application/json", "X-Project-Id": PROJECT}
    added = sign("GET", url, headers, b"", Credentials(AK, SecretStr(SK)), datetime.now(UTC))
    response = httpx.get(url, headers={**headers, **added})
    assert response.status_code == 401
    assert "host" in response.json()["error_msg"]


@pytest.fixture
def token_dis(clock: FakeClock) -> Iterator[DisStandIn]:
    with _stand_in(clock, credentials=[Credential("TEMPAK", "TEMPSK", "TOKEN-1")]) as stand_in:
        yield stand_in


def test_a_temporary_credential_with_its_token_is_accepted(token_dis: DisStandIn) -> None:
    """A temporary AK/SK signed together with its security token is accepted."""
    credentials = Credentials("TEMPAK", SecretStr("TEMPSK"), SecretStr("TOKEN-1"))
    with _client(token_dis, credentials) as client:
        assert client.get(BASE).status_code == 200


@pytest.mark.parametrize("token", [None, "TOKEN-2"])
def test_a_temporary_credential_needs_its_own_token(
    token_dis: DisStandIn, token: str | None
) -> None:
    """A temporary AK/SK without its token, or with another one, is refused."""
    credentials = Credentials("TEMPAK", SecretStr("TEMPSK"), SecretStr(token) if token else None)
    with _client(token_dis, credentials) as client:
        response = client.get(BASE)
    assert response.status_code == 401
    assert response.json()["error_code"] == "APIGW.0301"


def test_the_security_token_must_be_signed(token_dis: DisStandIn) -> None:
    """A token added after signing is refused, because it must be listed in SignedHeaders."""
    credentials = Credentials("TEMPAK", SecretStr("TEMPSK"))
    with _client(token_dis, credentials) as client:
        request = client.build_request("GET", BASE)
        signed = next(_auth(credentials).sync_auth_flow(request))
        signed.headers["X-Security-Token"] = "TOKEN-1"
        response = client.send(signed, auth=None)
    assert response.status_code == 401
    assert "SignedHeaders" in response.json()["error_msg"]


# Faults.


def test_a_status_fault_fails_the_next_count_calls(dis: DisStandIn, client: httpx.Client) -> None:
    """Fault.status(503, count=2) fails two calls with the gateway's body, then lets calls through."""
    dis.inject(Fault.status(503, count=2))
    responses = [client.get(BASE) for _ in range(3)]
    assert [response.status_code for response in responses] == [503, 503, 200]
    assert responses[0].json()["error_code"] == "APIGW.0202"
    assert responses[0].json()["request_id"] == responses[0].headers["X-Request-Id"]


def test_a_500_fault_is_a_dis_system_error(dis: DisStandIn, client: httpx.Client) -> None:
    """A 500 comes from DIS itself, as DIS.5000."""
    dis.inject(Fault.status(500))
    response = client.get(BASE)
    assert response.status_code == 500
    assert response.json() == {"errorCode": "DIS.5000", "message": "System error."}


def test_faults_apply_before_signature_checks(dis: DisStandIn) -> None:
    """Gateway-level faults hit even an unsigned request, as they happen in front of auth."""
    dis.inject(Fault.status(502))
    response = httpx.get(f"{dis.url}{BASE}")
    assert response.status_code == 502


def test_a_throttle_fault_is_a_429_with_retry_after(dis: DisStandIn, client: httpx.Client) -> None:
    """Fault.throttle answers the gateway's 429 APIGW.0308 with a Retry-After header."""
    dis.inject(Fault.throttle(retry_after=3, count=1))
    response = client.get(BASE)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json() == {
        "error_code": "APIGW.0308",
        "error_msg": "The throttling threshold has been reached",
        "request_id": response.headers["X-Request-Id"],
    }
    assert client.get(BASE).status_code == 200


def test_a_dis_error_fault_has_the_dis_shape(dis: DisStandIn, client: httpx.Client) -> None:
    """Fault.dis_error answers any DIS-shaped error."""
    dis.inject(Fault.dis_error(400, "DIS.4305", "Too many stream requests.", count=1))
    response = client.get(BASE)
    assert response.status_code == 400
    assert response.json() == {"errorCode": "DIS.4305", "message": "Too many stream requests."}


def test_a_gateway_error_fault_has_the_gateway_shape(dis: DisStandIn, client: httpx.Client) -> None:
    """Fault.gateway_error answers any gateway-shaped error with the call's request id."""
    dis.inject(Fault.gateway_error(403, "APIGW.0302", "The IAM user is not authorized"))
    response = client.get(BASE)
    assert response.status_code == 403
    assert response.json() == {
        "error_code": "APIGW.0302",
        "error_msg": "The IAM user is not authorized",
        "request_id": response.headers["X-Request-Id"],
    }


def test_a_latency_fault_delays_a_normal_answer(dis: DisStandIn, client: httpx.Client) -> None:
    """Fault.latency waits before answering normally."""
    dis.inject(Fault.latency(0.15))
    started = time.monotonic()
    response = client.get(BASE)
    assert time.monotonic() - started >= 0.15
    assert response.status_code == 200


def test_a_latency_fault_can_trip_a_client_timeout(dis: DisStandIn, client: httpx.Client) -> None:
    """A delay longer than the client's timeout surfaces as a read timeout."""
    dis.inject(Fault.latency(0.2))
    with pytest.raises(httpx.ReadTimeout):
        client.get(BASE, timeout=0.05)


def test_a_malformed_fault_sends_a_non_json_200(dis: DisStandIn, client: httpx.Client) -> None:
    """Fault.malformed answers 200 with a body that is not JSON."""
    dis.inject(Fault.malformed(method="GET"))
    response = client.get(BASE)
    assert response.status_code == 200
    assert response.content == b"<html>oops"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_a_malformed_fault_can_send_truncated_json(dis: DisStandIn, client: httpx.Client) -> None:
    """Fault.malformed with a JSON prefix keeps the JSON content type but cannot be parsed."""
    dis.inject(Fault.malformed(b'{"total_number": 2, "quo'))
    response = client.get(BASE)
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_a_drop_fault_closes_the_connection_unanswered(
    dis: DisStandIn, client: httpx.Client
) -> None:
    """Fault.drop closes the connection so the client sees a transport error, then recovers."""
    dis.inject(Fault.drop())
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(BASE)
    assert client.get(BASE).status_code == 200
    assert [call.status for call in dis.calls] == [None, 200]


async def test_an_async_client_sees_a_drop_as_a_transport_error(dis: DisStandIn) -> None:
    """The bot's async client gets a RemoteProtocolError from a dropped connection too."""
    dis.inject(Fault.drop(path="/action"))
    headers = {"Content-Type": "application/json", "X-Project-Id": PROJECT}
    async with httpx.AsyncClient(base_url=dis.url, auth=_auth(), headers=headers) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{BASE}/action", json=_action("start", PAUSED_ID))
        assert (await client.get(BASE)).status_code == 200
    assert dis.task_state(STREAM, PAUSED_ID) is TaskState.PAUSED


def test_a_fault_can_target_one_method_and_path(dis: DisStandIn, client: httpx.Client) -> None:
    """A fault aimed at POST .../action leaves list calls alone."""
    dis.inject(Fault.status(503, method="post", path="/action"))
    assert client.get(BASE).status_code == 200
    assert client.post(f"{BASE}/action", json=_action("start", PAUSED_ID)).status_code == 503
    assert client.post(f"{BASE}/action", json=_action("start", PAUSED_ID)).status_code == 200


def _statuses_with_fraction(clock: FakeClock, seed: int) -> list[int]:
    with _stand_in(clock, seed=seed) as dis, _client(dis) as client:
        dis.inject(Fault.status(503, fraction=0.5))
        return [client.get(BASE).status_code for _ in range(30)]


def test_a_fractional_fault_hits_some_calls_repeatably(clock: FakeClock) -> None:
    """A fraction fails some calls but not all, and the same seed fails the same ones."""
    first = _statuses_with_fraction(clock, seed=11)
    second = _statuses_with_fraction(clock, seed=11)
    assert set(first) == {200, 503}
    assert first == second


def test_a_fraction_can_be_capped_by_a_count(dis: DisStandIn, client: httpx.Client) -> None:
    """With both a fraction and a count, the fault fires at most count times."""
    dis.inject(Fault.status(503, fraction=1.0, count=2))
    assert [client.get(BASE).status_code for _ in range(4)] == [503, 503, 200, 200]


def test_clear_faults_disarms_everything(dis: DisStandIn, client: httpx.Client) -> None:
    """After clear_faults calls are answered normally again."""
    dis.inject(Fault.status(503, fraction=1.0))
    assert client.get(BASE).status_code == 503
    dis.clear_faults()
    assert client.get(BASE).status_code == 200


@pytest.mark.parametrize(
    "build",
    [
        lambda: Fault.status(503, count=0),
        lambda: Fault.status(503, fraction=1.5),
        lambda: Fault.latency(-1),
    ],
)
def test_nonsense_fault_settings_are_refused(build: Callable[[], Fault]) -> None:
    """A zero count, a fraction above one or a negative latency raises ValueError."""
    with pytest.raises(ValueError):
        build()


# Recording and helpers.


def test_every_call_is_recorded(dis: DisStandIn, client: httpx.Client) -> None:
    """Calls are recorded with method, raw path and query, headers, body and status."""
    client.get(BASE, params={"limit": "5"})
    client.get(f"/v2/{PROJECT}/nothing")
    first, second = dis.calls
    assert (first.method, first.path, first.query, first.status) == ("GET", BASE, "limit=5", 200)
    assert first.headers["x-project-id"] == PROJECT
    assert first.headers["authorization"].startswith("SDK-HMAC-SHA256 Access=TESTAK")
    assert first.body == b""
    assert HEX32.fullmatch(first.request_id)
    assert second.status == 404


def test_action_calls_are_parsed(dis: DisStandIn, client: httpx.Client) -> None:
    """action_calls lists the start/stop calls with their stream, action and ids."""
    client.get(BASE)
    client.post(f"{BASE}/action", json=_action("start", PAUSED_ID, ERROR_ID))
    client.post(f"{BASE}/action", content=b"garbage")
    start, garbage = dis.action_calls()
    assert (start.stream, start.action, start.task_ids, start.status) == (
        STREAM,
        "start",
        (PAUSED_ID, ERROR_ID),
        200,
    )
    assert (garbage.action, garbage.task_ids, garbage.status) == (None, (), 400)


def test_clear_calls_forgets_the_log(dis: DisStandIn, client: httpx.Client) -> None:
    """clear_calls empties the call log."""
    client.get(BASE)
    dis.clear_calls()
    assert dis.calls == []


def test_set_state_forces_a_state_seen_over_http(dis: DisStandIn, client: httpx.Client) -> None:
    """set_state changes what the list reports, and task_state reads by name or id."""
    dis.set_state(STREAM, "orders-archive", "ABNORMAL")
    assert _states(client)["orders-archive"] == "ABNORMAL"
    assert dis.task_state(STREAM, PAUSED_ID) is TaskState.ABNORMAL


def test_generated_task_ids_are_19_letters_and_digits(dis: DisStandIn) -> None:
    """Tasks configured without an id get a random 19-character alphanumeric one."""
    (task_id,) = dis.add_stream("clicks-stream", [TaskSpec("clicks-to-obs")])
    assert re.fullmatch(r"[A-Za-z0-9]{19}", task_id)
    assert dis.task_id("clicks-stream", "clicks-to-obs") == task_id


def test_more_than_five_tasks_are_refused(dis: DisStandIn) -> None:
    """A stream cannot be configured with more than five dump tasks."""
    with pytest.raises(ValueError, match="at most 5"):
        dis.add_stream("big-stream", [TaskSpec(f"task-{index}") for index in range(6)])


def test_a_stream_cannot_be_added_twice(dis: DisStandIn) -> None:
    """Adding an existing stream name raises ValueError."""
    with pytest.raises(ValueError, match="already exists"):
        dis.add_stream(STREAM, [])


# Data files and the command line.


def test_the_sample_file_loads_and_serves(clock: FakeClock) -> None:
    """The sample data file configures the demo project, credentials and streams."""
    with DisStandIn.from_file(SAMPLE_DATA, clock=clock) as dis:
        credentials = Credentials("DEMOAK", SecretStr("DEMOSK"))
        with _client(dis, credentials) as client:
            response = client.get(BASE)
    assert dis.project_id == PROJECT
    assert [task["state"] for task in response.json()["tasks"]] == ["RUNNING", "PAUSED", "ERROR"]
    assert dis.task(STREAM, "orders-to-obs").task_id == "As805BudhcH1lDs6gbn"


def test_a_data_file_with_six_tasks_is_refused(tmp_path: Path) -> None:
    """Loading a data file whose stream holds six tasks raises ValueError."""
    data = {
        "project_id": PROJECT,
        "credentials": [{"access_key": AK, "secret_key": SK}],
        "streams": {STREAM: {"tasks": [{"task_name": f"t{index}"} for index in range(6)]}},
    }
    path = tmp_path / "dis.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="at most 5"):
        DisStandIn.from_file(path)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"credentials": []}, "missing project_id"),
        ({"project_id": PROJECT, "credentials": [], "stream": {}}, "unknown key"),
        ({"project_id": PROJECT, "credentials": [{"access_key": AK}]}, r"credentials\[0\]"),
        (
            {
                "project_id": PROJECT,
                "credentials": [],
                "streams": {"s": {"tasks": [{"task_name": "t", "state": "ON"}]}},
            },
            r"streams.s.tasks\[0\].state",
        ),
    ],
)
def test_a_wrong_data_file_names_the_bad_value(data: dict[str, object], where: str) -> None:
    """Data-file mistakes raise DataFileError naming where they are."""
    with pytest.raises(DataFileError, match=where):
        parse_data(data)


# A shell running a background job (`bash tests/run.sh &`) starts it with SIGINT ignored, and
# that is inherited through exec; the stand-in must still stop on Ctrl-C (`kill -INT`).
IGNORING_SIGINT = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]


@pytest.mark.parametrize("launcher", [[], IGNORING_SIGINT], ids=["directly", "sigint-ignored"])
def test_the_command_line_serves_a_data_file_until_interrupted(launcher: list[str]) -> None:
    """`python -m bot.sim.dis` prints its URL, answers signed calls and exits on Ctrl-C."""
    command = [
        *launcher,
        *(sys.executable, "-m", "bot.sim.dis", "--data", str(SAMPLE_DATA), "--port", "0"),
    ]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(
                rf"DIS stand-in listening on (http://127\.0\.0\.1:\d+) \(project {PROJECT}\)\n",
                line,
            )
            assert match, line
            auth = AkSkAuth(Credentials("DEMOAK", SecretStr("DEMOSK")))
            headers = {"Content-Type": "application/json", "X-Project-Id": PROJECT}
            with httpx.Client(base_url=match[1], auth=auth, headers=headers, timeout=5) as client:
                response = client.get(BASE)
            assert response.status_code == 200
            assert response.json()["total_number"] == 3
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
