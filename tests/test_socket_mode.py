"""The same flow through Socket Mode: the bot connects over a real WebSocket, no signatures."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from bot.app import Bot, create_bot
from bot.lifecycle import Phase
from bot.sim.dis import Fault
from bot.sim.slack_socket import SocketModeStandIn
from bot.socket_mode import run_socket_mode
from bot.vocabulary import TaskState
from tests.conftest import APPROVER1, ARCHIVE_ID, INCIDENT, REQUESTER, STREAM, make_settings
from tests.flow_helpers import (
    APPROVE,
    card_text,
    eventually,
    request_id_of,
    wait_for_card,
    wait_for_ephemeral,
    wait_for_stored_card,
    wait_for_thread_reply,
)

APP_TOKEN = "xapp-1-A0TEST-socket-token"
T = TypeVar("T")


@pytest.fixture
def socket_link(slack) -> Iterator[SocketModeStandIn]:
    with SocketModeStandIn() as link:
        slack.workspace.app_token = APP_TOKEN
        slack.workspace.socket_url = link.url
        yield link


class SocketBot:
    """The bot run by ``socket_bot`` and its event loop, so a test can read the bot's store."""

    def __init__(self) -> None:
        self.bot: Bot | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coroutine`` on the bot's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@pytest.fixture
def socket_bot(tmp_path, dis, slack, socket_link) -> Iterator[SocketBot]:
    """`dumptask-bot socket`'s own entry point, run on a thread until the test ends."""
    settings = make_settings(
        tmp_path, dis, slack, slack_signing_secret=None, slack_app_token=APP_TOKEN
    )
    stopped = threading.Event()
    running = SocketBot()

    async def main() -> None:
        running.loop = asyncio.get_running_loop()
        running.bot = await create_bot(settings, sweep_interval=0.05)
        task = asyncio.create_task(run_socket_mode(running.bot, APP_TOKEN))
        await asyncio.to_thread(stopped.wait)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert socket_link.wait_connected(), "the bot opened its Socket Mode connection"
    yield running
    stopped.set()
    thread.join(timeout=30)


def envelope(slack, kind: str, payload: dict) -> dict:
    return {
        "envelope_id": str(uuid.uuid4()),
        "type": kind,
        "accepts_response_payload": kind == "slash_commands",
        "payload": payload,
    }


def test_command_and_approval_over_socket_mode(socket_bot, socket_link, slack, dis):
    """A slash command and an approval delivered as Socket Mode envelopes start the task."""
    command = slack.build_slash_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    ack = socket_link.deliver(envelope(slack, "slash_commands", command))
    assert ack["envelope_id"]
    card = wait_for_stored_card(socket_bot, slack, INCIDENT)
    click = slack.build_block_action(APPROVER1, INCIDENT, card.ts, APPROVE, None)
    socket_link.deliver(envelope(slack, "interactive", click))
    reply = wait_for_thread_reply(slack, INCIDENT, card.ts)
    assert "RUNNING" in reply.text
    assert dis.task_state(STREAM, ARCHIVE_ID) == TaskState.RUNNING
    assert len(dis.action_calls()) == 1


def test_bad_command_is_answered_in_the_ack_payload(socket_bot, socket_link, slack):
    """A mistake is answered in the envelope's acknowledgement, which Slack shows ephemerally."""
    command = slack.build_slash_command(REQUESTER, INCIDENT, "strat orders-stream a")
    ack = socket_link.deliver(envelope(slack, "slash_commands", command))
    assert "did you mean" in ack["payload"]["text"].lower()


def test_refusal_reaches_the_user_over_socket_mode(socket_bot, socket_link, slack, dis):
    """The requester's own approval is refused ephemerally, through response_url."""
    command = slack.build_slash_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    socket_link.deliver(envelope(slack, "slash_commands", command))
    card = wait_for_stored_card(socket_bot, slack, INCIDENT)
    socket_link.deliver(
        envelope(
            slack,
            "interactive",
            slack.build_block_action(REQUESTER, INCIDENT, card.ts, APPROVE, None),
        )
    )
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "someone else" in text
    assert not dis.action_calls()


def test_command_containing_payload_reaches_the_listeners_over_socket_mode(
    socket_bot, socket_link, slack
):
    """Over Socket Mode, a command whose fields contain `payload` gets its card, as over HTTP."""
    slack.add_channel("C0PAYLOAD", "payload-incidents", [REQUESTER, APPROVER1])
    command = slack.build_slash_command(
        REQUESTER, "C0PAYLOAD", f'start {STREAM} orders-archive --reason "bad payload upstream"'
    )
    socket_link.deliver(envelope(slack, "slash_commands", command))
    card = wait_for_card(slack, "C0PAYLOAD")
    assert "bad payload upstream" in card_text(slack, "C0PAYLOAD", card.ts)


def test_stopping_socket_mode_disconnects_then_finishes_the_execution(
    tmp_path, dis, slack, socket_link
):
    """Stopped mid-call, the bot leaves Slack's socket first and finishes the execution, once."""
    settings = make_settings(
        tmp_path, dis, slack, slack_signing_secret=None, slack_app_token=APP_TOKEN
    )
    dis.inject(Fault.latency(1.5, method="POST"))
    running = SocketBot()
    stop_now = threading.Event()
    finished: list[str] = []

    async def main() -> None:
        running.loop = asyncio.get_running_loop()
        running.bot = await create_bot(settings, sweep_interval=0.05)
        stop = asyncio.Event()
        serving = asyncio.create_task(run_socket_mode(running.bot, APP_TOKEN, stop))
        await asyncio.to_thread(stop_now.wait)
        stop.set()
        await serving
        finished.append("stopped")

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert socket_link.wait_connected()
    command = slack.build_slash_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    socket_link.deliver(envelope(slack, "slash_commands", command))
    card = wait_for_stored_card(running, slack, INCIDENT)
    click = slack.build_block_action(APPROVER1, INCIDENT, card.ts, APPROVE, None)
    socket_link.deliver(envelope(slack, "interactive", click))
    assert running.bot is not None
    store = running.bot.store
    request_id = request_id_of(card)
    eventually(
        lambda: (found := running.run(store.get(request_id))) and found.phase is Phase.SENDING,
        what="the call in flight",
    )
    stop_now.set()
    thread.join(timeout=30)
    assert finished == ["stopped"]
    assert socket_link.connections == 0, "Slack sends new payloads to the other connections"
    assert dis.task_state(STREAM, ARCHIVE_ID) == TaskState.RUNNING
    assert len(dis.action_calls()) == 1
    eventually(lambda: "succeeded" in card_text(slack, INCIDENT, card.ts), what="the outcome")
