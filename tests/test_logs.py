"""Structured logs: the two formats, the request's context on every line, and the settings.

The end-to-end test runs the real ``dumptask-bot serve`` as a subprocess with ``LOG_FORMAT=json``
and reads its standard error, as an operator's log collector would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.logs import bind, configure_logging, current_context, log_context
from bot.settings import load_log_settings
from bot.sim.dis import DisStandIn
from bot.sim.slack import SlackStandIn
from tests.conftest import (
    APPROVER1,
    BOT_TOKEN,
    DIS_AK,
    DIS_SK,
    INCIDENT,
    PROJECT,
    REQUESTER,
    SIGNING_SECRET,
    STREAM,
)
from tests.flow_helpers import (
    APPROVE,
    card_text,
    eventually,
    request_id_of,
    wait_for_card,
    wait_for_stored_card,
    wait_for_thread_reply,
)

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
REQUEST_ID = re.compile(r"dt-[a-z0-9]{8}")

logger = logging.getLogger("tests.logs")


def json_lines(text: str) -> list[dict[str, str]]:
    """Every line as a JSON object; fails on the first line that is not one."""
    documents = []
    for line in text.splitlines():
        document = json.loads(line)
        assert isinstance(document, dict), line
        documents.append(document)
    return documents


def test_json_line_has_the_base_fields_and_the_bound_context(capture_logs):
    """A JSON line holds time (ISO, UTC), level, logger, message and the fields bound around it."""
    logs = capture_logs("json", "INFO")
    with log_context(request_id="dt-abcd2345", user="U0REQUESTER", stream=STREAM):
        logger.info("opened %s", "it")
    logger.info("outside")
    inside, outside = json_lines(logs.getvalue())
    assert ISO_UTC.fullmatch(inside["time"])
    assert inside == {
        "time": inside["time"],
        "level": "INFO",
        "logger": "tests.logs",
        "message": "opened it",
        "request_id": "dt-abcd2345",
        "user": "U0REQUESTER",
        "stream": STREAM,
    }
    assert "request_id" not in outside


def test_an_explicit_extra_wins_over_the_context(capture_logs):
    """A field passed with ``extra=`` is the line's own, whatever the context says."""
    logs = capture_logs("json", "INFO")
    with log_context(request_id="dt-abcd2345", dis_request_id="old"):
        logger.info("call", extra={"dis_request_id": "new"})
        logger.info("event", extra={"request_id": None})
    call, event = json_lines(logs.getvalue())
    assert call["dis_request_id"] == "new"
    assert event["request_id"] == "dt-abcd2345", "a None extra leaves the context's value"


def test_an_exception_becomes_a_traceback_field(capture_logs):
    """``logger.exception`` keeps the line single, with the traceback in its own field."""
    logs = capture_logs("json", "INFO")
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        logger.exception("it failed")
    [line] = json_lines(logs.getvalue())
    assert line["level"] == "ERROR"
    assert line["message"] == "it failed"
    assert "Traceback" in line["traceback"]
    assert "ZeroDivisionError: division by zero" in line["traceback"]


def test_text_line_ends_with_the_known_fields(capture_logs):
    """The text format is readable and names the request as ``key=value`` after the message."""
    logs = capture_logs("text", "INFO")
    with log_context(request_id="dt-abcd2345", channel="C0INCIDENT"):
        logger.warning("slow answer")
    line = logs.getvalue().rstrip("\n")
    assert re.fullmatch(
        r"\S+Z WARNING tests\.logs: slow answer request_id=dt-abcd2345 channel=C0INCIDENT", line
    ), line


def test_text_values_with_spaces_are_quoted(capture_logs):
    """A value with a space stays one ``key=value`` item."""
    logs = capture_logs("text", "INFO")
    with log_context(stream="odd name"):
        logger.info("x")
    assert logs.getvalue().rstrip().endswith('stream="odd name"')


