"""The DIS client over real HTTP against the DIS stand-in: calls, errors, retries, timeouts, logs."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from bot.dis.client import DisClient
from bot.dis.retry import RetryPolicy, call_with_retries
from bot.dis.signing import AkSkAuth, Credentials
from bot.errors import DisError, DisErrorKind
from bot.sim.dis import Credential, DisStandIn, Fault, TaskSpec
from bot.vocabulary import TaskAction, TaskState, safe_pause_window

PROJECT = "0123456789abcdef0123456789abcdef"
AK, SK, TOKEN = "TESTAK", "TESTSKSECRETVALUE", "TESTSECURITYTOKENVALUE"
STREAM = "orders-stream"


class FakeSleep:
    """Records the pauses the retry loop asks for instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def dis() -> Iterator[DisStandIn]:
    stand_in = DisStandIn(
        project_id=PROJECT,
        credentials=[Credential(AK, SK), Credential("TEMPAK", "TEMPSK", TOKEN)],
        streams={
            STREAM: [
                TaskSpec("orders-to-obs", TaskState.RUNNING, task_id="As805BudhcH1lDs6gbn"),
                TaskSpec("orders-archive", TaskState.PAUSED, task_id="9dSu1wfCytSk1aOLxvF"),
                TaskSpec(
                    "orders-to-dli",
                    TaskState.ERROR,
                    task_id="Kq3ZtV8mYw2Lp0Rc7Hd",
                    sticky_error=True,
                ),
            ]
        },
    )
    with stand_in:
        yield stand_in


def make_client(
    dis: DisStandIn,
    *,
    secret: str = SK,
    access_key: str = AK,
    token: str | None = None,
    timeout: float = 5.0,
    attempts: int = 4,
    total: float = 30.0,
    sleep: FakeSleep | None = None,
    clock=None,
    signing_clock=None,
    **client_options,
) -> tuple[DisClient, httpx.AsyncClient]:
    credentials = Credentials(access_key, SecretStr(secret), SecretStr(token) if token else None)
    http = httpx.AsyncClient(
        base_url=dis.url,
        auth=AkSkAuth(credentials)
        if signing_clock is None
        else AkSkAuth(credentials, signing_clock),
        headers={"Content-Type": "application/json", "X-Project-Id": PROJECT},
        timeout=timeout,
    )
    policy_kwargs = {
        "attempts": attempts,
        "total_seconds": total,
        "sleep": sleep or FakeSleep(),
        "jitter": lambda: 1.0,
    }
    if clock is not None:
        policy_kwargs["clock"] = clock
    return DisClient(http, PROJECT, RetryPolicy(**policy_kwargs), **client_options), http


