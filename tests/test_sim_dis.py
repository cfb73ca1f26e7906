"""The DIS stand-in, exercised over real HTTP with requests signed by the bot's own signer."""

from __future__ import annotations

import itertools
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
from bot.sim.dis import (
    SAMPLE_DATA,
    Credential,
    DisStandIn,
    Fault,
    StreamSpec,
    TaskSpec,
    TaskState,
)
from bot.sim.dis_auth import SignatureRejectedError, WireRequest, verify
from bot.sim.dis_data import DataFileError, parse_data

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "0123456789abcdef0123456789abcdef"
AK, SK = "TESTAK", "TESTSK"
STREAM = "orders-stream"
STREAM_PATH = f"/v2/{PROJECT}/streams/{STREAM}"
BASE = f"{STREAM_PATH}/transfer-tasks"
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
    assert body["tasks"][1] == {
        "task_id": PAUSED_ID,
        "task_name": "orders-archive",
        "destination_type": "OBS",
        "state": "PAUSED",
        "create_time": 3,
        "last_transfer_timestamp": 4,
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
        ("POST", f"/v2/{PROJECT}/streams"),
        ("GET", f"/v2/{PROJECT}/streams/"),
        ("GET", f"/v1/{PROJECT}/streams/{STREAM}/transfer-tasks"),
        ("POST", BASE),
        ("DELETE", f"{BASE}/orders-archive"),
        ("PUT", f"{BASE}/action"),
        ("GET", f"{BASE}/"),
        ("DELETE", STREAM_PATH),
        ("GET", f"{STREAM_PATH}/partitions"),
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


def test_stream_details_of_an_unknown_stream_is_dis_4301(client: httpx.Client) -> None:
    """Asking for the details of a stream that does not exist answers 400 DIS.4301."""
    response = client.get(f"/v2/{PROJECT}/streams/no-such-stream")
    assert response.status_code == 400
    assert response.json() == {
        "errorCode": "DIS.4301",
        "message": "The stream does not exist. [no-such-stream]",
    }


def test_stream_details_need_a_valid_signature(dis: DisStandIn) -> None:
    """The stream-details call is refused with 401 APIGW.0301 when wrongly signed."""
    with _client(dis, Credentials(AK, SecretStr("WRONG"))) as client:
        response = client.get(STREAM_PATH)
    assert response.status_code == 401
    assert response.json()["error_code"] == "APIGW.0301"


# Listing streams.


@pytest.fixture
def many(clock: FakeClock) -> Iterator[httpx.Client]:
    """A stand-in with five streams besides orders-stream, listed alphabetically."""
    with _stand_in(clock) as dis:
        for name in ("b-stream", "a-stream", "z-stream", "m-stream", "c-stream"):
            dis.add_stream(name, [], retention_period=48, partition_count=2)
        with _client(dis) as client:
            yield client


def test_streams_are_listed_in_alphabetical_order_with_their_summaries(
    client: httpx.Client,
) -> None:
    """The list names every stream, counts them, and summarises each as the reference shows."""
    response = client.get(f"/v2/{PROJECT}/streams")
    assert response.status_code == 200
    body = response.json()
    [info] = body.pop("stream_info_list")
    assert body == {"total_number": 1, "stream_names": [STREAM], "has_more_streams": False}
    assert re.fullmatch(r"[A-Za-z0-9]{19}", info.pop("stream_id"))
    assert isinstance(info.pop("create_time"), int)
    assert info == {
        "stream_name": STREAM,
        "retention_period": 24,
        "status": "RUNNING",
        "stream_type": "COMMON",
        "data_type": "BLOB",
        "partition_count": 1,
        "tags": [],
        "auto_scale_enabled": False,
        "auto_scale_min_partition_count": 0,
        "auto_scale_max_partition_count": 0,
    }


def test_streams_are_listed_a_page_at_a_time(many: httpx.Client) -> None:
    """A page holds at most `limit` names; the next starts after `start_stream_name`."""
    first = many.get(f"/v2/{PROJECT}/streams", params={"limit": "2"}).json()
    assert first["stream_names"] == ["a-stream", "b-stream"]
    assert (first["total_number"], first["has_more_streams"]) == (6, True)
    rest = many.get(
        f"/v2/{PROJECT}/streams", params={"limit": "10", "start_stream_name": "b-stream"}
    ).json()
    assert rest["stream_names"] == ["c-stream", "m-stream", STREAM, "z-stream"]
    assert rest["has_more_streams"] is False
    assert [info["stream_name"] for info in rest["stream_info_list"]] == rest["stream_names"]
    assert rest["stream_info_list"][0]["retention_period"] == 48


def test_ten_streams_are_listed_unless_asked_otherwise(
    dis: DisStandIn, client: httpx.Client
) -> None:
    """Without limit a page holds ten names."""
    for index in range(12):
        dis.add_stream(f"s-{index:02d}", [])
    body = client.get(f"/v2/{PROJECT}/streams").json()
    assert len(body["stream_names"]) == 10
    assert (body["total_number"], body["has_more_streams"]) == (13, True)


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_a_limit_outside_one_to_a_hundred_is_refused(client: httpx.Client, limit: str) -> None:
    """A page size DIS does not allow is DIS.4200."""
    response = client.get(f"/v2/{PROJECT}/streams", params={"limit": limit})
    assert response.status_code == 400
    assert response.json() == {
        "errorCode": "DIS.4200",
        "message": f"Invalid request. [limit: {limit}]",
    }


def test_listing_streams_needs_the_project_and_a_signature(dis: DisStandIn) -> None:
    """Another project is DIS.4117; a wrong signature is the gateway's APIGW.0301."""
    with _client(dis) as client:
        assert client.get("/v2/another-project/streams").json()["errorCode"] == "DIS.4117"
    with _client(dis, Credentials(AK, SecretStr("WRONG"))) as client:
        assert client.get(f"/v2/{PROJECT}/streams").json()["error_code"] == "APIGW.0301"


# The console: a change the bot did not make.


def test_a_console_start_moves_the_task_like_the_api_without_a_call(
    dis: DisStandIn, client: httpx.Client, clock: FakeClock
) -> None:
    """console_action starts through STARTING to RUNNING, by name, recording no call."""
    dis.console_action(STREAM, "start", ["orders-archive"])
    assert dis.task_state(STREAM, PAUSED_ID) is TaskState.STARTING
    clock.advance(2.0)
    assert _states(client)["orders-archive"] == "RUNNING"
    assert dis.action_calls() == []


def test_a_console_stop_pauses_a_task_by_id(dis: DisStandIn, clock: FakeClock) -> None:
    """console_action stop pauses a running task after the stop delay."""
    dis.console_action(STREAM, "stop", [RUNNING_ID])
    clock.advance(1.0)
    assert dis.task_state(STREAM, RUNNING_ID) is TaskState.PAUSED


def test_a_console_action_on_an_unknown_task_changes_nothing(dis: DisStandIn) -> None:
    """An unknown task raises LookupError and leaves every task as it was."""
    with pytest.raises(LookupError):
        dis.console_action(STREAM, "stop", [RUNNING_ID, "no-such-task"])
    assert dis.task_state(STREAM, RUNNING_ID) is TaskState.RUNNING
    assert dis.stream_names() == [STREAM]


# Stream details and per-partition progress.


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _partitions(client: httpx.Client, task: str) -> list[dict[str, object]]:
    response = client.get(f"{BASE}/{task}")
    assert response.status_code == 200
    partitions: list[dict[str, object]] = response.json()["partitions"]
    return partitions


@pytest.fixture
def wall() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture
def timed(clock: FakeClock, wall: FakeWallClock) -> Iterator[httpx.Client]:
    """A client of a stand-in whose wall clock the test moves by hand."""
    with _stand_in(clock, wall_clock=wall) as dis, _client(dis, clock=wall) as client:
        yield client


def test_stream_details_report_a_24_hour_retention_by_default(timed: httpx.Client) -> None:
    """A stream configured without a retention keeps data 24 hours, in one partition."""
    response = timed.get(STREAM_PATH)
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"[A-Za-z0-9]{19}", body.pop("stream_id"))
    assert isinstance(body.pop("create_time"), int)
    assert isinstance(body.pop("last_modified_time"), int)
    assert body == {
        "stream_name": STREAM,
        "retention_period": 24,
        "status": "RUNNING",
        "stream_type": "COMMON",
        "data_type": "BLOB",
        "writable_partition_count": 1,
        "readable_partition_count": 1,
        "tags": [],
        "auto_scale_enabled": False,
        "auto_scale_min_partition_count": 0,
        "auto_scale_max_partition_count": 0,
        "partitions": [
            {
                "status": "ACTIVE",
                "partition_id": "shardId-0000000000",
                "hash_range": "[0 : 9223372036854775807]",
                "sequence_number_range": "[0 : 0]",
            }
        ],
        "has_more_partitions": False,
    }