def test_the_level_filters_lines(capture_logs):
    """Below the configured level nothing is written."""
    logs = capture_logs("json", "WARNING")
    logger.info("hidden")
    logger.warning("shown")
    assert [line["message"] for line in json_lines(logs.getvalue())] == ["shown"]


async def test_each_task_keeps_its_own_context(capture_logs):
    """Two requests handled at once never see each other's fields: tasks copy the context."""
    logs = capture_logs("json", "INFO")

    async def handle(request_id: str) -> None:
        bind(request_id=request_id)
        await asyncio.sleep(0.01)
        logger.info("handled")

    await asyncio.gather(handle("dt-aaaa2222"), handle("dt-bbbb3333"))
    assert sorted(line["request_id"] for line in json_lines(logs.getvalue())) == [
        "dt-aaaa2222",
        "dt-bbbb3333",
    ]
    assert "request_id" not in current_context()


def test_bind_refuses_a_field_it_does_not_know():
    """A misspelt field fails loudly instead of vanishing from every line."""
    with pytest.raises(ValueError, match="request"):
        bind(request="dt-abcd2345")


def test_uvicorn_lines_go_through_the_one_handler(capture_logs):
    """Uvicorn's own handlers are removed and its loggers propagate, so its lines are JSON too."""
    stray = logging.StreamHandler(sys.stderr)
    logging.getLogger("uvicorn.error").addHandler(stray)
    logging.getLogger("uvicorn").propagate = False
    logs = capture_logs("json", "INFO")
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://x")
    assert stray not in logging.getLogger("uvicorn.error").handlers
    [line] = json_lines(logs.getvalue())
    assert (line["logger"], line["message"]) == ("uvicorn.error", "Uvicorn running on http://x")


def test_configure_logging_refuses_an_unknown_format(logging_restored):
    """Only text and json exist."""
    with pytest.raises(ValueError, match="text or json"):
        configure_logging("xml", "INFO")


# -- settings and the command line ------------------------------------------------------------


@pytest.fixture
def no_log_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LOG_* variables and no `.env`."""
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    monkeypatch.chdir(tmp_path)


def test_log_settings_default_to_text_at_info(no_log_variables):
    """Without LOG_FORMAT and LOG_LEVEL the bot logs text at INFO."""
    settings = load_log_settings()
    assert (settings.log_format, settings.log_level) == ("text", "INFO")


def test_log_settings_ignore_case(no_log_variables, monkeypatch):
    """``JSON`` and ``debug`` are accepted and normalised."""
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_log_settings()
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOG_FORMAT", "xml", "LOG_FORMAT: expected one of text, json, got 'xml'"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL: expected one of DEBUG, INFO, WARNING"),
    ],
)
def test_a_bad_log_setting_is_one_clear_line(
    no_log_variables, monkeypatch, variable, value, expected
):
    """A bad LOG_FORMAT or LOG_LEVEL names the variable and what is expected."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_log_settings()
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def run_migrate(tmp_path: Path, *flags: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot [flags] migrate`` with only PATH, DATABASE_URL and ``variables`` set."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *flags, "migrate"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
            **variables,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_log_level_flag_overrides_the_setting(tmp_path):
    """``--log-level INFO`` shows the INFO lines that LOG_LEVEL=ERROR hides, in LOG_FORMAT."""
    quiet = run_migrate(tmp_path, LOG_FORMAT="json", LOG_LEVEL="ERROR")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    (tmp_path / "cli.db").unlink()
    loud = run_migrate(tmp_path, "--log-level", "info", LOG_FORMAT="json", LOG_LEVEL="ERROR")
    assert loud.returncode == 0, loud.stderr
    lines = json_lines(loud.stderr)
    assert any(line["logger"].startswith("alembic") for line in lines)
    assert {line["level"] for line in lines} == {"INFO"}


def test_a_bad_log_format_stops_the_command_with_one_line(tmp_path):
    """LOG_FORMAT=xml ends any command with one configuration line and status 2."""
    result = run_migrate(tmp_path, LOG_FORMAT="xml")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "dumptask-bot: configuration error: LOG_FORMAT: expected one of text, json, got 'xml'"
    )


