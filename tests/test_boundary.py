"""The bot's edges over real HTTP: what Slack may send it, and what must never leave it.

Requests go to the real bot (uvicorn, SQLite or PostgreSQL) as Slack sends them, signed or
forged; stand-ins play the Slack Web API and DIS.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from bot.app import create_bot
from bot.commands import MAX_COMMAND_LENGTH
from bot.sim.dis import TaskSpec
from bot.sim.slack_client import FORM, click_body, command_body
from bot.slack.inbound import MAX_BODY_BYTES
from tests.conftest import (
    APPROVER1,
    APPROVER2,
    ARCHIVE_ID,
    BOT_TOKEN,
    DIS_SK,
    INCIDENT,
    OUTSIDER,
    RANDOM,
    REQUESTER,
    SIGNING_SECRET,
    STREAM,
    make_settings,
)
from tests.flow_helpers import (
    APPROVE,
    card_text,
    eventually,
    has_buttons,
    wait_for_card,
    wait_for_ephemeral,
    wait_for_thread_reply,
)

SECURITY_TOKEN = "TMPTOKEN-e2e-0123456789abcdef"
GARBAGE_BODIES = [
    pytest.param(b"payload=not-json", id="payload-not-json"),
    pytest.param(b"payload=%5B1%2C2%5D", id="payload-json-list"),
    pytest.param(b'{"type": "block_actions", "actions": []}', id="json-object"),
    pytest.param(b"[1, 2, 3]", id="json-list"),
    pytest.param(b"42", id="json-number"),
    pytest.param(b"command=/dumptask&text=\xff\xfe", id="invalid-utf8"),
]


def post(bot, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST raw bytes to the bot's /slack/events, as anything on the internet could."""
    return httpx.post(bot.events_url, content=body, headers=headers, timeout=10)


def unsigned(body: bytes) -> dict[str, str]:
    """Slack's content type and a current timestamp, but a signature made without the secret."""
    return {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }


