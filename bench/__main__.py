"""``python -m bench``: the bot against a bare Bolt app, on loopback, as one markdown table.

Everything is started here (the stand-ins, the bot as ``python -m bot serve``, the baseline)
and stopped at the end; progress goes to stderr and the table to stdout. ``--quick`` runs one
shorter round; ``--smoke`` a few seconds of everything at a tiny load, to show that the
benchmark still works (the test suite runs it), never how fast anything is.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import signal
import sys
from collections.abc import Sequence

from bench.report import render
from bench.scenario import FULL, QUICK, SMOKE, progress, run, work_directory


def _interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM ends the run as Ctrl-C does, so every process it started is stopped."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run, print the table; the work directory is kept only on failure."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one shorter round")
    mode.add_argument("--smoke", action="store_true", help="seconds, tiny load: does it run?")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with modes)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.rounds is not None:
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
        plan = dataclasses.replace(plan, rounds=args.rounds)
    signal.signal(signal.SIGTERM, _interrupt)
    work = work_directory()
    try:
        results = asyncio.run(run(plan, work))
    except BaseException:
        progress(f"failed; logs and databases are in {work}")
        raise
    print(render(results))
    if args.keep:
        progress(f"logs and databases are in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
