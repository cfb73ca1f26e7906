"""One measurement each: send a load, wait for the bot to finish it, and say what happened.

A phase waits until each of its requests has settled (its card or outcome posted, or an error
answered) before it reads the CPU counters again, so no phase's work leaks into the next one's
figures. The bot is a black box: completion is read from the Slack stand-in's events, CPU from
``/proc``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import load
from bench.config import task_name
from bench.events import Event, note_of
from bench.measure import cpu_seconds, percentile
from bench.observe import SlackIndex, StandIns, response_token, union_seconds
from bench.processes import Server

# However slowly the bot progresses, a phase gives up waiting after this long.
LIMIT_SECONDS = 240.0


@dataclass(frozen=True, slots=True)
class Acks:
    """The acks of one phase, and the CPU the servers' process trees used meanwhile."""

    sent: tuple[load.Sent, ...]
    cpu_seconds: float

    @property
    def latencies_ms(self) -> list[float]:
        """Every ack's latency in milliseconds, failures included (at the time they failed)."""
        return [sent.latency * 1000 for sent in self.sent]

    @property
    def p99_ms(self) -> float:
        """The 99th percentile ack latency."""
        return percentile(self.latencies_ms, 0.99)

    @property
    def max_ms(self) -> float:
        """The slowest ack."""
        return max(self.latencies_ms, default=math.nan)

    @property
    def failed(self) -> int:
        """Requests answered with anything but 200, or not at all."""
        return sum(1 for sent in self.sent if not sent.ok)

    @property
    def cpu_per_request_ms(self) -> float:
        """CPU milliseconds per request."""
        return self.cpu_seconds * 1000 / len(self.sent) if self.sent else math.nan


@dataclass(frozen=True, slots=True)
class Completed:
    """A phase of commands or clicks: acks, what completed, what was lost, and the costs.

    ``done`` holds the event that completed each request that did (its card, or its outcome
    in the card's thread), ``lost`` counts requests with a failed ack or without a result
    (and without a "queued" answer promising one), ``errors`` the generic error answers.
    ``per_second`` is completions per second from the first request sent to the last
    completion; ``cpu_per_ms`` is the servers' CPU from the first request until everything
    settled, per completion.
    """

    acks: Acks
    done: tuple[Event, ...]
    lost: int
    errors: int
    per_second: float
    cpu_per_ms: float
    offered_per_second: float

    @property
    def count(self) -> int:
        """How many requests the phase sent."""
        return len(self.acks.sent)


def _cpu(servers: Sequence[Server]) -> float:
    return sum(cpu_seconds(server.pid) for server in servers)


async def _run(
    stand_ins: StandIns,
    servers: Sequence[Server],
    bodies: list[bytes],
    rate: float,
    result_of: list[str],
    found: dict[str, Event],
    stall_seconds: float,
) -> Completed:
    """Send ``bodies``; request ``i`` is done once ``found`` holds ``result_of[i]``."""
    tokens = [response_token(body) for body in bodies]
    cpu_before = _cpu(servers)
    started = time.monotonic()
    sent = await load.fire([server.events_url for server in servers], bodies, rate)

    def errored(index: int, index_: SlackIndex) -> bool:
        answers = index_.answers.get(tokens[index], [])
        return note_of(sent[index].body) == "error" or any(a.note == "error" for a in answers)

    def settled(index_: SlackIndex) -> bool:
        return all(
            not sent[i].ok or result_of[i] in found or errored(i, index_) for i in range(len(sent))
        )

    await stand_ins.wait_for(settled, stall_seconds, LIMIT_SECONDS)
    ended = time.monotonic()
    cpu = _cpu(servers) - cpu_before
    done = tuple(found[key] for key in result_of if key in found)
    lost = sum(
        1
        for i, request in enumerate(sent)
        if not request.ok
        or (
            result_of[i] not in found
            and not stand_ins.slack.queued(tokens[i])
            and note_of(request.body) != "queued"
        )
    )
    errors = stand_ins.slack.errors_between(started, ended) + sum(
        1 for request in sent if note_of(request.body) == "error"
    )
    first = min((request.sent for request in sent), default=math.nan)
    last = max((event.ended for event in done), default=math.nan)
    elapsed = last - first
    return Completed(
        acks=Acks(tuple(sent), cpu),
        done=done,
        lost=lost,
        errors=errors,
        per_second=len(done) / elapsed if done and elapsed > 0 else math.nan,
        cpu_per_ms=cpu * 1000 / len(done) if done else math.nan,
        offered_per_second=rate,
    )