async def test_list_returns_typed_tasks(dis):
    """Listing a stream gives every task with id, name, state, destination and datetimes."""
    client, http = make_client(dis)
    async with http:
        tasks = await client.list_tasks(STREAM)
    assert [(t.task_id, t.name, t.state) for t in tasks] == [
        ("As805BudhcH1lDs6gbn", "orders-to-obs", TaskState.RUNNING),
        ("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED),
        ("Kq3ZtV8mYw2Lp0Rc7Hd", "orders-to-dli", TaskState.ERROR),
    ]
    assert tasks[0].destination_type == "OBS"
    assert isinstance(tasks[0].created_at, datetime)
    assert tasks[0].created_at.tzinfo is not None


async def test_describe_finds_a_task_by_name(dis):
    """Describing by name returns that task with its id."""
    client, http = make_client(dis)
    async with http:
        task = await client.describe_task(STREAM, "orders-archive")
    assert (task.task_id, task.state) == ("9dSu1wfCytSk1aOLxvF", TaskState.PAUSED)


async def test_missing_task_id_falls_back_to_describe(dis):
    """When the list JSON has no task_id, the client describes each task by name to learn it."""
    dis.add_stream(
        "bare-stream",
        [TaskSpec("bare-task", TaskState.PAUSED, task_id="BareId0000000000001")],
        omit_task_id=True,
    )
    client, http = make_client(dis)
    async with http:
        tasks = await client.list_tasks("bare-stream")
    assert tasks[0].task_id == "BareId0000000000001"
    assert any(call.path.endswith("/transfer-tasks/bare-task") for call in dis.calls)


async def test_start_sends_one_batch_call_and_task_starts(dis):
    """Starting sends {"action": "start", "tasks": [{"id": ...}]} and the task leaves PAUSED."""
    client, http = make_client(dis)
    async with http:
        result = await client.act(STREAM, TaskAction.START, ["9dSu1wfCytSk1aOLxvF"])
    [call] = dis.action_calls()
    assert (call.action, call.task_ids, call.status) == ("start", ("9dSu1wfCytSk1aOLxvF",), 200)
    assert dis.task_state(STREAM, "orders-archive") in (TaskState.STARTING, TaskState.RUNNING)
    assert result.request_id


async def test_stop_pauses_a_running_task(dis):
    """Stopping a RUNNING task leaves it PAUSED."""
    client, http = make_client(dis)
    async with http:
        await client.act(STREAM, TaskAction.STOP, ["As805BudhcH1lDs6gbn"])
    assert dis.task_state(STREAM, "orders-to-obs") == TaskState.PAUSED


async def test_requests_carry_project_header_and_signature(dis):
    """Every request sends X-Project-Id and a signed Authorization covering it."""
    client, http = make_client(dis)
    async with http:
        await client.list_tasks(STREAM)
    headers = dis.calls[0].headers
    assert headers["x-project-id"] == PROJECT
    assert "x-project-id" in headers["authorization"]
    assert headers["authorization"].startswith("SDK-HMAC-SHA256 Access=TESTAK, ")


async def test_temporary_credentials_send_a_signed_token(dis):
    """With a security token, it is sent, signed, and accepted by the gateway."""
    client, http = make_client(dis, access_key="TEMPAK", secret="TEMPSK", token=TOKEN)
    async with http:
        await client.list_tasks(STREAM)
    headers = dis.calls[0].headers
    assert headers["x-security-token"] == TOKEN
    assert "x-security-token" in headers["authorization"]


async def test_wrong_secret_is_rejected_as_auth_and_not_retried(dis):
    """A wrongly signed request gets APIGW.0301 from the stand-in, classified auth, sent once."""
    client, http = make_client(dis, secret="WRONG")
    async with http:
        with pytest.raises(DisError) as caught:
            await client.list_tasks(STREAM)
    assert caught.value.kind is DisErrorKind.AUTH
    assert caught.value.code == "APIGW.0301"
    assert caught.value.status == 401
    assert caught.value.request_id
    assert len(dis.calls) == 1


async def test_unknown_stream_is_a_user_error(dis):
    """An unknown stream is DIS.4301, a user error carrying DIS's message and request id."""
    client, http = make_client(dis)
    async with http:
        with pytest.raises(DisError) as caught:
            await client.list_tasks("no-such-stream")
    assert (caught.value.kind, caught.value.code, caught.value.status) == (
        DisErrorKind.USER,
        "DIS.4301",
        400,
    )
    assert caught.value.request_id == dis.calls[-1].request_id
    assert len(dis.calls) == 1


async def test_unknown_task_id_is_a_user_error(dis):
    """Starting an id the stream does not have is DIS.4354, a user error."""
    client, http = make_client(dis)
    async with http:
        with pytest.raises(DisError) as caught:
            await client.act(STREAM, TaskAction.START, ["NoSuchTask000000000"])
    assert (caught.value.kind, caught.value.code) == (DisErrorKind.USER, "DIS.4354")


ERROR_TABLE = [
    (Fault.dis_error(400, "DIS.4301", "Stream does not exist."), DisErrorKind.USER),
    (Fault.dis_error(400, "DIS.4354", "The dump task does not exist."), DisErrorKind.USER),
    (Fault.dis_error(400, "DIS.4200", "Invalid request."), DisErrorKind.BUG),
    (Fault.dis_error(400, "DIS.4202", "Empty request."), DisErrorKind.BUG),
    (Fault.dis_error(400, "DIS.4300", "Request body is empty."), DisErrorKind.BUG),
    (Fault.dis_error(400, "DIS.4117", "Invalid Project Id."), DisErrorKind.CONFIGURATION),
    (Fault.dis_error(400, "DIS.4305", "Too many requests."), DisErrorKind.THROTTLED),
    (Fault.dis_error(400, "DIS.4309", "Too many failed requests."), DisErrorKind.BLOCKED),
    (Fault.dis_error(403, "DIS.4116", "No permission."), DisErrorKind.PERMISSION),
    (Fault.dis_error(441, "DIS.4100", "Authorization error."), DisErrorKind.AUTH),
    (Fault.dis_error(441, "DIS.4114", "Security token expired."), DisErrorKind.AUTH),
    (Fault.gateway_error(401, "APIGW.0301", "verify aksk signature fail"), DisErrorKind.AUTH),
    (Fault.gateway_error(401, "APIG.0301", "signature expired"), DisErrorKind.AUTH),
    (Fault.gateway_error(404, "APIGW.0101", "The API does not exist"), DisErrorKind.CONFIGURATION),
    (Fault.gateway_error(429, "APIGW.0308", "Throttled"), DisErrorKind.THROTTLED),
    (Fault.dis_error(500, "DIS.5000", "System error."), DisErrorKind.TRANSIENT),
    (Fault.status(503), DisErrorKind.TRANSIENT),
    (Fault.malformed(b"<html>Bad Gateway</html>", status=502), DisErrorKind.TRANSIENT),
]


@pytest.mark.parametrize(
    ("fault", "kind"),
    ERROR_TABLE,
    ids=lambda v: getattr(v, "code", None) or str(getattr(v, "http_status", v)),
)
async def test_every_documented_error_maps_to_its_class(dis, fault, kind):
    """Each error of the dis-api.md table becomes a DisError of the documented class."""
    dis.inject(dataclasses.replace(fault, count=None, fraction=1.0))
    client, http = make_client(dis, attempts=2)
    async with http:
        with pytest.raises(DisError) as caught:
            await client.list_tasks(STREAM)
    assert caught.value.kind is kind
    assert caught.value.status == fault.http_status
    if fault.code:
        assert caught.value.code == fault.code
    assert caught.value.request_id, "the request id is kept for support"
    expected_calls = 2 if kind.retryable else 1
    assert len(dis.calls) == expected_calls


async def test_transient_failures_are_retried_until_success(dis):
    """Two 503s then success: three calls, and the caller gets the tasks."""
    dis.inject(Fault.status(503, count=2))
    sleep = FakeSleep()
    client, http = make_client(dis, sleep=sleep)
    async with http:
        tasks = await client.list_tasks(STREAM)
    assert len(tasks) == 3
    assert [call.status for call in dis.calls] == [503, 503, 200]
    assert sleep.delays == [0.5, 1.0], "exponential backoff, full jitter pinned to its ceiling"


async def test_attempts_are_bounded(dis):
    """A DIS that keeps failing is tried exactly `attempts` times, then the last error is raised."""
    dis.inject(Fault.dis_error(500, "DIS.5000", "System error.", fraction=1.0))
    client, http = make_client(dis, attempts=3)
    async with http:
        with pytest.raises(DisError) as caught:
            await client.list_tasks(STREAM)
    assert caught.value.code == "DIS.5000"
    assert len(dis.calls) == 3


async def test_total_time_is_bounded(dis):
    """No retry starts once the next pause would pass the total time budget."""
    now = [0.0]
    sleep = FakeSleep()

    async def advancing_sleep(seconds: float) -> None:
        await sleep(seconds)
        now[0] += seconds

    dis.inject(Fault.status(503, fraction=1.0))
    client, http = make_client(
        dis, attempts=10, total=2.0, sleep=advancing_sleep, clock=lambda: now[0]
    )
    async with http:
        with pytest.raises(DisError):
            await client.list_tasks(STREAM)
    assert sleep.delays == [0.5, 1.0], "the third pause (2.0s) would end past the 2s budget"
    assert len(dis.calls) == 3


async def test_retry_after_is_honoured(dis):
    """A 429 with Retry-After waits exactly that long before the retry."""
    dis.inject(Fault.throttle(retry_after=3, count=1))
    sleep = FakeSleep()
    client, http = make_client(dis, sleep=sleep)
    async with http:
        await client.list_tasks(STREAM)
    assert sleep.delays == [3.0]
    assert [call.status for call in dis.calls] == [429, 200]


async def test_dis_throttling_code_is_retried_with_backoff(dis):
    """DIS.4305 (HTTP 400) is throttling: retried, after at least the 2 s throttle floor."""
    dis.inject(Fault.dis_error(400, "DIS.4305", "Too many requests.", count=1))
    sleep = FakeSleep()
    client, http = make_client(dis, sleep=sleep)
    async with http:
        await client.list_tasks(STREAM)
    assert sleep.delays == [2.0]


async def test_dropped_connection_is_transient_and_retried(dis):
    """A connection closed without an answer is retried like any transient failure."""
    dis.inject(Fault.drop(count=1))
    client, http = make_client(dis)
    async with http:
        tasks = await client.list_tasks(STREAM)
    assert len(tasks) == 3
    assert [call.status for call in dis.calls] == [None, 200]


async def test_timeout_fires_and_is_reported(dis):
    """A DIS slower than the timeout fails with a transient 'did not answer in time' error."""
    dis.inject(Fault.latency(1.0, fraction=1.0))
    client, http = make_client(dis, timeout=0.1, attempts=2)
    async with http:
        with pytest.raises(DisError) as caught:
            await client.list_tasks(STREAM)
    assert caught.value.kind is DisErrorKind.TRANSIENT
    assert "did not answer in time" in caught.value.message


@pytest.mark.parametrize(
    ("fault", "call"),
    [
        (Fault.malformed(fraction=1.0), lambda client: client.list_tasks(STREAM)),
        (
            Fault.status(200, body=b'{"retention_period": "a day"}', fraction=1.0),
            lambda client: client.describe_stream(STREAM),
        ),
    ],
    ids=["not JSON", "retention not a number"],
)
async def test_malformed_success_body_is_transient(dis, fault, call):
    """A 200 whose body is not the documented JSON is reported (and retried) as transient."""
    dis.inject(fault)
    client, http = make_client(dis, attempts=2)
    async with http:
        with pytest.raises(DisError) as caught:
            await call(client)
    assert caught.value.kind is DisErrorKind.TRANSIENT
    assert (caught.value.status, caught.value.request_id) == (200, dis.calls[-1].request_id)
    assert "could not read (not the documented JSON)" in caught.value.message
    assert len(dis.calls) == 2


async def test_secrets_never_reach_the_logs(dis, caplog):
    """Logs of signed calls, failed calls and retries never show the SK, token or signature."""
    caplog.set_level(logging.DEBUG)
    dis.inject(Fault.status(503, count=1))
    good, good_http = make_client(dis, access_key="TEMPAK", secret="TEMPSK", token=TOKEN)
    bad, bad_http = make_client(dis, secret=SK + "X")
    async with good_http, bad_http:
        await good.list_tasks(STREAM)
        await good.act(STREAM, TaskAction.START, ["9dSu1wfCytSk1aOLxvF"])
        with pytest.raises(DisError) as caught:
            await bad.list_tasks(STREAM)
    signatures = [
        call.headers["authorization"].split("Signature=")[1]
        for call in dis.calls
        if "authorization" in call.headers
    ]
    text = caplog.text + str(caught.value) + repr(caught.value)
    assert "retry" in caplog.text, "the retry was logged"
    assert "CanonicalRequest" in caplog.text or "canonical" in caplog.text.lower(), (
        "the rejected signature was logged for diffing"
    )
    for secret in ("TEMPSK", SK, TOKEN, *signatures):
        assert secret not in text
    assert "Authorization" not in caplog.text


ARCHIVE_ID = "9dSu1wfCytSk1aOLxvF"
TRANSIENT, AUTH, BLOCKED = DisErrorKind.TRANSIENT, DisErrorKind.AUTH, DisErrorKind.BLOCKED

# Each fault hits the first POST only, so a retry gets through and act then succeeds.
# (fault, HTTP statuses of the POSTs DIS recorded, pauses before retries, kind act raises)
ACT_RETRIES = [
    # It may have reached DIS: sent once, never again.
    (Fault.dis_error(500, "DIS.5000", "System error.", method="POST"), [500], [], TRANSIENT),
    (Fault.status(500, body=b"", method="POST"), [500], [], TRANSIENT),
    (Fault.status(502, method="POST"), [502], [], TRANSIENT),
    (Fault.status(504, method="POST"), [504], [], TRANSIENT),
    (Fault.status(503, body=b"", method="POST"), [503], [], TRANSIENT),
    (Fault.malformed(b"<html>Bad Gateway</html>", status=502, method="POST"), [502], [], TRANSIENT),
    (Fault.drop(method="POST"), [None], [], TRANSIENT),
    # The slow POST is still held by the stand-in when the client gives up, so it is not logged
    # yet; a retry would show here as a 200.
    (Fault.latency(2.0, method="POST"), [], [], TRANSIENT),
    # Refused for good: not retried either.
    (Fault.gateway_error(401, "APIGW.0301", "bad signature", method="POST"), [401], [], AUTH),
    (Fault.dis_error(400, "DIS.4309", "Blacklisted.", method="POST"), [400], [], BLOCKED),
    # Certainly turned away before DIS acted: sent again, and carried out once.
    (Fault.throttle(retry_after=3, method="POST"), [429, 200], [3.0], None),
    (Fault.gateway_error(429, "APIGW.0308", "Throttled", method="POST"), [429, 200], [2.0], None),
    (
        Fault.dis_error(400, "DIS.4305", "Too many requests.", method="POST"),
        [400, 200],
        [2.0],
        None,
    ),
    (Fault.status(503, method="POST"), [503, 200], [0.5], None),
]


@pytest.mark.parametrize(
    ("fault", "statuses", "delays", "raised"),
    ACT_RETRIES,
    ids=lambda v: f"{v.kind.value}-{v.http_status}" if isinstance(v, Fault) else None,
)
async def test_act_is_retried_only_when_dis_certainly_never_got_it(
    dis, fault, statuses, delays, raised
):
    """The batch call is repeated only when turned away; a 5xx, timeout or drop is sent once."""
    dis.inject(fault)
    sleep = FakeSleep()
    # A second of patience: a loaded machine must not turn a slow connect into a "drop".
    client, http = make_client(dis, sleep=sleep, timeout=1.0)
    async with http:
        if raised is None:
            assert (await client.act(STREAM, TaskAction.START, [ARCHIVE_ID])).request_id
        else:
            with pytest.raises(DisError) as caught:
                await client.act(STREAM, TaskAction.START, [ARCHIVE_ID])
            assert caught.value.kind is raised
            assert caught.value.certainly_not_received is (raised is not TRANSIENT)
    assert [call.status for call in dis.calls if call.method == "POST"] == statuses
    assert sleep.delays == delays


# Stream details and task details: what the retention guard reads.


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


async def test_describe_stream_returns_its_retention_and_partitions(dis):
    """The stream details give the retention in hours, the status and the partition count."""
    dis.add_stream("clicks-stream", retention_period=72, partition_count=3)
    client, http = make_client(dis)
    async with http:
        stream = await client.describe_stream("clicks-stream")
    assert (stream.name, stream.retention_hours, stream.partition_count) == ("clicks-stream", 72, 3)
    assert stream.status == "RUNNING"
    assert (stream.stream_type, stream.data_type) == ("COMMON", "BLOB")
    assert stream.stream_id == dis.stream("clicks-stream").stream_id
    assert stream.created_at is not None
    assert stream.created_at.tzinfo is not None
    assert dis.calls[0].path == f"/v2/{PROJECT}/streams/clicks-stream"


async def test_describe_stream_is_signed_with_the_project_header(dis):
    """The stream-details call is signed like every other call, the project id included."""
    client, http = make_client(dis)
    async with http:
        stream = await client.describe_stream(STREAM)
    assert stream.retention_hours == 24
    [call] = dis.calls
    assert call.status == 200
    assert "x-project-id" in call.headers["authorization"]


async def test_task_details_give_each_partition_its_last_transfer(dis):
    """Task details carry each partition's id, state, last transfer time and offset."""
    spec = TaskSpec(
        "clicks-to-obs",
        TaskState.PAUSED,
        task_id="Xb7Nf2QsLd9Tg4Wc1Pz",
        partition_transfer_timestamps=(1720396800000, 1720393200000),
    )
    dis.add_stream("clicks-stream", [spec], partition_count=2)
    client, http = make_client(dis)
    async with http:
        details = await client.describe_task_details("clicks-stream", "clicks-to-obs")
    assert (details.task.task_id, details.task.name) == ("Xb7Nf2QsLd9Tg4Wc1Pz", "clicks-to-obs")
    assert details.task.state is TaskState.PAUSED
    assert details.task.last_transfer_at == _at(1720396800000)
    assert [
        (p.partition_id, p.state, p.last_transfer_at, p.last_transfer_offset)
        for p in details.partitions
    ] == [
        ("shardId-0000000000", TaskState.PAUSED, _at(1720396800000), 0),
        ("shardId-0000000001", TaskState.PAUSED, _at(1720393200000), 0),
    ]
    assert details.oldest_transfer_at == _at(1720393200000)


async def test_a_paused_tasks_safe_window_shrinks_as_time_passes():
    """Over the stand-in, a task paused five hours ago on a 24-hour stream has 19 hours left."""
    wall = [datetime.now(UTC).replace(microsecond=0)]
    spec = TaskSpec("orders-to-obs", TaskState.RUNNING, task_id="As805BudhcH1lDs6gbn")
    stand_in = DisStandIn(
        project_id=PROJECT,
        credentials=[Credential(AK, SK)],
        streams={STREAM: [spec]},
        wall_clock=lambda: wall[0],
    )
    with stand_in:
        client, http = make_client(stand_in, signing_clock=lambda: wall[0])
        async with http:
            await client.act(STREAM, TaskAction.STOP, ["As805BudhcH1lDs6gbn"])
            paused_at = wall[0]
            wall[0] += timedelta(hours=5)
            stream = await client.describe_stream(STREAM)
            details = await client.describe_task_details(STREAM, "orders-to-obs")
    assert details.oldest_transfer_at == paused_at
    window = safe_pause_window(stream.retention_hours, details.oldest_transfer_at, wall[0])
    assert window == timedelta(hours=19)


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda client: client.describe_stream("no-such-stream"), "/streams/no-such-stream"),
        (
            lambda client: client.describe_task_details("no-such-stream", "orders-to-obs"),
            "/streams/no-such-stream/transfer-tasks/orders-to-obs",
        ),
    ],
    ids=["stream details", "task details"],
)
async def test_details_of_an_unknown_stream_are_dis_4301(dis, call, path):
    """Both detail calls on a stream that does not exist fail once with DIS.4301, a user error."""
    client, http = make_client(dis)
    async with http:
        with pytest.raises(DisError) as caught:
            await call(client)
    assert (caught.value.kind, caught.value.code, caught.value.status) == (
        DisErrorKind.USER,
        "DIS.4301",
        400,
    )
    [only] = dis.calls
    assert only.path.endswith(path)
    assert caught.value.request_id == only.request_id


