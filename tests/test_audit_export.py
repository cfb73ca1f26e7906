"""``dumptask-bot audit``: every format and filter, on SQLite and PostgreSQL, over a real trail.

The trail is made once per backend by the real bot over HTTP, with the Slack and DIS stand-ins:
an approved start three days ago, a cancelled stop today in another channel, and a start asked
by someone else today; plus one event that belongs to no request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.__main__ import main
from bot.audit import AuditEvent
from bot.audit_export import (
    COLUMNS,
    AuditFilters,
    AuditRow,
    add_arguments,
    export_audit,
    filters_from,
    parse_moment,
    write_table,
)
from bot.errors import ConfigError
from bot.sim.bot_thread import BotThread
from bot.store.sql import SqlStore
from tests.conftest import (
    APPROVER1,
    APPROVER2,
    INCIDENT,
    REQUESTER,
    STREAM,
    Clock,
    fresh_schema,
    make_dis,
    make_settings,
    make_slack,
)
from tests.flow_helpers import (
    APPROVE,
    CANCEL,
    eventually,
    has_buttons,
    request_id_of,
    wait_for_card,
    wait_for_stored_card,
    wait_for_thread_reply,
)

OPS = "C0OPS"
NOW = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Trail:
    """A database holding a real trail, and what the test needs to know about it."""

    database_url: str
    now: datetime
    old_start: str  # REQUESTER's start in INCIDENT three days ago, approved by APPROVER1
    cancelled_stop: str  # REQUESTER's stop in OPS today, cancelled by REQUESTER
    clicks_start: str  # APPROVER2's start on clicks-stream in INCIDENT today, approved

    @property
    def requester_of(self) -> dict[str, str]:
        return {
            self.old_start: REQUESTER,
            self.cancelled_stop: REQUESTER,
            self.clicks_start: APPROVER2,
        }


def run_flow(bot: BotThread, slack: Any, clock: Clock, now: datetime) -> tuple[str, str, str]:
    """Three requests through the real bot; their ids."""
    clock.now = now - timedelta(days=3)
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive")
    card = wait_for_card(slack, INCIDENT)
    old_start = request_id_of(wait_for_stored_card(bot, slack, INCIDENT))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    eventually(lambda: "delivered" in kinds_of(bot, old_start), what="the outcome delivered")

    clock.now = now
    slack.send_command(REQUESTER, OPS, f"stop {STREAM} orders-to-obs")
    card = wait_for_card(slack, OPS)
    cancelled_stop = request_id_of(wait_for_stored_card(bot, slack, OPS))
    slack.click(REQUESTER, OPS, card.ts, CANCEL)
    eventually(lambda: not has_buttons(slack, OPS, card.ts), what="the cancelled card")

    slack.send_command(APPROVER2, INCIDENT, "start clicks-stream clicks-to-obs")
    card = wait_for_card(slack, INCIDENT, count=2)
    clicks_start = request_id_of(wait_for_stored_card(bot, slack, INCIDENT, count=2))
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    wait_for_thread_reply(slack, INCIDENT, card.ts)
    eventually(lambda: "delivered" in kinds_of(bot, clicks_start), what="the outcome delivered")
    eventually(lambda: "delivered" in kinds_of(bot, cancelled_stop), what="the cancel delivered")
    assert bot.bot is not None
    bot.run(bot.bot.store.append_audit(AuditEvent(None, "maintenance", "U0OUTSIDER", now)))
    return old_start, cancelled_stop, clicks_start


def kinds_of(bot: BotThread, request_id: str) -> list[str]:
    assert bot.bot is not None
    return [event.kind for event in bot.run(bot.bot.store.audit_trail(request_id))]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def trail(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trail]:
    """A trail made by the real bot, once per backend."""
    folder = tmp_path_factory.mktemp("trail")
    database: contextlib.AbstractContextManager[str] = (
        contextlib.nullcontext(f"sqlite:///{folder}/audit.db")
        if request.param == "sqlite"
        else fresh_schema(request.getfixturevalue("postgres_server"))
    )
    with database as database_url, make_dis() as dis, make_slack() as slack:
        slack.add_channel(OPS, "ops", [REQUESTER, APPROVER1, APPROVER2], bot_member=True)
        clock = Clock()
        settings = make_settings(folder, dis, slack, database_url=database_url)
        bot = BotThread(settings, clock=clock, sweep_interval=0.05).start()
        slack.request_url = bot.events_url
        now = clock.now
        try:
            ids = run_flow(bot, slack, clock, now)
        finally:
            bot.stop()
        yield Trail(database_url, now, *ids)


def export(database_url: str, filters: AuditFilters, output_format: str) -> str:
    """What the export writes, in-process."""

    async def run() -> str:
        store = SqlStore(database_url)
        out = io.StringIO()
        try:
            await export_audit(store, filters, output_format, out)
        finally:
            await store.close()
        return out.getvalue()

    return asyncio.run(run())


def export_json(database_url: str, filters: AuditFilters | None = None) -> list[dict[str, Any]]:
    text = export(database_url, filters or AuditFilters(), "json")
    return [json.loads(line) for line in text.splitlines()]


def cli(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot audit ...`` with DATABASE_URL as the only setting."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "audit", *args],
        env={"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database_url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def options(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(args))


# -- formats ----------------------------------------------------------------------------------


def test_json_lines_hold_every_column_with_the_request_s_stream_channel_and_action(trail):
    """Each line is an object with the eight columns; ``detail`` is an object, not a string."""
    rows = export_json(trail.database_url)
    assert all(list(row) == list(COLUMNS) for row in rows)
    [requested] = [r for r in rows if r["request"] == trail.old_start and r["kind"] == "requested"]
    assert requested["actor"] == REQUESTER
    assert (requested["channel"], requested["stream"], requested["action"]) == (
        INCIDENT,
        STREAM,
        "start",
    )
    assert requested["detail"]["tasks"]
    assert datetime.fromisoformat(requested["time"]) == trail.now - timedelta(days=3)
    kinds = [r["kind"] for r in rows if r["request"] == trail.old_start]
    assert kinds[:2] == ["requested", "card_posted"]
    assert {"approved", "dis_call", "verification", "delivered"} <= set(kinds)
    [stop] = [r for r in rows if r["request"] == trail.cancelled_stop and r["kind"] == "cancelled"]
    assert (stop["channel"], stop["action"], stop["actor"]) == (OPS, "stop", REQUESTER)


def test_events_without_a_request_keep_the_request_columns_empty(trail):
    """An event of no request is exported with no request, channel, stream or action."""
    [note] = [row for row in export_json(trail.database_url) if row["kind"] == "maintenance"]
    assert note == {
        "time": note["time"],
        "request": None,
        "kind": "maintenance",
        "actor": "U0OUTSIDER",
        "channel": None,
        "stream": None,
        "action": None,
        "detail": {},
    }


def test_rows_come_in_the_order_they_were_appended(trail):
    """The export is ordered as the trail was written, so a request's story reads top down."""
    rows = export_json(trail.database_url)
    assert rows[-1]["kind"] == "maintenance"
    assert rows[0]["request"] == trail.old_start
    assert rows[0]["kind"] == "requested"


