"""The journal's table definitions (SQLAlchemy Core); created only by alembic migrations."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, Table, Text, text

metadata = MetaData()
# INTEGER on SQLite (64-bit there; the rowid), BIGINT on PostgreSQL.
Int64 = Integer().with_variant(BigInteger(), "postgresql")

events = Table(
    "events",
    metadata,
    # The global position: INTEGER PRIMARY KEY AUTOINCREMENT on SQLite, so a seq is never
    # reused; a BIGINT with no sequence on PostgreSQL. The append writes it explicitly, so a
    # second writer collides instead of interleaving.
    Column("seq", Int64, primary_key=True, autoincrement=True),
    Column("stream", Text, nullable=False),  # room id, or "system"
    Column("tag", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("payload", Text, nullable=False),  # the event as JSON
    Column("actor", Text, nullable=False),
    # The command's id (send_message: the client_msg_id), on the first event of the command.
    Column("command_id", Text, nullable=True),
    Column("recorded_at", Int64, nullable=False),  # microseconds since the epoch, UTC
    # History pages: "messages of room R before seq S, newest first".
    Index("ix_events_stream_tag_seq", "stream", "tag", "seq"),
    # Idempotent retries: one event per (actor, command id) where the client sent an id.
    Index(
        "ux_events_actor_command_id",
        "actor",
        "command_id",
        unique=True,
        sqlite_where=text("command_id IS NOT NULL"),
        postgresql_where=text("command_id IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
)

INSERT_SQL = (
    "INSERT INTO events (seq, stream, tag, version, payload, actor, command_id, recorded_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

# Secrets the nodes of a PostgreSQL journal share (migrations/versions/0002_secrets.py).
secrets = Table(
    "secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
)
