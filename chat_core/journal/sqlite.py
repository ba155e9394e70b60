"""The SQLite event journal: append batches, read pages, answer the server's queries.

SQLAlchemy Core on an async aiosqlite engine. One writer connection, checked out on the first
append and held until close, and a small pool of readers (WAL: readers never block the
writer). The hot paths go through the driver (aiosqlite) connection with one prepared
statement each, to keep round trips to the driver's thread few: an append is one multi-row
INSERT that is its own transaction, a replay page one query that SQLite packs into one JSON
array (the next page is read while the caller folds this one), the idempotency look-up of a
batch one query on a held reader connection. The statements are in chat_core.journal.sql."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import (
    AsyncGenerator,
    Collection,
    Iterable,
    Sequence,
)
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.errors import JournalConflict, JournalError, UnsupportedJournal
from chat_core.journal.pages import by_command, hold, prefetching
from chat_core.journal.port import (
    HistoryPage,
    JournalPort,
    NoLease,
    PackedPage,
    StoredRow,
    WriterLease,
)
from chat_core.journal.sql import (
    COLUMNS,
    FIND_SQL,
    HEAD_SQL,
    MAX_ROWS_PER_INSERT,
    READ_ROOMS_SQL,
    READ_SQL,
    insert_sql,
    packed_sql,
    read_tags_sql,
    row_values,
)
from chat_core.journal.tables import INSERT_SQL, events
from chat_core.settings.paths import sqlite_file

Synchronous = Literal["FULL", "NORMAL"]


def _engine(url: str, synchronous: Synchronous, *, writer: bool, readonly: bool) -> AsyncEngine:
    connect_args: dict[str, Any] = {"timeout": 5.0}
    # Statement parameters are message text and password hashes: never in a log line or an
    # exception's text.
    options: dict[str, Any] = {"connect_args": connect_args, "hide_parameters": True}
    if readonly:
        path = sqlite_file(url)
        if path is not None:
            # mode=ro: the replay tool can never write, even by accident, and works while the
            # server runs.
            url = f"sqlite+aiosqlite:///file:{path.absolute()}?mode=ro&uri=true"
        engine = create_async_engine(url, poolclass=NullPool, **options)
    else:
        # One writer connection; a few readers (history pages, resume, retry look-ups).
        engine = create_async_engine(url, pool_size=1 if writer else 4, max_overflow=4, **options)

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


class Journal:
    """An open SQLite journal (a `JournalPort`). Use `Journal.open(...)`; `close()` when done."""

    def __init__(
        self, url: str, writer: AsyncEngine | None, reader: AsyncEngine, lock_fd: int | None
    ) -> None:
        self.url = url
        self.shared = False
        self._writer = writer
        self._reader = reader
        self._lock_fd = lock_fd
        # The writer connection, held from the first append until close, and the head as this
        # journal last committed it (None: unknown, read under the write lock).
        self._writer_conn: AsyncConnection | None = None
        self._writer_driver_conn: Any = None
        self._head: int | None = None
        self._write_lock = asyncio.Lock()
        # A reader connection held for the processor's idempotency look-ups (one per batch):
        # no pool checkout and reset per batch. Autocommit: each query sees the last commit.
        self._lookup_conn: AsyncConnection | None = None
        self._lookup_driver: Any = None
        self._lookup_lock = asyncio.Lock()

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
        from chat_core.journal.migrate import preflight, upgrade

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
        if self._writer_conn is not None:
            self._writer_driver_conn.isolation_level = None
            await self._writer_conn.close()
            self._writer_conn = None
            self._writer_driver_conn = None
        if self._lookup_conn is not None:
            await self._lookup_conn.close()
            self._lookup_conn = None
            self._lookup_driver = None
        if self._writer is not None:
            await self._writer.dispose()
        await self._reader.dispose()
        _unlock(self._lock_fd)
        self._lock_fd = None

    async def _check_schema(self) -> None:
        from chat_core.journal.migrate import check_revision

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

    def writer_lease(self) -> WriterLease:
        return NoLease()  # one process writes a SQLite journal

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
        async with self._write_lock:
            if self._head is not None and self._head != expected_head:
                raise JournalConflict(
                    f"the journal head is {self._head}, the batch expected {expected_head}"
                )
            driver = await self._writer_driver()
            try:
                await self._write(driver, expected_head, records)
            except sqlite3.IntegrityError as exc:
                raise JournalConflict(f"append conflicts with existing rows: {exc}") from exc
            except sqlite3.Error as exc:
                raise JournalError(f"journal append failed: {exc}") from exc
            self._head = records[-1].seq

    async def _write(self, driver: Any, expected_head: int, records: Sequence[e.Recorded]) -> None:
        """One transaction on the held writer connection (its driver level: aiosqlite).

        When the head is known, the whole batch is one multi-row INSERT run in autocommit
        mode: SQLite makes that single statement its own transaction (all rows or none,
        committed and synced before it returns), so an append is one round trip to the
        driver's thread, and the thread holds the GIL only to bind the values, not between
        rows (an `executemany` takes it back after every row, waiting on whatever the event
        loop is doing meanwhile). The head is then the last seq this journal committed:
        another writer (this code, elsewhere) can only have written the dense seqs after it,
        so the batch's first row would collide with its rows on the primary key (a conflict).
        """
        try:
            if self._head is not None and len(records) <= MAX_ROWS_PER_INSERT:
                await driver.execute(insert_sql(len(records)), row_values(records))
                return
            # First append, after a failure, or a batch too large for one statement: an
            # explicit transaction that reads the head under the write lock.
            await driver.execute("BEGIN IMMEDIATE")
            head_rows = await driver.execute_fetchall(HEAD_SQL)
            self._head = int(next(iter(head_rows))[0])
            if self._head != expected_head:
                raise JournalConflict(
                    f"another writer moved the journal head to {self._head},"
                    f" expected {expected_head}"
                )
            values = row_values(records)
            width = len(values) // len(records)
            rows = [values[i : i + width] for i in range(0, len(values), width)]
            await driver.executemany(INSERT_SQL, rows)
            await driver.execute("COMMIT")
        except BaseException:
            self._head = None
            if driver.in_transaction:
                with contextlib.suppress(Exception):
                    await driver.execute("ROLLBACK")
            raise

    async def _writer_driver(self) -> Any:
        """The writer's driver (aiosqlite) connection, checked out once and held until close."""
        if self._writer_driver_conn is None:
            assert self._writer is not None
            conn, driver = await hold(self._writer)
            # Autocommit at the driver level: `_write` says where transactions begin and end.
            driver.isolation_level = None
            self._writer_conn = conn
            self._writer_driver_conn = driver
        return self._writer_driver_conn

    async def read(
        self,
        after: int = 0,
        until: int | None = None,
        page_size: int = 10_000,
        *,
        tags: Collection[str] | None = None,
        message_rooms: Collection[str] | None = None,
    ) -> AsyncGenerator[list[e.Recorded], None]:
        """Events with after < seq <= until, oldest first, a page at a time (never all at once);
        with `tags`, only the events of those tags; with `message_rooms`, every event but the
        messages of other rooms."""
        params: tuple[Any, ...] = ()
        if tags is not None and message_rooms is not None:
            raise ValueError("read either some tags or some rooms' messages, not both")
        if tags is not None:
            sql = read_tags_sql(tuple(sorted(tags)))
        elif message_rooms is not None:
            sql, params = READ_ROOMS_SQL, (json.dumps(sorted(message_rooms)),)
        else:
            sql = READ_SQL
        # aclosing: a row that fails to decode (or a caller that stops early) must still
        # return the reader connection held by the inner generator.
        async with aclosing(self._pages(sql, after, until, page_size, params)) as pages:
            async for rows in pages:
                yield codec.decode_rows(rows)

    async def read_rows(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncGenerator[list[StoredRow], None]:
        """`read`, undecoded: the rows as stored."""
        row = StoredRow
        async with aclosing(self._pages(READ_SQL, after, until, page_size)) as pages:
            async for rows in pages:
                yield [row(*values) for values in rows]

    async def packed_pages(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncGenerator[PackedPage, None]:
        """The rows replay folds, a page at a time, each page one JSON array that SQLite builds
        (journal_sql's `_PACKED_ROW`)."""
        sql = packed_sql(page_size)
        upper = until if until is not None else 2**62
        async with self._reader.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None

            async def page(start: int) -> PackedPage | None:
                # One round trip; the aggregate always gives one row.
                ((count, last, body),) = await driver.execute_fetchall(sql, (start, upper))
                return PackedPage(start, last, count, body) if count else None

            async with aclosing(prefetching(page, after, lambda p: p.last)) as pages:
                async for packed in pages:
                    yield packed

    async def _pages(
        self, sql: str, after: int, until: int | None, page_size: int, params: tuple[Any, ...] = ()
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        upper = until if until is not None else 2**62
        sql += f" LIMIT {int(page_size)}"
        async with self._reader.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None

            async def page(start: int) -> list[tuple[Any, ...]] | None:
                # Keyset pages over the primary key: each page is one indexed range scan,
                # read through the driver directly (no per-row ORM or Core processing), in
                # one round trip to the driver's thread.
                return list(await driver.execute_fetchall(sql, (start, upper, *params))) or None

            async with aclosing(prefetching(page, after, lambda rows: rows[-1][0])) as pages:
                async for rows in pages:
                    yield rows

    async def history(
        self, room_id: str, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> HistoryPage:
        """A room's messages with after_seq < seq < before_seq, oldest first, and whether more
        exist (`after_seq`: the room's creation, so a re-created room shows none of the old one's).
        """
        query = (
            select(*COLUMNS)
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
        return HistoryPage(messages, len(rows) > limit)

    async def find_commands(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], e.Recorded]:
        """The events recorded for (actor, command id) pairs: idempotent retries."""
        wanted = list(set(keys))
        if not wanted:
            return {}
        async with self._lookup_lock:
            if self._lookup_conn is None:
                self._lookup_conn, self._lookup_driver = await hold(self._reader)
            rows = await self._lookup_driver.execute_fetchall(FIND_SQL, (json.dumps(wanted),))
        return by_command(rows)


if TYPE_CHECKING:
    # mypy holds the class to the port here, not only where one is passed.
    _port: type[JournalPort] = Journal


def _message(recorded: e.Recorded) -> codec.Message:
    event = recorded.event
    assert isinstance(event, e.MessageSent)
    return codec.message_of(recorded.seq, recorded.at, event)


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