async def commands(
    stand_ins: StandIns, servers: Sequence[Server], count: int, rate: float, stall_seconds: float
) -> Completed:
    """``count`` commands at ``rate`` per second (taking turns among ``servers``)."""
    numbers = stand_ins.allocate(count)
    bodies = await stand_ins.command_bodies(numbers)
    tasks = [task_name(number) for number in numbers]
    return await _run(stand_ins, servers, bodies, rate, tasks, stand_ins.slack.cards, stall_seconds)


async def approvals(
    stand_ins: StandIns,
    servers: Sequence[Server],
    cards: Sequence[Event],
    rate: float,
    stall_seconds: float,
) -> Completed:
    """Bob approves each card, at ``rate`` per second; done once the outcome is in its thread."""
    bodies = await stand_ins.click_bodies(cards)
    keys = [card.ts for card in cards]
    return await _run(
        stand_ins, servers, bodies, rate, keys, stand_ins.slack.replies, stall_seconds
    )


async def acks_only(server: Server, bodies: Sequence[bytes], rate: float) -> Acks:
    """Send ``bodies`` to a server that only acks (the baseline): acks and CPU."""
    before = cpu_seconds(server.pid)
    sent = await load.fire([server.events_url], bodies, rate)
    return Acks(tuple(sent), cpu_seconds(server.pid) - before)


async def own_overhead(
    stand_ins: StandIns, server: Server, count: int, stall_seconds: float
) -> list[float]:
    """Approve ``count`` requests one at a time: click to outcome minus stand-in time, in ms.

    The time waiting on the stand-ins is the union of the spans in which either served one
    of the bot's calls, timed by the stand-ins themselves; the loopback round trips around
    those spans (tens of microseconds) count as the bot's own.
    """
    made = await commands(stand_ins, [server], count, 20, stall_seconds)
    overheads = []
    for card in made.done:
        [body] = await stand_ins.click_bodies([card])
        sent = await load.one(server.events_url, body)

        def answered(index: SlackIndex, ts: str = card.ts) -> bool:
            return ts in index.replies

        found = await stand_ins.wait_for(answered, stall_seconds, LIMIT_SECONDS)
        if not sent.ok or not found:
            continue
        end = stand_ins.slack.replies[card.ts].ended
        spans = [*await stand_ins.dis_spans(), *stand_ins.slack_spans()]
        waited = union_seconds(spans, sent.sent, end)
        overheads.append((end - sent.sent - waited) * 1000)
    return overheads


@dataclass(frozen=True, slots=True)
class SlowCloud:
    """Approvals against a DIS that takes ``latency`` seconds a call: one alone, then many."""

    latency: float
    alone: Completed
    together: Completed

    @property
    def wall_alone(self) -> float:
        """Seconds from the lone click to its outcome."""
        return _wall(self.alone)

    @property
    def wall_together(self) -> float:
        """Seconds from the first simultaneous click to the last outcome; NaN if one is missing."""
        return _wall(self.together)


def _wall(phase: Completed) -> float:
    if len(phase.done) < phase.count:
        return math.nan
    first = min(request.sent for request in phase.acks.sent)
    return max(event.ended for event in phase.done) - first


async def slow_cloud(
    stand_ins: StandIns, server: Server, count: int, latency: float, stall_seconds: float
) -> SlowCloud:
    """Cards first (DIS fast), then DIS slowed: one approval alone, then ``count`` at once."""
    made = await commands(stand_ins, [server], count + 1, 50, stall_seconds)
    cards = list(made.done)
    wait = stall_seconds + 4 * latency
    await stand_ins.set_dis_latency(latency)
    try:
        alone = await approvals(stand_ins, [server], cards[:1], 1, wait)
        together = await approvals(stand_ins, [server], cards[1:], 100_000, wait)
    finally:
        await stand_ins.set_dis_latency(0)
    return SlowCloud(latency, alone, together)
