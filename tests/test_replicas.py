"""Durability across processes: a restart loses nothing, and two replicas never run a request twice."""

from __future__ import annotations

import threading
import time

import httpx

from bot.sim.slack_client import click_body
from tests.conftest import APPROVER1, APPROVER2, INCIDENT, OUTSIDER, REQUESTER, STREAM
from tests.flow_helpers import (
    APPROVE,
    wait_for_refusals,
    wait_for_stored_card,
    wait_for_thread_reply,
)


def test_restart_loses_nothing(start_bot, slack, dis):
    """A request made before a restart is approved and executed by the restarted bot."""
    first = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(first, slack, INCIDENT)
    first.stop()
    start_bot()
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert "RUNNING" in reply.text
    assert len(dis.action_calls()) == 1


def test_two_replicas_on_postgresql_run_a_request_once(start_bot, slack, dis, postgres_url):
    """Twenty approve clicks split between two replicas sharing PostgreSQL make one DIS call."""
    replicas = [start_bot(database_url=postgres_url), start_bot(database_url=postgres_url)]
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_stored_card(replicas[0], slack, INCIDENT)
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def click(index: int) -> None:
        user = (APPROVER1, APPROVER2, OUTSIDER)[index % 3]
        body = click_body(slack.build_block_action(user, INCIDENT, card.ts, APPROVE))
        headers = slack.sign(body, int(time.time()))
        barrier.wait()
        response = httpx.post(
            replicas[index % 2].events_url, content=body, headers=headers, timeout=10
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=click, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 20
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    wait_for_refusals(slack, INCIDENT, 19)
    assert "RUNNING" in reply.text
    assert len(dis.action_calls()) == 1
    assert len(slack.thread(INCIDENT, card.ts)) == 1
