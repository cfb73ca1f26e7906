"""The signed audit stream: every audit event, signed, in order, once, whatever the receiver does.

A receiver stand-in (``tests.receiver``) verifies each delivery as README tells receivers to.
The bot runs in-process (``start_bot``) or as ``dumptask-bot serve`` processes that are stopped
and restarted (``run_bot``, from the fault suite).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest

from bot.audit_webhook import WebhookAuth, sign
from tests import test_faults
from tests.conftest import APPROVER1, INCIDENT, REQUESTER, STREAM
from tests.flow_helpers import APPROVE, eventually
from tests.ops_helpers import approve_one, scrape, value, whole_trail
from tests.receiver import AuditReceiver, verify

SECRET = "the-receivers-shared-secret"
# The fault suite's fixtures: ``dumptask-bot serve`` processes and a reader of their database.
run_bot = test_faults.run_bot
reader = test_faults.reader


@pytest.fixture
def receiver():
    stand_in = AuditReceiver(SECRET)
    yield stand_in
    stand_in.stop()


def webhook_settings(receiver: AuditReceiver) -> dict[str, str]:
    return {"dumptask_audit_webhook_url": receiver.url, "dumptask_audit_webhook_secret": SECRET}


def received(receiver: AuditReceiver, count: int, timeout: float = 30) -> list[dict]:
    """Wait until ``count`` events were accepted, and return them in arrival order."""
    return eventually(
        lambda: len(found := receiver.events) >= count and found,
        timeout=timeout,
        what=f"{count} audit events at the receiver",
    )


def assert_once_in_order(receiver: AuditReceiver, events: list[dict]) -> None:
    """Every accepted event once, each request's in order, every delivery correctly signed."""
    keys = [event["idempotency_key"] for event in events]
    assert len(set(keys)) == len(keys), "an event was accepted twice"
    for request_id in {event["request"] for event in events}:
        sequences = [e["sequence"] for e in events if e["request"] == request_id]
        assert sequences == sorted(sequences)
    assert all(delivery.valid for delivery in receiver.deliveries)
    assert all(d.event_id == d.event["idempotency_key"] for d in receiver.deliveries)


def test_every_event_reaches_the_receiver_signed_and_in_order(start_bot, slack, receiver):
    """One approved start: the receiver gets the request's whole trail, as the export shows it."""
    receiver.start()
    bot = start_bot(**webhook_settings(receiver))
    request_id = approve_one(bot, slack)
    kinds = whole_trail(bot, request_id)
    events = received(receiver, len(kinds))
    assert [event["kind"] for event in events] == kinds
    assert_once_in_order(receiver, events)
    first = events[0]
    assert (first["request"], first["channel"], first["stream"], first["action"]) == (
        request_id,
        INCIDENT,
        STREAM,
        "start",
    )
    assert first["actor"] == REQUESTER
    assert first["schema"] == 1
    assert first["detail"]["tasks"]
    eventually(
        lambda: value(scrape(bot.url), "dumptask_outbox_undelivered", sink="webhook") == 0,
        what="the webhook outbox to empty",
    )


def test_a_receiver_answering_errors_gets_the_same_event_again_first(start_bot, slack, receiver):
    """Two 500s for the first event: it comes three times, with one key, before any other."""
    receiver.start()
    receiver.fail_next(2)
    bot = start_bot(**webhook_settings(receiver))
    request_id = approve_one(bot, slack)
    kinds = whole_trail(bot, request_id)
    events = received(receiver, len(kinds))
    assert [event["kind"] for event in events] == kinds
    first_three = receiver.deliveries[:3]
    assert [d.status for d in first_three] == [500, 500, 200]
    assert len({d.event_id for d in first_three}) == 1
    assert_once_in_order(receiver, events)
    samples = scrape(bot.url)
    assert value(samples, "dumptask_outbox_deliveries_total", sink="webhook", result="failed") == 2


@pytest.mark.slow
def test_a_receiver_down_across_a_restart_gets_every_event_once(
    run_bot, slack, dis, reader, receiver
):
    """Receiver down while a request runs and the bot restarts: once up, it gets all, once."""
    first = run_bot(**webhook_settings(receiver))
    card, request = test_faults.request_card(slack, reader)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    test_faults.wait_for_state(reader, request.id)
    eventually(
        lambda: "delivered" in [str(e.kind) for e in reader.audit(request.id)],
        what="the outcome to be delivered",
    )
    waiting = eventually(
        lambda: value(scrape(first.url), "dumptask_outbox_undelivered", sink="webhook"),
        what="the undelivered events to show",
    )
    assert waiting >= 5
    assert first.terminate() == 0
    second = run_bot(**webhook_settings(receiver))
    receiver.start()
    trail = reader.audit(request.id)
    events = received(receiver, len(trail), timeout=90)
    assert [event["kind"] for event in events] == [str(e.kind) for e in trail]
    assert_once_in_order(receiver, events)
    assert len(receiver.deliveries) == len(trail), "no event was sent twice"
    eventually(
        lambda: value(scrape(second.url), "dumptask_outbox_undelivered", sink="webhook") == 0,
        what="the webhook outbox to empty",
    )


def test_two_replicas_on_postgresql_deliver_each_event_once(
    start_bot, slack, receiver, postgres_url
):
    """Requests through either of two replicas: one shipper, every event delivered once."""
    receiver.start()
    replicas = [
        start_bot(database_url=postgres_url, **webhook_settings(receiver)) for _ in range(2)
    ]
    request_ids = []
    for count, replica in enumerate(replicas, start=1):
        slack.request_url = replica.events_url
        request_ids.append(approve_one(replica, slack, count=count))
    total = sum(len(whole_trail(replicas[0], request_id)) for request_id in request_ids)
    events = received(receiver, total)
    assert len(receiver.deliveries) == total, "no event was delivered twice"
    assert {event["request"] for event in events} == set(request_ids)
    assert_once_in_order(receiver, events)


def test_the_signature_covers_the_timestamp_and_the_body():
    """``X-Dumptask-Signature`` is ``v1=`` + hex HMAC-SHA256(secret, "<ts>.<body>")."""
    seen: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with httpx.Client(
        transport=httpx.MockTransport(receive), auth=WebhookAuth(SECRET, clock=lambda: 1700000000)
    ) as client:
        client.post("http://receiver/audit", content=b'{"kind":"approved"}')
    [request] = seen
    expected = hmac.new(SECRET.encode(), b'1700000000.{"kind":"approved"}', hashlib.sha256)
    assert request.headers["X-Dumptask-Timestamp"] == "1700000000"
    assert request.headers["X-Dumptask-Signature"] == "v1=" + expected.hexdigest()
    assert (
        sign(SECRET.encode(), 1700000000, request.content)
        == request.headers["X-Dumptask-Signature"]
    )
    assert not verify(SECRET, "1700000000", request.content, "v1=" + expected.hexdigest()), (
        "a receiver refuses a signature older than five minutes"
    )


def test_readmes_example_delivery_carries_a_valid_signature():
    """README's example request verifies with the secret it names, by the bot's own signer."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = readme.split("```http\n", 1)[1].split("```", 1)[0]
    headers, body = example.split("\n\n", 1)
    fields = dict(line.split(": ", 1) for line in headers.splitlines()[1:])
    timestamp = int(fields["X-Dumptask-Timestamp"])
    signed = sign(b"an-example-secret-value", timestamp, body.strip().encode())
    assert fields["X-Dumptask-Signature"] == signed
    assert json.loads(body)["idempotency_key"] == fields["X-Dumptask-Event-Id"]