def test_retention_and_partition_count_are_configurable(
    dis: DisStandIn, client: httpx.Client
) -> None:
    """A stream's retention and partitions are as configured, the hash ranges covering all keys."""
    dis.add_stream("clicks-stream", retention_period=72, partition_count=3)
    body = client.get(f"/v2/{PROJECT}/streams/clicks-stream").json()
    assert (body["retention_period"], body["writable_partition_count"]) == (72, 3)
    ids = [partition["partition_id"] for partition in body["partitions"]]
    assert ids == ["shardId-0000000000", "shardId-0000000001", "shardId-0000000002"]
    bounds = [
        tuple(int(value) for value in partition["hash_range"].strip("[]").split(" : "))
        for partition in body["partitions"]
    ]
    assert bounds[0][0] == 0
    assert bounds[-1][1] == 2**63 - 1
    assert all(left[1] + 1 == right[0] for left, right in itertools.pairwise(bounds))
    assert dis.stream("clicks-stream").retention_period == 72


def test_a_stream_spec_configures_the_constructor(clock: FakeClock) -> None:
    """Passing a StreamSpec instead of a task list sets retention and partitions at start-up."""
    spec = StreamSpec((TaskSpec("orders-to-obs"),), retention_period=48, partition_count=2)
    dis = DisStandIn(project_id=PROJECT, credentials=[], streams={STREAM: spec}, clock=clock)
    view = dis.stream(STREAM)
    assert (view.retention_period, view.partition_count) == (48, 2)
    assert len(dis.task(STREAM, "orders-to-obs").partitions) == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"retention_period": 0}, "retention_period"),
        ({"partition_count": 0}, "partition_count"),
        ({"partition_count": 101}, "partition_count"),
    ],
)
def test_nonsense_stream_settings_are_refused(
    dis: DisStandIn, settings: dict[str, int], message: str
) -> None:
    """A retention under an hour or a partition count outside 1-100 raises ValueError."""
    with pytest.raises(ValueError, match=message):
        dis.add_stream("bad-stream", **settings)


