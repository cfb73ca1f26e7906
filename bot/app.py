"""Wire everything together: store, DIS client, Slack client, service, listeners.

``create_bot`` is the one place that knows every part; the entry point, the tests and the demo
all call it, so they run the same code path as production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import httpx
from slack_bolt.async_app import AsyncApp

from bot.audit_webhook import WebhookSink, webhook_client
from bot.clock import utc_now
from bot.dis.client import DisClient, build_http_client, retry_policy_from
from bot.errors import StoreError
from bot.inbox import Inbox, InboxReader, inbox_path
from bot.jobs import HeldJob, JobKind
from bot.lifecycle import NotifyMode, Policy
from bot.metrics import Metrics, merge_exposition, package_version
from bot.outbox import OutboxSink, Sink
from bot.runner import JobRunner
from bot.service import DumptaskService, Timing
from bot.settings import Settings
from bot.shipper import Shipper
from bot.slack.audit_channel import AuditChannel
from bot.slack.bolt import build_bolt_app
from bot.slack.client import slack_client
from bot.slack.directory import SlackDirectory
from bot.slack.listeners import Listeners
from bot.slack.notifier import SlackNotifier
from bot.store import Store
from bot.store.sql import open_store
from bot.worker import WorkerLink

logger = logging.getLogger(__name__)

# Jobs mostly wait: on a slow cloud each DIS call takes seconds. Fifty approvals in a storm must
# run side by side (with their deliveries), not in rounds.
JOB_CONCURRENCY = 128


def policy_from(settings: Settings) -> Policy:
    """The operator's policy, from the settings."""
    return Policy(
        allowed_channels=tuple(settings.dumptask_allowed_channels),
        requesters=tuple(settings.dumptask_requesters),
        approvers=tuple(settings.dumptask_approvers),
        allowed_streams=tuple(settings.dumptask_allowed_streams),
        approvals_required=settings.dumptask_approvals_required,
        allow_self_approval=settings.dumptask_allow_self_approval,
        ttl=timedelta(seconds=settings.dumptask_approval_ttl_seconds),
        notify=NotifyMode(settings.dumptask_notify_approvers),
        remind_after=remind_after(settings),
        escalate_to=tuple(settings.dumptask_escalate_to),
        allow_seconds=settings.dumptask_allow_seconds,
    )


def remind_after(settings: Settings) -> timedelta | None:
    """``DUMPTASK_REMIND_AFTER_SECONDS``: unset means half the TTL; 0 means no reminder."""
    seconds = settings.dumptask_remind_after_seconds
    if seconds is None:
        return timedelta(seconds=settings.dumptask_approval_ttl_seconds / 2)
    return timedelta(seconds=seconds) if seconds else None


def timing_from(settings: Settings) -> Timing:
    """How long execution may take, from the settings."""
    return Timing(
        verify_timeout=settings.dumptask_verify_timeout_seconds,
        verify_interval=settings.dumptask_verify_interval_seconds,
        dis_retry_total_seconds=settings.dis_retry_total_seconds,
    )


def audit_sink_names(settings: Settings) -> list[str]:
    """The audit sinks the operator configured: the audit channel, the signed webhook."""
    names = []
    if settings.dumptask_audit_channel is not None:
        names.append(Sink.CHANNEL.value)
    if settings.dumptask_audit_webhook_url is not None:
        names.append(Sink.WEBHOOK.value)
    return names


@dataclass
class Bot:
    """A wired bot: the Bolt app plus what must be started and closed with it."""

    app: AsyncApp
    listeners: Listeners
    service: DumptaskService
    store: Store
    runner: JobRunner
    dis_http: httpx.AsyncClient
    slack_session: aiohttp.ClientSession
    sweep_interval: float
    shutdown_grace: float
    metrics: Metrics = field(default_factory=Metrics)
    shipper: Shipper | None = None
    audit_http: httpx.AsyncClient | None = None
    clock: Callable[[], datetime] = utc_now
    worker: WorkerLink | None = None  # the process running the jobs, when not this one
    inbox: Inbox | None = None  # where this process hands commands to its worker (SQLite)
    inbox_reader: InboxReader | None = None  # the worker's side of it
    draining: bool = False
    _sweeper: asyncio.Task[None] | None = field(default=None, init=False)

    def start_background(self) -> None:
        """Run due jobs and expire overdue requests, here or in the worker process."""
        if self.worker is not None:
            self.worker.start()
            return
        if self.inbox_reader is not None:
            self.inbox_reader.start()
        self.runner.start()
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="expiry-sweeper")

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.service.expire_due()
            except StoreError as error:
                logger.warning("could not expire overdue requests: %s", error)
            except Exception:
                logger.exception("background sweep failed; will try again")
            await asyncio.sleep(self.sweep_interval)

    def wake_jobs(self) -> None:
        """New work was handed over: look for it now (the worker's side of ``serve``'s wake)."""
        if self.inbox_reader is not None:
            self.inbox_reader.wake()
        self.runner.wake()

    def begin_draining(self) -> None:
        """Stop taking new work (HTTP answers 503) while in-flight executions finish."""
        if not self.draining:
            logger.info("shutting down: taking no new work, finishing what is in flight")
        self.draining = True

    async def drain(self) -> None:
        """Stop taking work; finish in-flight jobs within the grace period, release the rest."""
        self.begin_draining()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self.shipper is not None:
            self.shipper.stop()
        if self.inbox_reader is not None:
            await self.inbox_reader.stop()
        if self.worker is not None:
            # Both drain at once: the worker its jobs, this process the clicks being recorded
            # (the jobs those store wait for the next worker, or another replica's).
            stopping = asyncio.create_task(self.worker.stop(self.shutdown_grace))
            if not await self.listeners.wait_idle(self.shutdown_grace):
                logger.warning("requests still being handled at shutdown may not be answered")
            await stopping
            return
        started = time.monotonic()
        if not await self.listeners.wait_idle(self.shutdown_grace):
            logger.warning("requests still being handled at shutdown may not be answered")
        await self.runner.drain(max(0.0, self.shutdown_grace - (time.monotonic() - started)))

    async def aclose(self) -> None:
        """Drain (if not done yet), then close the HTTP clients and the store."""
        await self.drain()
        await self.dis_http.aclose()
        await self.slack_session.close()
        if self.inbox is not None:
            self.inbox.close()
        if self.audit_http is not None:
            await self.audit_http.aclose()
        await self.store.close()

    async def scrape(self) -> bytes:
        """The metrics in Prometheus' text format, the store's gauges read just now."""
        await self.metrics.refresh(self.store.backlog, self.clock())
        own = self.metrics.exposition()
        theirs = None if self.worker is None else await self.worker.metrics()
        return own if theirs is None else merge_exposition(own, theirs)


