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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypedDict

from bot.errors import DumptaskError


class JobKind(enum.StrEnum):
    """What a job does."""

    ASK = "ask"  # answer a typed start, stop or list: ask DIS, open the request, post the card
    CLICK = "click"  # record a press of Approve, Cancel or Resume now, and show what it changed
    EXECUTE = "execute"  # make an approved request's batch call, read back, record the outcome
    DELIVER = "deliver"  # show a decided request in Slack: card, thread reply, fallbacks
    NOTIFY = "notify"  # send each eligible approver a direct message with the card
    REMIND = "remind"  # remind the approvers once, and escalate, if nobody decided
    RUN = "run"  # start a scheduled request at its time (--at, or the end of a timed pause)
    RETENTION = "retention"  # warn that paused tasks are about to lose data to the retention
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


def _job_id(kind: str, request_id: str, round_: int) -> str:
    """Job ids are natural keys: one job of a kind per request and approval round."""
    return f"{kind}:{request_id}" + (f":{round_}" if round_ else "")


def _request_job(kind: JobKind, name: str, request_id: str, due_at: datetime, round_: int) -> Job:
    return Job(_job_id(name, request_id, round_), kind, due_at, request_id=request_id)


def execute_job(request_id: str, due_at: datetime, round_: int = 0) -> Job:
    """The job that executes an approved request, once per approval round."""
    return _request_job(JobKind.EXECUTE, "execute", request_id, due_at, round_)


def deliver_job(request_id: str, due_at: datetime, round_: int = 0) -> Job:
    """The job that shows a decided request in Slack, once per approval round."""
    return _request_job(JobKind.DELIVER, "deliver", request_id, due_at, round_)


def reopened_job(request_id: str, due_at: datetime, round_: int) -> Job:
    """The job that shows a request sent back for a fresh approval (a task changed)."""
    return _request_job(JobKind.DELIVER, "reopened", request_id, due_at, round_)


def notify_job(request_id: str, due_at: datetime) -> Job:
    """The job that sends the approvers their direct messages, once per request."""
    return _request_job(JobKind.NOTIFY, "notify", request_id, due_at, 0)


def remind_job(request_id: str, due_at: datetime, round_: int = 0) -> Job:
    """The job that reminds the approvers, once per approval round, if nobody decided."""
    job = _request_job(JobKind.REMIND, "remind", request_id, due_at, round_)
    return replace(job, payload={"round": round_})


def run_job(request_id: str, due_at: datetime, round_: int = 0) -> Job:
    """The job that starts a scheduled request at its time, once per approval round."""
    job = _request_job(JobKind.RUN, "run", request_id, due_at, round_)
    return replace(job, payload={"round": round_})


def retention_job(request_id: str, due_at: datetime, share: int) -> Job:
    """The job that warns, at ``share`` percent of the safe window, that paused tasks wait."""
    return Job(
        f"retention:{request_id}:{share}",
        JobKind.RETENTION,
        due_at,
        request_id=request_id,
        payload={"share": share},
    )


def ask_job(request_id: str, command: Mapping[str, str], due_at: datetime) -> Job:
    """The job that turns a typed command into a request and its card (or a ``list`` answer).

    The listener stores it before it acks, so a command Slack was told we received survives
    a crash; the id of the request it opens is chosen now, so a rerun finds the request an
    interrupted attempt already stored instead of opening a second one.
    """
    return Job(
        f"ask:{request_id}",
        JobKind.ASK,
        due_at,
        request_id=request_id,
        payload={"command": dict(command)},
    )


def click_job(click: Mapping[str, str], due_at: datetime) -> Job:
    """The job that records a button press, stored before the press is acked (like ``ask``)."""
    return Job(
        f"click:{secrets.token_hex(8)}",
        JobKind.CLICK,
        due_at,
        request_id=click.get("request_id") or None,
        payload={"click": dict(click)},
    )


def new_owner_id() -> str:
    """Who this process is, for leases and for operators reading the jobs table."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
