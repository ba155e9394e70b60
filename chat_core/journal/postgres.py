"""The PostgreSQL event journal: the same port as the SQLite one, over asyncpg.

SQLAlchemy (its asyncpg dialect) makes and pools the connections; the statements
(chat_core.journal.pg_sql) go through the driver (asyncpg) connection, each prepared once per
connection. One writer connection, held from the first append until close: an append is one
INSERT of column arrays, its own transaction, written only where the committed head is the
expected one (pg_sql.APPEND_SQL says why that keeps seqs gapless for readers). Reads are keyset
pages over the primary key, the next one read while the caller works on the current one;
replay's pages arrive packed into one JSON array built by PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Collection, Iterable, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, cast

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.errors import JournalConflict, JournalError, UnsupportedJournal
from chat_core.journal import pg_sql as q
from chat_core.journal.pages import by_command, hold, prefetching
from chat_core.journal.port import (
    HistoryPage,
    JournalPort,
    PackedPage,
    StoredRow,
    WriterLease,
)

_TOP = 2**62
# What a failing connection or statement raises, besides PostgreSQL's own errors.
_DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


def display_url(url: str) -> str:
    """The URL as shown to people: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


def _engine(url: str, *, readonly: bool) -> AsyncEngine:
    # A server that does not answer must fail start-up in seconds, not asyncpg's minute.
    connect_args: dict[str, Any] = {"timeout": 5.0}
    if readonly:
        # The replay tool can never write, even by accident.
        connect_args["server_settings"] = {"default_transaction_read_only": "on"}
    # Statement parameters are message text and password hashes: never in a log line.
    return create_async_engine(
        url, pool_size=4, max_overflow=4, hide_parameters=True, connect_args=connect_args
    )