def signed(body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """Slack's headers for ``body``, signed over its exact bytes (UTF-8 or not) with the secret."""
    when = timestamp if timestamp is not None else str(int(time.time()))
    digest = hmac.new(
        SIGNING_SECRET.encode(), b"v0:" + when.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    return {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": when,
        "X-Slack-Signature": f"v0={digest}",
    }


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Every record at WARNING or above captured so far."""
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def assert_one_line_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Exactly one WARNING-or-worse line was logged, without a traceback."""
    [record] = problems(caplog)
    assert record.exc_info is None
    assert "Traceback" not in caplog.text


def status_line_of_raw_post(url: str, head: str, body: bytes = b"", timeout: float = 5) -> str:
    """Send a request head and part of a body over a plain socket; return the status line.

    Nothing more is sent after ``body``, so an answer proves the bot did not wait for the rest.
    """
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.split(b"\r\n", 1)[0].decode()


def request_head(bot, headers: dict[str, str]) -> str:
    """An HTTP/1.1 POST head for the bot's /slack/events with ``headers``."""
    parts = urlsplit(bot.events_url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


# -- the word "payload" ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_name", "channel_name", "text"),
    [
        ("alice", "incident", f'start {STREAM} orders-archive --reason "bad payload upstream"'),
        ("alice", "payload-incidents", f"start {STREAM} orders-archive"),
        ("payload-oncall", "incident", f"start {STREAM} orders-archive"),
        ("alice", "incident", "start payload-stream payload-task"),
    ],
    ids=["reason", "channel-name", "user-name", "stream-and-task"],
)
def test_command_containing_payload_reaches_the_listeners(
    start_bot, slack, dis, user_name, channel_name, text
):
    """A slash command whose form body contains the letters `payload` gets its card."""
    dis.add_stream("payload-stream", [TaskSpec("payload-task")])
    slack.add_user("U0PAYLOAD", user_name, "Pay Load")
    slack.add_channel("C0PAYLOAD", channel_name, ["U0PAYLOAD", APPROVER1])
    start_bot()
    response = slack.send_command("U0PAYLOAD", "C0PAYLOAD", text)
    assert response.status_code == 200, response.text
    card = wait_for_card(slack, "C0PAYLOAD")
    assert "<@U0PAYLOAD>" in card_text(slack, "C0PAYLOAD", card.ts)


def test_forged_signature_on_a_body_containing_payload_is_rejected(start_bot, slack):
    """A command whose body contains `payload` is still refused with 401 when forged."""
    start_bot()
    response = slack.send_command(
        REQUESTER,
        INCIDENT,
        f'start {STREAM} orders-archive --reason "payload"',
        signature="v0=" + "0" * 64,
    )
    assert response.status_code == 401
    assert not slack.calls_to("chat.postMessage")


# -- garbage gets 401 or 400, never 500 --------------------------------------------------------


@pytest.mark.parametrize("timestamp", ["yesterday", "", "1e9", "12:00", "١٢٣"])
def test_non_numeric_timestamp_is_rejected(start_bot, slack, caplog, timestamp):
    """A request whose timestamp header is not a number gets 401 and one log line."""
    bot = start_bot()
    body = command_body(slack.build_slash_command(REQUESTER, INCIDENT, "help"))
    headers = {name: value.encode() for name, value in signed(body, timestamp).items()}
    caplog.clear()
    response = httpx.post(bot.events_url, content=body, headers=headers, timeout=10)
    assert response.status_code == 401
    assert_one_line_logged(caplog)


@pytest.mark.parametrize("body", GARBAGE_BODIES)
@pytest.mark.parametrize(("headers", "status"), [(unsigned, 401), (signed, 400)])
def test_garbage_is_unauthorized_or_a_bad_request(start_bot, caplog, body, headers, status):
    """A body that is not what Slack sends gets 401 unsigned, 400 signed, and one log line."""
    bot = start_bot()
    caplog.clear()
    assert post(bot, body, headers(body)).status_code == status
    assert_one_line_logged(caplog)


@pytest.mark.parametrize(
    "actions",
    [[], "dumptask.approve", {"action_id": APPROVE}, [1], None],
    ids=["empty", "string", "object", "list-of-number", "null"],
)
def test_signed_click_without_a_list_of_actions_is_a_bad_request(
    start_bot, slack, dis, caplog, actions
):
    """A signed click whose `actions` is empty or not a list of objects gets 400; nothing moves."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_card(slack, INCIDENT)
    payload = slack.build_block_action(APPROVER1, INCIDENT, card.ts, APPROVE)
    payload["actions"] = actions
    body = click_body(payload)
    caplog.clear()
    assert post(bot, body, slack.sign(body, int(time.time()))).status_code == 400
    assert_one_line_logged(caplog)
    assert has_buttons(slack, INCIDENT, card.ts)
    assert not dis.action_calls()


# -- size ----------------------------------------------------------------------------------------


def test_body_declared_over_the_limit_is_refused_before_it_is_read(start_bot, slack):
    """A request announcing a 10 MB body gets 413 at once, though the body never comes."""
    bot = start_bot()
    headers = {
        **slack.sign(b"", int(time.time())),
        "Content-Length": str(10 * 1024 * 1024),
    }
    status = status_line_of_raw_post(bot.events_url, request_head(bot, headers))
    assert status.split()[1] == "413"
    assert httpx.get(f"{bot.url}/healthz", timeout=5).status_code == 200


def test_chunked_body_over_the_limit_is_refused_once_past_the_limit(start_bot, slack):
    """A chunked body gets 413 as soon as it passes the limit, without waiting for its end."""
    bot = start_bot()
    headers = {**slack.sign(b"", int(time.time())), "Transfer-Encoding": "chunked"}
    chunk = b"x" * 1024
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * (MAX_BODY_BYTES // len(chunk) + 1)
    status = status_line_of_raw_post(bot.events_url, request_head(bot, headers), body)
    assert status.split()[1] == "413"
    assert httpx.get(f"{bot.url}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("size", [100_000, 1_000_000], ids=["100KB", "1MB"])
def test_huge_signed_command_is_refused_quickly(start_bot, slack, size):
    """A signed command far over the body limit is answered 413 well within Slack's 3 s."""
    start_bot()
    started = time.monotonic()
    response = slack.send_command(
        REQUESTER, INCIDENT, f'start {STREAM} orders-archive -r "{"x" * size}"'
    )
    assert response.status_code == 413
    assert time.monotonic() - started < 3


def test_over_long_command_text_is_answered_with_the_limit(start_bot, slack):
    """An over-long command text in a body just under the limit is answered at once with the limit."""
    start_bot()
    started = time.monotonic()
    response = slack.send_command(
        REQUESTER, INCIDENT, f'start {STREAM} orders-archive -r "{"x" * 60_000}"'
    )
    assert response.status_code == 200
    [answer] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert time.monotonic() - started < 3
    assert f"at most {MAX_COMMAND_LENGTH} characters" in answer
    assert not slack.calls_to("chat.postMessage")


# -- what must never leak ---------------------------------------------------------------------


@pytest.fixture
def refused_token_bot(start_bot):
    """A bot with temporary credentials whose secret key the gateway refuses (APIGW.0301)."""
    return start_bot(dis_security_token=SECURITY_TOKEN, dis_secret_key="WRONG" + DIS_SK)


def test_security_token_is_scrubbed_from_the_log(refused_token_bot, slack, caplog):
    """The 0301 log line keeps the canonical request but not the security token."""
    slack.send_command(REQUESTER, INCIDENT, f"list {STREAM}")
    wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "x-security-token:" in caplog.text, "the canonical request is still logged"
    assert SECURITY_TOKEN not in caplog.text


def test_security_token_is_scrubbed_from_ephemeral_answers(refused_token_bot, slack):
    """An ephemeral answer quoting DIS's 0301 message does not show the security token."""
    slack.send_command(REQUESTER, INCIDENT, f"list {STREAM}")
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "APIGW.0301" in text
    assert SECURITY_TOKEN not in text


def test_security_token_is_scrubbed_from_the_card_and_its_thread(refused_token_bot, slack):
    """A card (and its outcome reply) quoting DIS's 0301 message does not show the token."""
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {ARCHIVE_ID}")
    card = wait_for_card(slack, INCIDENT)
    assert "APIGW.0301" in card_text(slack, INCIDENT, card.ts)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    everything = [
        card_text(slack, INCIDENT, card.ts),
        reply.text + str(reply.blocks),
        *(str(call.args) for call in slack.calls),
    ]
    assert "APIGW.0301" in everything[1]
    for shown in everything:
        assert SECURITY_TOKEN not in shown


@pytest.fixture
def locked_out_postgres(postgres_server) -> Iterator[tuple[str, str, psycopg.Connection]]:
    """A PostgreSQL role owning a fresh schema: its name, its URL, and an admin connection."""
    role = f"bot_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(postgres_server)
    url = f"postgresql://{role}@{parts.hostname}:{parts.port}{parts.path}"
    url += f"?options=-csearch_path%3D{role}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
        yield role, url, admin
        admin.execute(f"ALTER ROLE {role} NOLOGIN")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        admin.execute(f"DROP SCHEMA {role} CASCADE")
        admin.execute(f"DROP OWNED BY {role}")
        admin.execute(f"DROP ROLE {role}")


def test_healthz_does_not_show_database_details(locked_out_postgres, start_bot, caplog):
    """With the database unreachable, /healthz answers 503 and a fixed text; the log says why."""
    role, url, admin = locked_out_postgres
    bot = start_bot(database_url=url)
    health = f"{bot.url}/healthz"
    assert httpx.get(health, timeout=10).status_code == 200
    admin.execute(f"ALTER ROLE {role} NOLOGIN")
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
    )
    eventually(lambda: httpx.get(health, timeout=10).status_code == 503, what="503 from /healthz")
    caplog.clear()
    response = httpx.get(health, timeout=10)
    assert response.status_code == 503
    assert response.json() == {"ok": False, "error": "database unreachable"}
    [record] = [record for record in problems(caplog) if record.name == "bot.web"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert role in record.getMessage()


# -- start-up ------------------------------------------------------------------------------------


async def test_start_up_logs_no_warning_with_the_bot_token_in_the_environment(
    tmp_path, dis, slack, monkeypatch, caplog
):
    """Building the bot with SLACK_BOT_TOKEN set, as the configuration asks, warns of nothing."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    bot = await create_bot(make_settings(tmp_path, dis, slack))
    await bot.aclose()
    assert not problems(caplog)


# -- authorization at decision time, across a restart ------------------------------------------


def open_then_restart(start_bot, slack, **overrides):
    """Open a request under the default policy, restart the bot with ``overrides``; the card."""
    first = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_card(slack, INCIDENT)
    first.stop()
    start_bot(**overrides)
    return card


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"dumptask_allowed_streams": "clicks-*"}, "DUMPTASK_ALLOWED_STREAMS"),
        ({"dumptask_requesters": APPROVER2}, "DUMPTASK_REQUESTERS"),
    ],
    ids=["stream-no-longer-allowed", "requester-removed"],
)
def test_approval_under_a_narrower_policy_closes_the_request(start_bot, slack, dis, overrides, why):
    """After a restart with a narrower policy, the approve click closes the request, saying why."""
    card = open_then_restart(start_bot, slack, **overrides)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    shown = eventually(
        lambda: (
            (text := card_text(slack, INCIDENT, card.ts)) and "no longer allowed" in text and text
        ),
        what="the card closed as no longer allowed",
    )
    assert why in shown
    assert not has_buttons(slack, INCIDENT, card.ts)
    assert not dis.action_calls()


def test_raised_quorum_holds_back_a_request_opened_before(start_bot, slack, dis):
    """After a restart raising the quorum to 2, one approval shows 1 of 2 and a second executes."""
    card = open_then_restart(start_bot, slack, dumptask_approvals_required=2)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    eventually(lambda: "1 of 2" in card_text(slack, INCIDENT, card.ts), what="1 of 2 on the card")
    assert has_buttons(slack, INCIDENT, card.ts)
    assert not dis.action_calls()
    slack.click(APPROVER2, INCIDENT, card.ts, APPROVE)
    assert "RUNNING" in wait_for_thread_reply(slack, INCIDENT, card.ts).text
    assert len(dis.action_calls()) == 1


def test_click_from_another_channel_is_refused(start_bot, slack, dis):
    """An approve click claiming another channel than the request's is refused; nothing moves."""
    start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_card(slack, INCIDENT)
    shown = slack.message(INCIDENT, card.ts)
    slack.click(APPROVER1, RANDOM, card.ts, APPROVE, message=shown)
    [text] = wait_for_ephemeral(slack, RANDOM, APPROVER1)
    assert f"belongs to <#{INCIDENT}>" in text
    assert slack.message(INCIDENT, card.ts).blocks == shown.blocks
    assert not dis.action_calls()


# -- who may read a request's history ------------------------------------------------------------


def open_request_id(start_bot, slack) -> str:
    """Start the bot, open a request in the incident channel, and return its id."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    wait_for_card(slack, INCIDENT)
    assert bot.bot is not None
    [request] = bot.run(bot.bot.store.recent_for(REQUESTER))
    return request.id


def test_status_from_another_channel_is_refused_to_an_outsider(start_bot, slack):
    """Someone neither requester nor approver cannot read a request's history from elsewhere."""
    request_id = open_request_id(start_bot, slack)
    slack.send_command(OUTSIDER, RANDOM, f"status {request_id}")
    [text] = wait_for_ephemeral(slack, RANDOM, OUTSIDER)
    assert f"belongs to <#{INCIDENT}>" in text
    assert "requested" not in text


def test_requester_reads_status_from_any_channel(start_bot, slack):
    """The requester reads their request's history from another channel."""
    request_id = open_request_id(start_bot, slack)
    slack.send_command(REQUESTER, RANDOM, f"status {request_id}")
    [text] = wait_for_ephemeral(slack, RANDOM, REQUESTER)
    assert request_id in text and "requested" in text


def test_anyone_in_the_request_channel_reads_its_status(start_bot, slack):
    """Anyone in the request's channel reads its history."""
    request_id = open_request_id(start_bot, slack)
    slack.send_command(OUTSIDER, INCIDENT, f"status {request_id}")
    [text] = wait_for_ephemeral(slack, INCIDENT, OUTSIDER)
    assert request_id in text and "requested" in text
