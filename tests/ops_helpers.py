"""Helpers for the operations tests: read ``/metrics`` as Prometheus does, run a whole flow."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.sim.slack import SlackStandIn
from tests.conftest import APPROVER1, INCIDENT, REQUESTER, STREAM
from tests.flow_helpers import (
    APPROVE,
    RunningBot,
    eventually,
    request_id_of,
    wait_for_stored_card,
    wait_for_thread_reply,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str) -> Samples:
    """Every sample ``base_url/metrics`` serves, parsed by prometheus_client's own parser."""
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample named ``name`` with exactly ``labels``, or ``None`` when there is none."""
    return samples.get((name, frozenset(labels.items())))


def not_in_channel_errors(samples: Samples) -> float | None:
    """How many ``chat.postMessage`` calls Slack refused with ``not_in_channel``."""
    return value(
        samples,
        "dumptask_slack_api_errors_total",
        method="chat.postMessage",
        error="not_in_channel",
    )


def approve_one(
    bot: RunningBot, slack: SlackStandIn, channel: str = INCIDENT, count: int = 1
) -> str:
    """Ask for a start, approve it, wait for its outcome in the thread; the request id."""
    slack.send_command(REQUESTER, channel, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(bot, slack, channel, count)
    slack.click(APPROVER1, channel, card.ts, APPROVE)
    wait_for_thread_reply(slack, channel, card.ts)
    return request_id_of(card)


def whole_trail(bot: RunningBot, request_id: str) -> list[str]:
    """The request's audit kinds, once its outcome was delivered (the last event of a flow)."""
    assert bot.bot is not None
    store = bot.bot.store

    def kinds() -> list[str] | None:
        found = [str(event.kind) for event in bot.run(store.audit_trail(request_id))]
        return found if "delivered" in found else None

    return eventually(kinds, what=f"the whole trail of {request_id}")