class PostgresJournal:
    """An open PostgreSQL journal (a `JournalPort`). Use `PostgresJournal.open(...)`."""

    def __init__(self, url: str, engine: AsyncEngine, *, readonly: bool) -> None:
        self.url = display_url(url)
        self.shared = True
        self._engine = engine
        self._readonly = readonly
        self._write_lock = asyncio.Lock()
        self._writer: tuple[AsyncConnection, Any] | None = None
        # Writer connections dropped so far: a lease taken on one of them is gone with it.
        self.writer_lost = 0
        # A connection held for the processor's idempotency look-ups (one per batch).
        self._lookup: tuple[AsyncConnection, Any] | None = None
        self._lookup_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, url: str, *, readonly: bool = False, migrate: bool = False
    ) -> PostgresJournal:
        """Open a journal, migrating it first if asked (alembic, only when not at the head).

        An unreachable server, a foreign or newer schema is refused with `UnsupportedJournal`
        (one line) before anything is written.
        """
        from chat_core.journal.migrate import check_revision, head_revision, upgrade

        shown = display_url(url)
        engine = _engine(url, readonly=readonly)
        try:
            revision, has_events = await _schema(engine, shown)
            if migrate and revision != head_revision():
                if has_events and revision is None:
                    raise UnsupportedJournal(
                        f"{shown} holds an events table but is not a chat journal;"
                        " refusing to touch it"
                    )
                if revision is not None:
                    check_revision_known(revision, shown)
                # Alembic runs its own event loop: give it a thread.
                await asyncio.to_thread(upgrade, url)
                revision, has_events = await _schema(engine, shown)
            if not has_events or revision is None:
                raise UnsupportedJournal(
                    f"{shown} is not a chat journal (no migrated events table);"
                    " run `alembic upgrade head` on an empty database"
                )
            check_revision(revision, shown)
        except BaseException:
            await engine.dispose()
            raise
        return cls(url, engine, readonly=readonly)

    async def close(self) -> None:
        for held in (self._writer, self._lookup):
            if held is not None:
                await held[0].close()
        self._writer = self._lookup = None
        await self._engine.dispose()

    def writer_lease(self) -> WriterLease:
        return _PgLease(self)

    async def _writer_call(self, sql: str) -> None:
        """Run `sql` on the writer connection (taken first if need be)."""
        async with self._write_lock:
            if self._writer is None:
                self._writer = await _hold(self._engine)
            try:
                await self._writer[1].execute(sql, q.WRITER_LOCK)
            except _DRIVER_ERRORS as exc:
                held, self._writer = self._writer, None
                self.writer_lost += 1
                await _release(held)
                raise JournalError(f"the journal's writer lock failed: {exc}") from exc

    async def head(self) -> int:
        async with self._driver() as driver:
            return int(await driver.fetchval(q.HEAD_SQL))

    async def append(self, expected_head: int, records: Sequence[e.Recorded]) -> None:
        """Append `records` (seqs expected_head+1, ...) in one transaction, or raise
        `JournalConflict` (the head moved, or a row collides) or `JournalError`."""
        if not records:
            return
        if self._readonly:
            raise JournalError("the journal is open read-only")
        if records[0].seq != expected_head + 1:
            raise JournalConflict(f"batch starts at {records[0].seq}, head is {expected_head}")
        args = q.append_args(records)
        async with self._write_lock:
            if self._writer is None:
                self._writer = await _hold(self._engine)
            driver = self._writer[1]
            try:
                written = await driver.fetchval(q.APPEND_SQL, *args, expected_head)
            except asyncpg.UniqueViolationError as exc:
                raise JournalConflict(f"append conflicts with existing rows: {exc}") from exc
            except _DRIVER_ERRORS as exc:
                # The connection may be gone (a server restart): the next append takes a new one.
                held, self._writer = self._writer, None
                self.writer_lost += 1
                await _release(held)
                raise JournalError(f"journal append failed: {exc}") from exc
        if written != len(records):
            raise JournalConflict(f"the journal head is not {expected_head} (another writer?)")

    async def read(
        self,
        after: int = 0,
        until: int | None = None,
        page_size: int = 10_000,
        *,
        tags: Collection[str] | None = None,
        message_rooms: Collection[str] | None = None,
    ) -> AsyncGenerator[list[e.Recorded], None]:
        """Events with after < seq <= until, oldest first, a page at a time; with `tags` only
        those, with `message_rooms` every event but the messages of other rooms."""
        if tags is not None and message_rooms is not None:
            raise ValueError("read either some tags or some rooms' messages, not both")
        sql, extra = q.READ_SQL, cast(tuple[Any, ...], ())
        if tags is not None:
            if not all(tag.isidentifier() for tag in tags):
                raise ValueError(f"not event tags: {sorted(tags)!r}")
            sql, extra = q.READ_TAGS_SQL, (sorted(tags),)
        elif message_rooms is not None:
            sql, extra = q.READ_ROOMS_SQL, (sorted(message_rooms),)
        async with aclosing(self._pages(sql, after, until, page_size, extra)) as pages:
            async for rows in pages:
                yield codec.decode_rows(rows)

    async def read_rows(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncGenerator[list[StoredRow], None]:
        row = StoredRow
        async with aclosing(self._pages(q.READ_SQL, after, until, page_size)) as pages:
            async for rows in pages:
                yield [row(*values) for values in rows]

    async def packed_pages(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncGenerator[PackedPage, None]:
        """The rows replay folds, each page one JSON array that PostgreSQL builds."""
        sql = q.packed_sql()
        upper = until if until is not None else _TOP
        async with self._driver() as driver:

            async def page(start: int) -> PackedPage | None:
                count, last, body = await driver.fetchrow(sql, start, upper, page_size)
                return PackedPage(start, last, count, body) if count else None

            async with aclosing(prefetching(page, after, lambda p: p.last)) as pages:
                async for packed in pages:
                    yield packed

    async def _pages(
        self,
        sql: str,
        after: int,
        until: int | None,
        page_size: int,
        extra: tuple[Any, ...] = (),
    ) -> AsyncGenerator[list[Any], None]:
        upper = until if until is not None else _TOP
        async with self._driver() as driver:

            async def page(start: int) -> list[Any] | None:
                # Keyset pages over the primary key: each one an index range scan.
                return await driver.fetch(sql, start, upper, page_size, *extra) or None

            async with aclosing(prefetching(page, after, lambda rows: rows[-1][0])) as pages:
                async for rows in pages:
                    yield rows

    async def history(
        self, room_id: str, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> HistoryPage:
        before = before_seq if before_seq is not None else _TOP
        async with self._driver() as driver:
            rows = await driver.fetch(q.HISTORY_SQL, room_id, after_seq, before, limit + 1)
        messages = []
        for row in rows[:limit]:
            recorded = codec.decode_row(*row)
            event = recorded.event
            assert isinstance(event, e.MessageSent)
            messages.append(codec.message_of(recorded.seq, recorded.at, event))
        messages.reverse()
        return HistoryPage(messages, len(rows) > limit)

    async def find_commands(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], e.Recorded]:
        wanted = list(set(keys))
        if not wanted:
            return {}
        actors = [actor for actor, _ in wanted]
        ids = [command_id for _, command_id in wanted]
        async with self._lookup_lock:
            if self._lookup is None:
                self._lookup = await _hold(self._engine)
            try:
                rows = await self._lookup[1].fetch(q.FIND_SQL, actors, ids)
            except _DRIVER_ERRORS as exc:
                held, self._lookup = self._lookup, None
                await _release(held)
                raise JournalError(f"the idempotency look-up failed: {exc}") from exc
        return by_command(rows)

    async def kept_secret(self, name: str, candidate: str) -> str:
        """The secret kept under `name`, `candidate` if none was (then kept): the first node
        to start on an empty database chooses, every later one reads its choice."""
        async with self._driver() as driver:
            await driver.execute(q.KEEP_SECRET_SQL, name, candidate)
            return str(await driver.fetchval(q.SECRET_SQL, name))

    async def table_span(self, until: int | None = None) -> tuple[int, int, int]:
        """count(*), min(seq) and max(seq) of the events table, of the rows up to `until` if
        given (0s when none)."""
        async with self._driver() as driver:
            rows, first, last = await driver.fetchrow(q.SPAN_SQL, _TOP if until is None else until)
        return int(rows), int(first), int(last)

    async def first_missing_seq(self) -> int | None:
        """The first seq missing below the last one (an error path only: it scans)."""
        async with self._driver() as driver:
            found = await driver.fetchval(q.FIRST_MISSING_SQL)
        return None if found is None else int(found)

    def _driver(self) -> _Checkout:
        return _Checkout(self._engine)


class _PgLease:
    """The writer lease as a session-level advisory lock on the journal's writer connection:
    every append happens on that connection, so only the lease's holder appends."""

    def __init__(self, journal: PostgresJournal) -> None:
        self._journal = journal
        self._on: int | None = None  # `writer_lost` when taken: the connection it lives on

    async def hold(self) -> bool:
        journal = self._journal
        if self._on == journal.writer_lost and journal._writer is not None:
            return False
        await journal._writer_call(q.LOCK_WRITER_SQL)
        self._on = journal.writer_lost
        return True

    async def release(self) -> None:
        journal = self._journal
        if self._on is None:
            return
        on, self._on = self._on, None
        if on == journal.writer_lost and journal._writer is not None:
            await journal._writer_call(q.UNLOCK_WRITER_SQL)


class _Checkout:
    """`async with`: a pooled connection's asyncpg connection, returned to the pool after."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Any:
        self._conn, driver = await _hold(self._engine)
        return driver

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        conn, self._conn = self._conn, None
        if isinstance(exc, _DRIVER_ERRORS):
            # A connection the server dropped (a restart, an outage): out of the pool, and
            # the caller gets the journal's own error.
            if conn is not None:
                await _release((conn, None))
            raise JournalError(f"the journal database failed: {exc}") from exc
        if conn is not None:
            await conn.close()


if TYPE_CHECKING:
    # mypy holds the class to the port here, not only where one is passed.
    _port: type[JournalPort] = PostgresJournal


async def _hold(engine: AsyncEngine) -> tuple[AsyncConnection, Any]:
    try:
        return await hold(engine)
    except (DBAPIError, *_DRIVER_ERRORS) as exc:
        raise JournalError(f"cannot reach the journal database: {_cause(exc)}") from exc


async def _release(held: tuple[AsyncConnection, Any] | None) -> None:
    if held is not None:
        # The connection is likely broken already: nothing more to free if this fails.
        with contextlib.suppress(Exception):
            await held[0].invalidate()


def check_revision_known(revision: str, shown: str) -> None:
    """Refuse to migrate a database whose revision we do not know (a newer release's)."""
    from chat_core.journal.migrate import REVISIONS

    if revision not in REVISIONS:
        raise UnsupportedJournal(
            f"{shown} has schema revision {revision!r}, written by a newer release;"
            " upgrade the server"
        )


async def _schema(engine: AsyncEngine, shown: str) -> tuple[str | None, bool]:
    """The database's alembic revision (None: not migrated) and whether it has `events`."""
    try:
        async with engine.connect() as conn:
            result = await conn.exec_driver_sql(
                "SELECT to_regclass('events') IS NOT NULL, to_regclass('alembic_version')"
                " IS NOT NULL"
            )
            has_events, has_version = tuple(result.one())
            revision = None
            if has_version:
                found = await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                revision = found.scalar()
    except (DBAPIError, *_DRIVER_ERRORS) as exc:
        raise UnsupportedJournal(f"{shown} cannot be opened: {_cause(exc)}") from exc
    return revision, bool(has_events)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig) or type(exc.orig).__name__
    return str(exc) or type(exc).__name__
