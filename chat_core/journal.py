"""The SQLite event journal: append batches, read pages, answer the server's queries.

SQLAlchemy Core on an async aiosqlite engine. One writer connection (transactions begin
IMMEDIATE, so the write lock is taken before the head is checked) and a small pool of readers
(WAL: readers never block the writer). The hot paths, append and the replay scan, go through
one prepared statement each: a whole batch is one `executemany` in one transaction.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from chat_core import codec
from chat_core import events as e
from chat_core.commands import MessageRef
from chat_core.errors import JournalConflict, JournalError, UnsupportedJournal
from chat_core.paths import sqlite_file
from chat_core.state import Message
from chat_core.tables import INSERT_SQL, events

Synchronous = Literal["FULL", "NORMAL"]

_COLUMNS = (
    events.c.seq,
    events.c.tag,
    events.c.version,
    events.c.payload,
    events.c.actor,
    events.c.command_id,
    events.c.recorded_at,
)
_READ_SQL = (
    "SELECT seq, tag, version, payload, actor, command_id, recorded_at FROM events"
    " WHERE seq > ? AND seq <= ? ORDER BY seq"
)


def _engine(url: str, synchronous: Synchronous, *, writer: bool, readonly: bool) -> AsyncEngine:
    connect_args: dict[str, Any] = {"timeout": 5.0}
    if readonly:
        path = sqlite_file(url)
        if path is not None:
            # mode=ro: the replay tool can never write, even by accident, and works while the
            # server runs.
            url = f"sqlite+aiosqlite:///file:{path.absolute()}?mode=ro&uri=true"
    if readonly:
        engine = create_async_engine(url, connect_args=connect_args, poolclass=NullPool)
    else:
        # One writer connection; a few readers (history pages, resume, retry look-ups).
        engine = create_async_engine(
            url, connect_args=connect_args, pool_size=1 if writer else 4, max_overflow=4
        )

    @sa_event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (the documented
        # recipe for pysqlite/aiosqlite), so BEGIN IMMEDIATE below really starts them.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not readonly:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @sa_event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def _row(record: e.Recorded) -> tuple[Any, ...]:
    event = record.event
    return (
        record.seq,
        e.stream_of(event),
        e.tag_of(event),
        codec.VERSIONS[e.tag_of(event)],
        codec.encode_event(event).decode(),
        record.actor,
        record.command_id,
        codec.to_micros(record.at),
    )


class Journal:
    """An open journal. Use `Journal.open(...)`; `close()` when done."""

    def __init__(
        self, url: str, writer: AsyncEngine | None, reader: AsyncEngine, lock_fd: int | None
    ) -> None:
        self.url = url
        self._writer = writer
        self._reader = reader
        self._lock_fd = lock_fd

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        synchronous: Synchronous = "FULL",
        readonly: bool = False,
        migrate: bool = False,
    ) -> Journal:
        """Open a journal, migrating it first if asked.

        A foreign, corrupt, newer or locked database is refused with `UnsupportedJournal`
        (a one-line message) before anything is written.
        """
        from chat_core.migrate import preflight, upgrade

        lock_fd = None if readonly else _lock(url)
        engines: list[AsyncEngine] = []
        try:
            if migrate:
                # Alembic runs its own event loop: give it a thread.
                await asyncio.to_thread(upgrade, url)
            else:
                await asyncio.to_thread(preflight, url)
            reader = _engine(url, synchronous, writer=False, readonly=readonly)
            engines.append(reader)
            writer = None if readonly else _engine(url, synchronous, writer=True, readonly=False)
            if writer is not None:
                engines.append(writer)
            journal = cls(url, writer, reader, lock_fd)
            await journal._check_schema()
        except BaseException:
            # Close the pooled connections of a refused file too, not only its lock.
            for engine in engines:
                await engine.dispose()
            _unlock(lock_fd)
            raise
        return journal

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.dispose()
        await self._reader.dispose()
        _unlock(self._lock_fd)
        self._lock_fd = None

    async def _check_schema(self) -> None:
        from chat_core.migrate import check_revision

        try:
            async with self._reader.connect() as conn:
                tables = await conn.run_sync(
                    lambda sync: {
                        row[0]
                        for row in sync.exec_driver_sql(
                            "SELECT name FROM sqlite_master WHERE type='table'"
                        )
                    }
                )
                revision = None
                if "alembic_version" in tables:
                    result = await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                    revision = result.scalar()
        except DBAPIError as exc:
            raise UnsupportedJournal(f"{self.url} cannot be read: {_cause(exc)}") from exc
        if "events" not in tables or revision is None:
            raise UnsupportedJournal(
                f"{self.url} is not a chat journal (no migrated events table);"
                " run `alembic upgrade head` on an empty file"
            )
        check_revision(revision, self.url)

    async def head(self) -> int:
        """The seq of the last event, 0 for an empty journal."""
        async with self._reader.connect() as conn:
            result = await conn.execute(select(func.coalesce(func.max(events.c.seq), 0)))
            return int(result.scalar_one())

    async def append(self, expected_head: int, records: Sequence[e.Recorded]) -> None:
        """Append `records` (seqs expected_head+1, ...) in one transaction, or raise.

        `JournalConflict` when another writer moved the head; `JournalError` for any other
        failure. Nothing is appended unless everything is.
        """
        if not records:
            return
        if self._writer is None:
            raise JournalError("the journal is open read-only")
        if records[0].seq != expected_head + 1:
            raise JournalConflict(f"batch starts at {records[0].seq}, head is {expected_head}")
        rows = [_row(record) for record in records]
        try:
            async with self._writer.begin() as conn:
                result = await conn.exec_driver_sql("SELECT coalesce(max(seq), 0) FROM events")
                head = int(result.scalar_one())
                if head != expected_head:
                    raise JournalConflict(
                        f"another writer moved the journal head to {head}, expected {expected_head}"
                    )
                await conn.exec_driver_sql(INSERT_SQL, rows)
        except IntegrityError as exc:
            raise JournalConflict(f"append conflicts with existing rows: {_cause(exc)}") from exc
        except DBAPIError as exc:
            raise JournalError(f"journal append failed: {_cause(exc)}") from exc

    async def read(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncIterator[list[e.Recorded]]:
        """Events with after < seq <= until, oldest first, a page at a time (never all at once)."""
        # aclosing: a row that fails to decode (or a caller that stops early) must still
        # return the reader connection held by the inner generator.
        async with aclosing(self.read_rows(after, until, page_size)) as pages:
            async for rows in pages:
                yield [codec.decode_row(*row) for row in rows]

    async def read_rows(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """Raw rows (seq, tag, version, payload, actor, command_id, recorded_at), paged."""
        upper = until if until is not None else 2**62
        async with self._reader.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            while True:
                # Keyset pages over the primary key: each page is one indexed range scan,
                # read through the driver directly (no per-row ORM or Core processing).
                cursor = await driver.execute(
                    _READ_SQL + f" LIMIT {int(page_size)}", (after, upper)
                )
                rows = list(await cursor.fetchall())
                await cursor.close()
                if not rows:
                    return
                yield rows
                after = rows[-1][0]

    async def history(
        self, room_id: str, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> tuple[list[Message], bool]:
        """A room's messages with after_seq < seq < before_seq, oldest first, and whether more
        exist (`after_seq`: the room's creation, so a re-created room shows none of the old one's).
        """
        query = (
            select(*_COLUMNS)
            .where(
                events.c.stream == room_id,
                events.c.tag == "message_sent",
                events.c.seq > after_seq,
            )
            .order_by(events.c.seq.desc())
            .limit(limit + 1)
        )
        if before_seq is not None:
            query = query.where(events.c.seq < before_seq)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        messages = [_message(codec.decode_row(*row)) for row in rows[:limit]]
        messages.reverse()
        return messages, len(rows) > limit

    async def find_messages(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], MessageRef]:
        """The messages already recorded for (actor, client_msg_id) pairs: idempotent retries."""
        wanted = list(set(keys))
        if not wanted:
            return {}
        found: dict[tuple[str, str], MessageRef] = {}
        async with self._reader.connect() as conn:
            for start in range(0, len(wanted), 400):
                chunk = wanted[start : start + 400]
                query = select(*_COLUMNS).where(
                    or_(
                        *(
                            and_(events.c.actor == actor, events.c.command_id == command_id)
                            for actor, command_id in chunk
                        )
                    )
                )
                for row in (await conn.execute(query)).all():
                    recorded = codec.decode_row(*row)
                    message = recorded.event
                    if isinstance(message, e.MessageSent) and recorded.command_id is not None:
                        found[(recorded.actor, recorded.command_id)] = MessageRef(
                            message_id=message.message_id,
                            room_id=message.room_id,
                            seq=recorded.seq,
                            timestamp=recorded.at,
                        )
        return found


def _message(recorded: e.Recorded) -> Message:
    event = recorded.event
    assert isinstance(event, e.MessageSent)
    return Message(
        seq=recorded.seq,
        message_id=event.message_id,
        room_id=event.room_id,
        username=event.username,
        text=event.text,
        timestamp=recorded.at,
        client_msg_id=event.client_msg_id,
    )


def _cause(exc: DBAPIError) -> str:
    return str(exc.orig) if exc.orig is not None else str(exc)


def _lock(url: str) -> int | None:
    """Hold an exclusive lock beside a SQLite journal: one server per journal file."""
    path = sqlite_file(url)
    if path is None:
        return None
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UnsupportedJournal(f"cannot open lock file {lock_path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise UnsupportedJournal(
            f"{path} is locked by another writer (another chat-web serve?)"
        ) from exc
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
