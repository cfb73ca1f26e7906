"""Shared fixtures: the DIS and Slack stand-ins and the real bot between them, over loopback."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bot.logs import FOREIGN_LOGGERS, configure_logging
from bot.settings import Settings
from bot.sim.bot_thread import BotThread
from bot.sim.dis import Credential, DisStandIn, TaskSpec
from bot.sim.slack import SlackStandIn
from bot.vocabulary import TaskState

PROJECT = "0123456789abcdef0123456789abcdef"
DIS_AK, DIS_SK = "E2EACCESSKEY", "E2ESECRETKEYVALUE"
BOT_TOKEN = "xoxb-e2e-bot-token"
SIGNING_SECRET = "e2e-signing-secret"

REQUESTER, APPROVER1, APPROVER2, OUTSIDER = (
    "U0REQUESTER",
    "U0APPROVER1",
    "U0APPROVER2",
    "U0OUTSIDER",
)
INCIDENT, RANDOM = "C0INCIDENT", "C0RANDOM"
STREAM = "orders-stream"
OBS_ID, ARCHIVE_ID, DLI_ID = "As805BudhcH1lDs6gbn", "9dSu1wfCytSk1aOLxvF", "Kq3ZtV8mYw2Lp0Rc7Hd"
POSTGRES_URL_VARIABLE = "DUMPTASK_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_URL_VARIABLE, "postgresql://postgres@127.0.0.1:5432/test")
# What the bot (Settings, Bolt, the CLI) may read from the environment.
BOT_VARIABLE_PREFIXES = ("SLACK_", "DIS_", "DUMPTASK_", "HUAWEICLOUD_SDK_")
BOT_VARIABLES = frozenset(
    {
        "DATABASE_URL",
        "HOST",
        "PORT",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "METRICS_PORT",
        "SHUTDOWN_GRACE_SECONDS",
    }
)


def is_bot_variable(name: str) -> bool:
    """Whether the bot could read ``name``; the test suite's own PostgreSQL URL is not its."""
    return name != POSTGRES_URL_VARIABLE and (
        name.startswith(BOT_VARIABLE_PREFIXES) or name in BOT_VARIABLES
    )


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs without the bot's variables, so a developer's shell cannot change it.

    Settings built in tests take every value they need from code, but a variable left unset
    there would still be read from the environment (``DUMPTASK_ALLOWED_CHANNELS`` in a shell,
    say, would refuse every command). Subprocesses get the cleared environment too.
    """
    for name in list(os.environ):
        if is_bot_variable(name):
            monkeypatch.delenv(name)


class Clock:
    """A wall clock the test moves by hand, so expiry needs no waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_dis() -> DisStandIn:
    """The DIS stand-in with ``orders-stream`` (three tasks) and ``clicks-stream`` (one)."""
    return DisStandIn(
        project_id=PROJECT,
        credentials=[Credential(DIS_AK, DIS_SK)],
        streams={
            STREAM: [
                TaskSpec("orders-to-obs", TaskState.RUNNING, task_id=OBS_ID),
                TaskSpec("orders-archive", TaskState.PAUSED, task_id=ARCHIVE_ID),
                TaskSpec("orders-to-dli", TaskState.PAUSED, task_id=DLI_ID),
            ],
            "clicks-stream": [TaskSpec("clicks-to-obs", TaskState.PAUSED)],
        },
        start_delay=0.05,
    )


def make_slack() -> SlackStandIn:
    """The Slack stand-in with the sample workspace."""
    stand_in = SlackStandIn(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
    stand_in.with_sample_workspace()
    return stand_in


@pytest.fixture
def dis() -> Iterator[DisStandIn]:
    with make_dis() as stand_in:
        yield stand_in


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with make_slack() as stand_in:
        yield stand_in


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_settings(
    tmp_path: Any, dis: DisStandIn, slack: SlackStandIn, **overrides: Any
) -> Settings:
    """Settings for a bot wired to the stand-ins, with a fresh SQLite file and quick read-backs."""
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "dis_endpoint": dis.url,
        "dis_project_id": PROJECT,
        "dis_access_key": DIS_AK,
        "dis_secret_key": DIS_SK,
        "dis_timeout_seconds": 2,
        "dis_retry_attempts": 2,
        "dis_retry_total_seconds": 3,
        "database_url": f"sqlite:///{tmp_path}/bot.db",
        "host": "127.0.0.1",
        "port": 0,
        "dumptask_verify_interval_seconds": 0.05,
        "dumptask_verify_timeout_seconds": 3,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def start_bot(
    request: pytest.FixtureRequest, tmp_path, dis, slack, clock
) -> Callable[..., BotThread]:
    """Start the real bot (uvicorn, SQLite) with setting overrides; stopped after the test.

    Each bot is stopped by a finalizer of the test itself, registered when the bot starts, so
    it runs before any fixture is torn down, whatever the order the test asked for them in: a
    bot must not outlive a database (``postgres_url``) or stand-in it is still using.
    """

    def start(**overrides: Any) -> BotThread:
        bot = BotThread(
            make_settings(tmp_path, dis, slack, **overrides), clock=clock, sweep_interval=0.05
        )
        bot.start()
        request.node.addfinalizer(bot.stop)
        slack.request_url = bot.events_url
        return bot

    return start


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL URL, or a skip (a failure when CI=true) if the server cannot be reached."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI must run every test this machine can run)")
        pytest.skip(reason)
    return POSTGRES_URL


@contextlib.contextmanager
def fresh_schema(server: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema, dropped afterwards."""
    schema = f"store_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{server}?options=-csearch_path%3D{schema}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema, dropped after the test.

    Bots started by ``start_bot`` on it are stopped before, so none is using the schema then.
    """
    with fresh_schema(postgres_server) as url:
        yield url


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """Put the root logger's handlers back after a test that configures logging as the bot does."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    foreign = {name: logging.getLogger(name).propagate for name in FOREIGN_LOGGERS}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, propagate in foreign.items():
        logging.getLogger(name).propagate = propagate


@pytest.fixture
def capture_logs(logging_restored: None) -> Callable[..., io.StringIO]:
    """Configure logging as ``dumptask-bot`` does, into a buffer the test reads."""

    def capture(log_format: str, level: str = "DEBUG") -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(log_format, level, stream=buffer)
        return buffer

    return capture
