"""``dumptask-bot audit``: the audit trail as an aligned table, JSON lines or CSV.

The rows come from the store one batch at a time (``SqlStore.iter_audit``) and are written as
they come, so a trail of any length is exported in constant memory. Even the table does not
wait for the whole trail: its column widths are taken from the first ``TABLE_SAMPLE_ROWS``
rows, and a longer value further down shifts the rest of its line rather than being cut.

Filters (all optional, combined with AND):

- ``--since`` / ``--until``: an ISO 8601 date or time (``2024-05-17``, ``2024-05-17T09:30``,
  ``2024-05-17T11:30+02:00``; without an offset it is UTC) or an age before now (``30m``,
  ``24h``, ``7d``, also ``s`` and ``w``). ``--since`` is inclusive and ``--until`` exclusive,
  so consecutive windows never share an event.
- ``--stream``, ``--channel``, ``--request``: the request's stream, channel or id.
- ``--user``: events the user caused (the actor) *and* every event of the requests they made,
  such as the bot's DIS call for them: everything an auditor asking "what about alice?" needs.
  ``--user bot`` selects what the bot did by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TextIO

from bot.errors import ConfigError
from bot.settings import CHANNEL_ID

FORMATS = ("table", "json", "csv")
COLUMNS = ("time", "request", "kind", "actor", "channel", "stream", "action", "detail")
TABLE_SAMPLE_ROWS = 256
AGE = re.compile(r"(\d{1,9})\s*([smhdw])")
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
STREAM_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")
ACTOR = re.compile(r"[UW][A-Z0-9]{2,}|bot")
REQUEST_ID = re.compile(r"dt-[a-z0-9]{1,32}")


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """Which events to export; ``None`` means no restriction."""

    since: datetime | None = None
    until: datetime | None = None
    stream: str | None = None
    user: str | None = None
    channel: str | None = None
    request: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit event with its request's channel, stream and action (empty without a request).

    ``detail`` is the JSON text as stored.
    """

    id: int
    at: datetime
    request_id: str | None
    kind: str
    actor: str | None
    channel: str | None
    stream: str | None
    action: str | None
    detail: str


class AuditSource(Protocol):
    """Where the rows come from (``SqlStore``)."""

    def iter_audit(self, filters: AuditFilters) -> AsyncGenerator[AuditRow, None]:
        """The matching events, oldest first, streamed."""
        ...


# -- the command line -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dumptask-bot audit``."""
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="table (default), json lines or csv"
    )
    parser.add_argument("--since", help="from this ISO date/time (UTC) or age (24h, 7d, 30m)")
    parser.add_argument("--until", help="before this ISO date/time (UTC) or age")
    parser.add_argument("--stream", help="only requests on this stream")
    parser.add_argument("--user", help="events by this user and of the requests they made")
    parser.add_argument("--channel", help="only requests made in this channel (C...)")
    parser.add_argument("--request", help="only this request (dt-...)")


def parse_moment(option: str, value: str, now: datetime) -> datetime:
    """An ISO date or time (UTC unless it says otherwise) or an age before ``now``."""
    text = value.strip()
    age = AGE.fullmatch(text.lower())
    try:
        if age:
            return now - timedelta(seconds=int(age[1]) * AGE_UNITS[age[2]])
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        pass
    else:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    raise ConfigError(
        f"{option}: expected an ISO date or time (2024-05-17, 2024-05-17T09:30Z) "
        f"or an age (30m, 24h, 7d), got {value!r}"
    )


def _checked(option: str, value: str | None, pattern: re.Pattern[str], expected: str) -> str | None:
    if value is None:
        return None
    if not pattern.fullmatch(value.strip()):
        raise ConfigError(f"{option}: expected {expected}, got {value!r}")
    return value.strip()


