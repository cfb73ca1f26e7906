"""Prometheus metrics: what the bot counts, and what it reads from the store at scrape time.

``Metrics`` owns one ``CollectorRegistry`` per bot (never the global one), so several bots in
one process, as the tests run them, keep their own numbers. The rest of the bot never imports
``prometheus_client``: each part is handed one of ``Metrics``' small hooks (a bound method) and
calls it when something happens:

- ``command(kind, result)``: the Slack listeners, once per slash command;
- ``request_changed(before, after)``: the service, once per stored change of a request;
- ``dis_call(operation, result, seconds)`` and ``dis_retry(operation)``: the DIS client;
- ``slack_api_error(method, error)``: the Slack Web API client;
- ``delivery(sink, result)``: the audit shipper.

Counters live in this process (Prometheus adds up the replicas). The gauges that must be right
across replicas (open requests, executions in flight, the jobs and outbox backlogs) are read
from the store when ``/metrics`` is scraped: ``refresh`` queries it, bounded in time, and the
``StoreCollector`` reports that reading; when the store does not answer in time, only
``dumptask_store_up 0`` is reported for it, never a stale number.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from bot.errors import DisErrorKind, StoreError
from bot.jobs import JobKind
from bot.lifecycle import Request, RequestState
from bot.store.protocol import Backlog
from bot.vocabulary import TaskAction

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
PACKAGE = "dumptask-bot"
# A scrape must answer before Prometheus gives up on it (10 s by default), store or no store.
STORE_READ_TIMEOUT_S = 2.0

COMMAND_RESULTS = ("parsed", "refused", "error", "failed")
REQUEST_EVENTS = ("opened", "approved", "cancelled", "denied", "expired", "disallowed")
EXECUTED_STATES = tuple(s.value for s in RequestState if s.was_executed)
# The DIS calls an approval makes; their series exist from the start, at zero, so that
# ``increase()`` sees the very first failure (a series that appears at 1 shows no increase).
DIS_OPERATIONS = ("list_tasks", "start_tasks", "stop_tasks")
DIS_RESULTS = ("ok", *(kind.value for kind in DisErrorKind))

APPROVAL_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 4 * 3600, 24 * 3600)
EXECUTION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
DIS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def package_version() -> str:
    """The installed version of the bot, from the package metadata."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class StoreReading:
    """What the store said at the last scrape, and the time it was read at."""

    backlog: Backlog
    now: datetime


class StoreCollector(Collector):
    """The gauges read from the store at scrape time; only ``store_up`` when it did not answer."""

    def __init__(self, sinks: Collection[str] = ()) -> None:
        self.reading: StoreReading | None = None
        self._sinks = frozenset(sinks)  # reported at zero when nothing waits for them

    def collect(self) -> Iterator[Metric]:
        """Report the last reading (``refresh`` makes one just before each exposition)."""
        up = GaugeMetricFamily(
            "dumptask_store_up", "Whether the store answered this scrape's questions in time."
        )
        up.add_metric([], 0 if self.reading is None else 1)
        yield up
        if self.reading is None:
            return
        backlog, now = self.reading.backlog, self.reading.now
        yield GaugeMetricFamily(
            "dumptask_requests_open",
            "Requests waiting for approval, across every replica.",
            value=backlog.open_requests,
        )
        yield GaugeMetricFamily(
            "dumptask_requests_executing",
            "Approved requests whose outcome is not recorded yet, across every replica.",
            value=len(backlog.executing_since),
        )
        oldest = min(backlog.executing_since, default=None)
        yield GaugeMetricFamily(
            "dumptask_oldest_execution_age_seconds",
            "Seconds since the oldest still-executing request was approved (0 when none).",
            value=0 if oldest is None else max((now - oldest).total_seconds(), 0.0),
        )
        jobs = GaugeMetricFamily(
            "dumptask_jobs",
            "Background jobs waiting to run (queued) or given up on (dead), by kind.",
            labels=["kind", "state"],
        )
        for (kind, state), count in sorted(backlog.jobs.items()):
            if kind != JobKind.SHIP.value:  # always one per sink; the outbox says more
                jobs.add_metric([kind, state], count)
        yield jobs
        undelivered = GaugeMetricFamily(
            "dumptask_outbox_undelivered",
            "Audit events not yet delivered, by sink (webhook, channel).",
            labels=["sink"],
        )
        age = GaugeMetricFamily(
            "dumptask_outbox_oldest_undelivered_age_seconds",
            "Seconds the oldest undelivered audit event has waited, by sink (0 when none).",
            labels=["sink"],
        )
        waiting = dict.fromkeys(self._sinks, (0, None)) | dict(backlog.outbox)
        for sink, (count, since) in sorted(waiting.items()):
            undelivered.add_metric([sink], count)
            waited = 0.0 if since is None else max((now - since).total_seconds(), 0.0)
            age.add_metric([sink], waited)
        yield undelivered
        yield age