def test_csv_has_a_header_and_the_same_rows_as_json(trail):
    """CSV parses with the csv module: a header of the columns, then the same events."""
    records = list(csv.reader(io.StringIO(export(trail.database_url, AuditFilters(), "csv"))))
    assert records[0] == list(COLUMNS)
    as_json = export_json(trail.database_url)
    assert len(records) == len(as_json) + 1
    for record, row in zip(records[1:], as_json, strict=True):
        assert record[:7] == [row[name] or "" for name in COLUMNS[:7]]
        assert json.loads(record[7]) == row["detail"]


def test_table_columns_are_aligned(trail):
    """The table's header, rule and rows start each column at the same place."""
    header, rule, *rows = export(trail.database_url, AuditFilters(), "table").splitlines()
    assert header.split() == list(COLUMNS)
    starts = [header.index(name) for name in COLUMNS]
    assert [dashes.start() for dashes in re.finditer("-+", rule)] == starts
    assert len(rows) == len(export_json(trail.database_url))
    for row in rows:
        for start in starts[1:]:
            assert row[start - 2 : start] == "  ", row
    assert any(trail.old_start in row and "requested" in row for row in rows)


async def fake_rows(count: int, long_at: int) -> AsyncGenerator[AuditRow, None]:
    for index in range(count):
        stream = "s" * 60 if index == long_at else "short"
        yield AuditRow(index, NOW, None, "kind", "bot", None, stream, None, "{}")


