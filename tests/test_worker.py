"""``serve`` acks in one process and runs the jobs in a worker process it starts and watches.

Real processes throughout: ``dumptask-bot serve`` with SQLite between the stand-ins. The worker
is found as serve's child in /proc; it is killed, and serve killed, to show that stored work is
never lost and that no worker outlives its ``serve``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.sim.dis import DisStandIn
from bot.sim.slack import SlackStandIn
from tests.conftest import ARCHIVE_ID, DLI_ID, INCIDENT, REQUESTER, STREAM
from tests.flow_helpers import eventually, wait_for_card
from tests.ops_helpers import scrape, value
from tests.processes import BotProcess, bot_environment, child_pids, is_alive


@pytest.fixture
def run_bot(
    tmp_path: Path, dis: DisStandIn, slack: SlackStandIn
) -> Iterator[Callable[..., BotProcess]]:
    """Start ``dumptask-bot serve`` processes; each is stopped (or killed) after the test."""
    started: list[BotProcess] = []

    def run(**overrides: object) -> BotProcess:
        env = bot_environment(dis, slack, f"sqlite:///{tmp_path}/bot.db", **overrides)
        bot = BotProcess(env, tmp_path / f"bot-{len(started)}.log").start()
        started.append(bot)
        slack.request_url = bot.events_url
        return bot

    yield run
    for bot in started:
        bot.stop()


def the_worker(bot: BotProcess, other_than: int | None = None) -> int:
    """The pid of serve's worker process (a new one, if ``other_than`` names the old)."""
    return eventually(
        lambda: next((pid for pid in child_pids(bot.pid) if pid != other_than), None),
        what="serve's worker process",
    )


def test_the_jobs_run_in_a_worker_whose_counts_show_in_serves_metrics(run_bot, slack):
    """The card comes from the worker; /metrics, answered by serve, counts the command."""
    bot = run_bot()
    worker = the_worker(bot)
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {ARCHIVE_ID}")
    wait_for_card(slack, INCIDENT)
    assert "started the worker process" in bot.log()

    def counted() -> float | None:
        return value(scrape(bot.url), "dumptask_commands_total", kind="start", result="parsed")

    assert eventually(counted, what="the worker's count in /metrics") == 1
    assert child_pids(bot.pid) == [worker]


def test_a_killed_worker_is_replaced_and_the_work_stored_meanwhile_is_done(run_bot, slack):
    """A command acked while no worker runs waits in the store for the next worker."""
    bot = run_bot()
    first = the_worker(bot)
    os.kill(first, signal.SIGKILL)
    ack = slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {ARCHIVE_ID}")
    assert ack.status_code == 200
    second = the_worker(bot, other_than=first)
    assert second != first
    wait_for_card(slack, INCIDENT)
    assert "the worker process exited" in bot.log()


def test_serve_killed_outright_takes_its_worker_with_it(run_bot):
    """No orphan keeps running jobs after a kill -9 of serve: the worker dies with it."""
    bot = run_bot()
    worker = the_worker(bot)
    bot.kill()
    eventually(lambda: not is_alive(worker), what="the worker to die with serve")


def test_sigterm_stops_both_processes_cleanly(run_bot, slack):
    """SIGTERM: serve drains, stops its worker, and exits 0 after it."""
    bot = run_bot()
    worker = the_worker(bot)
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {DLI_ID}")
    wait_for_card(slack, INCIDENT)
    assert bot.terminate(timeout=30) == 0
    assert not is_alive(worker)
    assert "stopping: finishing the jobs in flight" in bot.log()


def test_inline_runs_everything_in_one_process(run_bot, slack):
    """``DUMPTASK_WORKER=inline``: no child process, and the card still comes."""
    bot = run_bot(dumptask_worker="inline")
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} {ARCHIVE_ID}")
    wait_for_card(slack, INCIDENT)
    assert child_pids(bot.pid) == []
