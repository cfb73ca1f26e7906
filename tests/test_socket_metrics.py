"""Socket Mode with ``METRICS_PORT``: ``/metrics`` on a small server that lives with the bot."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from bot.app import create_bot
from bot.metrics_http import MetricsServer
from bot.socket_mode import run_socket_mode
from tests import test_socket_mode
from tests.conftest import INCIDENT, REQUESTER, STREAM, make_settings
from tests.flow_helpers import eventually, wait_for_stored_card
from tests.ops_helpers import scrape, value
from tests.processes import free_port
from tests.test_socket_mode import APP_TOKEN, SocketBot, envelope

socket_link = test_socket_mode.socket_link


def test_socket_mode_serves_metrics_on_its_own_port_until_it_stops(
    tmp_path, dis, slack, socket_link
):
    """A command over Socket Mode is counted on METRICS_PORT; stopping the bot closes the port."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        dis,
        slack,
        slack_signing_secret=None,
        slack_app_token=APP_TOKEN,
        metrics_port=port,
    )
    running, stop = SocketBot(), threading.Event()

    async def main() -> None:
        running.loop = asyncio.get_running_loop()
        running.bot = await create_bot(settings, sweep_interval=0.05)
        server = MetricsServer(running.bot, "127.0.0.1", port)
        task = asyncio.create_task(run_socket_mode(running.bot, APP_TOKEN, metrics=server))
        await asyncio.to_thread(stop.wait)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        assert socket_link.wait_connected()
        command = slack.build_slash_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
        socket_link.deliver(envelope(slack, "slash_commands", command))
        wait_for_stored_card(running, slack, INCIDENT)
        url = f"http://127.0.0.1:{port}"
        eventually(
            lambda: value(scrape(url), "dumptask_commands_total", kind="start", result="parsed"),
            what="the command to be counted",
        )
        assert value(scrape(url), "dumptask_requests_open") == 1
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
