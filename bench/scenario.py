"""The whole run: start everything, measure every row in interleaved rounds, stop everything.

Each round measures the bot and the bare Bolt baseline back to back under the same load
(their order alternates between rounds), so a noisy neighbour on the machine slows both alike
and the ratio of the two stays meaningful; the report takes the median of the rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from bench import phases, processes
from bench.dis_server import write_data
from bench.measure import median, rss_bytes
from bench.observe import StandIns
from bench.phases import Acks, Completed, SlowCloud
from bench.postgres import find_server, throwaway_database
from bench.processes import Server, StandIn

A = TypeVar("A")
B = TypeVar("B")
# Settling after start-up before idle memory is read: imports and first allocations are done.
SETTLE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Plan:
    """How much load each phase sends; ``--quick`` and ``--smoke`` scale it down."""

    name: str
    rounds: int = 3
    steady_rate: float = 100.0
    steady_seconds: float = 2.0
    burst_rate: float = 300.0
    burst_count: int = 600
    overload_factor: float = 5.0
    overload_seconds: float = 1.5
    overload_max_count: int = 1500
    overhead_count: int = 10
    slow_count: int = 50
    slow_latency: float = 2.0
    approval_seconds: float = 5.0
    min_approvals: int = 30
    memory_requests: int = 5000
    startup_trials: int = 2
    postgres_count: int = 200
    stall_seconds: float = 6.0

    @property
    def steady_count(self) -> int:
        """Requests per steady phase."""
        return round(self.steady_rate * self.steady_seconds)

    def approvals_for(self, rate: float, available: int) -> int:
        """How many cards to approve at saturation: about ``approval_seconds`` of work.

        Today's bot completes a tenth of what a fast one does; a fixed count would make the
        run take minutes longer for it, a fixed duration would starve the measurement for
        neither. ``rate`` is the last estimate of the approvals per second.
        """
        wanted = self.min_approvals if math.isnan(rate) else round(rate * self.approval_seconds)
        return max(1, min(available, max(self.min_approvals, wanted)))

    def tasks_needed(self) -> int:
        """A generous count of the tasks the run can use (each command takes a new one)."""
        per_round = 2 * self.steady_count + self.burst_count + self.overload_max_count
        postgres = 2 * self.postgres_count
        rounds = self.rounds * (per_round + postgres + self.overhead_count)
        return 2 * (rounds + self.slow_count) + self.memory_requests


FULL = Plan("full")
QUICK = Plan(
    "quick", rounds=1, steady_seconds=2.0, burst_count=300, overload_max_count=600,
    overhead_count=5, startup_trials=1, postgres_count=150, memory_requests=0,
)  # fmt: skip
SMOKE = Plan(
    "smoke", rounds=1, steady_rate=20.0, steady_seconds=1.0, burst_rate=60.0, burst_count=20,
    overload_max_count=40, overhead_count=3, slow_count=5, slow_latency=0.3, startup_trials=1,
    postgres_count=10, memory_requests=0,
)  # fmt: skip


@dataclass(slots=True)
class Round:
    """One round on SQLite: every figure that has a baseline, side by side."""

    bot_commands: Completed
    base_commands: Acks
    bot_approvals: Completed
    base_clicks: Acks
    saturation: Completed
    overload: Completed
    approvals_saturation: Completed
    overhead_ms: list[float]


@dataclass(slots=True)
class PostgresRound:
    """Throughput on PostgreSQL with one replica and with two."""

    one_commands: Completed
    one_approvals: Completed
    two_commands: Completed
    two_approvals: Completed


@dataclass(slots=True)
class Results:
    """Everything measured in one run."""

    plan: Plan
    rounds: list[Round] = field(default_factory=list)
    slow: SlowCloud | None = None
    top_up: Completed | None = None
    startup_bot: list[float] = field(default_factory=list)
    startup_base: list[float] = field(default_factory=list)
    rss_bot_idle: float = math.nan
    rss_bot_after: float = math.nan
    rss_base_idle: float = math.nan
    rss_base_after: float = math.nan
    bot_requests: int = 0
    base_requests: int = 0
    postgres: list[PostgresRound] = field(default_factory=list)
    postgres_note: str = ""
    slow_note: str = ""
    seconds: float = math.nan

    def all_phases(self) -> list[Completed]:
        """Every phase that sent commands or clicks to a bot."""
        found: list[Completed] = []
        for one in self.rounds:
            found += [one.bot_commands, one.bot_approvals, one.saturation, one.approvals_saturation]
            if one.overload is not one.saturation:
                found.append(one.overload)
        if self.slow is not None:
            found += [self.slow.alone, self.slow.together]
        if self.top_up is not None:
            found.append(self.top_up)
        for pg in self.postgres:
            found += [pg.one_commands, pg.one_approvals, pg.two_commands, pg.two_approvals]
        return found


def progress(message: str) -> None:
    """A line on stderr, so that stdout holds only the table."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def _sqlite_url(directory: Path, name: str) -> str:
    return f"sqlite:///{directory / name}.db"


