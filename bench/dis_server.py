"""The DIS stand-in in a process of its own, timing every call and able to slow down on demand.

``python -m bench.dis_server --data FILE`` serves ``bot.sim.dis`` as ``python -m bot.sim.dis``
does, plus two control routes under ``/bench/`` (the stand-in's gateway would answer them 404,
so they cannot clash with DIS paths):

- ``POST /bench/latency`` with ``{"seconds": 2}`` adds that much to every later call (the
  stand-in's latency fault), ``0`` removes it: the slow cloud without restarting the bot;
- ``GET /bench/timing?since=N`` returns the calls from the ``N``-th on as ``[start, end]`` pairs
  of ``time.monotonic()`` seconds, the time spent serving each, so the benchmark can subtract
  the time the bot waited on DIS. ``CLOCK_MONOTONIC`` is one clock for every process of the
  machine, so these times compare with the load generator's.

It runs in its own process so its work never competes for the load generator's GIL.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.config import DIS_AK, DIS_SK, PROJECT, TASKS_PER_STREAM, stream_name, task_name
from bot.sim.dis import DisStandIn, Fault
from bot.sim.server import stop_signals

CONTROL_PREFIX = "/bench/"


def write_data(path: Path, tasks: int) -> None:
    """A data file with ``tasks`` PAUSED tasks, five to a stream, starting at once when asked."""
    streams = {
        stream_name(stream): {
            "tasks": [
                {"task_name": task_name(number), "state": "PAUSED"}
                for number in range(
                    stream * TASKS_PER_STREAM, min(tasks, (stream + 1) * TASKS_PER_STREAM)
                )
            ]
        }
        for stream in range((tasks + TASKS_PER_STREAM - 1) // TASKS_PER_STREAM)
    }
    data = {
        "project_id": PROJECT,
        "credentials": [{"access_key": DIS_AK, "secret_key": DIS_SK}],
        "start_delay": 0,
        "stop_delay": 0,
        "streams": streams,
    }
    path.write_text(json.dumps(data), encoding="utf-8")


class TimedDis(DisStandIn):
    """``DisStandIn`` that records how long it served each call, with the control routes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._timings: list[tuple[float, float]] = []
        self._timings_lock = threading.Lock()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await self._control(request)
        started = time.monotonic()
        response = await super()._handle(request)
        with self._timings_lock:
            self._timings.append((started, time.monotonic()))
        return response

    async def _control(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/bench/latency" and request.method == "POST":
            seconds = float((await request.json())["seconds"])
            self.clear_faults()
            if seconds > 0:
                self.inject(Fault.latency(seconds, fraction=1.0))
            return web.json_response({"ok": True})
        if request.path == "/bench/timing":
            since = int(request.query.get("since", "0"))
            with self._timings_lock:
                calls = self._timings[since:]
            return web.json_response({"calls": calls, "next": since + len(calls)})
        return web.json_response({"ok": False}, status=404)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, printing the URL on the first line for the parent."""
    parser = argparse.ArgumentParser(prog="python -m bench.dis_server")
    parser.add_argument("--data", type=Path, required=True, help="JSON data file")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    args = parser.parse_args(argv)
    stand_in = TimedDis.from_file(args.data, port=args.port)
    with stop_signals() as stopping, stand_in:
        sys.stdout.write(f"{stand_in.url}\n")
        sys.stdout.flush()
        while not stopping.wait(timeout=0.5):
            pass


if __name__ == "__main__":
    main()