async def test_details_of_an_unknown_task_are_dis_4354(dis):
    """Task details of a name the stream does not have fail once with DIS.4354, a user error."""
    client, http = make_client(dis)
    async with http:
        with pytest.raises(DisError) as caught:
            await client.describe_task_details(STREAM, "no-such-task")
    assert (caught.value.kind, caught.value.code) == (DisErrorKind.USER, "DIS.4354")
    assert "no-such-task" in caught.value.message
    assert caught.value.request_id == dis.calls[-1].request_id
    assert len(dis.calls) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda client: client.describe_stream(STREAM),
        lambda client: client.describe_task_details(STREAM, "orders-archive"),
    ],
    ids=["stream details", "task details"],
)
async def test_detail_calls_are_retried_on_5xx(dis, call):
    """Two 503s then success: both detail calls are tried three times, backing off, and succeed."""
    dis.inject(Fault.status(503, count=2))
    sleep = FakeSleep()
    client, http = make_client(dis, sleep=sleep)
    async with http:
        await call(client)
    assert [c.status for c in dis.calls] == [503, 503, 200]
    assert sleep.delays == [0.5, 1.0]


def _answer(body: dict[str, object]) -> Fault:
    """One 200 answer with this JSON instead of the stand-in's own."""
    return Fault.status(200, body=json.dumps(body).encode(), count=1)


