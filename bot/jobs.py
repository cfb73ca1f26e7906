"""Durable background work: what a job is, and the lease that makes one replica its owner.

Everything the bot does after answering Slack, and everything it must do later, is a job row in
the store: executing an approved request, delivering its outcome to the channel. A job is owned
through a **lease** (owner + expiry, renewed while the owner works): only a lapsed lease lets
another replica, or the restarted process, take the job over, so a slow but alive owner never
loses it and a dead one is replaced within one lease period.

Two clocks are involved on purpose: ``due_at`` is business time (the bot's clock, which tests
move by hand), while leases are liveness time (the real wall clock), so moving the business
clock never makes a live owner look dead.
"""

from __future__ import annotations

import enum
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict

from bot.errors import DumptaskError


class JobKind(enum.StrEnum):
    """What a job does."""

    EXECUTE = "execute"  # make an approved request's batch call, read back, record the outcome
    DELIVER = "deliver"  # show a finished request in Slack: card, thread reply, fallbacks
    SHIP = "ship"  # deliver the audit outbox to one sink, in order (one job per sink: bot.outbox)


class JobState(enum.StrEnum):
    """Where a job stands; a queued job may be leased by an owner working on it."""

    QUEUED = "queued"
    DONE = "done"
    DEAD = "dead"  # gave up after its attempts; logged and kept for operators


class LeaseLostError(DumptaskError):
    """The lease lapsed and another owner may hold the job: stop before doing anything more."""


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of background work, found again after any crash."""

    id: str
    kind: JobKind
    due_at: datetime
    request_id: str | None = None
    payload: Mapping[str, object] = field(default_factory=dict)
    state: JobState = JobState.QUEUED
    attempts: int = 0
    owner: str | None = None
    lease_expires_at: datetime | None = None
    last_error: str | None = None

    @property
    def taken_over(self) -> bool:
        """Whether an earlier attempt started this job and did not finish it."""
        return self.attempts > 1


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to work on one job, as long as the store says ``owner`` still holds it."""

    job_id: str
    owner: str


class LeaseTerms(TypedDict, total=False):
    """The lease arguments of ``Store.update``: change the request only while holding it."""

    lease: Lease
    lease_now: datetime
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class HeldJob:
    """A job as its owner holds it: the lease, and how to extend it with each change.

    Every change the owner makes to the job's request passes ``terms()`` to the store, which
    renews the lease in the same transaction and refuses the change if the lease was lost.
    """

    job: Job
    lease: Lease
    lease_seconds: float
    lease_clock: Callable[[], datetime]

    def terms(self) -> LeaseTerms:
        """Keyword arguments for ``Store.update``: the lease, now, and its new expiry."""
        now = self.lease_clock()
        return LeaseTerms(
            lease=self.lease,
            lease_now=now,
            lease_until=now + timedelta(seconds=self.lease_seconds),
        )


def execute_job(request_id: str, due_at: datetime) -> Job:
    """The job that executes an approved request; its id makes it unique per request."""
    return Job(
        id=f"execute:{request_id}", kind=JobKind.EXECUTE, due_at=due_at, request_id=request_id
    )


def deliver_job(request_id: str, due_at: datetime) -> Job:
    """The job that shows a finished request's outcome in Slack, once per request."""
    return Job(
        id=f"deliver:{request_id}", kind=JobKind.DELIVER, due_at=due_at, request_id=request_id
    )


def new_owner_id() -> str:
    """Who this process is, for leases and for operators reading the jobs table."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
