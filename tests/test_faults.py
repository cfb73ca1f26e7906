"""The fault suite: real ``dumptask-bot serve`` processes, with DIS, Slack and the database failing.

Every test asserts on three witnesses: the audit trail (what the bot recorded), DIS's call log
(what was really sent) and the channel (what people saw): nothing lost, nothing false, every
user told. Recovery times are measured and written to ``out/recovery-times.json`` (the README's
"What happens when…" table comes from there).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.audit import AuditKind
from bot.lifecycle import Phase, Request, RequestState
from bot.sim.dis import Credential, DisStandIn, Fault, TaskSpec
from bot.sim.slack import SlackStandIn
from bot.sim.slack_client import click_body
from bot.vocabulary import TaskState
from tests.conftest import (
    APPROVER1,
    ARCHIVE_ID,
    DIS_AK,
    DIS_SK,
    INCIDENT,
    PROJECT,
    REQUESTER,
    STREAM,
)
from tests.flow_helpers import (
    APPROVE,
    card_text,
    ephemerals,
    eventually,
    wait_for_card,
    wait_for_ephemeral,
)
from tests.processes import BotProcess, StoreReader, ThrowawayPostgres, bot_environment

ROOT = Path(__file__).resolve().parent.parent
TIMINGS = ROOT / "out" / "recovery-times.json"
ACTION = "/transfer-tasks/action"


def record_timing(name: str, seconds: float) -> None:
    """Keep a measured recovery time for the README's table."""
    TIMINGS.parent.mkdir(exist_ok=True)
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings[name] = round(seconds, 1)
    TIMINGS.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def run_bot(
    tmp_path: Path, dis: DisStandIn, slack: SlackStandIn
) -> Iterator[Callable[..., BotProcess]]:
    """Start ``dumptask-bot serve`` processes; each is stopped (or killed) after the test."""
    started: list[BotProcess] = []

    def run(database_url: str | None = None, **overrides: object) -> BotProcess:
        url = database_url or f"sqlite:///{tmp_path}/bot.db"
        env = bot_environment(dis, slack, url, **overrides)
        bot = BotProcess(env, tmp_path / f"bot-{len(started)}.log").start()
        started.append(bot)
        slack.request_url = bot.events_url
        return bot

    yield run
    for bot in started:
        bot.stop()


@pytest.fixture
def reader(tmp_path: Path) -> StoreReader:
    return StoreReader(f"sqlite:///{tmp_path}/bot.db")


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL cluster of the test's own (never the shared one), removed afterwards."""
    if not ThrowawayPostgres.available():
        pytest.fail("PostgreSQL's server binaries are needed to stop a database mid-run")
    cluster = ThrowawayPostgres().create()
    try:
        yield cluster
    finally:
        cluster.remove()


def request_card(slack: SlackStandIn, reader: StoreReader, text: str = "") -> tuple[Any, Request]:
    """Ask for a start of orders-archive and wait until its card is posted and stored."""
    slack.send_command(REQUESTER, INCIDENT, text or f"start {STREAM} orders-archive")
    card = wait_for_card(slack, INCIDENT)
    request = eventually(
        lambda: (found := reader.newest(REQUESTER)) and found.card_ts and found,
        what="the stored card",
    )
    return card, request


def wait_for_state(reader: StoreReader, request_id: str, timeout: float = 30) -> Request:
    """Wait until the request reached a final state, and return it."""
    return eventually(
        lambda: (found := reader.get(request_id)) and found.state.is_final and found,
        timeout=timeout,
        what=f"{request_id} to finish",
    )


def wait_for_phase(reader: StoreReader, request_id: str, phase: Phase) -> Request:
    """Wait until an executing request is stored in ``phase``."""
    return eventually(
        lambda: (found := reader.get(request_id)) and found.phase is phase and found,
        timeout=30,
        what=f"{request_id} to be {phase}",
    )


def audit_kinds(reader: StoreReader, request_id: str) -> list[str]:
    return [str(event.kind) for event in reader.audit(request_id)]


def channel_text(slack: SlackStandIn) -> str:
    """Everything the channel shows, cards and threads, as one text."""
    return "\n".join(m.text + str(m.blocks) for m in slack.messages(INCIDENT))


def assert_told_truthfully(slack: SlackStandIn, request: Request, dis: DisStandIn) -> None:
    """What the channel says agrees with DIS: a running task is never reported unchanged."""
    shown = channel_text(slack)
    running = dis.task_state(STREAM, ARCHIVE_ID) is TaskState.RUNNING
    assert request.state.value in ("succeeded", "unknown", "failed", "partial")
    if running:
        assert request.state is RequestState.SUCCEEDED
        assert "not changed" not in shown
    assert "nothing was changed" not in shown