def test_task_details_list_each_partition_progress(client: httpx.Client) -> None:
    """Describing a task lists its partitions with state, last transfer time and offset."""
    assert _partitions(client, "orders-archive") == [
        {
            "partitionId": "shardId-0000000000",
            "discard": 0,
            "state": "PAUSED",
            "last_transfer_timestamp": 4,
            "last_transfer_offset": 0,
        }
    ]


def test_partitions_can_start_at_their_own_transfer_times(
    dis: DisStandIn, client: httpx.Client
) -> None:
    """Per-partition transfer times are reported as given; the task's own time is the latest."""
    spec = TaskSpec("clicks-to-obs", partition_transfer_timestamps=(5000, 3000))
    dis.add_stream("clicks-stream", [spec], partition_count=2)
    task = client.get(f"/v2/{PROJECT}/streams/clicks-stream/transfer-tasks/clicks-to-obs").json()
    assert [p["last_transfer_timestamp"] for p in task["partitions"]] == [5000, 3000]
    assert task["last_transfer_timestamp"] == 5000


def test_partition_times_must_match_the_partition_count(dis: DisStandIn) -> None:
    """Giving two partition transfer times for a one-partition stream raises ValueError."""
    spec = TaskSpec("clicks-to-obs", partition_transfer_timestamps=(1, 2))
    with pytest.raises(ValueError, match="2 partition transfer times for 1 partitions"):
        dis.add_stream("clicks-stream", [spec])


