"""The PostgreSQL journal's SQL (run by journal.postgres through asyncpg, which prepares each
statement once per connection and caches it).

Every statement binds arrays rather than a variable number of values, so each is one prepared
statement whatever the size of a batch or of a set of keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.journal.sql import row_values

HEAD_SQL = "SELECT coalesce(max(seq), 0) FROM events"
# Nodes take turns appending (port.WriterLease): a session-level advisory lock of our own key
# (migrations/env.py's is another), held on the writer connection.
WRITER_LOCK = 0x63686174_6A726E6C  # "chatjrnl"
LOCK_WRITER_SQL = "SELECT pg_advisory_lock($1)"
UNLOCK_WRITER_SQL = "SELECT pg_advisory_unlock($1)"
KEEP_SECRET_SQL = "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"
SECRET_SQL = "SELECT value FROM secrets WHERE name = $1"
SPAN_SQL = (
    "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM events WHERE seq <= $1"
)

# One statement, so its own transaction (asyncpg runs it in autocommit): all rows or none.
# The seqs are the caller's (expected head + 1, ...): the batch is written only where the
# committed head is the expected one (else 0 rows: a conflict), and a concurrent writer of the
# same seqs collides on the primary key (it waits for the first to commit, then fails). So seq
# N + 1 can only commit once seq N is committed: a reader tailing by position sees no gap.
#
# The same statement tells the other nodes (LISTEN on JOURNAL_CHANNEL) the new head; PostgreSQL
# delivers it at the commit, never for rows that did not commit. It returns how many rows it
# wrote, or no row at all for a conflict.
JOURNAL_CHANNEL = "chat_journal"
APPEND_SQL = (
    "WITH written AS ("
    "INSERT INTO events (seq, stream, tag, version, payload, actor, command_id, recorded_at)"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[],"
    " $6::text[], $7::text[], $8::bigint[])"
    " WHERE (SELECT coalesce(max(seq), 0) FROM events) = $9 RETURNING seq)"
    f" SELECT count(*), pg_notify('{JOURNAL_CHANNEL}', max(seq)::text) FROM written"
    " HAVING count(*) > 0"
)

_COLUMNS = "seq, tag, version, payload, actor, command_id, recorded_at"
_READ = f"SELECT {_COLUMNS} FROM events WHERE seq > $1 AND seq <= $2{{only}} ORDER BY seq LIMIT $3"
READ_SQL = _READ.format(only="")
READ_TAGS_SQL = _READ.format(only=" AND tag = ANY($4::text[])")
# Every event, but messages only of the rooms bound last (a message's stream is its room).
READ_ROOMS_SQL = _READ.format(only=" AND (tag <> 'message_sent' OR stream = ANY($4::text[]))")

# Idempotent retries: the keys as two arrays; `command_id IS NOT NULL` lets the planner use the
# partial unique index on (actor, command_id).
FIND_SQL = (
    f"SELECT {_COLUMNS} FROM events WHERE (actor, command_id) IN"
    " (SELECT * FROM unnest($1::text[], $2::text[])) AND command_id IS NOT NULL"
)

# A room's messages, newest first, over the (stream, tag, seq) index.
HISTORY_SQL = (
    f"SELECT {_COLUMNS} FROM events WHERE stream = $1 AND tag = 'message_sent'"
    " AND seq > $2 AND seq < $3 ORDER BY seq DESC LIMIT $4"
)

FIRST_MISSING_SQL = (
    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM events WHERE seq = 1) THEN 1 ELSE"
    " (SELECT a.seq + 1 FROM events AS a WHERE a.seq < (SELECT max(seq) FROM events)"
    " AND NOT EXISTS (SELECT 1 FROM events AS b WHERE b.seq = a.seq + 1)"
    " ORDER BY a.seq LIMIT 1) END"
)

# A replay page, built by PostgreSQL as one JSON array (the rows of journal.sql's
# `_PACKED_ROW`): one value to fetch and one msgspec call to decode, built in the server's
# process while this one folds the previous page. Text concatenation, not json_build_array:
# the payload is already JSON, and is spliced in unparsed. A payload of an older version than
# its tag's current one goes as a JSON string (upcast one by one on decode).
_PACKED_ROW = (
    "CASE WHEN tag = 'message_sent' THEN"
    " '[\"m\",' || seq || ',' || recorded_at || ',' || version || ','"
    " || CASE WHEN version = {message_version} THEN payload ELSE to_json(payload)::text END"
    " || ']'"
    " ELSE '[\"e\",' || seq || ',' || to_json(tag)::text || ',' || version || ','"
    " || recorded_at || ',' || to_json(actor)::text || ','"
    " || coalesce(to_json(command_id)::text, 'null') || ','"
    " || CASE WHEN version = {current} THEN payload ELSE to_json(payload)::text END || ']'"
    " END"
)
_PACKED_SQL = (
    "SELECT count(*), coalesce(max(seq), 0),"
    " convert_to('[' || string_agg(packed, ',' ORDER BY seq) || ']', 'UTF8')"
    " FROM (SELECT seq, {row} AS packed FROM events WHERE seq > $1 AND seq <= $2"
    " ORDER BY seq LIMIT $3) AS page"
)


def packed_sql() -> str:
    """The packed page statement; the current version of each tag is read at call time (tests
    may add versions)."""
    current = " ".join(f"WHEN '{tag}' THEN {int(v)}" for tag, v in codec.VERSIONS.items())
    row = _PACKED_ROW.format(
        message_version=int(codec.VERSIONS["message_sent"]), current=f"CASE tag {current} END"
    )
    return _PACKED_SQL.format(row=row)


def append_args(records: Sequence[e.Recorded]) -> list[list[Any]]:
    """APPEND_SQL's eight column arrays for `records` (the same values as SQLite's rows)."""
    flat = row_values(records)
    return [flat[column::8] for column in range(8)]