class Metrics:
    """Every series the bot exposes, in its own registry, behind small hooks."""

    def __init__(self, *, build_version: str | None = None, sinks: Collection[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._commands = Counter(
            "dumptask_commands",
            "Slash commands by sub-command and result (parsed, refused, error, failed).",
            ["kind", "result"],
            registry=registry,
        )
        self._requests = Counter(
            "dumptask_requests",
            "Requests opened, approved, cancelled, expired or disallowed, by action.",
            ["event", "action"],
            registry=registry,
        )
        self._executions = Counter(
            "dumptask_executions",
            "Executed requests by outcome; interrupted=true when another owner finished them.",
            ["action", "outcome", "interrupted"],
            registry=registry,
        )
        self._approval_latency = Histogram(
            "dumptask_approval_latency_seconds",
            "From a request being opened to its decision, by decision.",
            ["decision"],
            buckets=APPROVAL_BUCKETS,
            registry=registry,
        )
        self._execution_latency = Histogram(
            "dumptask_execution_latency_seconds",
            "From the approval to the recorded outcome, by action.",
            ["action"],
            buckets=EXECUTION_BUCKETS,
            registry=registry,
        )
        self._dis_calls = Counter(
            "dumptask_dis_calls",
            "HTTP calls to DIS by operation and result class (ok, throttled, transient, auth...).",
            ["operation", "result"],
            registry=registry,
        )
        self._dis_latency = Histogram(
            "dumptask_dis_call_duration_seconds",
            "How long one HTTP call to DIS took, by operation.",
            ["operation"],
            buckets=DIS_BUCKETS,
            registry=registry,
        )
        self._dis_retries = Counter(
            "dumptask_dis_retries",
            "DIS calls tried again after a throttled or transient failure, by operation.",
            ["operation"],
            registry=registry,
        )
        self._slack_errors = Counter(
            "dumptask_slack_api_errors",
            "Slack Web API error answers (including those retried), by method and error.",
            ["method", "error"],
            registry=registry,
        )
        self._deliveries = Counter(
            "dumptask_outbox_deliveries",
            "Attempts to deliver an audit event, by sink and result (ok, failed).",
            ["sink", "result"],
            registry=registry,
        )
        Info("dumptask_build", "The running bot's version.", registry=registry).info(
            {"version": build_version or package_version()}
        )
        ProcessCollector(namespace="dumptask", registry=registry)
        self._store = StoreCollector(sinks)
        registry.register(self._store)
        self._start_at_zero()

    def _start_at_zero(self) -> None:
        for action in TaskAction:
            for event in REQUEST_EVENTS:
                self._requests.labels(event, action.value)
            for outcome in EXECUTED_STATES:
                for interrupted in ("false", "true"):
                    self._executions.labels(action.value, outcome, interrupted)
        for operation in DIS_OPERATIONS:
            self._dis_retries.labels(operation)
            for result in DIS_RESULTS:
                self._dis_calls.labels(operation, result)

    # -- hooks --------------------------------------------------------------------------------

    def command(self, kind: str, result: str) -> None:
        """One slash command (``start``, ``list``... or ``invalid``) and how it ended."""
        self._commands.labels(kind, result).inc()

    def request_changed(self, before: Request | None, after: Request) -> None:
        """A stored change of a request (``before`` is ``None`` when it was just opened)."""
        action = after.action.value
        if before is None:
            self._requests.labels("opened", action).inc()
            return
        if before.state is RequestState.PENDING and after.state is not RequestState.PENDING:
            approved = after.state in (RequestState.EXECUTING, RequestState.SCHEDULED)
            decision = "approved" if approved else after.state.value
            self._requests.labels(decision, action).inc()
            if after.decided_at is not None:
                waited = (after.decided_at - after.created_at).total_seconds()
                self._approval_latency.labels(decision).observe(max(waited, 0.0))
        elif before.state is RequestState.EXECUTING and after.state is RequestState.DISALLOWED:
            self._requests.labels("disallowed", action).inc()
        outcome = after.outcome
        if after.state.was_executed and not before.state.was_executed and outcome is not None:
            interrupted = "true" if outcome.interrupted else "false"
            self._executions.labels(action, after.state.value, interrupted).inc()
            if after.decided_at is not None and outcome.finished_at is not None:
                took = (outcome.finished_at - after.decided_at).total_seconds()
                self._execution_latency.labels(action).observe(max(took, 0.0))

    def dis_call(self, operation: str, result: str, seconds: float) -> None:
        """One HTTP call to DIS: ``result`` is ``ok`` or the failure's ``DisErrorKind``."""
        self._dis_calls.labels(operation, result).inc()
        self._dis_latency.labels(operation).observe(seconds)

    def dis_retry(self, operation: str) -> None:
        """A DIS call is about to be tried again."""
        self._dis_retries.labels(operation).inc()

    def slack_api_error(self, method: str, error: str) -> None:
        """Slack answered a Web API call with an error (or the call failed on the way)."""
        self._slack_errors.labels(method, error).inc()

    def delivery(self, sink: str, result: str) -> None:
        """One attempt to deliver an audit event to ``sink``: ``ok`` or ``failed``."""
        self._deliveries.labels(sink, result).inc()

    # -- exposition ---------------------------------------------------------------------------

    async def refresh(self, read_backlog: Callable[[], Awaitable[Backlog]], now: datetime) -> None:
        """Read the store's gauges for the next exposition, giving up after a short while."""
        try:
            backlog = await asyncio.wait_for(read_backlog(), STORE_READ_TIMEOUT_S)
        except (StoreError, TimeoutError) as error:
            logger.warning("metrics: could not read the store: %s", error or "timed out")
            self._store.reading = None
        else:
            self._store.reading = StoreReading(backlog, now)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


# The families a process adds up sample by sample when another process's metrics join its own.
SUMMED_TYPES = frozenset({"counter", "histogram", "summary"})
_SUFFIX_ORDER = {"_bucket": 0, "_total": 0, "_count": 1, "_sum": 2}


class _Families(Collector):
    """Already built metric families, for one exposition."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        """The families as they are."""
        yield from self._families


def _sample_order(family: Metric, sample: Sample) -> tuple[object, ...]:
    """Samples of one series together, buckets by bound, then the count and the sum."""
    labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k not in ("le", "quantile")))
    suffix = sample.name[len(family.name) :]
    bound = sample.labels.get("le") or sample.labels.get("quantile")
    return (labels, _SUFFIX_ORDER.get(suffix, 3), float(bound) if bound else 0.0)


def merge_exposition(own: bytes, *others: bytes) -> bytes:
    """Our metrics with other processes' counters and histograms added in.

    ``serve`` runs its jobs in a worker process (``bot.worker``), which counts what it does
    (commands answered, executions, DIS calls, deliveries) in a registry of its own. ``/metrics``
    shows one set of series, so the worker's counters and histogram samples are added to ours,
    label set by label set. Gauges are this process's alone: the store's are read here at scrape
    time, and the process gauges describe the process answering the scrape.
    """
    families = {family.name: family for family in text_string_to_metric_families(own.decode())}
    for text in others:
        for family in text_string_to_metric_families(text.decode()):
            if family.type not in SUMMED_TYPES:
                continue
            mine = families.setdefault(family.name, family)
            if mine is family:
                continue
            index = {
                (s.name, tuple(sorted(s.labels.items()))): i for i, s in enumerate(mine.samples)
            }
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key in index:
                    kept = mine.samples[index[key]]
                    mine.samples[index[key]] = kept._replace(value=kept.value + sample.value)
                else:
                    index[key] = len(mine.samples)
                    mine.samples.append(sample)
            mine.samples.sort(key=functools.partial(_sample_order, mine))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return generate_latest(registry)