async def side_by_side(
    bot: Callable[[], Awaitable[A]], base: Callable[[], Awaitable[B]], *, bot_first: bool
) -> tuple[A, B]:
    """Measure the bot and the baseline one after the other, in the order given."""
    if bot_first:
        measured = await bot()
        return measured, await base()
    baseline = await base()
    return await bot(), baseline


class Run:
    """The processes of one run, and the measurements over them."""

    def __init__(self, plan: Plan, work: Path, stack: contextlib.ExitStack) -> None:
        self.plan = plan
        self.work = work
        self.stack = stack
        self.results = Results(plan)
        self.dis: StandIn
        self.slack: StandIn
        self.stand_ins: StandIns
        # The last approvals/s measured per setup, to size the next approvals phase.
        self.approval_rate: dict[str, float] = {}

    def bot(self, name: str, database_url: str) -> Server:
        """A bot process (not started) wired to the stand-ins."""
        env = processes.bot_environment(self.dis.url, f"{self.slack.url}/api/", database_url)
        return processes.bot(name, env, self.work)

    def baseline(self, name: str) -> Server:
        """A baseline process (not started)."""
        return processes.baseline(name, f"{self.slack.url}/api/", self.work)

    def start_stand_ins(self) -> None:
        """The DIS stand-in with enough tasks, and the Slack stand-in."""
        data = self.work / "dis.json"
        write_data(data, self.plan.tasks_needed())
        self.dis = self.stack.enter_context(
            StandIn("dis", "bench.dis_server", ["--data", str(data)], self.work)
        )
        self.dis.start()
        self.slack = self.stack.enter_context(StandIn("slack", "bench.slack_server", [], self.work))
        self.slack.start()

    def startup_trials(self) -> None:
        """Start and stop the bot (fresh database) and the baseline a few times, alternating."""
        for trial in range(self.plan.startup_trials):
            bot = self.bot(f"startup-bot-{trial}", _sqlite_url(self.work, f"startup-{trial}"))
            base = self.baseline(f"startup-base-{trial}")
            for server in (bot, base) if trial % 2 == 0 else (base, bot):
                with server:
                    server.start()
            self.results.startup_bot.append(bot.startup_seconds)
            self.results.startup_base.append(base.startup_seconds)

    async def warm_up(self, bot: Server, base: Server) -> None:
        """A few commands and clicks first, so first-request costs stay out of the figures."""
        made = await phases.commands(self.stand_ins, [bot], 10, 20, self.plan.stall_seconds)
        await phases.approvals(self.stand_ins, [bot], made.done, 20, self.plan.stall_seconds)
        bodies = await self.stand_ins.command_bodies(self.stand_ins.allocate(10))
        await phases.acks_only(base, bodies, 20)
        await phases.acks_only(base, await self.stand_ins.click_bodies(made.done), 20)
        self.results.bot_requests += made.count + len(made.done)
        self.results.base_requests += 10 + len(made.done)

    async def one_round(self, number: int, bot: Server, base: Server) -> Round:
        """Steady load on both, then saturation and overload, then the sequential approvals."""
        plan, stand_ins = self.plan, self.stand_ins
        stall = plan.stall_seconds
        bot_first = number % 2 == 0

        progress(f"round {number + 1}: {plan.steady_rate:g} commands/s, bot and bare Bolt")
        base_bodies = await stand_ins.command_bodies(stand_ins.allocate(plan.steady_count))
        bot_commands, base_commands = await side_by_side(
            lambda: phases.commands(stand_ins, [bot], plan.steady_count, plan.steady_rate, stall),
            lambda: phases.acks_only(base, base_bodies, plan.steady_rate),
            bot_first=bot_first,
        )

        progress(f"round {number + 1}: {plan.steady_rate:g} clicks/s, bot and bare Bolt")
        cards = list(bot_commands.done)
        click_bodies = await stand_ins.click_bodies(cards)
        bot_approvals, base_clicks = await side_by_side(
            lambda: phases.approvals(stand_ins, [bot], cards, plan.steady_rate, stall),
            lambda: phases.acks_only(base, click_bodies, plan.steady_rate),
            bot_first=bot_first,
        )

        progress(f"round {number + 1}: saturation, {plan.burst_count} commands at "
                 f"{plan.burst_rate:g}/s")  # fmt: skip
        saturation = await phases.commands(
            stand_ins, [bot], plan.burst_count, plan.burst_rate, stall
        )
        overload = saturation
        target = plan.overload_factor * saturation.per_second
        if not math.isnan(target) and target > plan.burst_rate:
            count = min(plan.overload_max_count, round(target * plan.overload_seconds))
            progress(f"round {number + 1}: overload, {count} commands at {target:.0f}/s")
            overload = await phases.commands(stand_ins, [bot], count, target, stall)
        estimate = self.approval_rate.get("sqlite", bot_approvals.per_second)
        cards = list(saturation.done)[: plan.approvals_for(estimate, len(saturation.done))]
        progress(f"round {number + 1}: {len(cards)} approvals at saturation")
        approvals_saturation = await phases.approvals(
            stand_ins, [bot], cards, plan.burst_rate, stall
        )
        self.approval_rate["sqlite"] = approvals_saturation.per_second
        progress(f"round {number + 1}: own overhead, {plan.overhead_count} approvals one by one")
        overhead = await phases.own_overhead(stand_ins, bot, plan.overhead_count, stall)

        results = self.results
        results.bot_requests += (
            bot_commands.count + bot_approvals.count + saturation.count
            + approvals_saturation.count + 2 * plan.overhead_count
            + (overload.count if overload is not saturation else 0)
        )  # fmt: skip
        results.base_requests += len(base_commands.sent) + len(base_clicks.sent)
        return Round(
            bot_commands,
            base_commands,
            bot_approvals,
            base_clicks,
            saturation,
            overload,
            approvals_saturation,
            overhead,
        )

    async def sqlite(self) -> None:
        """The bot on SQLite against the baseline: every round, the slow cloud, memory."""
        bot = self.stack.enter_context(self.bot("bot", _sqlite_url(self.work, "bot")))
        base = self.stack.enter_context(self.baseline("baseline"))
        bot.start()
        base.start()
        self.results.startup_bot.append(bot.startup_seconds)
        self.results.startup_base.append(base.startup_seconds)
        await asyncio.sleep(SETTLE_SECONDS)
        self.results.rss_bot_idle = rss_bytes(bot.pid)
        self.results.rss_base_idle = rss_bytes(base.pid)
        progress("warming up")
        await self.warm_up(bot, base)
        for number in range(self.plan.rounds):
            self.results.rounds.append(await self.one_round(number, bot, base))
        progress(f"slow cloud: DIS +{self.plan.slow_latency:g} s, {self.plan.slow_count} "
                 "approvals at once")  # fmt: skip
        try:
            self.results.slow = await phases.slow_cloud(
                self.stand_ins, bot, self.plan.slow_count, self.plan.slow_latency,
                self.plan.stall_seconds,
            )  # fmt: skip
        except Exception as error:  # one row says n/a and why; the rest of the table stands
            self.results.slow_note = f"failed: {error}"
            progress(f"slow cloud: n/a, {self.results.slow_note}")
        self.results.bot_requests += 2 * (self.plan.slow_count + 1)
        await self.top_up(bot)
        self.results.rss_bot_after = rss_bytes(bot.pid)
        self.results.rss_base_after = rss_bytes(base.pid)
        bot.stop()
        base.stop()

    async def top_up(self, bot: Server) -> None:
        """Commands until the bot has had ``memory_requests``, for the memory reading after.

        They go at the saturation rate measured, so no backlog builds up and the bot is idle
        again soon after the last one.
        """
        missing = self.plan.memory_requests - self.results.bot_requests
        rate = median([r.saturation.per_second for r in self.results.rounds])
        if missing <= 0 or math.isnan(rate):
            return
        progress(f"{missing} more commands at {rate:.0f}/s, before reading memory again")
        self.results.top_up = await phases.commands(
            self.stand_ins, [bot], missing, rate, self.plan.stall_seconds
        )
        self.results.bot_requests += missing

    async def postgres(self) -> None:
        """Throughput with one replica and with two on one PostgreSQL database."""
        server, reason = find_server()
        if server is None:
            self.results.postgres_note = f"no PostgreSQL server reachable ({reason})"
            progress(f"PostgreSQL: n/a, {self.results.postgres_note}")
            return
        plan, stand_ins = self.plan, self.stand_ins
        with throwaway_database(server) as database_url:
            first = self.bot("pg-1", database_url)
            with first:
                first.start()
                for number in range(plan.rounds):
                    progress(f"PostgreSQL round {number + 1}: one replica, then two")
                    measured: dict[int, tuple[Completed, Completed]] = {}
                    for replicas in (1, 2) if number % 2 == 0 else (2, 1):
                        servers = [first]
                        second = self.bot(f"pg-2-{number}", database_url)
                        with second:
                            if replicas == 2:
                                second.start()
                                servers.append(second)
                            made = await phases.commands(
                                stand_ins, servers, plan.postgres_count, plan.burst_rate,
                                plan.stall_seconds,
                            )  # fmt: skip
                            key = f"postgres-{replicas}"
                            estimate = self.approval_rate.get(key, self.approval_rate["sqlite"])
                            cards = list(made.done)[: plan.approvals_for(estimate, len(made.done))]
                            approved = await phases.approvals(
                                stand_ins, servers, cards, plan.burst_rate, plan.stall_seconds
                            )
                            self.approval_rate[key] = approved.per_second
                        measured[replicas] = (made, approved)
                    self.results.postgres.append(PostgresRound(*measured[1], *measured[2]))


async def run(plan: Plan, work: Path) -> Results:
    """Measure everything; processes are stopped whatever happens."""
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        runner = Run(plan, work, stack)
        progress(f"starting the stand-ins ({plan.tasks_needed()} DIS tasks)")
        runner.start_stand_ins()
        progress(f"start-up: {plan.startup_trials} trials each")
        runner.startup_trials()
        async with httpx.AsyncClient(timeout=60) as http:
            runner.stand_ins = StandIns(http, runner.slack.url, runner.dis.url)
            await runner.sqlite()
            try:
                await runner.postgres()
            except Exception as error:  # the replica rows say n/a and why; the rest stands
                runner.results.postgres = []
                runner.results.postgres_note = f"failed: {error}"
                progress(f"PostgreSQL: n/a, {runner.results.postgres_note}")
    runner.results.seconds = time.monotonic() - started
    return runner.results


def work_directory() -> Path:
    """Where the databases, data file and logs of a run go."""
    return Path(tempfile.mkdtemp(prefix="dumptask-bench-"))
