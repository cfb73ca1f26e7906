"""The audit outbox: one row per audit event per sink (webhook, audit channel) until delivered.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``outbox``; events recorded before it existed are not delivered retroactively."""
    op.create_table(
        "outbox",
        # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("sink", sa.Text, nullable=False),
        sa.Column("audit_id", sa.BigInteger, nullable=False),
        sa.Column("request_id", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_outbox_sink_delivered_at_id", "outbox", ["sink", "delivered_at", "id"])