async def create_bot(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    sweep_interval: float | None = None,
    poll_seconds: float | None = None,
    worker: WorkerLink | None = None,
    reads_inbox: bool = False,
) -> Bot:
    """Build the whole bot from ``settings``; nothing is read from the environment here.

    With a ``worker``, the jobs run in that process instead (``bot.worker``): this one only
    stores them and wakes it. ``reads_inbox`` is that worker's side: on SQLite it moves the
    commands ``serve`` handed over into the store (``bot.inbox``).
    """
    sink_names = audit_sink_names(settings)
    metrics = Metrics(sinks=sink_names)
    store = await open_store(settings.database_url, sinks=sink_names)
    dis_http = build_http_client(settings)
    dis = DisClient(
        dis_http,
        settings.dis_project_id,
        retry_policy_from(settings),
        auth_cooldown_seconds=settings.dis_auth_cooldown_seconds,
        observer=metrics,
    )
    # One pooled session for every Web API call, made on the loop that will use it.
    slack_session = aiohttp.ClientSession()
    client = slack_client(settings, on_error=metrics.slack_api_error, session=slack_session)
    app = build_bolt_app(settings, client)
    policy = policy_from(settings)
    notifier = SlackNotifier(client, policy, store.get)
    sinks: dict[str, OutboxSink] = {}
    if settings.dumptask_audit_channel is not None:
        sinks[Sink.CHANNEL] = AuditChannel(client, settings.dumptask_audit_channel, store.get)
    audit_http = None
    if settings.dumptask_audit_webhook_secret is not None:
        secret = settings.dumptask_audit_webhook_secret.get_secret_value()
        audit_http = webhook_client(secret, f"dumptask-bot/{package_version()}")
        assert settings.dumptask_audit_webhook_url is not None
        sinks[Sink.WEBHOOK] = WebhookSink(audit_http, settings.dumptask_audit_webhook_url)
    shipper = Shipper(store, sinks, observe=metrics.delivery)
    try:
        await shipper.ensure_jobs(clock())
    except BaseException:
        await slack_session.close()  # nobody else will: the bot is not built
        raise
    lease = settings.dumptask_lease_seconds

    async def run_job(held: HeldJob) -> datetime | None:
        # The runner runs the service's jobs and the service wakes the runner: this reads
        # ``service`` when a job runs, after both exist.
        if held.job.kind is JobKind.SHIP:
            return await shipper.run(held)
        if held.job.kind is JobKind.ASK:
            await listeners.run_ask(held)
            return None
        if held.job.kind is JobKind.CLICK:
            await listeners.run_click(held)
            return None
        await service.run_job(held)
        return None

    path = inbox_path(settings.database_url)
    inbox = Inbox(path) if path is not None and worker is not None else None
    poll = poll_seconds or min(1.0, lease / 5)  # how often the store is asked for due work
    runner = JobRunner(
        store,
        run_job,
        clock=clock,
        lease_seconds=lease,
        renew_seconds=lease / 3,
        poll_seconds=poll,
        concurrency=JOB_CONCURRENCY,
    )
    service = DumptaskService(
        store=store,
        dis=dis,
        directory=SlackDirectory(client),
        notifier=notifier,
        policy=policy,
        timing=timing_from(settings),
        clock=clock,
        wake=runner.wake if worker is None else worker.wake,
        observe=metrics.request_changed,
        hand_off=None if inbox is None else inbox.append,
    )
    listeners = Listeners(service, notifier, client, metrics.command)
    reader = None
    if path is not None and reads_inbox:
        reader = InboxReader(
            Inbox(path),
            store,
            wake_runner=runner.wake,
            clock=clock,
            poll_seconds=poll,
        )
    listeners.register(app)
    interval = sweep_interval or min(30.0, settings.dumptask_approval_ttl_seconds / 10)
    return Bot(
        app=app,
        listeners=listeners,
        service=service,
        store=store,
        runner=runner,
        dis_http=dis_http,
        slack_session=slack_session,
        sweep_interval=interval,
        shutdown_grace=settings.shutdown_grace_seconds,
        metrics=metrics,
        shipper=shipper,
        audit_http=audit_http,
        clock=clock,
        worker=worker,
        inbox=inbox,
        inbox_reader=reader,
    )
