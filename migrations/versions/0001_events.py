"""The append-only event journal.

Revision ID: 0001_events
Revises:
Create Date: 2026-11-24

One revision, two dialects. On SQLite it does exactly what it always did. PostgreSQL support
came later: this revision could never have run there (SQLite's trigger syntax), so no
PostgreSQL database was ever at it, and its PostgreSQL branch is written here rather than as
a second revision that would first have to undo the first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_events"
down_revision = None
branch_labels = None
depends_on = None

_WHERE = "command_id IS NOT NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
        return
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
        sqlite_where=sa.text(_WHERE),
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


def _upgrade_postgresql() -> None:
    op.create_table(
        "events",
        # 64-bit, and no sequence: the journal writes each seq itself (expected head + 1...),
        # so a writer with a stale head collides on the primary key instead of interleaving.
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("command_id", sa.Text(), nullable=True),
        # Microseconds since the epoch: past 32 bits.
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_events_stream_tag_seq", "events", ["stream", "tag", "seq"])
    op.create_index(
        "ux_events_actor_command_id",
        "events",
        ["actor", "command_id"],
        unique=True,
        postgresql_where=sa.text(_WHERE),
    )
    # Append-only, enforced by the database itself: row triggers refuse UPDATE and DELETE, a
    # statement trigger TRUNCATE (which fires no row trigger).
    op.execute(
        "CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'the journal is append-only'; END $$"
    )
    for name, when, each in (
        ("events_no_update", "UPDATE", "ROW"),
        ("events_no_delete", "DELETE", "ROW"),
        ("events_no_truncate", "TRUNCATE", "STATEMENT"),
    ):
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {when} ON events"
            f" FOR EACH {each} EXECUTE FUNCTION events_append_only()"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in ("events_no_truncate", "events_no_delete", "events_no_update"):
        if postgresql:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON events")
        elif name != "events_no_truncate":
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS events_append_only()")
    op.drop_index("ux_events_actor_command_id", table_name="events")
    op.drop_index("ix_events_stream_tag_seq", table_name="events")
    op.drop_table("events")