# -- Slack failing --------------------------------------------------------------------------


def test_rate_limited_card_updates_never_delay_or_repeat_the_call(run_bot, slack, dis, reader):
    """With chat.update rate-limited, the call goes out at once and once; the card catches up."""
    run_bot()
    card, request = request_card(slack, reader)
    slack.fail_next("chat.update", "ratelimited", count=3, retry_after=2)
    clicked = time.monotonic()
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    eventually(dis.action_calls, timeout=10, what="the batch call")
    call_delay = time.monotonic() - clicked
    finished = wait_for_state(reader, request.id)
    assert finished.state is RequestState.SUCCEEDED
    assert len(dis.action_calls()) == 1
    kinds = audit_kinds(reader, request.id)
    assert kinds.count("dis_call") == 1
    assert kinds.index("dis_call") < kinds.index("verification")
    eventually(
        lambda: "succeeded" in card_text(slack, INCIDENT, card.ts).lower(),
        timeout=30,
        what="the card to catch up",
    )
    record_timing("chat.update rate-limited: approval to batch call", call_delay)
    record_timing("chat.update rate-limited: approval to final card", time.monotonic() - clicked)
    assert call_delay < 2, "the rate-limited card update must not hold back the call"


def test_slack_down_at_approval_still_executes_and_delivers_once_slack_is_back(
    run_bot, slack, dis, reader
):
    """With chat.update and chat.postMessage failing, the action runs; the outcome follows."""
    run_bot()
    card, request = request_card(slack, reader)
    slack.fail_next("chat.update", "internal_error", count=12)
    slack.fail_next("chat.postMessage", "internal_error", count=12)
    clicked = time.monotonic()
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    finished = wait_for_state(reader, request.id)
    assert finished.state is RequestState.SUCCEEDED
    assert len(dis.action_calls()) == 1
    assert not ephemerals(slack, INCIDENT, APPROVER1), "the approver is told nothing false"
    delivered = eventually(
        lambda: next((e for e in reader.audit(request.id) if e.kind == "delivered"), None),
        timeout=60,
        what="the outcome to be delivered",
    )
    record_timing("Slack down at approval: outcome delivered after", time.monotonic() - clicked)
    assert delivered.detail["state"] == "succeeded"
    assert "succeeded" in channel_text(slack).lower()


def test_response_url_expired_falls_back_to_an_ephemeral_message(run_bot, slack, dis, reader):
    """A refusal whose response_url is used up still reaches the user, by chat.postEphemeral."""
    run_bot()
    card, _ = request_card(slack, reader)
    body = slack.build_block_action(REQUESTER, INCIDENT, card.ts, APPROVE)
    body["response_url"] = f"{slack.url}/response/expired-token"
    payload = click_body(body)
    response = httpx.post(
        slack.request_url, content=payload, headers=slack.sign(payload, int(time.time()))
    )
    assert response.status_code == 200
    [text] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "someone else" in text


# -- DIS failing ----------------------------------------------------------------------------


def test_a_timed_out_batch_call_is_never_repeated_and_the_outcome_follows_dis(
    run_bot, slack, dis, reader
):
    """A 3 s POST against a 2 s timeout is sent once; DIS started the task, so: succeeded."""
    run_bot(dis_timeout_seconds=2)
    card, request = request_card(slack, reader)
    dis.inject(Fault.latency(3, method="POST", path=ACTION, count=5))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    finished = wait_for_state(reader, request.id)
    eventually(dis.action_calls, what="the POST to be logged")
    assert len(dis.action_calls()) == 1
    assert finished.state is RequestState.SUCCEEDED
    assert finished.outcome is not None
    assert finished.outcome.call_failed
    eventually(lambda: slack.thread(INCIDENT, card.ts), what="the thread reply")
    reply = slack.thread(INCIDENT, card.ts)[-1].text
    assert "RUNNING" in reply and "although the DIS call failed" in reply
    assert_told_truthfully(slack, finished, dis)