# -- a whole flow ----------------------------------------------------------------------------


class ServeProcess:
    """``python -m bot serve`` with the given environment, its standard error read line by line."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self.lines.append(line.rstrip("\n"))

    def port(self) -> int:
        """The port uvicorn says it listens on (the bot was asked for any free one)."""

        def announced() -> int | None:
            for line in list(self.lines):
                found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
                if found:
                    return int(found[1])
            assert self._process.poll() is None, "\n".join(self.lines)
            return None

        return eventually(announced, timeout=30, what="uvicorn's startup line")

    def stop(self) -> int:
        """SIGTERM, as a platform stops a replica; the exit status."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        status = self._process.wait(timeout=30)
        self._reader.join(timeout=10)
        assert self._process.stderr is not None
        self._process.stderr.close()
        return status


@pytest.fixture
def serve_json(tmp_path, dis: DisStandIn, slack: SlackStandIn) -> Iterator[ServeProcess]:
    """The real bot as a subprocess at DEBUG with JSON logs, wired to the stand-ins."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DIS_ENDPOINT": dis.url,
        "DIS_PROJECT_ID": PROJECT,
        "DIS_ACCESS_KEY": DIS_AK,
        "DIS_SECRET_KEY": DIS_SK,
        "DIS_TIMEOUT_SECONDS": "2",
        "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
        "HOST": "127.0.0.1",
        "PORT": "0",
        "DUMPTASK_VERIFY_INTERVAL_SECONDS": "0.05",
        "DUMPTASK_VERIFY_TIMEOUT_SECONDS": "3",
    }
    process = ServeProcess(env, tmp_path)
    slack.request_url = f"http://127.0.0.1:{process.port()}/slack/events"
    yield process
    process.stop()


def test_serve_logs_a_whole_flow_as_json_lines(serve_json, slack, dis):
    """Every line of a served flow is JSON; its lines name the request, people, stream and call."""
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_card(slack, INCIDENT)
    [request_id] = set(REQUEST_ID.findall(card_text(slack, INCIDENT, card.ts)))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    [call] = [c for c in dis.calls if c.method == "POST"]
    assert serve_json.stop() == 0

    lines = json_lines("\n".join(serve_json.lines))
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
        assert datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0
    assert any(
        line["logger"] == "uvicorn.error" and line["message"].startswith("Uvicorn running on")
        for line in lines
    )
    about = {"request_id": request_id, "channel": INCIDENT, "stream": STREAM, "action": "start"}
    [requested] = [line for line in lines if line["message"] == f"audit: requested by {REQUESTER}"]
    assert requested.items() >= {**about, "user": REQUESTER}.items()
    [approved] = [line for line in lines if line["message"] == f"audit: approved by {APPROVER1}"]
    assert approved.items() >= {**about, "user": APPROVER1}.items()
    [sent] = [
        line
        for line in lines
        if line["logger"] == "bot.dis.client" and "/action" in line["message"]
    ]
    assert sent.items() >= {**about, "dis_request_id": call.request_id}.items()
    everything = "\n".join(serve_json.lines)
    for secret in (BOT_TOKEN, SIGNING_SECRET, DIS_SK):
        assert secret not in everything


def test_text_logs_name_the_request_on_its_lines(start_bot, slack, capture_logs):
    """In text format the lines about a request end with ``request_id=dt-...`` and the people."""
    logs = capture_logs("text", "INFO")
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_card(slack, INCIDENT)
    request_id = request_id_of(wait_for_stored_card(bot, slack, INCIDENT))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    [approved] = [line for line in logs.getvalue().splitlines() if "audit: approved by" in line]
    assert f" request_id={request_id} " in approved
    assert f"user={APPROVER1}" in approved
    assert f"stream={STREAM} action=start" in approved
