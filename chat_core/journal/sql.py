"""The journal's SQL: its statements, and the rows an append writes (run by journal.sqlite).

Text rather than SQLAlchemy expressions on the hot paths: the driver (aiosqlite) prepares each
statement once and caches it, and a query builds no expression tree per call.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.journal.tables import INSERT_SQL, events

COLUMNS = (
    events.c.seq,
    events.c.tag,
    events.c.version,
    events.c.payload,
    events.c.actor,
    events.c.command_id,
    events.c.recorded_at,
)
HEAD_SQL = "SELECT coalesce(max(seq), 0) FROM events"
# Idempotent retries: the keys arrive as one JSON array of [actor, command_id] pairs, so the
# statement is the same whatever the batch (prepared once, cached by the driver). The
# `command_id IS NOT NULL` lets the planner use the partial unique index on
# (actor, command_id): one index probe per key (EXPLAIN QUERY PLAN: "SEARCH events USING
# INDEX ux_events_actor_command_id (actor=? AND command_id=?)"), never a table scan.
FIND_SQL = (
    "SELECT seq, tag, version, payload, actor, command_id, recorded_at FROM events"
    " WHERE (actor, command_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))"
    " AND command_id IS NOT NULL"
)
_READ = (
    "SELECT seq, tag, version, payload, actor, command_id, recorded_at FROM events"
    " WHERE seq > ? AND seq <= ?{only} ORDER BY seq"
)
READ_SQL = _READ.format(only="")
# Every event, but messages only of the rooms in the JSON array bound last (a message's stream
# is its room): SQLite skips the others, undecoded.
READ_ROOMS_SQL = _READ.format(
    only=" AND (tag <> 'message_sent' OR stream IN (SELECT value FROM json_each(?)))"
)


@functools.lru_cache(maxsize=16)
def read_tags_sql(tags: tuple[str, ...]) -> str:
    """READ_SQL for the events of these tags only: SQLite skips the others, undecoded."""
    if not all(tag.isidentifier() for tag in tags):
        raise ValueError(f"not event tags: {tags!r}")
    return _READ.format(only=" AND tag IN (" + ", ".join(f"'{tag}'" for tag in tags) + ")")


# A replay page is built by SQLite as one JSON array, so that a page is one value to fetch
# and one msgspec call to decode instead of 7 Python objects per row: SQLite builds it in the
# driver's thread without the GIL, in parallel with the fold of the previous page. A message
# row is `["m", seq, recorded_at, version, payload]` (folding it needs neither actor nor
# command id), any other `["e", seq, tag, version, recorded_at, actor, command_id, payload]`
# (see codec.PackedMessage and PackedEvent). A payload whose version is not the current one
# of its tag goes as a JSON string, decoded one by one with upcasting. Columns go through %s,
# so a value of an unexpected type breaks the page's decode (replay then reads that page
# row by row, which names the row) instead of being coerced.
_PACKED_ROW = (
    "iif(tag = 'message_sent',"
    " printf('[\"m\",%s,%s,%s,%s]', seq, recorded_at, version,"
    " iif(version = {message_version}, payload, json_quote(payload))),"
    " printf('[\"e\",%s,%s,%s,%s,%s,%s,%s]', seq, json_quote(tag), version, recorded_at,"
    " json_quote(actor), json_quote(command_id),"
    " iif(version = {current}, payload, json_quote(payload))))"
)
# group_concat follows the subquery's order; SQLite 3.44 can also say so explicitly.
_ORDERED = " ORDER BY seq" if sqlite3.sqlite_version_info >= (3, 44) else ""
_PACKED_SQL = (
    "SELECT count(*), max(seq), CAST('[' || group_concat({row}, ','{ordered}) || ']' AS BLOB)"
    " FROM (SELECT seq, tag, version, payload, actor, command_id, recorded_at FROM events"
    " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT {limit})"
)


# One multi-row INSERT per append (see Journal._write), within SQLite's limit on bound
# variables (32766 since 3.32, 999 before); larger batches take an explicit transaction.
_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
MAX_ROWS_PER_INSERT = _MAX_VARIABLES // 8  # columns per row


@functools.lru_cache(maxsize=256)
def insert_sql(rows: int) -> str:
    """INSERT_SQL with `rows` rows of values: the driver caches each as a prepared statement."""
    return INSERT_SQL + ", (?, ?, ?, ?, ?, ?, ?, ?)" * (rows - 1)


def packed_sql(page_size: int) -> str:
    # The current version of each tag, read at call time (tests may add versions).
    current = " ".join(f"WHEN '{tag}' THEN {v}" for tag, v in codec.VERSIONS.items())
    row = _PACKED_ROW.format(
        message_version=int(codec.VERSIONS["message_sent"]), current=f"CASE tag {current} END"
    )
    return _PACKED_SQL.format(row=row, ordered=_ORDERED, limit=int(page_size))


def row_values(records: Sequence[e.Recorded]) -> list[Any]:
    """The rows of `records` (INSERT_SQL's columns) as one flat list of values: the multi-row
    INSERT's parameters. Locals bound once: this runs for every event the server records."""
    values: list[Any] = []
    extend = values.extend
    tags, versions, encode, to_micros = _TAGS, _VERSIONS, _encode, _to_micros
    for record in records:
        event = record.event
        tag = tags[event.__class__]
        room_id = getattr(event, "room_id", None)
        extend(
            (
                record.seq,
                room_id if isinstance(room_id, str) else "system",
                tag,
                versions[tag],
                encode(event).decode(),
                record.actor,
                record.command_id,
                to_micros(record.at),
            )
        )
    return values


_TAGS = codec.TAGS
_VERSIONS = codec.VERSIONS
_encode = codec.encode_event
_to_micros = codec.to_micros
