"""The schema as it was before migrations: requests and the audit trail.

Databases created by the bot before it used Alembic already have these tables (made with
``CREATE TABLE IF NOT EXISTS``); this revision then only records that they are at the baseline.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``requests`` and ``audit_events`` unless a pre-migration bot made them."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "requests" not in existing:
        op.create_table(
            "requests",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("state", sa.Text, nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("requester", sa.Text, nullable=False),
            sa.Column("channel", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("data", sa.Text, nullable=False),
        )
        op.create_index("ix_requests_state_expires_at", "requests", ["state", "expires_at"])
        op.create_index("ix_requests_requester_created_at", "requests", ["requester", "created_at"])
    if "audit_events" not in existing:
        op.create_table(
            "audit_events",
            # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
            sa.Column("request_id", sa.Text, nullable=True),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("actor", sa.Text, nullable=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("detail", sa.Text, nullable=False),
        )
        op.create_index("ix_audit_events_request_id", "audit_events", ["request_id"])
