"""``GET /metrics``: Prometheus text from the bot's own registry, checked value by value.

The bot runs for real (uvicorn, SQLite) between the Slack and DIS stand-ins; the scrape is
parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from bot import metrics as metrics_module
from bot.lifecycle import Outcome, RequestState
from bot.metrics import Metrics, StoreReading, merge_exposition, package_version
from bot.store.protocol import Backlog
from tests.conftest import INCIDENT, RANDOM, REQUESTER, STREAM
from tests.fakes import make_request
from tests.flow_helpers import (
    eventually,
    wait_for_ephemeral,
    wait_for_stored_card,
)
from tests.ops_helpers import approve_one, not_in_channel_errors, scrape, value, whole_trail


def test_a_whole_flow_shows_in_the_metrics(start_bot, slack, dis):
    """After one approved start: the command, the request, the execution, DIS and the gauges."""
    bot = start_bot()
    whole_trail(bot, approve_one(bot, slack))

    samples = scrape(bot.url)
    assert value(samples, "dumptask_commands_total", kind="start", result="parsed") == 1
    assert value(samples, "dumptask_requests_total", event="opened", action="start") == 1
    assert value(samples, "dumptask_requests_total", event="approved", action="start") == 1
    assert value(samples, "dumptask_requests_total", event="cancelled", action="start") == 0
    outcome = {"action": "start", "outcome": "succeeded", "interrupted": "false"}
    assert value(samples, "dumptask_executions_total", **outcome) == 1
    assert value(samples, "dumptask_executions_total", **{**outcome, "outcome": "failed"}) == 0
    approval = value(samples, "dumptask_approval_latency_seconds_count", decision="approved")
    assert approval == 1
    assert value(samples, "dumptask_execution_latency_seconds_count", action="start") == 1
    assert value(samples, "dumptask_dis_calls_total", operation="start_tasks", result="ok") == 1
    assert value(samples, "dumptask_dis_calls_total", operation="list_tasks", result="ok") >= 2
    assert value(samples, "dumptask_dis_calls_total", operation="list_tasks", result="auth") == 0
    assert value(samples, "dumptask_dis_call_duration_seconds_count", operation="start_tasks") == 1
    assert value(samples, "dumptask_dis_retries_total", operation="start_tasks") == 0
    assert value(samples, "dumptask_requests_open") == 0
    assert value(samples, "dumptask_requests_executing") == 0
    assert value(samples, "dumptask_oldest_execution_age_seconds") == 0
    assert value(samples, "dumptask_store_up") == 1
    assert value(samples, "dumptask_build_info", version=package_version()) == 1
    assert all(name.startswith("dumptask_") for name, _ in samples)


def test_the_open_requests_gauge_is_read_from_the_store(start_bot, slack):
    """A request opened through one replica counts as open on another sharing the database."""
    first = start_bot()
    second = start_bot()
    slack.request_url = first.events_url
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    wait_for_stored_card(first, slack, INCIDENT)
    samples = scrape(second.url)
    assert value(samples, "dumptask_requests_open") == 1
    assert value(samples, "dumptask_commands_total", kind="start", result="parsed") is None


def test_refused_and_mistaken_commands_are_counted_by_result(start_bot, slack):
    """A typo is an error, a disallowed channel a refusal, a channel without the bot an error."""
    bot = start_bot(dumptask_allowed_channels=INCIDENT)
    slack.send_command(REQUESTER, INCIDENT, "strat orders-stream a")
    slack.send_command(REQUESTER, RANDOM, f"start {STREAM} orders-archive")
    wait_for_ephemeral(slack, RANDOM, REQUESTER)

    def counted():
        samples = scrape(bot.url)
        return (
            value(samples, "dumptask_commands_total", kind="invalid", result="error") == 1
            and value(samples, "dumptask_commands_total", kind="start", result="refused") == 1
        )

    eventually(counted, what="both commands to be counted")


def test_slack_api_errors_are_counted_by_method_and_error(start_bot, slack):
    """Posting a card where the bot is not a member counts chat.postMessage not_in_channel."""
    bot = start_bot()
    slack.send_command(REQUESTER, RANDOM, f"start {STREAM} orders-archive")
    wait_for_ephemeral(slack, RANDOM, REQUESTER)

    def counted():
        samples = scrape(bot.url)
        return not_in_channel_errors(samples) == 1 and value(
            samples, "dumptask_commands_total", kind="start", result="error"
        )

    eventually(counted, what="the Slack error and the command to be counted")


def test_dis_auth_failures_are_counted(start_bot, slack):
    """A refused AK/SK counts one list_tasks call with result auth (the alert's series)."""
    bot = start_bot(dis_secret_key="not-the-secret")
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    wait_for_stored_card(bot, slack, INCIDENT)
    samples = scrape(bot.url)
    assert value(samples, "dumptask_dis_calls_total", operation="list_tasks", result="auth") == 1
    assert value(samples, "dumptask_dis_calls_total", operation="list_tasks", result="ok") == 0


async def test_a_store_that_does_not_answer_in_time_reports_only_store_up_zero(monkeypatch):
    """A hung store costs the scrape a bounded wait and shows no stale gauge."""
    monkeypatch.setattr(metrics_module, "STORE_READ_TIMEOUT_S", 0.05)
    metrics = Metrics(build_version="test")

    async def hang() -> Backlog:
        await asyncio.sleep(10)
        return Backlog()

    await metrics.refresh(hang, datetime.now(UTC))
    text = metrics.exposition().decode()
    assert "dumptask_store_up 0.0" in text
    assert "dumptask_requests_open" not in text


def test_bots_in_one_process_keep_their_own_numbers():
    """Each Metrics has its own registry: counting in one never shows in another."""
    first, second = Metrics(build_version="test"), Metrics(build_version="test")
    first.command("start", "parsed")
    assert b'dumptask_commands_total{kind="start",result="parsed"} 1.0' in first.exposition()
    assert b"dumptask_commands_total{" not in second.exposition()


def test_decisions_and_taken_over_executions_are_labelled():
    """A cancel is a decision with its latency; a taken-over execution counts as interrupted."""
    metrics = Metrics(build_version="test")
    pending = make_request()
    cancelled = replace(
        pending, state=RequestState.CANCELLED, decided_at=pending.created_at + timedelta(seconds=42)
    )
    metrics.request_changed(pending, cancelled)
    executing = replace(pending, state=RequestState.EXECUTING, decided_at=pending.created_at)
    outcome = Outcome(
        tasks=(), finished_at=pending.created_at + timedelta(seconds=7), interrupted=True
    )
    metrics.request_changed(
        executing, replace(executing, state=RequestState.UNKNOWN, outcome=outcome)
    )
    text = metrics.exposition().decode()
    assert 'dumptask_requests_total{action="start",event="cancelled"} 1.0' in text
    assert 'dumptask_approval_latency_seconds_sum{decision="cancelled"} 42.0' in text
    unknown = 'dumptask_executions_total{action="start",interrupted="true",outcome="unknown"} 1.0'
    assert unknown in text
    assert 'dumptask_execution_latency_seconds_sum{action="start"} 7.0' in text


def _parsed(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def test_the_worker_processs_counters_and_histograms_join_ours_but_not_its_gauges():
    """``serve``'s /metrics adds up both processes' counts; store and build gauges stay once."""
    web, worker = Metrics(build_version="test"), Metrics(build_version="test")
    web.command("start", "parsed")
    worker.command("start", "parsed")
    worker.command("stop", "refused")  # a series only the worker has
    web.dis_call("list_tasks", "ok", 0.02)
    worker.dis_call("list_tasks", "ok", 0.3)
    worker.dis_call("start_tasks", "throttled", 7.0)
    web._store.reading = StoreReading(Backlog(open_requests=3), datetime.now(UTC))

    merged = _parsed(merge_exposition(web.exposition(), worker.exposition()))

    assert merged[_key("dumptask_commands_total", kind="start", result="parsed")] == 2
    assert merged[_key("dumptask_commands_total", kind="stop", result="refused")] == 1
    ok = {"operation": "list_tasks", "result": "ok"}
    assert merged[_key("dumptask_dis_calls_total", **ok)] == 2
    assert merged[_key("dumptask_dis_call_duration_seconds_count", operation="list_tasks")] == 2
    assert (
        merged[_key("dumptask_dis_call_duration_seconds_bucket", operation="list_tasks", le="0.05")]
        == 1
    )
    assert (
        merged[_key("dumptask_dis_call_duration_seconds_bucket", operation="start_tasks", le="5.0")]
        == 0
    )
    assert (
        merged[
            _key("dumptask_dis_call_duration_seconds_bucket", operation="start_tasks", le="10.0")
        ]
        == 1
    )
    # Read from the store by the process answering the scrape: once, not twice.
    assert merged[_key("dumptask_requests_open")] == 3
    assert merged[_key("dumptask_build_info", version="test")] == 1


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())
