"""One operation per task at a time: which open or executing request holds each task.

Requests already open or executing when this is applied claim their tasks here, in the order
they were made; a later one that overlaps an earlier one (possible before this revision) keeps
running without a claim for the tasks it shares.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``task_claims`` and fill it from the open and executing requests."""
    claims = op.create_table(
        "task_claims",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("task_id", sa.Text, primary_key=True),
        sa.Column("request_id", sa.Text, nullable=False),
    )
    op.create_index("ix_task_claims_request_id", "task_claims", ["request_id"])
    requests = sa.table(
        "requests",
        sa.column("id", sa.Text),
        sa.column("state", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("data", sa.Text),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(requests.c.id, requests.c.data)
        .where(requests.c.state.in_(["pending", "executing"]))
        .order_by(requests.c.created_at, requests.c.id)
    ).all()
    taken: set[tuple[str, str]] = set()
    for request_id, data in rows:
        document = json.loads(data)
        for task in document.get("tasks", []):
            key = (document["stream"], task["task_id"])
            if key not in taken:
                taken.add(key)
                bind.execute(
                    sa.insert(claims).values(stream=key[0], task_id=key[1], request_id=request_id)
                )