@pytest.mark.parametrize(
    ("fault", "posts", "state"),
    [
        (Fault.status(500, method="POST", path=ACTION), 1, RequestState.UNKNOWN),
        (Fault.drop(method="POST", path=ACTION), 1, RequestState.UNKNOWN),
        (Fault.throttle(1, method="POST", path=ACTION), 2, RequestState.SUCCEEDED),
        (Fault.status(503, method="POST", path=ACTION), 2, RequestState.SUCCEEDED),
    ],
    ids=["5xx-not-retried", "dropped-not-retried", "429-retried", "gateway-503-retried"],
)
def test_the_batch_call_is_retried_only_when_it_certainly_did_not_arrive(
    run_bot, slack, dis, reader, fault, posts, state
):
    """5xx and dropped connections are never resent; the gateway's refusals are."""
    run_bot()
    card, request = request_card(slack, reader)
    dis.inject(fault)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    finished = wait_for_state(reader, request.id)
    assert len(dis.action_calls()) == posts
    assert finished.state is state
    assert_told_truthfully(slack, finished, dis)
    if state is RequestState.UNKNOWN:
        eventually(lambda: slack.thread(INCIDENT, card.ts), what="the thread reply")
        assert "may or may not have reached DIS" in slack.thread(INCIDENT, card.ts)[-1].text


def test_a_malformed_list_answer_is_retried(run_bot, slack, dis, reader):
    """An unreadable 2xx body from the list call is retried, and the card shows the states."""
    run_bot()
    dis.inject(Fault.malformed(method="GET"))
    card, _ = request_card(slack, reader)
    assert "PAUSED" in card_text(slack, INCIDENT, card.ts)


def test_the_verify_timeout_is_wall_clock(run_bot, slack, tmp_path):
    """With slow read-backs and a task that never starts, the outcome comes after ~3 s, not 15 polls."""
    slow = DisStandIn(
        project_id=PROJECT,
        credentials=[Credential(DIS_AK, DIS_SK)],
        streams={STREAM: [TaskSpec("orders-archive", TaskState.PAUSED, task_id=ARCHIVE_ID)]},
        start_delay=3600,
    )
    with slow:
        bot = BotProcess(
            bot_environment(
                slow,
                slack,
                f"sqlite:///{tmp_path}/slow.db",
                dumptask_verify_timeout_seconds=3,
                dumptask_verify_interval_seconds=0.2,
            ),
            tmp_path / "slow.log",
        ).start()
        try:
            slack.request_url = bot.events_url
            reader = StoreReader(f"sqlite:///{tmp_path}/slow.db")
            card, request = request_card(slack, reader)
            slow.inject(Fault.latency(1, method="GET", count=100))
            clicked = time.monotonic()
            slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
            finished = wait_for_state(reader, request.id, timeout=30)
            took = time.monotonic() - clicked
        finally:
            bot.stop()
    assert finished.state is RequestState.FAILED
    assert finished.outcome is not None
    assert finished.outcome.tasks[0].final_state is TaskState.STARTING
    record_timing("verify timeout 3 s with 1 s read-backs: outcome after", took)
    assert took < 10, f"the verify timeout is wall-clock, but the outcome took {took:.1f}s"


def test_a_wrong_secret_key_costs_one_gateway_failure(run_bot, slack, dis, reader):
    """After one APIGW.0301 the bot stops calling DIS: a request, a list and an approval make one."""
    run_bot(dis_secret_key="WRONG-SECRET-KEY")
    card, request = request_card(slack, reader)
    assert "Current state unknown" in card_text(slack, INCIDENT, card.ts)
    slack.send_command(REQUESTER, INCIDENT, f"list {STREAM}")
    [refusal] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "paused for another" in refusal
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    finished = wait_for_state(reader, request.id)
    assert finished.state is RequestState.FAILED
    refused = [call for call in dis.calls if call.status == 401]
    assert len(refused) == 1, [call.path for call in dis.calls]
    assert dis.action_calls() == []


# -- the bot dying or stopping --------------------------------------------------------------


def test_sigkill_after_the_approval_is_stored_sends_the_call_once_after_restart(
    run_bot, slack, dis, reader
):
    """Killed between the stored approval and the call, the restarted bot sends it, once."""
    dis.inject(Fault.status(503, method="GET", count=4))
    first = run_bot()
    card, request = request_card(slack, reader)
    assert "Current state unknown" in card_text(slack, INCIDENT, card.ts)
    dis.inject(Fault.latency(5, method="GET", count=1))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    eventually(
        lambda: (found := reader.get(request.id)) and found.state is RequestState.EXECUTING,
        what="the stored approval",
    )
    assert reader.get(request.id).phase is Phase.APPROVED
    first.kill()
    dis.clear_faults()
    killed = time.monotonic()
    run_bot()
    finished = wait_for_state(reader, request.id)
    record_timing(
        "SIGKILL before the call: restarted bot finished after", time.monotonic() - killed
    )
    assert finished.state is RequestState.SUCCEEDED
    assert len(dis.action_calls()) == 1
    assert audit_kinds(reader, request.id).count("dis_call") == 1


