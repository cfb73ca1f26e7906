"""The one table ``python -m bench`` prints: markdown, to paste into README as it is.

Each row shows the bare Bolt baseline where one exists, the bot, their ratio (the median of
the per-round ratios, which a noisy machine disturbs least), the goal from issue 10 and whether
it is met. A figure a run could not measure says ``n/a`` and why, never a made-up number.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bench.measure import median, percentile, ratio
from bench.phases import Completed
from bench.scenario import PostgresRound, Results, Round

NA = "n/a"
MB = 1024 * 1024
REQUESTS_FOR_GROWTH = 5000


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    number: str
    what: str
    baseline: str
    bot: str
    ratio: str
    goal: str
    met: str


def _number(value: float, unit: str, digits: int = 1) -> str:
    if math.isnan(value):
        return NA
    return f"{value:,.{digits}f}{unit}"


def _spread(values: Sequence[float], unit: str, digits: int = 1) -> str:
    """The median, with the range over rounds when there were several."""
    present = [value for value in values if not math.isnan(value)]
    text = _number(median(present), unit, digits)
    if len(present) > 1 and text != NA:
        text += f" ({min(present):,.{digits}f}-{max(present):,.{digits}f})"
    return text


def _met(condition: bool | None) -> str:  # noqa: FBT001 - a verdict, not a flag
    return NA if condition is None else "yes" if condition else "**no**"


def _at_most(value: float, limit: float) -> bool | None:
    return None if math.isnan(value) else value <= limit


def _at_least(value: float, limit: float) -> bool | None:
    return None if math.isnan(value) else value >= limit


def _ratios(
    rounds: Iterable[Round], bot: Callable[[Round], float], base: Callable[[Round], float]
) -> list[float]:
    return [ratio(bot(one), base(one)) for one in rounds]


def _x(value: float) -> str:
    return _number(value, "x", 2)


def _ack_rows(results: Results) -> list[Row]:
    rounds = results.rounds
    rate = f"{results.plan.steady_rate:g}"
    commands = _ratios(
        rounds, lambda r: r.bot_commands.acks.p99_ms, lambda r: r.base_commands.p99_ms
    )
    clicks = _ratios(rounds, lambda r: r.bot_approvals.acks.p99_ms, lambda r: r.base_clicks.p99_ms)
    return [
        Row(
            "1",
            f"ack p99 at {rate} `/dumptask start`/s",
            _spread([r.base_commands.p99_ms for r in rounds], " ms"),
            _spread([r.bot_commands.acks.p99_ms for r in rounds], " ms"),
            _x(median(commands)),
            "<= 1.0x bare Bolt",
            _met(_at_most(median(commands), 1.0)),
        ),
        Row(
            "1",
            f"ack p99 at {rate} Approve clicks/s (open cards)",
            _spread([r.base_clicks.p99_ms for r in rounds], " ms"),
            _spread([r.bot_approvals.acks.p99_ms for r in rounds], " ms"),
            _x(median(clicks)),
            "<= 1.0x bare Bolt",
            _met(_at_most(median(clicks), 1.0)),
        ),
    ]


def _losses(phases: Sequence[Completed]) -> tuple[float, int, int, int]:
    slowest = median([phase.acks.max_ms for phase in phases])
    lost = sum(phase.lost for phase in phases)
    errors = sum(phase.errors for phase in phases)
    sent = sum(phase.count for phase in phases)
    return slowest, lost, errors, sent


def _burst_rows(results: Results) -> list[Row]:
    plan, rounds = results.plan, results.rounds
    rows = []
    slowest, lost, errors, sent = _losses([r.saturation for r in rounds])
    goal_ok = None if math.isnan(slowest) else slowest <= 1000 and lost == 0
    rows.append(
        Row(
            "2",
            f"burst of {plan.burst_count} commands at {plan.burst_rate:g}/s: slowest ack "
            "(median of rounds); lost, generic errors (all rounds)",
            "-",
            f"{_number(slowest, ' ms', 0)}; lost {lost} of {sent}; {errors} generic errors",
            "-",
            "every ack < 1 s, none lost",
            _met(goal_ok),
        )
    )
    overloads = [r.overload for r in rounds if r.overload is not r.saturation]
    saturation = median([r.saturation.per_second for r in rounds])
    if overloads:
        offered = median([phase.offered_per_second for phase in overloads])
        slowest, lost, errors, sent = _losses(overloads)
        what = f"overload at {offered:,.0f} commands/s offered"
        result = f"{_number(slowest, ' ms', 0)}; lost {lost} of {sent}; {errors} generic errors"
        goal_ok = None if math.isnan(slowest) else slowest <= 1000 and lost == 0
    else:
        what = "overload at 5x saturation"
        factor = ratio(plan.burst_rate, saturation)
        result = f"the burst above: {plan.burst_rate:g}/s is {_x(factor)} saturation"
        goal_ok = None
    rows.append(
        Row(
            "2",
            f"{what} ({_number(saturation, '/s', 0)} saturation): slowest ack; lost, errors",
            "-",
            result,
            "-",
            "every ack < 1 s, none lost",
            _met(goal_ok) if overloads else "see above",
        )
    )
    return rows


def _cpu_rows(results: Results) -> list[Row]:
    rounds = results.rounds
    per_command = _ratios(
        rounds, lambda r: r.bot_commands.cpu_per_ms, lambda r: r.base_commands.cpu_per_request_ms
    )
    per_approval = _ratios(
        rounds, lambda r: r.bot_approvals.cpu_per_ms, lambda r: r.base_clicks.cpu_per_request_ms
    )
    bot_command = median([r.bot_commands.cpu_per_ms for r in rounds])
    bot_approval = median([r.bot_approvals.cpu_per_ms for r in rounds])
    return [
        Row(
            "3",
            f"CPU per command at {results.plan.steady_rate:g}/s, end to end (ack, DIS list, "
            "store, card), process tree",
            _spread([r.base_commands.cpu_per_request_ms for r in rounds], " ms") + " (ack only)",
            _spread([r.bot_commands.cpu_per_ms for r in rounds], " ms"),
            _x(median(per_command)),
            "<= 5 ms",
            _met(_at_most(bot_command, 5.0)),
        ),
        Row(
            "3",
            f"CPU per approval at {results.plan.steady_rate:g}/s, end to end (click to outcome "
            "posted), process tree",
            _spread([r.base_clicks.cpu_per_request_ms for r in rounds], " ms") + " (ack only)",
            _spread([r.bot_approvals.cpu_per_ms for r in rounds], " ms"),
            _x(median(per_approval)),
            "<= 8 ms",
            _met(_at_most(bot_approval, 8.0)),
        ),
    ]


def _throughput_rows(results: Results) -> list[Row]:
    rounds, plan = results.rounds, results.plan
    commands = median([r.saturation.per_second for r in rounds])
    approvals = median([r.approvals_saturation.per_second for r in rounds])
    cpu = median([r.approvals_saturation.cpu_per_ms for r in rounds])
    overhead = median([percentile(r.overhead_ms, 0.5) for r in rounds])
    return [
        Row(
            "4",
            f"commands/s until the card is posted, at saturation (offered {plan.burst_rate:g}/s)",
            "-",
            _spread([r.saturation.per_second for r in rounds], "/s"),
            "-",
            ">= 200/s",
            _met(_at_least(commands, 200)),
        ),
        Row(
            "4",
            f"approvals/s until the outcome is posted, at saturation (offered "
            f"{plan.burst_rate:g}/s)",
            "-",
            _spread([r.approvals_saturation.per_second for r in rounds], "/s")
            + f" at {_number(cpu, ' ms')} CPU each",
            "-",
            ">= 100/s",
            _met(_at_least(approvals, 100)),
        ),
        Row(
            "5",
            f"own overhead per approved request, p50 (click to outcome minus stand-in time; "
            f"{plan.overhead_count} one by one)",
            "-",
            _spread([percentile(r.overhead_ms, 0.5) for r in rounds], " ms"),
            "-",
            "<= 10 ms",
            _met(_at_most(overhead, 10.0)),
        ),
    ]


def _slow_rows(results: Results) -> list[Row]:
    slow = results.slow
    what = f"slow cloud: DIS +{results.plan.slow_latency:g} s per call, "
    if slow is None:
        note = f"{NA}: {results.slow_note or 'not measured'}"
        return [Row("6", what + "approvals at once", "-", note, NA, "<= 1.5x; every ack < 1 s", NA)]
    count = slow.together.count
    slowest = max(slow.alone.acks.max_ms, slow.together.acks.max_ms)
    wall = ratio(slow.wall_together, slow.wall_alone)
    missing = count - len(slow.together.done)
    result = (
        f"slowest ack {_number(slowest, ' ms', 0)}; all {count} done in "
        f"{_number(slow.wall_together, ' s', 2)}, one alone in {_number(slow.wall_alone, ' s', 2)}"
    )
    if missing:
        result += f" ({missing} never completed)"
    met = None if math.isnan(wall) else wall <= 1.5 and slowest < 1000
    return [
        Row(
            "6",
            what + f"{count} approvals at once: every ack; wall time of all against one alone",
            "-",
            result,
            _x(wall),
            "<= 1.5x; every ack < 1 s",
            _met(met),
        )
    ]


def _memory_rows(results: Results) -> list[Row]:
    growth = results.rss_bot_after - results.rss_bot_idle
    enough = results.bot_requests >= REQUESTS_FOR_GROWTH
    after = f"{_number(results.rss_bot_after / MB, ' MB', 0)} (+{_number(growth / MB, ' MB', 0)})"
    return [
        Row(
            "7",
            "RSS idle, process tree",
            _number(results.rss_base_idle / MB, " MB", 0),
            _number(results.rss_bot_idle / MB, " MB", 0),
            _x(ratio(results.rss_bot_idle, results.rss_base_idle)),
            "<= 100 MB",
            _met(_at_most(results.rss_bot_idle / MB, 100)),
        ),
        Row(
            "7",
            f"RSS after {results.bot_requests:,} requests (bare Bolt: "
            f"{results.base_requests:,}), process tree",
            _number(results.rss_base_after / MB, " MB", 0),
            after,
            _x(ratio(results.rss_bot_after, results.rss_base_after)),
            f"growth <= 20 MB after {REQUESTS_FOR_GROWTH:,}",
            _met(_at_most(growth / MB, 20))
            if enough
            else f"{NA}: fewer than {REQUESTS_FOR_GROWTH:,}",
        ),
        Row(
            "7",
            "start-up to `/healthz` 200 (bare Bolt: to its port answering)",
            _spread(results.startup_base, " s", 2),
            _spread(results.startup_bot, " s", 2),
            _x(
                median(
                    [
                        ratio(b, a)
                        for a, b in zip(results.startup_base, results.startup_bot, strict=True)
                    ]
                )
            ),
            "<= 1 s",
            _met(_at_most(median(results.startup_bot), 1.0)),
        ),
    ]


def _one_commands(one: PostgresRound) -> Completed:
    return one.one_commands


def _two_commands(one: PostgresRound) -> Completed:
    return one.two_commands


def _one_approvals(one: PostgresRound) -> Completed:
    return one.one_approvals


def _two_approvals(one: PostgresRound) -> Completed:
    return one.two_approvals


def _postgres_rows(results: Results) -> list[Row]:
    rounds = results.postgres
    if not rounds:
        note = f"{NA}: {results.postgres_note or 'not measured'}"
        return [
            Row("8", "PostgreSQL, one and two replicas: commands/s", "-", note, NA, ">= 1.7x", NA),
            Row("8", "PostgreSQL, one and two replicas: approvals/s", "-", note, NA, ">= 1.7x", NA),
        ]
    rows = []
    pairs: list[
        tuple[str, Callable[[PostgresRound], Completed], Callable[[PostgresRound], Completed]]
    ] = [
        ("commands/s until the card is posted", _one_commands, _two_commands),
        ("approvals/s until the outcome is posted", _one_approvals, _two_approvals),
    ]
    for what, one, two in pairs:
        scale = median([ratio(two(r).per_second, one(r).per_second) for r in rounds])
        lost = sum(one(r).lost + two(r).lost for r in rounds)
        rows.append(
            Row(
                "8",
                f"PostgreSQL {what}: one replica / two replicas (scale-out = two/one)",
                "-",
                f"{_spread([one(r).per_second for r in rounds], '/s')} / "
                f"{_spread([two(r).per_second for r in rounds], '/s')}; lost {lost}",
                _x(scale),
                ">= 1.7x",
                _met(_at_least(scale, 1.7)),
            )
        )
    return rows


def failures(results: Results) -> tuple[int, int, int]:
    """Failed acks, generic error answers and lost requests, over every phase of the run."""
    phases = results.all_phases()
    failed = sum(phase.acks.failed for phase in phases)
    for one in results.rounds:
        failed += one.base_commands.failed + one.base_clicks.failed
    return failed, sum(p.errors for p in phases), sum(p.lost for p in phases)


def render(results: Results) -> str:
    """The header line, the table and the failure count, as markdown."""
    plan = results.plan
    header = (
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()} "
        f"({platform.machine()}, {platform.system()}); `python -m bench` mode {plan.name}, "
        f"{plan.rounds} interleaved round(s), medians (range); SQLite unless noted; "
        f"run took {results.seconds:.0f} s."
    )
    rows = [
        *_ack_rows(results),
        *_burst_rows(results),
        *_cpu_rows(results),
        *_throughput_rows(results),
        *_slow_rows(results),
        *_memory_rows(results),
        *_postgres_rows(results),
    ]
    lines = [
        header,
        "",
        "| # | what | bare Bolt | dumptask-bot | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.number} | {r.what} | {r.baseline} | {r.bot} | {r.ratio} | {r.goal} | {r.met} |"
        for r in rows
    ]
    failed, errors, lost = failures(results)
    lines += [
        "",
        (
            f"Failures over the whole run: {failed} failed acks, {errors} generic error answers, "
            f"{lost} requests lost."
        ),
    ]
    return "\n".join(lines)
