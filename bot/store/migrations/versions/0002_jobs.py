"""Jobs with leases; executions left running by a pre-lease bot become jobs, never re-sent.

A request that was executing under the old bot may or may not have had its batch call sent (the
old bot recorded nothing before the call), so it is marked as sending: the job that now finishes
it reads the tasks back and never sends the call again.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``jobs`` and give every executing request an execute job."""
    jobs = op.create_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text, nullable=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("owner", sa.Text, nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_jobs_state_due_at", "jobs", ["state", "due_at"])
    op.create_index("ix_jobs_request_id", "jobs", ["request_id"])
    _adopt_running_executions(jobs)


def _adopt_running_executions(jobs: sa.Table) -> None:
    requests = sa.table(
        "requests",
        sa.column("id", sa.Text),
        sa.column("state", sa.Text),
        sa.column("data", sa.Text),
    )
    bind = op.get_bind()
    now = datetime.now(UTC)
    rows = bind.execute(
        sa.select(requests.c.id, requests.c.data).where(requests.c.state == "executing")
    ).all()
    for request_id, data in rows:
        document = json.loads(data)
        document["phase"] = "sending"
        bind.execute(
            sa.update(requests).where(requests.c.id == request_id).values(data=json.dumps(document))
        )
        bind.execute(
            sa.insert(jobs).values(
                id=f"execute:{request_id}",
                kind="execute",
                request_id=request_id,
                state="queued",
                due_at=now,
                payload="{}",
                attempts=0,
                created_at=now,
            )
        )