def test_sigkill_after_sending_is_recorded_reads_back_and_never_resends(
    run_bot, slack, dis, reader
):
    """Killed mid-call, the restarted bot says so within 30 s, reads back, and never resends."""
    first = run_bot(dis_timeout_seconds=10, dumptask_lease_seconds=15)
    card, request = request_card(slack, reader)
    dis.inject(Fault.latency(4, method="POST", path=ACTION))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_phase(reader, request.id, Phase.SENDING)
    first.kill()
    killed = time.monotonic()
    run_bot(dumptask_lease_seconds=15)
    eventually(
        lambda: any("interrupted" in m.text for m in slack.thread(INCIDENT, card.ts)),
        timeout=30,
        what="the interrupted note in the thread",
    )
    noticed = time.monotonic() - killed
    record_timing("SIGKILL mid-call (default 15 s lease): thread told after", noticed)
    assert noticed < 30
    finished = wait_for_state(reader, request.id)
    eventually(dis.action_calls, what="the first POST to be logged")
    assert len(dis.action_calls()) == 1
    assert finished.outcome is not None
    assert finished.outcome.interrupted
    assert_told_truthfully(slack, finished, dis)


def test_sigkill_during_verification_finishes_by_reading_back(run_bot, slack, tmp_path):
    """Killed while reading back, the restarted bot finishes the read-back without a new call."""
    slow_start = DisStandIn(
        project_id=PROJECT,
        credentials=[Credential(DIS_AK, DIS_SK)],
        streams={STREAM: [TaskSpec("orders-archive", TaskState.PAUSED, task_id=ARCHIVE_ID)]},
        start_delay=4,
    )
    url = f"sqlite:///{tmp_path}/verify.db"
    reader = StoreReader(url)
    with slow_start:
        env = bot_environment(slow_start, slack, url, dumptask_verify_timeout_seconds=20)
        first = BotProcess(env, tmp_path / "verify-0.log").start()
        second = BotProcess(env, tmp_path / "verify-1.log")
        try:
            slack.request_url = first.events_url
            card, request = request_card(slack, reader)
            slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
            wait_for_phase(reader, request.id, Phase.CALLED)
            first.kill()
            killed = time.monotonic()
            second.start()
            slack.request_url = second.events_url
            finished = wait_for_state(reader, request.id)
            record_timing("SIGKILL while reading back: finished after", time.monotonic() - killed)
        finally:
            first.stop()
            second.stop()
        assert finished.state is RequestState.SUCCEEDED
        assert len(slow_start.action_calls()) == 1
        assert finished.outcome is not None
        assert finished.outcome.interrupted


def test_sigterm_finishes_an_execution_in_flight_and_exits_zero(run_bot, slack, dis, reader):
    """SIGTERM mid-call: new requests get 503 while the execution finishes; then exit 0."""
    bot = run_bot(dis_timeout_seconds=10, shutdown_grace_seconds=20)
    card, request = request_card(slack, reader)
    dis.inject(Fault.latency(2, method="POST", path=ACTION))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_phase(reader, request.id, Phase.SENDING)
    bot.signal(signal.SIGTERM)
    assert eventually(
        lambda: _status(f"{bot.url}/healthz") == 503, timeout=5, what="503 while draining"
    )
    assert _status(bot.events_url, post=True) == 503
    assert bot.wait(timeout=30) == 0
    finished = reader.get(request.id)
    assert finished is not None
    assert finished.state is RequestState.SUCCEEDED
    assert len(dis.action_calls()) == 1


def test_sigterm_with_a_short_grace_hands_the_execution_to_the_other_replica(
    tmp_path, slack, dis, postgres_url
):
    """The stopping replica releases what it could not finish; the other one finishes it once."""
    reader = StoreReader(postgres_url)
    env = bot_environment(dis, slack, postgres_url, dis_timeout_seconds=10)
    stopping = BotProcess({**env, "SHUTDOWN_GRACE_SECONDS": "0.5"}, tmp_path / "a.log").start()
    staying = BotProcess(env, tmp_path / "b.log").start()
    try:
        slack.request_url = stopping.events_url
        card, request = request_card(slack, reader)
        dis.inject(Fault.latency(3, method="POST", path=ACTION))
        slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
        wait_for_phase(reader, request.id, Phase.SENDING)
        stopped = time.monotonic()
        assert stopping.terminate(timeout=30) == 0
        finished = wait_for_state(reader, request.id)
        record_timing(
            "SIGTERM with work left: other replica finished after", time.monotonic() - stopped
        )
    finally:
        stopping.stop()
        staying.stop()
    eventually(dis.action_calls, what="the POST to be logged")
    assert len(dis.action_calls()) == 1
    assert finished.outcome is not None
    assert finished.outcome.interrupted
    assert_told_truthfully(slack, finished, dis)


