"""The append-only event journal.

Revision ID: 0001_events
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_events"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("command_id", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.Integer(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_stream_tag_seq", "events", ["stream", "tag", "seq"])
    op.create_index(
        "ux_events_actor_command_id",
        "events",
        ["actor", "command_id"],
        unique=True,
        sqlite_where=sa.text("command_id IS NOT NULL"),
    )
    # Append-only, enforced by the database itself: no row is ever changed or removed.
    op.execute(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
        " BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END"
    )
    op.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
        " BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS events_no_delete")
    op.execute("DROP TRIGGER IF EXISTS events_no_update")
    op.drop_index("ux_events_actor_command_id", table_name="events")
    op.drop_index("ix_events_stream_tag_seq", table_name="events")
    op.drop_table("events")
