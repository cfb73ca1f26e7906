"""The load generator's view of the stand-ins: what the bot posted, and when it waited on them.

``StandIns`` talks to the two stand-in processes over their ``/bench/`` control routes: it
has them build request bodies, switches DIS's latency, and keeps an index of the Slack events
(cards by task, the first thread reply under each card, response URL answers by token) so
each phase can tell which of its commands and clicks completed, and when.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx

from bench.config import command_text
from bench.events import Event

POLL_SECONDS = 0.1


def response_token(body: bytes) -> str:
    """The response URL token of a command or click body, which names its answers."""
    fields = parse_qs(body.decode())
    if "payload" in fields:
        url = str(json.loads(fields["payload"][0]).get("response_url", ""))
    else:
        url = fields.get("response_url", [""])[0]
    return url.rsplit("/", 1)[-1]


def union_seconds(spans: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """How long at least one span was under way between ``start`` and ``end``."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in spans if b > start and a < end)
    total, reach = 0.0, start
    for a, b in clipped:
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


@dataclass(slots=True)
class SlackIndex:
    """Every event so far, and the ones the phases look up."""

    events: list[Event] = field(default_factory=list)
    cards: dict[str, Event] = field(default_factory=dict)
    replies: dict[str, Event] = field(default_factory=dict)
    answers: dict[str, list[Event]] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        """Index one event."""
        self.events.append(event)
        if event.kind == "card" and event.task and event.status == 200:
            self.cards.setdefault(event.task, event)
        elif event.kind == "reply" and event.status == 200:
            self.replies.setdefault(event.thread_ts, event)
        elif event.kind == "response":
            self.answers.setdefault(event.ts, []).append(event)

    def errors_between(self, start: float, end: float) -> int:
        """How many generic error answers the bot gave between ``start`` and ``end``."""
        return sum(1 for e in self.events if e.note == "error" and start <= e.started <= end)

    def queued(self, token: str) -> bool:
        """Whether the bot told the sender of ``token``'s request that it was queued."""
        return any(event.note == "queued" for event in self.answers.get(token, []))


class StandIns:
    """Clients for the DIS and Slack stand-in processes."""

    def __init__(self, http: httpx.AsyncClient, slack_url: str, dis_url: str) -> None:
        self._http = http
        self.slack_url = slack_url
        self.dis_url = dis_url
        self.slack = SlackIndex()
        self._next_task = 0
        self._dis_spans: list[tuple[float, float]] = []

    @property
    def slack_api_url(self) -> str:
        """The Web API URL the bot is configured with."""
        return f"{self.slack_url}/api/"

    def allocate(self, count: int) -> list[int]:
        """``count`` task numbers no command has used yet."""
        numbers = list(range(self._next_task, self._next_task + count))
        self._next_task += count
        return numbers

    @property
    def tasks_used(self) -> int:
        """How many tasks the run has used so far."""
        return self._next_task

    async def command_bodies(self, numbers: Sequence[int]) -> list[bytes]:
        """Signed-to-be bodies of alice's ``/dumptask start`` for each task."""
        reply = await self._http.post(
            f"{self.slack_url}/bench/commands",
            json={"texts": [command_text(number) for number in numbers]},
        )
        reply.raise_for_status()
        return [body.encode() for body in reply.json()["bodies"]]

    async def click_bodies(self, cards: Sequence[Event]) -> list[bytes]:
        """Bodies of bob clicking Approve on each card."""
        reply = await self._http.post(
            f"{self.slack_url}/bench/clicks",
            json={"cards": [[card.channel, card.ts] for card in cards]},
        )
        reply.raise_for_status()
        return [body.encode() for body in reply.json()["bodies"]]

    async def refresh(self) -> int:
        """Fetch the Slack events not seen yet; how many there were."""
        reply = await self._http.get(
            f"{self.slack_url}/bench/events", params={"since": len(self.slack.events)}
        )
        reply.raise_for_status()
        rows = reply.json()["events"]
        for row in rows:
            self.slack.add(Event(*row))
        return len(rows)

    async def wait_for(
        self, done: Callable[[SlackIndex], bool], stall_seconds: float, limit_seconds: float
    ) -> bool:
        """Wait until ``done``, or until no event arrived for ``stall_seconds``; whether done.

        A stall means the bot stopped making progress (whatever it still owes is lost for the
        benchmark's purposes); ``limit_seconds`` caps the wait however slowly it progresses.
        """
        started = last_progress = time.monotonic()
        while True:
            if await self.refresh():
                last_progress = time.monotonic()
            if done(self.slack):
                return True
            now = time.monotonic()
            if now - last_progress > stall_seconds or now - started > limit_seconds:
                return False
            await asyncio.sleep(POLL_SECONDS)

    async def set_dis_latency(self, seconds: float) -> None:
        """Make every DIS call take ``seconds`` longer (0: answer at once again)."""
        reply = await self._http.post(f"{self.dis_url}/bench/latency", json={"seconds": seconds})
        reply.raise_for_status()

    async def dis_spans(self) -> list[tuple[float, float]]:
        """When DIS served each call, as ``(start, end)`` pairs."""
        reply = await self._http.get(
            f"{self.dis_url}/bench/timing", params={"since": len(self._dis_spans)}
        )
        reply.raise_for_status()
        self._dis_spans.extend((float(a), float(b)) for a, b in reply.json()["calls"])
        return list(self._dis_spans)

    def slack_spans(self) -> list[tuple[float, float]]:
        """When the Slack stand-in served each of the bot's calls."""
        return [(event.started, event.ended) for event in self.slack.events]