async def test_table_widths_come_from_the_first_rows_and_nothing_is_cut():
    """A long value after the sampled rows shifts its own line; it is never truncated."""
    out = io.StringIO()
    await write_table(fake_rows(5, long_at=4), out, sample_rows=3)
    header, _rule, *rows = out.getvalue().splitlines()
    assert rows[0].index("short") == header.index("stream")
    assert header.index("action") == header.index("stream") + len("stream  "), "sampled widths"
    assert "s" * 60 in rows[4]
    assert rows[4].index("{}") > rows[0].index("{}")


# -- filters ----------------------------------------------------------------------------------


def filter_cases(trail: Trail) -> dict[str, tuple[list[str], Callable[[dict[str, Any]], bool]]]:
    """Options, and which of the full export's rows they must keep."""
    two_days_ago = (trail.now - timedelta(days=2)).isoformat()

    def involves(user: str) -> Callable[[dict[str, Any]], bool]:
        return lambda r: r["actor"] == user or trail.requester_of.get(r["request"]) == user

    return {
        "stream": (["--stream", "clicks-stream"], lambda r: r["stream"] == "clicks-stream"),
        "channel": (["--channel", OPS], lambda r: r["channel"] == OPS),
        "request": (["--request", trail.old_start], lambda r: r["request"] == trail.old_start),
        "request in capitals": (
            ["--request", trail.old_start.upper()],
            lambda r: r["request"] == trail.old_start,
        ),
        "user who approved and asked": (["--user", APPROVER2], involves(APPROVER2)),
        "user who asked": (["--user", REQUESTER], involves(REQUESTER)),
        "the bot": (["--user", "bot"], lambda r: r["actor"] == "bot"),
        "since an age": (["--since", "24h"], lambda r: r["request"] != trail.old_start),
        "since a time": (["--since", two_days_ago], lambda r: r["request"] != trail.old_start),
        "until a time": (["--until", two_days_ago], lambda r: r["request"] == trail.old_start),
        "until an age": (["--until", "2d"], lambda r: r["request"] == trail.old_start),
        "all at once": (
            ["--since", "4d", "--until", "2d", "--channel", INCIDENT, "--user", APPROVER1],
            lambda r: r["request"] == trail.old_start and r["actor"] == APPROVER1,
        ),
    }


FILTER_CASES = [
    "stream",
    "channel",
    "request",
    "request in capitals",
    "user who approved and asked",
    "user who asked",
    "the bot",
    "since an age",
    "since a time",
    "until a time",
    "until an age",
    "all at once",
]


@pytest.mark.parametrize("case", FILTER_CASES)
def test_each_filter_keeps_exactly_the_matching_events(trail, case):
    """Every filter keeps the events it names and no other (ages count back from a known now)."""
    args, keep = filter_cases(trail)[case]
    everything = export_json(trail.database_url)
    expected = [row for row in everything if keep(row)]
    assert expected, "the case selects something"
    assert len(expected) < len(everything), "the case leaves something out"
    filters = filters_from(options(*args), trail.now)
    assert export_json(trail.database_url, filters) == expected


def test_since_is_inclusive_and_until_exclusive(trail):
    """Windows meeting at an instant many events share split them without loss or overlap."""
    everything = export_json(trail.database_url)
    before = export_json(trail.database_url, AuditFilters(until=trail.now))
    after = export_json(trail.database_url, AuditFilters(since=trail.now))
    assert {row["request"] for row in before} == {trail.old_start}
    assert after[0]["time"] == everything[len(before)]["time"]
    assert before + after == everything