def test_a_running_task_dumps_up_to_the_wall_clock(
    timed: httpx.Client, wall: FakeWallClock
) -> None:
    """A RUNNING task's partitions report the wall clock as their last transfer, offsets growing."""
    first = _partitions(timed, "orders-to-obs")[0]
    wall.advance(60)
    later = _partitions(timed, "orders-to-obs")[0]
    assert first["last_transfer_timestamp"] == _ms(wall.now) - 60_000
    assert later["last_transfer_timestamp"] == _ms(wall.now)
    assert later["last_transfer_offset"] == first["last_transfer_offset"] + 60
    listed = {task["task_name"]: task for task in timed.get(BASE).json()["tasks"]}
    assert listed["orders-to-obs"]["last_transfer_timestamp"] == _ms(wall.now)


def test_a_paused_task_keeps_its_transfer_time(timed: httpx.Client, wall: FakeWallClock) -> None:
    """A PAUSED task's partitions keep their last transfer time however far the clock moves."""
    wall.advance(7200)
    assert _partitions(timed, "orders-archive")[0]["last_transfer_timestamp"] == 4


@pytest.mark.parametrize("read_after", [1, 100], ids=["read at once", "read late"])
def test_a_stopped_task_keeps_the_time_its_pause_took_effect(
    timed: httpx.Client, clock: FakeClock, wall: FakeWallClock, read_after: int
) -> None:
    """A stopped task dumps until the 1 s stop delay ends, however late it is read, then stays."""
    timed.post(f"{BASE}/action", json=_action("stop", RUNNING_ID))
    paused_at = _ms(wall.now) + 1000
    clock.advance(read_after)
    wall.advance(read_after)
    [partition] = _partitions(timed, "orders-to-obs")
    assert (partition["state"], partition["last_transfer_timestamp"]) == ("PAUSED", paused_at)
    wall.advance(600)
    assert _partitions(timed, "orders-to-obs")[0]["last_transfer_timestamp"] == paused_at


def test_a_restarted_task_follows_the_clock_again(
    timed: httpx.Client, clock: FakeClock, wall: FakeWallClock
) -> None:
    """A paused task started again dumps up to the wall clock once it is RUNNING."""
    timed.post(f"{BASE}/action", json=_action("start", PAUSED_ID))
    clock.advance(2)
    wall.advance(30)
    assert _partitions(timed, "orders-archive")[0]["last_transfer_timestamp"] == _ms(wall.now)


def test_forcing_a_running_task_to_pause_freezes_its_time(
    wall: FakeWallClock, clock: FakeClock
) -> None:
    """set_state pauses a RUNNING task at the current wall time."""
    with _stand_in(clock, wall_clock=wall) as timed_dis:
        timed_dis.set_state(STREAM, RUNNING_ID, TaskState.PAUSED)
        paused_at = _ms(wall.now)
        wall.advance(600)
        [partition] = timed_dis.task(STREAM, RUNNING_ID).partitions
    assert partition.last_transfer_timestamp == paused_at


def test_stream_sequence_ranges_end_at_the_newest_dumped_offset(
    timed: httpx.Client, wall: FakeWallClock
) -> None:
    """A stream partition's sequence range reaches at least the offset its tasks have dumped."""
    wall.advance(90)
    [partition] = timed.get(STREAM_PATH).json()["partitions"]
    assert partition["sequence_number_range"] == "[0 : 90]"


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
    assert dis.stream(STREAM).retention_period == 24
    clicks = dis.stream("clicks-stream")
    assert (clicks.retention_period, clicks.partition_count) == (72, 2)
    times = [
        p.last_transfer_timestamp for p in dis.task("clicks-stream", "clicks-to-obs").partitions
    ]
    assert times == [1720396800000, 1720393200000]


def test_a_data_file_stream_without_retention_keeps_24_hours() -> None:
    """A data-file stream that names no retention or partition count gets 24 hours, 1 partition."""
    data = parse_data({"project_id": PROJECT, "credentials": [], "streams": {"s": {"tasks": []}}})
    assert (data.streams["s"].retention_period, data.streams["s"].partition_count) == (24, 1)


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
        (
            {
                "project_id": PROJECT,
                "credentials": [],
                "streams": {"s": {"tasks": [], "retention_period": "24"}},
            },
            "streams.s.retention_period: expected an integer",
        ),
        (
            {
                "project_id": PROJECT,
                "credentials": [],
                "streams": {
                    "s": {"tasks": [{"task_name": "t", "partition_transfer_timestamps": [1, "2"]}]}
                },
            },
            r"streams.s.tasks\[0\].partition_transfer_timestamps\[1\]",
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
