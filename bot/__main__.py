"""The ``dumptask-bot`` command: ``serve``, ``socket``, ``check``, ``migrate``, ``audit``, ``demo``.

A thin entry point: parse the command line, build ``Settings`` once, hand them to the wiring.
A bad setting ends the program with one line per problem and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import uvloop

from bot import audit_export
from bot.clock import utc_now
from bot.errors import ConfigError, StoreError
from bot.logs import LOG_LEVELS, configure_logging
from bot.settings import Settings, load_database_settings, load_log_settings, load_settings

if TYPE_CHECKING:
    from bot.store.sql import SqlStore

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface other programs rely on."""
    parser = argparse.ArgumentParser(
        prog="dumptask-bot",
        description="Start and pause DIS dump tasks from Slack, behind an approval gate.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="HTTP mode: POST /slack/events and GET /healthz")
    commands.add_parser("socket", help="Socket Mode: connect to Slack with SLACK_APP_TOKEN")
    work = commands.add_parser(
        "work", help="run the stored jobs alone (serve starts one itself; more add throughput)"
    )
    work.add_argument("--link-fd", type=int, help=argparse.SUPPRESS)  # set by serve
    work.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    check = commands.add_parser("check", help="validate configuration, Slack, store and DIS")
    check.add_argument("stream", nargs="?", help="a DIS stream to list with the configured AK/SK")
    commands.add_parser("migrate", help="bring the database schema up to date, then exit")
    audit = commands.add_parser(
        "audit", help="print the audit trail as a table, JSON lines or CSV (needs DATABASE_URL)"
    )
    audit_export.add_arguments(audit)
    demo = commands.add_parser("demo", help="everything local: bot, DIS and Slack stand-ins")
    demo.add_argument("--port", type=int, default=8080, help="port of the demo's Slack page")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        help="overrides LOG_LEVEL (default INFO)",
    )
    return parser


def require(settings: Settings, variable: str) -> None:
    """Stop with one clear line when a mode's own secret is missing."""
    if getattr(settings, variable.lower()) is None:
        raise ConfigError(f"{variable} is required for this mode but not set")


async def run(arguments: argparse.Namespace, settings: Settings) -> int:
    """Run the chosen sub-command; return the process exit status."""
    from bot.app import create_bot  # noqa: PLC0415 - keeps `--help` fast

    if arguments.command == "check":
        from bot.check import run_checks  # noqa: PLC0415

        verdicts = await run_checks(settings, arguments.stream)
        for verdict in verdicts:
            print(verdict.line())  # noqa: T201 - this is the command's output
        return 0 if all(verdict.ok for verdict in verdicts) else 1
    if arguments.command == "work":
        from bot.work import work  # noqa: PLC0415
        from bot.worker import die_with_parent  # noqa: PLC0415

        if arguments.parent_pid is not None:
            die_with_parent(arguments.parent_pid)
        await work(await create_bot(settings, reads_inbox=True), arguments.link_fd)
        return 0
    worker = None
    if arguments.command == "serve" and settings.dumptask_worker == "process":
        from bot.worker import WorkerLink  # noqa: PLC0415

        worker = WorkerLink(worker_command(arguments))
    bot = await create_bot(settings, worker=worker)
    if arguments.command == "serve":
        from bot.web import serve  # noqa: PLC0415

        await serve(bot, settings)
        return 0
    from bot.metrics_http import MetricsServer  # noqa: PLC0415
    from bot.socket_mode import run_socket_mode  # noqa: PLC0415

    assert settings.slack_app_token is not None
    metrics = None
    if settings.metrics_port is not None:
        metrics = MetricsServer(bot, settings.host, settings.metrics_port)
    await run_socket_mode(bot, settings.slack_app_token.get_secret_value(), metrics=metrics)
    return 0


def worker_command(arguments: argparse.Namespace) -> list[str]:
    """How ``serve`` starts its worker: this Python, this package, this log level."""
    level = ["--log-level", arguments.log_level] if arguments.log_level else []
    return [sys.executable, "-m", "bot", *level, "work"]


def _configuration_error(error: ConfigError) -> int:
    for line in str(error).splitlines():
        print(f"dumptask-bot: configuration error: {line}", file=sys.stderr)  # noqa: T201
    return EXIT_CONFIG


def _with_store(work: Callable[[SqlStore], Awaitable[int]]) -> int:
    """Run ``work`` on the store ``DATABASE_URL`` names, needing no other setting.

    The store is not migrated: these commands must not change the schema behind the bot's back
    (``migrate`` does so on purpose). A store error is one line and exit status 1.
    """
    from bot.store.sql import SqlStore  # noqa: PLC0415 - keeps `--help` fast

    try:
        settings = load_database_settings()
    except ConfigError as error:
        return _configuration_error(error)

    async def run_work() -> int:
        store = SqlStore(settings.database_url)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run_work())
    except StoreError as error:
        print(f"dumptask-bot: {error}", file=sys.stderr)  # noqa: T201
        return 1


def _migrate() -> int:
    """``dumptask-bot migrate``: apply the schema migrations alone (the bot also does at start)."""

    async def migrate(store: SqlStore) -> int:
        before, after = await store.migrate()
        if before == after:
            print(f"database already at the newest revision {after}")  # noqa: T201
        else:
            print(f"database migrated from revision {before or 'none'} to {after}")  # noqa: T201
        return 0

    return _with_store(migrate)


def _audit(arguments: argparse.Namespace) -> int:
    """``dumptask-bot audit``: write the audit trail to standard output as it is read."""
    try:
        filters = audit_export.filters_from(arguments, utc_now())
    except ConfigError as error:
        print(f"dumptask-bot audit: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG

    async def export(store: SqlStore) -> int:
        await audit_export.export_audit(store, filters, arguments.format, sys.stdout)
        return 0

    try:
        status = _with_store(export)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error, but nothing more can be written.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    arguments = build_parser().parse_args(argv)
    try:
        logs = load_log_settings()
    except ConfigError as error:
        return _configuration_error(error)
    configure_logging(logs.log_format, arguments.log_level or logs.log_level)
    if arguments.command == "demo":
        from bot.demo import run_demo  # noqa: PLC0415

        return run_demo(port=arguments.port)
    if arguments.command == "migrate":
        return _migrate()
    if arguments.command == "audit":
        return _audit(arguments)
    try:
        settings = load_settings()
        if arguments.command == "serve":
            require(settings, "SLACK_SIGNING_SECRET")
        if arguments.command == "socket":
            require(settings, "SLACK_APP_TOKEN")
    except ConfigError as error:
        return _configuration_error(error)
    try:
        # uvloop: the same asyncio, with a faster loop (acks wait less behind other work).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run(arguments, settings))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