def test_cli_exports_csv_as_a_subprocess(trail, tmp_path):
    """``python -m bot audit --format csv`` needs only DATABASE_URL; the csv module reads it."""
    result = cli(tmp_path, trail.database_url, "--format", "csv", "--stream", STREAM)
    assert result.returncode == 0, result.stderr
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    expected = [row for row in export_json(trail.database_url) if row["stream"] == STREAM]
    assert [(r["time"], r["request"], r["kind"]) for r in records] == [
        (row["time"], row["request"], row["kind"]) for row in expected
    ]
    assert all(json.loads(record["detail"]) is not None for record in records)


def test_cli_exports_json_lines_since_24h_as_a_subprocess(trail, tmp_path):
    """``--format json --since 24h`` counts back from the real clock; every line parses."""
    result = cli(tmp_path, trail.database_url, "--format", "json", "--since", "24h")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [row for row in export_json(trail.database_url) if row["request"] != trail.old_start]
    assert rows == expected


def test_cli_table_is_the_default_in_process(
    trail, monkeypatch, capsys, tmp_path, logging_restored
):
    """``dumptask-bot audit --request ...`` prints the table, reading DATABASE_URL alone."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", trail.database_url)
    assert main(["audit", "--request", trail.clicks_start]) == 0
    header, _rule, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == list(COLUMNS)
    assert rows and all(trail.clicks_start in row for row in rows)


# -- bad values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--since", "yesterday"], "--since: expected an ISO date or time"),
        (["--until", "2024-13-01"], "--until: expected an ISO date or time"),
        (["--since", "99999999999d"], "--since: expected an ISO date or time"),
        (["--since", "1h", "--until", "2h"], "--until ("),
        (["--stream", "orders stream"], "--stream: expected a stream name"),
        (["--user", "alice"], "--user: expected a user id (U...) or bot"),
        (["--channel", "incident"], "--channel: expected a channel id (C...)"),
        (["--request", "42"], "--request: expected a request id (dt-...)"),
    ],
)
def test_a_bad_filter_is_one_line_and_status_2(
    args, expected, monkeypatch, capsys, tmp_path, logging_restored
):
    """A bad filter value ends the command with one line naming the option, and status 2."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/never-opened.db")
    assert main(["audit", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"dumptask-bot audit: {expected}")
    assert not (tmp_path / "never-opened.db").exists()


def test_a_bad_filter_in_a_subprocess_has_no_traceback(tmp_path):
    """The same holds for the real process: one line, status 2, no traceback."""
    result = cli(tmp_path, f"sqlite:///{tmp_path}/x.db", "--since", "last tuesday")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        (
            "dumptask-bot audit: --since: expected an ISO date or time (2024-05-17, "
            "2024-05-17T09:30Z) or an age (30m, 24h, 7d), got 'last tuesday'"
        )
    ]


def test_a_database_without_the_tables_is_one_line_and_status_1(tmp_path):
    """Exporting from an empty database says what failed, with no traceback."""
    result = cli(tmp_path, f"sqlite:///{tmp_path}/empty.db")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "dumptask-bot: could not export the audit trail"
    )
    assert "no such table" in result.stderr.splitlines()[-1]


# -- parsing moments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T08:00", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("2024-05-01T08:00Z", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("2024-05-01T10:00+02:00", datetime(2024, 5, 1, 8, tzinfo=UTC)),
    ],
)
def test_moments_are_iso_dates_or_ages(value, expected):
    """Ages count back from now; ISO times without an offset are UTC."""
    moment = parse_moment("--since", value, NOW)
    assert moment == expected
    assert moment.utcoffset() == timedelta(0)


def test_a_moment_that_is_neither_is_refused():
    """Anything else is a ``ConfigError`` naming the option."""
    with pytest.raises(ConfigError, match=r"^--until: expected"):
        parse_moment("--until", "soon", NOW)