async def test_a_stream_without_retention_or_counts_is_still_read(dis):
    """A stream answer lacking its name, retention and counts still gives the stream's details."""
    dis.inject(
        _answer(
            {
                "status": "RUNNING",
                "partitions": [
                    {"partition_id": "shardId-0000000000", "status": "ACTIVE"},
                    {"partition_id": "shardId-0000000001", "status": "DELETED"},
                    {"partition_id": "shardId-0000000002", "status": "ACTIVE"},
                ],
                "has_more_partitions": False,
            }
        )
    )
    client, http = make_client(dis)
    async with http:
        stream = await client.describe_stream(STREAM)
    assert (stream.retention_hours, stream.partition_count, stream.created_at) == (None, 2, None)
    assert (stream.name, stream.stream_id) == (STREAM, None), "the name asked for is kept"


async def test_task_details_without_partitions_fall_back_to_the_task_time(dis):
    """A details answer with no partitions gives none, and the task's own time is the oldest."""
    dis.inject(
        _answer(
            {
                "task_id": "9dSu1wfCytSk1aOLxvF",
                "task_name": "orders-archive",
                "state": "PAUSED",
                "last_transfer_timestamp": 1719830400000,
            }
        )
    )
    client, http = make_client(dis)
    async with http:
        details = await client.describe_task_details(STREAM, "orders-archive")
    assert details.partitions == ()
    assert details.oldest_transfer_at == _at(1719830400000)