def _status(url: str, *, post: bool = False) -> int | None:
    try:
        response = httpx.post(url, content=b"x", timeout=3) if post else httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None
    return response.status_code


# -- the database going away ------------------------------------------------------------------


def test_postgres_stopped_mid_run_then_restarted(tmp_path, slack, dis, throwaway_postgres):
    """While PostgreSQL is down users get a clear answer and /healthz 503; then all recovers."""
    pg = throwaway_postgres
    reader = StoreReader(pg.url)
    env = bot_environment(dis, slack, pg.url, dis_timeout_seconds=10)
    bot = BotProcess(env, tmp_path / "pg.log").start()
    try:
        slack.request_url = bot.events_url
        card, request = request_card(slack, reader)
        dis.inject(Fault.latency(2, method="POST", path=ACTION))
        slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
        wait_for_phase(reader, request.id, Phase.SENDING)
        pg.stop()
        down = time.monotonic()
        assert eventually(lambda: _status(f"{bot.url}/healthz") == 503, timeout=5, what="503")
        slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-to-dli")
        [answer] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
        answered = time.monotonic() - down
        assert "could not reach my database" in answer
        time_to_answer = answered
        pg.start()
        started = time.monotonic()
        eventually(lambda: _status(f"{bot.url}/healthz") == 200, timeout=30, what="recovery")
        record_timing("PostgreSQL restarted: /healthz 200 again after", time.monotonic() - started)
        finished = wait_for_state(reader, request.id, timeout=60)
        record_timing(
            "PostgreSQL down mid-execution: finished after restart", time.monotonic() - started
        )
        record_timing("PostgreSQL down: requester answered after", time_to_answer)
    finally:
        bot.stop()
    eventually(dis.action_calls, what="the POST to be logged")
    assert len(dis.action_calls()) == 1
    assert_told_truthfully(slack, finished, dis)


def test_a_hung_database_answers_the_requester_and_healthz_quickly(
    tmp_path, slack, dis, throwaway_postgres
):
    """With PostgreSQL frozen (SIGSTOP), /healthz says 503 within 2 s and users hear back."""
    pg = throwaway_postgres
    bot = BotProcess(bot_environment(dis, slack, pg.url), tmp_path / "hung.log").start()
    try:
        slack.request_url = bot.events_url
        pg.freeze()
        asked = time.monotonic()
        assert _status(f"{bot.url}/healthz") == 503
        healthz = time.monotonic() - asked
        assert healthz < 2
        asked = time.monotonic()
        slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
        [answer] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
        answered = time.monotonic() - asked
        assert "could not reach my database" in answer
        record_timing("database hung: /healthz answered 503 after", healthz)
        record_timing("database hung: requester answered after", answered)
        assert answered < 15
        pg.thaw()
        eventually(lambda: _status(f"{bot.url}/healthz") == 200, timeout=30, what="recovery")
    finally:
        pg.thaw()
        bot.stop()


def test_two_processes_never_send_a_request_twice(tmp_path, slack, dis, postgres_url):
    """Twenty clicks split between two serving processes on PostgreSQL make one DIS call."""
    reader = StoreReader(postgres_url)
    env = bot_environment(dis, slack, postgres_url)
    bots = [BotProcess(env, tmp_path / f"r{i}.log").start() for i in range(2)]
    try:
        slack.request_url = bots[0].events_url
        card, request = request_card(slack, reader)
        barrier = threading.Barrier(20)

        def click(index: int) -> None:
            body = click_body(slack.build_block_action(APPROVER1, INCIDENT, card.ts, APPROVE))
            headers = slack.sign(body, int(time.time()))
            barrier.wait()
            httpx.post(bots[index % 2].events_url, content=body, headers=headers, timeout=10)

        threads = [threading.Thread(target=click, args=(index,)) for index in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        finished = wait_for_state(reader, request.id)
    finally:
        for bot in bots:
            bot.stop()
    assert finished.state is RequestState.SUCCEEDED
    assert len(dis.action_calls()) == 1
    assert audit_kinds(reader, request.id).count(str(AuditKind.DIS_CALL)) == 1