def filters_from(arguments: argparse.Namespace, now: datetime) -> AuditFilters:
    """The filters the options ask for, relative ages counted back from ``now``.

    A bad value raises ``ConfigError`` with one line naming the option.
    """
    since = None if arguments.since is None else parse_moment("--since", arguments.since, now)
    until = None if arguments.until is None else parse_moment("--until", arguments.until, now)
    if since is not None and until is not None and until <= since:
        raise ConfigError(
            f"--until ({until.isoformat()}) must be later than --since ({since.isoformat()})"
        )
    request = None if arguments.request is None else arguments.request.strip().lower()
    return AuditFilters(
        since=since,
        until=until,
        stream=_checked("--stream", arguments.stream, STREAM_NAME, "a stream name"),
        user=_checked("--user", arguments.user, ACTOR, "a user id (U...) or bot"),
        channel=_checked("--channel", arguments.channel, CHANNEL_ID, "a channel id (C...)"),
        request=_checked("--request", request, REQUEST_ID, "a request id (dt-...)"),
    )


# -- writing ----------------------------------------------------------------------------------


def iso_utc(moment: datetime) -> str:
    """``2024-05-17T09:30:15.123456Z``: the stored instant, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def row_cells(row: AuditRow) -> list[str]:
    """The row as the text of each column in ``COLUMNS``; what is unknown is empty."""
    return [
        iso_utc(row.at),
        row.request_id or "",
        row.kind,
        row.actor or "",
        row.channel or "",
        row.stream or "",
        row.action or "",
        row.detail,
    ]


def row_document(row: AuditRow) -> dict[str, object]:
    """The event as a JSON object: unknown values are ``None`` and ``detail`` is an object.

    The JSON-lines export writes it, and the signed audit stream sends it (``bot.outbox``).
    """
    return {
        "time": iso_utc(row.at),
        "request": row.request_id,
        "kind": row.kind,
        "actor": row.actor,
        "channel": row.channel,
        "stream": row.stream,
        "action": row.action,
        "detail": json.loads(row.detail),
    }


async def write_json_lines(rows: AsyncIterator[AuditRow], out: TextIO) -> int:
    """One JSON object per event; unknown values are ``null`` and ``detail`` is an object."""
    count = 0
    async for row in rows:
        out.write(json.dumps(row_document(row), ensure_ascii=False) + "\n")
        count += 1
    return count


async def write_csv(rows: AsyncIterator[AuditRow], out: TextIO) -> int:
    """A header, then one CSV record per event (RFC 4180: quoted where needed, CRLF)."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    async for row in rows:
        writer.writerow(row_cells(row))
        count += 1
    return count


async def write_table(
    rows: AsyncIterator[AuditRow], out: TextIO, sample_rows: int = TABLE_SAMPLE_ROWS
) -> int:
    """Columns aligned to the widest value among the first ``sample_rows`` events."""
    sample: list[list[str]] = []
    async for row in rows:
        sample.append(row_cells(row))
        if len(sample) >= sample_rows:
            break
    widths = [
        max([len(name)] + [len(cells[index]) for cells in sample])
        for index, name in enumerate(COLUMNS[:-1])
    ]

    def line(cells: list[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
        return "  ".join([*padded, cells[-1]]) + "\n"

    out.write(line(list(COLUMNS)))
    out.write(line(["-" * width for width in widths] + ["-" * len(COLUMNS[-1])]))
    out.writelines(line(cells) for cells in sample)
    count = len(sample)
    async for row in rows:
        out.write(line(row_cells(row)))
        count += 1
    return count


WRITERS: dict[str, Callable[[AsyncIterator[AuditRow], TextIO], Awaitable[int]]] = {
    "table": write_table,
    "json": write_json_lines,
    "csv": write_csv,
}


async def export_audit(
    source: AuditSource, filters: AuditFilters, output_format: str, out: TextIO
) -> int:
    """Write the matching events to ``out`` in ``output_format`` as they come; how many."""
    async with contextlib.aclosing(source.iter_audit(filters)) as rows:
        return await WRITERS[output_format](rows, out)