@pytest.mark.parametrize("describe", ["describe_task", "describe_task_details"])
async def test_a_described_task_without_a_task_id_is_a_bug(dis, describe):
    """A describe answer without task_id is reported as a bug, naming the task, and not retried."""
    dis.inject(_answer({"task_name": "orders-archive", "state": "PAUSED"}))
    client, http = make_client(dis)
    async with http:
        with pytest.raises(DisError) as caught:
            await getattr(client, describe)(STREAM, "orders-archive")
    assert caught.value.kind is DisErrorKind.BUG
    assert caught.value.message == "DIS described task 'orders-archive' without a task_id"
    assert len(dis.calls) == 1


async def test_after_a_credentials_refusal_nothing_is_sent_until_the_cooldown_ends(dis):
    """One refusal of the bot's credentials pauses every call, sent or not, for the cooldown."""
    now = [1000.0]
    client, http = make_client(dis, auth_cooldown_seconds=60.0, monotonic=lambda: now[0])
    dis.inject(Fault.gateway_error(401, "APIGW.0301", "verify aksk signature fail", count=1))
    async with http:
        with pytest.raises(DisError) as refused:
            await client.list_tasks(STREAM)
        now[0] += 59.5
        with pytest.raises(DisError) as paused:
            await client.act(STREAM, TaskAction.START, ["9dSu1wfCytSk1aOLxvF"])
        assert len(dis.calls) == 1, "nothing was sent while cooling down"
        now[0] += 0.5
        await client.list_tasks(STREAM)
        await client.list_tasks(STREAM)
    error = paused.value
    assert (error.kind, error.code, error.status) == (DisErrorKind.AUTH, "APIGW.0301", 401)
    assert error.certainly_not_received, "a paused call never left the bot"
    assert error.message == (
        "DIS calls are paused for another 1s (of 60s) because the gateway refused the bot's "
        f"credentials: {refused.value.summary}"
    )
    assert len(dis.calls) == 3


