"""How much memory ``dumptask-bot audit`` needs, for a small and a ten times larger trail.

Fills SQLite files with synthetic audit events (bulk inserts with SQLAlchemy Core), exports each
through the real command in a child process, and reads that child's peak resident set size from
``wait4``. A streaming export needs about the same memory for both trails; one that buffered the
trail would need tens of megabytes more for the larger one.

    python bench/audit_export.py                          # 20,000 and 200,000 events, table
    python bench/audit_export.py --events 5000 50000 --format csv json

``tests/test_audit_export.py`` runs the same measurement as part of the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

from bot.lifecycle import Request, RequestedTask
from bot.store.schema import audit_table, metadata, request_columns, requests_table
from bot.vocabulary import TaskAction, TaskState

START = datetime(2024, 1, 1, tzinfo=UTC)
REQUESTS = 1000
BATCH = 20_000
KINDS = ("requested", "card_posted", "approved", "dis_call", "verification", "delivered")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One export: how many events, in which format, its output lines, peak RSS and duration."""

    events: int
    output_format: str
    lines: int
    peak_rss_mb: float
    seconds: float


def _request(number: int) -> Request:
    return Request(
        id=f"dt-{number:08d}",
        action=TaskAction.START if number % 2 else TaskAction.STOP,
        stream=f"stream-{number % 7}",
        tasks=(RequestedTask("9dSu1wfCytSk1aOLxvF", "orders-archive", TaskState.PAUSED),),
        requester=f"U0USER{number % 13:04d}",
        channel=f"C0CHAN{number % 5:04d}",
        created_at=START,
        expires_at=START + timedelta(minutes=15),
        approvals_required=1,
    )


def _events(count: int) -> Iterator[dict[str, Any]]:
    for number in range(count):
        request = number % REQUESTS
        yield {
            "request_id": f"dt-{request:08d}",
            "kind": KINDS[number % len(KINDS)],
            "actor": "bot" if number % 3 else f"U0USER{request % 13:04d}",
            "at": START + timedelta(seconds=number),
            "detail": json.dumps(
                {
                    "action": "start",
                    "tasks": ["9dSu1wfCytSk1aOLxvF", "As805BudhcH1lDs6gbn"],
                    "reason": f"INC-{number} the OBS dump stalled again after the night batch",
                    "dis_request_id": f"{number:032x}",
                }
            ),
        }


def fill(database: Path, events: int) -> None:
    """Create the tables in ``database`` and insert ``REQUESTS`` requests and ``events`` events."""
    engine = create_engine(f"sqlite:///{database}")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(requests_table),
            [
                {"id": f"dt-{n:08d}", "version": 1, **request_columns(_request(n))}
                for n in range(REQUESTS)
            ],
        )
    rows = _events(events)
    while batch := [row for _, row in zip(range(BATCH), rows, strict=False)]:
        with engine.begin() as connection:
            connection.execute(insert(audit_table), batch)
    engine.dispose()


# Linux counts a process's peak RSS from that of the process it was forked from (the memory they
# shared until ``exec``), so the export is started by this small helper rather than by the big
# process that filled the database: the figure is then the export's own.
_SPAWN_AND_MEASURE = """
import os, sys
output, output_format = sys.argv[1:]
pid = os.posix_spawn(
    sys.executable,
    [sys.executable, "-m", "bot", "audit", "--format", output_format],
    os.environ,
    file_actions=[(os.POSIX_SPAWN_OPEN, 1, output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)],
)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def measure(database: Path, output_format: str, events: int) -> Measurement:
    """Run ``python -m bot audit`` on ``database``; its output lines, peak RSS and duration."""
    output = database.with_suffix(f".{output_format}")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite:///{database}",
        "LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    helper = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _SPAWN_AND_MEASURE, str(output), output_format],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    seconds = time.monotonic() - started
    status, peak_kb = (int(word) for word in helper.stdout.split())
    if status != 0:
        raise RuntimeError(f"dumptask-bot audit failed with status {status}: {helper.stderr}")
    with output.open("rb") as exported:
        lines = sum(1 for _ in exported)
    # Linux reports ru_maxrss in kilobytes.
    return Measurement(events, output_format, lines, peak_kb / 1024, seconds)


def run(sizes: Sequence[int], formats: Sequence[str], folder: Path) -> list[Measurement]:
    """Fill one database per size and export it in every format."""
    results: list[Measurement] = []
    for events in sizes:
        database = folder / f"audit-{events}.db"
        fill(database, events)
        results.extend(measure(database, output_format, events) for output_format in formats)
    return results


def main() -> None:
    """Print one line per export."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--format", nargs="+", default=["table"], choices=["table", "json", "csv"])
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for result in run(arguments.events, arguments.format, Path(folder)):
            print(
                f"{result.events:>9,} events  {result.output_format:<5}  "
                f"{result.lines:>9,} lines  peak RSS {result.peak_rss_mb:6.1f} MB  "
                f"{result.seconds:5.1f} s"
            )


if __name__ == "__main__":
    main()