@pytest.mark.parametrize(
    ("call", "raw_path"),
    [
        (lambda c: c.list_tasks("a/b"), "/v2/p%2Fq/streams/a%2Fb/transfer-tasks"),
        (lambda c: c.describe_stream("a/b"), "/v2/p%2Fq/streams/a%2Fb"),
        (lambda c: c.describe_task("s", "t/u"), "/v2/p%2Fq/streams/s/transfer-tasks/t%2Fu"),
        (
            lambda c: c.describe_task_details("s", "t/u"),
            "/v2/p%2Fq/streams/s/transfer-tasks/t%2Fu",
        ),
    ],
    ids=["list", "stream", "task", "details"],
)
async def test_names_are_one_path_segment_each_whatever_they_hold(call, raw_path):
    """A slash in a project, stream or task name is escaped, so it cannot reach another path."""
    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(400, json={"errorCode": "DIS.4301", "message": "no such stream"})

    http = httpx.AsyncClient(base_url="https://dis.test", transport=httpx.MockTransport(answer))
    async with http:
        with pytest.raises(DisError):
            await call(DisClient(http, "p/q", RetryPolicy(attempts=1)))
    assert seen == [raw_path.encode()]


async def test_rejected_canonical_request_keeps_everything_but_the_token(dis, caplog):
    """A 0301 quoting the canonical request, token included, is logged and raised without it."""
    client, http = make_client(dis, access_key="TEMPAK", secret="WRONG", token=TOKEN)
    async with http:
        with pytest.raises(DisError) as caught:
            await client.list_tasks(STREAM)
    [logged] = [r.getMessage() for r in caplog.records if "refused the signature" in r.getMessage()]
    for text in (caught.value.message, logged):
        assert "x-security-token:[redacted]|" in text
        assert f"x-project-id:{PROJECT}|" in text, "the rest of the canonical request stays"
        assert TOKEN not in text


@pytest.mark.parametrize(
    "fault",
    [
        Fault.gateway_error(401, "APIGW.0301", "CanonicalRequest: GET|/v2/|x-auth-token:IAMTOKEN|"),
        Fault.gateway_error(401, "APIGW.0301", 'headers {"X-Auth-Token": "IAMTOKEN"}'),
        Fault.gateway_error(401, "APIGW.0301", "Authorization: SDK-HMAC-SHA256 Sig=IAMTOKEN"),
        Fault.dis_error(441, "DIS.4114", "X-Security-Token=IAMTOKEN has expired"),
        Fault.dis_error(441, "DIS.4114", "X-Subject-Token: IAMTOKEN\nexpired"),
        Fault.malformed(b"<html>x-auth-token: IAMTOKEN</html>", status=502),
    ],
    ids=["canonical", "json", "authorization", "dis-shape", "subject-token", "html"],
)
async def test_credential_headers_are_scrubbed_from_dis_messages(dis, fault):
    """Whatever the shape of DIS's answer, no credential header value survives in the error."""
    dis.inject(dataclasses.replace(fault, count=None, fraction=1.0))
    client, http = make_client(dis, attempts=1)
    async with http:
        with pytest.raises(DisError) as caught:
            await client.list_tasks(STREAM)
    assert "IAMTOKEN" not in caught.value.message
    assert "[redacted]" in caught.value.message


async def test_the_token_sent_is_scrubbed_wherever_dis_quotes_it(dis):
    """A message quoting the security token the client sent, in any wording, never shows it."""
    dis.inject(Fault.dis_error(441, "DIS.4114", f"token {TOKEN} expired", fraction=1.0))
    client, http = make_client(dis, access_key="TEMPAK", secret="TEMPSK", token=TOKEN, attempts=1)
    async with http:
        with pytest.raises(DisError) as caught:
            await client.list_tasks(STREAM)
    assert caught.value.message == "token [redacted] expired"


def test_backoff_is_jittered_below_its_ceiling():
    """The pause before a retry is its exponential ceiling scaled by the jitter (full jitter)."""
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=lambda: 0.25)
    error = DisError(DisErrorKind.TRANSIENT, "down")
    assert [policy.delay_before(attempt, error) for attempt in (1, 3, 10)] == [0.125, 0.5, 2.0]


async def test_a_retry_that_would_end_exactly_at_the_budget_is_not_made(caplog):
    """A pause that uses up the whole remaining budget leaves no time for the call: give up."""
    now, sleep = [0.0], FakeSleep()

    async def advancing_sleep(seconds: float) -> None:
        await sleep(seconds)
        now[0] += seconds

    async def failing() -> None:
        raise DisError(DisErrorKind.TRANSIENT, "down")

    policy = RetryPolicy(
        attempts=10,
        total_seconds=1.5,
        sleep=advancing_sleep,
        clock=lambda: now[0],
        jitter=lambda: 1.0,
    )
    with pytest.raises(DisError):
        await call_with_retries(policy, "list tasks", failing)
    assert sleep.delays == [0.5], "the second pause (1.0s) would end at the 1.5s budget"
    assert caplog.records[-1].getMessage() == (
        "DIS list tasks failed (down); not retrying, 1.0s wait exceeds the 1.0s left"
    )


def scripted(*answers: httpx.Response) -> tuple[DisClient, httpx.AsyncClient]:
    """A client whose calls get ``answers`` in turn, over an in-memory transport."""
    remaining = list(answers)

    def answer(_: httpx.Request) -> httpx.Response:
        return remaining.pop(0)

    http = httpx.AsyncClient(base_url="https://dis.test", transport=httpx.MockTransport(answer))
    policy = RetryPolicy(attempts=2, sleep=FakeSleep(), jitter=lambda: 1.0)
    return DisClient(http, "p", policy), http


LISTING = {"tasks": [], "total_number": 0}


@pytest.mark.parametrize(
    ("call", "body", "line"),
    [
        (lambda c: c.list_tasks("s"), LISTING, "DIS list tasks /v2/p/streams/s/transfer-tasks"),
        (
            lambda c: c.describe_stream("s"),
            {"stream_name": "s", "retention_period": 24},
            "DIS describe stream /v2/p/streams/s",
        ),
        (
            lambda c: c.describe_task("s", "t"),
            {"task_id": "i", "task_name": "t", "state": "RUNNING"},
            "DIS describe task /v2/p/streams/s/transfer-tasks/t",
        ),
        (
            lambda c: c.describe_task_details("s", "t"),
            {"task_id": "i", "task_name": "t", "state": "RUNNING"},
            "DIS describe task details /v2/p/streams/s/transfer-tasks/t",
        ),
        (
            lambda c: c.act("s", TaskAction.STOP, ["i"]),
            {},
            "DIS stop tasks /v2/p/streams/s/transfer-tasks/action",
        ),
    ],
    ids=["list", "stream", "task", "details", "act"],
)
async def test_every_dis_answer_is_logged_with_its_call_and_request_id(caplog, call, body, line):
    """Each answer is logged once: the operation, the path, the status and DIS's request id."""
    caplog.set_level(logging.INFO, logger="bot.dis.client")
    client, http = scripted(httpx.Response(200, json=body, headers={"X-Request-Id": "req-9"}))
    async with http:
        await call(client)
    [record] = [r for r in caplog.records if r.name == "bot.dis.client"]
    assert record.getMessage() == f"{line} -> HTTP 200 (request id req-9)"
    assert record.__dict__["dis_request_id"] == "req-9"


async def test_a_retry_is_logged_with_the_error(caplog):
    """A retry names the operation, the error, the attempt and the pause."""
    caplog.set_level(logging.WARNING, logger="bot.dis.retry")
    down = httpx.Response(503, json={"error_code": "APIGW.0503", "error_msg": "busy"})
    client, http = scripted(down, httpx.Response(200, json=LISTING))
    async with http:
        await client.list_tasks("s")
    [retry] = [r.getMessage() for r in caplog.records]
    assert retry == "DIS list tasks failed (APIGW.0503: busy (HTTP 503)); retry 1/1 in 0.50s"


async def test_the_start_call_is_named_and_retried_only_before_it_left(caplog):
    """The batch call's retries are logged under its own name."""
    caplog.set_level(logging.WARNING, logger="bot.dis.retry")
    refused = httpx.Response(429, json={"errorCode": "DIS.4305", "message": "slow down"})
    client, http = scripted(refused, httpx.Response(200, headers={"X-Request-Id": "req-2"}))
    async with http:
        result = await client.act("s", TaskAction.START, ["i"])
    assert result.request_id == "req-2"
    [retry] = [r.getMessage() for r in caplog.records]
    assert retry.startswith("DIS start tasks failed (DIS.4305: slow down (HTTP 429)); retry 1/1")


@pytest.mark.parametrize("code", ["APIGW.0301", "APIG.0301"])
async def test_a_refused_signature_is_logged_for_the_operator(caplog, code):
    """Both gateways' signature refusals log the canonical request they computed."""
    message = "canonical request: GET|/v2/p/|host:dis.test|"
    client, http = scripted(
        httpx.Response(
            401, json={"error_code": code, "error_msg": message}, headers={"X-Request-Id": "r"}
        )
    )
    async with http:
        with pytest.raises(DisError):
            await client.list_tasks("s")
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == f"DIS refused the signature: {message}"
    assert record.__dict__["dis_request_id"] == "r"
